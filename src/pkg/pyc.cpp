// SPDX-License-Identifier: GPL-2.0-or-later
// .pyc files (fim/pkg.h, Evidence::Derived): their names and headers, and the confined
// interpreter that compares a .pyc's code with what it compiles from the verified source.
// marshal.loads() runs on data an intruder may have written, so it runs in a child that has
// nothing to lose: a user id no account has (not nobody: another process running as nobody
// could ptrace it and dictate its answers), no groups, no new privileges, no files to write,
// limited CPU and memory. Whatever goes wrong there (a crash, a timeout, garbage) is
// "unverifiable".
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fim/base/bytes.h"
#include "internal.h"

namespace fim::pkg {

namespace {

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

uint32_t le32(std::string_view d, size_t at) {
  return static_cast<uint32_t>(static_cast<unsigned char>(d[at])) |
         static_cast<uint32_t>(static_cast<unsigned char>(d[at + 1])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(d[at + 2])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(d[at + 3])) << 24;
}

// The child's program. Only builtins and frozen modules (sys, marshal, _imp, the frozen
// importlib): with -X pycache_prefix pointing nowhere, what it does import at start-up
// (encodings, which derived.cpp verifies) compiles from the .py files, never from a
// __pycache__ we are judging.
constexpr const char kProgram[] = R"PY(
import sys, marshal, _imp
import _frozen_importlib_external as ext
MAGIC = ext.MAGIC_NUMBER
TOKEN = getattr(_imp, "pyc_magic_number_token", getattr(ext, "_RAW_MAGIC_NUMBER", None))
Code = type(compile("", "", "exec"))
FIELDS = [f for f in ("co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_nlocals",
                      "co_stacksize", "co_flags", "co_firstlineno", "co_code", "co_consts",
                      "co_names", "co_varnames", "co_freevars", "co_cellvars", "co_name",
                      "co_qualname", "co_linetable", "co_exceptiontable") if hasattr(Code, f)]
PLAIN = (int, str, bytes, bool, type(None), type(...))
def key(x):
    return (type(x).__name__, repr(x))
def same(a, b, depth=0):
    if depth > 500 or type(a) is not type(b):
        return False
    t = type(a)
    if t is Code:
        return all(same(getattr(a, f), getattr(b, f), depth + 1) for f in FIELDS)
    if t is tuple:
        return len(a) == len(b) and all(same(x, y, depth + 1) for x, y in zip(a, b))
    if t is frozenset:
        return len(a) == len(b) and sorted(map(key, a)) == sorted(map(key, b))
    if t in (float, complex):
        return repr(a) == repr(b)
    return t in PLAIN and a == b
r, w = sys.stdin.buffer, sys.stdout.buffer
w.write(b"magic " + MAGIC.hex().encode() + b"\n")
w.flush()
while True:
    line = r.readline()
    if not line:
        break
    opt, n, m = (int(x) for x in line.split())
    src, pyc = r.read(n), r.read(m)
    try:
        if len(pyc) < 16 or pyc[:4] != MAGIC:
            out = b"error magic"
        else:
            flags = int.from_bytes(pyc[4:8], "little")
            hashed = b"hash-ok"
            if flags & 1 and pyc[8:16] != _imp.source_hash(TOKEN, src):
                hashed = b"hash-bad"
            got = marshal.loads(pyc[16:])
            want = compile(src, "<source>", "exec", dont_inherit=True, optimize=opt)
            out = (b"same " if same(got, want) else b"differs ") + hashed
    except Exception as e:
        out = b"error " + type(e).__name__.encode()
    w.write(out + b"\n")
    w.flush()
)PY";

constexpr int kAnswerMs = 30000;  // one .pyc: a large module compiles in well under a second

Status send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(Errc::Io, "the python child stopped reading", errno);
    s.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<std::string> recv_line(int fd, int timeout_ms) {
  std::string line;
  char c;
  while (line.size() < 256) {
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return make_error(Errc::Io, "the python child did not answer in time");
    const ssize_t n = ::recv(fd, &c, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(Errc::Io, "the python child died");
    if (c == '\n') return line;
    line += c;
  }
  return make_error(Errc::Io, "the python child answered garbage");
}

}  // namespace

std::optional<PycName> parse_pyc_name(const Bytes& path) {
  const size_t slash = path.rfind('/');
  if (slash == Bytes::npos || path.size() < 5 || path.compare(path.size() - 4, 4, ".pyc") != 0) return std::nullopt;
  const Bytes dir = path.substr(0, slash), file = path.substr(slash + 1, path.size() - slash - 5);
  PycName n;
  const size_t dslash = dir.rfind('/');
  if (dslash == Bytes::npos || dir.substr(dslash + 1) != "__pycache__") {
    if (file.empty() || file.find('.') != Bytes::npos) return std::nullopt;
    n.source = dir + "/" + file + ".py";  // legacy: beside its source
    return n;
  }
  // NAME.cpython-3XY[.opt-N]
  std::string_view rest(file);
  if (rest.size() > 6 && rest.substr(rest.size() - 6, 5) == ".opt-") {
    const char level = rest.back();
    if (level != '1' && level != '2') return std::nullopt;
    n.optimize = level - '0';
    rest.remove_suffix(6);
  }
  const size_t dot = rest.rfind('.');
  if (dot == 0 || dot == std::string_view::npos) return std::nullopt;
  const std::string_view tag = rest.substr(dot + 1);
  if (tag.substr(0, 9) != "cpython-3" || !all_digits(tag.substr(9)) || tag.size() > 11) return std::nullopt;
  n.version = "3." + std::string(tag.substr(9));
  n.source = dir.substr(0, dslash) + "/" + std::string(rest.substr(0, dot)) + ".py";
  return n;
}

std::optional<PycHeader> parse_pyc_header(std::string_view d) {
  // The magic is a 16-bit number and "\r\n".
  if (d.size() < 16 || d[2] != '\r' || d[3] != '\n') return std::nullopt;
  PycHeader h;
  h.magic = std::string(d.substr(0, 4));
  h.flags = le32(d, 4);
  if (h.flags != 0 && h.flags != 1 && h.flags != 3) return std::nullopt;
  if (!h.hash_based()) {
    h.mtime = le32(d, 8);
    h.size = le32(d, 12);
  }
  return h;
}

std::string python_of_magic(std::string_view magic) {
  if (magic.size() < 2) return {};
  const unsigned m = static_cast<unsigned char>(magic[0]) | static_cast<unsigned>(static_cast<unsigned char>(magic[1])) << 8;
  // The last magic of each release (Lib/importlib/_bootstrap_external.py).
  static const std::pair<unsigned, const char*> kMagics[] = {
      {3413, "3.8"}, {3425, "3.9"}, {3439, "3.10"}, {3495, "3.11"}, {3531, "3.12"}, {3571, "3.13"}};
  for (const auto& [num, version] : kMagics)
    if (m == num) return version;
  return {};
}

Result<pid_t> spawn_confined(int exe_fd, const std::vector<std::string>& argv, int io, uint64_t cpu_seconds,
                             uint64_t file_size) {
  // Everything the child needs is made before fork(): after it, only system calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  char env0[] = "LC_ALL=C";
  char* envp[] = {env0, nullptr};
  const bool root = ::geteuid() == 0;
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull.valid()) return make_error(Errc::Io, "/dev/null", errno);
  const pid_t pid = ::fork();
  if (pid < 0) return make_error(Errc::Io, "fork", errno);
  if (pid > 0) return pid;
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int s = 1; s < NSIG; ++s) ::signal(s, SIG_DFL);
  if (::dup2(io, 0) < 0 || ::dup2(io, 1) < 0 || ::dup2(devnull.get(), 2) < 0 || ::chdir("/") != 0) ::_exit(127);
  const auto limit = [](int what, uint64_t v) {
    const rlimit l{static_cast<rlim_t>(v), static_cast<rlim_t>(v)};
    return ::setrlimit(what, &l) == 0;
  };
  if (!limit(RLIMIT_CPU, cpu_seconds) || !limit(RLIMIT_AS, uint64_t{1} << 30) || !limit(RLIMIT_FSIZE, file_size) ||
      !limit(RLIMIT_CORE, 0) || !limit(RLIMIT_NOFILE, 64))
    ::_exit(127);
  if (root && (::setgroups(0, nullptr) != 0 || ::setresgid(kConfinedId, kConfinedId, kConfinedId) != 0 ||
               ::setresuid(kConfinedId, kConfinedId, kConfinedId) != 0))
    ::_exit(127);
  // Nothing of ours beyond stdio and the program (a writable state.db, a baseline) reaches it.
  ::syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */);
  // After the uid change: no forks for the child (set before it, execve would fail for a
  // user that already has processes).
  if (!limit(RLIMIT_NPROC, 0) || ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(127);
  ::syscall(SYS_execveat, exe_fd, "", args.data(), envp, AT_EMPTY_PATH);
  ::_exit(127);
}

