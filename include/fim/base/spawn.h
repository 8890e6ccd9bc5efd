// SPDX-License-Identifier: GPL-2.0-or-later
// Running other programs as children (gpgv, dpkg-deb, apt-helper, an image's tools): a fixed
// argv (no shell), a minimal environment, stdin from a file of ours, stdout to a pipe read
// by the caller, stderr kept for the error message.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "fim/base/fd.h"
#include "fim/base/result.h"

namespace fim {

class Child {
 public:
  /// Starts argv[0] (an absolute path) with stdin from `stdin_fd` (-1: /dev/null). The fds in
  /// `pass` stay open in the child under the same numbers (gpgv's keyrings as /proc/self/fd/N,
  /// its --status-fd); every other fd of ours is close-on-exec.
  static Result<Child> start(const std::vector<std::string>& argv, int stdin_fd, const std::vector<int>& pass = {});
  Child(Child&&) noexcept;
  Child& operator=(Child&&) = delete;
  ~Child();  ///< kills and reaps a child not waited for

  int out() const { return out_.get(); }  ///< its stdout
  /// Closes stdout, reaps it; an error naming the program and its stderr unless it exited 0.
  Status wait();

 private:
  Child() = default;
  pid_t pid_ = -1;
  UniqueFd out_, err_;
  std::string name_;
};

/// Runs argv to completion and returns its stdout (at most `limit` bytes, else an error).
Result<std::string> run_capture(const std::vector<std::string>& argv, int stdin_fd, size_t limit,
                                const std::vector<int>& pass = {});

}  // namespace fim
