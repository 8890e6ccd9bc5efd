// SPDX-License-Identifier: GPL-2.0-or-later
// A FUSE filesystem whose one file, /stuck, can be listed, stat'ed and opened but never read:
// the read blocks forever (a hung FUSE or network filesystem; docs/design.md, Threat model, T30).
// Usage: hangfs MOUNTPOINT [fuse options]
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fuse.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int getattr_(const char* p, struct stat* s, struct fuse_file_info* fi) {
  (void)fi;
  memset(s, 0, sizeof *s);
  if (!strcmp(p, "/")) {
    s->st_mode = S_IFDIR | 0755;
    s->st_nlink = 2;
    return 0;
  }
  if (!strcmp(p, "/stuck") || !strcmp(p, "/fine")) {
    s->st_mode = S_IFREG | 0644;
    s->st_nlink = 1;
    s->st_size = 4096;
    return 0;
  }
  return -ENOENT;
}

static int readdir_(const char* p, void* b, fuse_fill_dir_t f, off_t o, struct fuse_file_info* fi,
                    enum fuse_readdir_flags fl) {
  (void)o, (void)fi, (void)fl;
  if (strcmp(p, "/")) return -ENOENT;
  f(b, ".", NULL, 0, 0);
  f(b, "..", NULL, 0, 0);
  f(b, "fine", NULL, 0, 0);
  f(b, "stuck", NULL, 0, 0);
  return 0;
}

static int open_(const char* p, struct fuse_file_info* fi) {
  (void)fi;
  return strcmp(p, "/stuck") && strcmp(p, "/fine") ? -ENOENT : 0;
}

static int read_(const char* p, char* b, size_t n, off_t o, struct fuse_file_info* fi) {
  (void)fi;
  if (!strcmp(p, "/fine")) {
    if (o >= 4096) return 0;
    if (n > (size_t)(4096 - o)) n = (size_t)(4096 - o);
    memset(b, 'f', n);
    return (int)n;
  }
  for (;;) pause();
  return 0;
}

static const struct fuse_operations ops = {.getattr = getattr_, .readdir = readdir_, .open = open_, .read = read_};

int main(int argc, char** argv) { return fuse_main(argc, argv, &ops, NULL); }
