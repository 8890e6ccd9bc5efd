// SPDX-License-Identifier: GPL-2.0-or-later
// The one owner of a file descriptor (docs/design.md, Conventions 1): move-only, closes once.
#pragma once

#include <unistd.h>

#include <memory>
#include <utility>

namespace fim {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

/// A directory fd shared by the walker and the workers that still need it.
using SharedFd = std::shared_ptr<const UniqueFd>;

/// Deleter for C handles: std::unique_ptr<T, CDeleter<free_fn>> (zero-size).
template <auto F>
struct CDeleter {
  template <class T>
  void operator()(T* p) const {
    if (p) F(p);
  }
};

}  // namespace fim
