// SPDX-License-Identifier: GPL-2.0-or-later
// Derived evidence: .pyc names and headers, and the confined interpreter comparing a .pyc's
// code with its source's (with this host's python3, when it has one; the verdicts in a real
// root are tests/root/derived_test.py's).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "doctest/doctest.h"
#include "pkg/internal.h"
#include "testutil.h"

using namespace fim;
using namespace fim::pkg;

TEST_CASE("pyc names: __pycache__ with the interpreter's tag and optimization level, legacy beside the .py") {
  auto n = parse_pyc_name("/usr/lib/python3/dist-packages/apt/__pycache__/package.cpython-311.pyc");
  REQUIRE(n);
  CHECK(n->source == "/usr/lib/python3/dist-packages/apt/package.py");
  CHECK(n->version == "3.11");
  CHECK(n->optimize == 0);
  n = parse_pyc_name("/a/__pycache__/x.y.cpython-39.opt-2.pyc");
  REQUIRE(n);
  CHECK(n->source == "/a/x.y.py");
  CHECK(n->version == "3.9");
  CHECK(n->optimize == 2);
  n = parse_pyc_name("/a/b/mod.pyc");
  REQUIRE(n);
  CHECK(n->source == "/a/b/mod.py");
  CHECK(n->version.empty());
  CHECK_FALSE(parse_pyc_name("/a/__pycache__/x.pypy39.pyc"));
  CHECK_FALSE(parse_pyc_name("/a/__pycache__/x.cpython-311.opt-3.pyc"));
  CHECK_FALSE(parse_pyc_name("/a/__pycache__/.cpython-311.pyc"));
  CHECK_FALSE(parse_pyc_name("/a/__pycache__/x.cpython-3a1.pyc"));
  CHECK_FALSE(parse_pyc_name("/a/b/mod.py"));
  CHECK_FALSE(parse_pyc_name("/a/b/m.x.pyc"));  // legacy names have no tag
}

TEST_CASE("pyc headers: timestamp and hash-based; anything else is refused") {
  std::string h("\xa7\x0d\x0d\x0a", 4);
  h += std::string("\0\0\0\0", 4) + std::string("\x10\x20\x30\x40", 4) + std::string("\x05\x01\0\0", 4);
  auto p = parse_pyc_header(h);
  REQUIRE(p);
  CHECK_FALSE(p->hash_based());
  CHECK(p->mtime == 0x40302010u);
  CHECK(p->size == 0x105u);
  CHECK(python_of_magic(p->magic) == "3.11");
  h[4] = 3;
  p = parse_pyc_header(h);
  REQUIRE(p);
  CHECK(p->hash_based());
  h[4] = 2;
  CHECK_FALSE(parse_pyc_header(h));
  CHECK_FALSE(parse_pyc_header(h.substr(0, 15)));
  h[4] = 0;
  h[2] = 'x';
  CHECK_FALSE(parse_pyc_header(h));
  CHECK(python_of_magic(std::string("\x01\x02\r\n", 4)).empty());
}

namespace {

/// Compiles `source` with the host's python3.11 into a .pyc (py_compile), returns its bytes.
std::string compiled(const test::TempDir& dir, const std::string& source, const char* mode) {
  const std::string py = dir.path() + "/m.py", pyc = dir.path() + "/m.pyc";
  test::write_file(py, source);
  const std::string cmd = "/usr/bin/python3.11 -I -c 'import py_compile,sys; py_compile.compile(sys.argv[1], "
                          "cfile=sys.argv[2], invalidation_mode=py_compile.PycInvalidationMode." +
                          std::string(mode) + ")' " + py + " " + pyc;
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::string out;
  FILE* f = std::fopen(pyc.c_str(), "rb");
  REQUIRE(f);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

}  // namespace

TEST_CASE("the confined python: same code, foreign code, garbage") {
  if (::access("/usr/bin/python3.11", X_OK) != 0) return;  // no interpreter on this host
  test::TempDir dir;
  UniqueFd fd(::open("/usr/bin/python3.11", O_RDONLY | O_CLOEXEC));
  REQUIRE(fd.valid());
  auto c = PycChecker::start(fd.get());
  REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
  CHECK((*c)->magic() == std::string("\xa7\x0d\x0d\x0a", 4));
  const std::string src = "import os\ndef f(x):\n    return {1, 2.0, -0.0} if x else (lambda: x)\nclass A:\n    y = 3\n";
  const std::string pyc = compiled(dir, src, "TIMESTAMP");
  auto a = (*c)->compare(src, pyc, 0);
  REQUIRE(a);
  CHECK(a->same_code);
  // The header of the real source, the code of another (a backdoor kept across upgrades).
  const std::string evil = compiled(dir, src + "os.system('id')\n", "TIMESTAMP");
  a = (*c)->compare(src, pyc.substr(0, 16) + evil.substr(16), 0);
  REQUIRE(a);
  CHECK_FALSE(a->same_code);
  // -0.0 is not 0.0, 1 is not True: constants compare by type and repr.
  const std::string other = "import os\ndef f(x):\n    return {1, 2.0, 0.0} if x else (lambda: x)\nclass A:\n    y = 3\n";
  a = (*c)->compare(other, pyc, 0);
  REQUIRE(a);
  CHECK_FALSE(a->same_code);
  const std::string hashed = compiled(dir, src, "CHECKED_HASH");
  a = (*c)->compare(src, hashed, 0);
  REQUIRE(a);
  CHECK((a->same_code && a->hash_ok));
  a = (*c)->compare(src + "\n", hashed, 0);
  REQUIRE(a);
  CHECK_FALSE(a->hash_ok);
  // Garbage after a valid header: an error, and the child still answers the next one.
  CHECK_FALSE((*c)->compare(src, pyc.substr(0, 16) + std::string("\xe3\xff\xff\xff\x7f", 5), 0));
  a = (*c)->compare(src, pyc, 0);
  REQUIRE(a);
  CHECK(a->same_code);
}

TEST_CASE("the confined child: a user id no account has, no groups, no descriptors of ours, no forks") {
  if (::access("/usr/bin/python3.11", X_OK) != 0) return;
  UniqueFd exe(::open("/usr/bin/python3.11", O_RDONLY | O_CLOEXEC));
  UniqueFd leaked(::open("/dev/null", O_RDONLY));  // not close-on-exec: must not reach it anyway
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  UniqueFd mine(sv[0]), theirs(sv[1]);
  auto pid = spawn_confined(exe.get(),
                            {"python3", "-I", "-S", "-c",
                             "import os\ntry:\n os.fork(); f = 'forked'\nexcept OSError: f = 'nofork'\n"
                             "print(os.getuid(), os.getgid(), os.getgroups(), sorted(os.listdir('/proc/self/fd')), f,"
                             " open('/proc/self/status').read().split('NoNewPrivs:')[1].split()[0])"},
                            theirs.get(), 10, 0);
  REQUIRE(pid);
  theirs.reset();
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = ::read(mine.get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  int st = 0;
  ::waitpid(*pid, &st, 0);
  const std::string id = ::geteuid() == 0 ? std::to_string(kConfinedId) : std::to_string(::getuid());
  const std::string gid = ::geteuid() == 0 ? std::to_string(kConfinedId) : std::to_string(::getgid());
  INFO(out);
  CHECK(out.rfind(id + " " + gid + " ", 0) == 0);
  if (::geteuid() == 0) CHECK(out.find(" [] ") != std::string::npos);
  // 0, 1, 2 and the one listdir opens: nothing of ours (the program itself is closed on exec).
  CHECK(out.find("['0', '1', '2', '3'] nofork 1") != std::string::npos);
}
