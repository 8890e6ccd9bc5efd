// SPDX-License-Identifier: GPL-2.0-or-later
#include "fim/base/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fim/base/bytes.h"

namespace fim {

Result<Child> Child::start(const std::vector<std::string>& argv, int stdin_fd, const std::vector<int>& pass) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') return make_error(Errc::Bug, "spawn: no absolute program path");
  if (::access(argv[0].c_str(), X_OK) != 0)
    return make_error(Errc::Io, "cannot run " + quote(argv[0]), errno);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return make_error(Errc::Io, "pipe", errno);
  Child c;
  c.name_ = argv[0];
  c.out_.reset(p[0]);
  UniqueFd wr(p[1]);
  c.err_.reset(::memfd_create("fimctl-child-stderr", MFD_CLOEXEC));
  UniqueFd devnull;
  if (stdin_fd < 0) {
    devnull.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    stdin_fd = devnull.get();
  }
  if (!c.err_.valid() || stdin_fd < 0) return make_error(Errc::Io, "cannot prepare to run " + quote(argv[0]), errno);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, stdin_fd, 0);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, c.err_.get(), 2);
  // dup2 onto itself clears FD_CLOEXEC in the child only (POSIX 2024; glibc >= 2.29): the
  // parent's fds stay close-on-exec, so no other child of a concurrent thread inherits them.
  for (const int fd : pass)
    if (fd > 2) posix_spawn_file_actions_adddup2(&fa, fd, fd);
  posix_spawnattr_t at;
  posix_spawnattr_init(&at);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  char env0[] = "LC_ALL=C", env1[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  char* envp[] = {env0, env1, nullptr};
  const int rc = ::posix_spawn(&c.pid_, argv[0].c_str(), &fa, &at, args.data(), envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (rc != 0) return make_error(Errc::Io, "cannot run " + quote(argv[0]), rc);
  return c;
}

Child::Child(Child&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), out_(std::move(o.out_)), err_(std::move(o.err_)), name_(std::move(o.name_)) {}

Child::~Child() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
}

Status Child::wait() {
  out_.reset();
  int st = 0;
  pid_t r;
  while ((r = ::waitpid(pid_, &st, 0)) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  if (r < 0) return make_error(Errc::Io, "waitpid " + quote(name_), errno);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return {};
  std::string err;
  char buf[512];
  const ssize_t n = ::pread(err_.get(), buf, sizeof buf - 1, 0);
  if (n > 0) err.assign(buf, static_cast<size_t>(n));
  while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
  for (char& ch : err)
    if (ch == '\n' || static_cast<unsigned char>(ch) < 0x20) ch = ' ';
  const std::string how = WIFEXITED(st) ? "exit " + std::to_string(WEXITSTATUS(st))
                                        : "signal " + std::to_string(WTERMSIG(st));
  return make_error(Errc::Io, quote(name_) + " failed (" + how + ")" + (err.empty() ? "" : ": " + err));
}

Result<std::string> run_capture(const std::vector<std::string>& argv, int stdin_fd, size_t limit,
                                const std::vector<int>& pass) {
  auto c = Child::start(argv, stdin_fd, pass);
  if (!c) return c.error();
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(c->out(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Errc::Io, "reading from " + quote(argv[0]), errno);
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > limit)
      return make_error(Errc::Io, quote(argv[0]) + " wrote more than " + std::to_string(limit) + " bytes");
    out.append(buf, static_cast<size_t>(n));
  }
  FIM_TRY(c->wait());
  return out;
}

}  // namespace fim