Result<std::unique_ptr<PycChecker>> PycChecker::start(int interpreter_fd) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return make_error(Errc::Io, "socketpair", errno);
  std::unique_ptr<PycChecker> c(new PycChecker());
  c->io_.reset(sv[0]);
  UniqueFd theirs(sv[1]);
  // -I -S -E: nothing from the environment, the user's site or the current directory; -B and
  // pycache_prefix under a device (no directory can be there): no .pyc read or written;
  // frozen_modules: importlib, io, codecs, abc from the binary; -W ignore: compile()'s
  // warnings are not ours.
  auto pid = spawn_confined(interpreter_fd,
                            {"python3", "-I", "-S", "-B", "-E", "-W", "ignore", "-X", "frozen_modules=on", "-X",
                             "pycache_prefix=/dev/null", "-c", kProgram},
                            theirs.get(), 600, 0);
  if (!pid) return pid.error();
  c->pid_ = *pid;
  theirs.reset();
  auto hello = recv_line(c->io_.get(), kAnswerMs);
  if (!hello) return hello.error();
  const auto raw = hello->substr(0, 6) == "magic " ? hex_decode(hello->substr(6)) : std::nullopt;
  if (!raw || raw->size() != 4) return make_error(Errc::Io, "the python child did not start properly");
  c->magic_ = *raw;
  return c;
}

PycChecker::~PycChecker() {
  io_.reset();
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
}

Result<PycChecker::Answer> PycChecker::compare(std::string_view source, std::string_view pyc, int optimize) {
  FIM_TRY(send_all(io_.get(), std::to_string(optimize) + " " + std::to_string(source.size()) + " " +
                                  std::to_string(pyc.size()) + "\n"));
  FIM_TRY(send_all(io_.get(), source));
  FIM_TRY(send_all(io_.get(), pyc));
  auto line = recv_line(io_.get(), kAnswerMs);
  if (!line) return line.error();
  Answer a;
  if (*line == "same hash-ok" || *line == "differs hash-ok" || *line == "same hash-bad" || *line == "differs hash-bad") {
    a.same_code = line->substr(0, 5) == "same ";
    a.hash_ok = line->substr(line->size() - 7) == "hash-ok";
    return a;
  }
  return make_error(Errc::Io, "python could not load it (" + escape_terminal(*line) + ")");
}

}  // namespace fim::pkg
