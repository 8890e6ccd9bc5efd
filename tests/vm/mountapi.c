// SPDX-License-Identifier: GPL-2.0-or-later
// mountapi bind SRC DST | tmpfs DST: a mount made with the new mount API (open_tree(2) or
// fsopen(2) + fsmount(2), then move_mount(2)), which util-linux 2.39+ uses and busybox does not:
// the vm suite's test of the move_mount hook. Prints the errno's text and exits 1 on failure.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int tree = -1;
  const char *dst;
  if (argc == 4 && strcmp(argv[1], "bind") == 0) {
    dst = argv[3];
    tree = open_tree(AT_FDCWD, argv[2], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  } else if (argc == 3 && strcmp(argv[1], "tmpfs") == 0) {
    dst = argv[2];
    int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
    if (fs >= 0 && fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0) tree = fsmount(fs, FSMOUNT_CLOEXEC, 0);
  } else {
    fprintf(stderr, "usage: mountapi bind SRC DST | tmpfs DST\n");
    return 2;
  }
  if (tree < 0) {
    fprintf(stderr, "mountapi: open_tree/fsmount: %s\n", strerror(errno));
    return 1;
  }
  if (move_mount(tree, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    fprintf(stderr, "mountapi: move_mount onto %s: %s\n", dst, strerror(errno));
    return 1;
  }
  return 0;
}
