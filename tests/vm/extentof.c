// SPDX-License-Identifier: GPL-2.0-or-later
// extentof FILE: the byte offset on its block device of FILE's first data extent (FIEMAP),
// for the vm suite's write beneath the filesystem (debugfs and filefrag are not in busybox).
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) return fprintf(stderr, "usage: extentof FILE\n"), 2;
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) return perror(argv[1]), 1;
  fsync(fd);  // delayed allocation: the extent has no physical block before writeback
  struct fiemap *fm = calloc(1, sizeof *fm + sizeof(struct fiemap_extent));
  fm->fm_length = ~0ULL;
  fm->fm_flags = FIEMAP_FLAG_SYNC;
  fm->fm_extent_count = 1;
  if (ioctl(fd, FS_IOC_FIEMAP, fm) != 0) return perror("FS_IOC_FIEMAP"), 1;
  if (fm->fm_mapped_extents < 1) return fprintf(stderr, "%s: no extent\n", argv[1]), 1;
  printf("%llu\n", (unsigned long long)fm->fm_extents[0].fe_physical);
  return 0;
}
