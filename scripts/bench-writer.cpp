// SPDX-License-Identifier: GPL-2.0-or-later
// The writer side of the watch benchmark (scripts/bench-watch.py).
//   bench-writer rate DIR N        N x {create DIR/f<i>, write 64 B, close}; prints files/s
//   bench-writer lat DIR N GAP_US  N files named lat-<CLOCK_REALTIME ns>, one every GAP_US
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

static long long now_ns(clockid_t c) {
  timespec ts;
  clock_gettime(c, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: bench-writer rate DIR N | lat DIR N GAP_US\n");
    return 2;
  }
  const std::string mode = argv[1], dir = argv[2];
  const long n = std::atol(argv[3]);
  char buf[64] = "fimctl bench payload .........................................";
  if (mode == "rate") {
    const long long t0 = now_ns(CLOCK_MONOTONIC);
    for (long i = 0; i < n; ++i) {
      const std::string p = dir + "/f" + std::to_string(i);
      const int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0 || write(fd, buf, sizeof buf) != static_cast<ssize_t>(sizeof buf)) return perror(p.c_str()), 1;
      close(fd);
    }
    const double s = (now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
    std::printf("%.0f\n", n / s);
    return 0;
  }
  const long gap = argc > 4 ? std::atol(argv[4]) : 1000;
  for (long i = 0; i < n; ++i) {
    const std::string p = dir + "/lat-" + std::to_string(now_ns(CLOCK_REALTIME));
    const int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, buf, sizeof buf) != static_cast<ssize_t>(sizeof buf)) return perror(p.c_str()), 1;
    close(fd);
    usleep(static_cast<useconds_t>(gap));
  }
  return 0;
}
