// SPDX-License-Identifier: GPL-2.0-or-later
// initmod FILE: loads a kernel module with init_module(2) from memory, the path busybox insmod
// (finit_module) does not take: the vm suite's test of the kernel_load_data hook.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: initmod FILE.ko\n");
    return 2;
  }
  int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    perror(argv[1]);
    return 1;
  }
  char *buf = malloc((size_t)st.st_size);
  size_t got = 0;
  while (buf && got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    if (n <= 0) break;
    got += (size_t)n;
  }
  if (!buf || got != (size_t)st.st_size) {
    perror("read");
    return 1;
  }
  if (syscall(SYS_init_module, buf, got, "") != 0) {
    perror("init_module");
    return 1;
  }
  return 0;
}
