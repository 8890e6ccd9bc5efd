// SPDX-License-Identifier: GPL-2.0-or-later
// journald's native protocol (src/daemon/journal.h) against a datagram socket of the test's
// own, standing in for /run/systemd/journal/socket: the field mapping (PRIORITY, MESSAGE_ID
// per record type), the encoding, the memfd for large entries, $JOURNAL_STREAM detection, and
// StreamSink choosing the journal over stdout lines and syslog(3).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include "daemon/journal.h"
#include "daemon/sink.h"
#include "fim/base/fd.h"
#include "testutil.h"

using namespace fim;
using namespace fim::watchd;

namespace {

/// A bound datagram socket: what journald would receive.
struct FakeJournald {
  explicit FakeJournald(const std::string& path) : path(path) {
    fd.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    int big = 4 << 20;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  }
  /// The next entry, read from the datagram or from the memfd passed with it; "" when none.
  std::string next() {
    std::string buf(1 << 20, '\0');
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd.get(), &msg, MSG_DONTWAIT);
    if (n < 0) return "";
    if (cmsghdr* c = CMSG_FIRSTHDR(&msg); c && c->cmsg_type == SCM_RIGHTS) {
      int m = -1;
      std::memcpy(&m, CMSG_DATA(c), sizeof m);
      UniqueFd memfd(m);
      struct stat st {};
      REQUIRE(::fstat(m, &st) == 0);
      std::string data(static_cast<size_t>(st.st_size), '\0');
      REQUIRE(::pread(m, data.data(), data.size(), 0) == st.st_size);
      return data;
    }
    buf.resize(static_cast<size_t>(n));
    return buf;
  }
  std::string path;
  UniqueFd fd;
};

bool has_field(const std::string& entry, const std::string& kv) {
  return entry.find(kv + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("every record type has its own stable MESSAGE_ID, and none is reused") {
  std::set<std::string_view> ids;
  for (auto type : journal_record_types()) {
    const auto id = journal_message_id(type);
    REQUIRE(id.size() == 32);
    CHECK(id.find_first_not_of("0123456789abcdef") == std::string_view::npos);
    CHECK(ids.insert(id).second);
  }
  CHECK(ids.size() == 19);
  // Pinned: monitoring rules select on them; a change here is an incompatible change.
  CHECK(journal_message_id("change") == "c0aee8a1b2d24a75afd95d2456ee37f1");
  CHECK(journal_message_id("gap") == "17897c6caff34d9db499fda66fed944f");
  CHECK(journal_message_id("rescan_progress") == "d89057a22bd24d479eabb330530878d2");
  CHECK(journal_message_id("no_such_type").empty());
}

TEST_CASE("journal_fields: MESSAGE, PRIORITY (clamped to 0-7), MESSAGE_ID, type, identifier") {
  const auto f = journal_fields("alert", LOG_ERR, "{\"type\":\"alert\"}");
  const std::string e = journal_encode(f);
  CHECK(has_field(e, "MESSAGE={\"type\":\"alert\"}"));
  CHECK(has_field(e, "PRIORITY=3"));
  CHECK(has_field(e, "MESSAGE_ID=575fafad72cc443fbb511c31d5d43d01"));
  CHECK(has_field(e, "FIMCTL_TYPE=alert"));
  CHECK(has_field(e, "SYSLOG_IDENTIFIER=fimctl"));
  CHECK(has_field(journal_encode(journal_fields("change", 42, "x")), "PRIORITY=7"));
  CHECK(journal_encode(journal_fields("unknown", LOG_INFO, "x")).find("MESSAGE_ID") == std::string::npos);
}

TEST_CASE("journal_encode: a value with a newline is length-prefixed, not split") {
  const std::string e = journal_encode({{"A", "1"}, {"MESSAGE", "two\nlines"}});
  const std::string want = std::string("A=1\nMESSAGE\n") + std::string("\x09\0\0\0\0\0\0\0", 8) + "two\nlines\n";
  CHECK(e == want);
}

TEST_CASE("is_journal_stream matches DEV:INODE of the fd and nothing else") {
  fim::test::TempDir tmp;
  fim::test::write_file(tmp / "f", "");
  UniqueFd fd(::open((tmp / "f").c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  REQUIRE(::fstat(fd.get(), &st) == 0);
  const std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  CHECK(is_journal_stream(fd.get(), mine.c_str()));
  CHECK_FALSE(is_journal_stream(fd.get(), (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1)).c_str()));
  CHECK_FALSE(is_journal_stream(fd.get(), (mine + "x").c_str()));
  CHECK_FALSE(is_journal_stream(fd.get(), nullptr));
  CHECK_FALSE(is_journal_stream(-1, mine.c_str()));
}

TEST_CASE("Journal sends one datagram, and a large entry through a sealed memfd") {
  fim::test::TempDir tmp;
  FakeJournald jd(tmp / "socket");
  Journal j(tmp / "socket");
  REQUIRE(j.available());
  const std::string small = journal_encode(journal_fields("change", LOG_WARNING, "small"));
  REQUIRE(j.send(small));
  CHECK(jd.next() == small);
  const std::string big = journal_encode(journal_fields("change", LOG_WARNING, std::string(8 << 20, 'x')));
  REQUIRE(j.send(big));
  CHECK(jd.next() == big);
  CHECK_FALSE(Journal(tmp / "absent").available());
  CHECK_FALSE(Journal(tmp / "absent").send(small));
}

TEST_CASE("StreamSink: --syslog on a journald host sends entries with fields; stdout keeps its lines") {
  fim::test::TempDir tmp;
  FakeJournald jd(tmp / "socket");
  FILE* out = std::fopen((tmp / "out").c_str(), "w+");
  REQUIRE(out);
  ::unsetenv("JOURNAL_STREAM");
  {
    StreamSink sink(out, Format::Ndjson, true, Journal(tmp / "socket"));
    sink.event("gap", json::Writer::fields(), "lost", LOG_WARNING);
    sink.alert("unsigned", "the baseline is unsigned");
  }
  std::fflush(out);
  const std::string gap = jd.next(), alert = jd.next();
  CHECK(has_field(gap, "MESSAGE_ID=17897c6caff34d9db499fda66fed944f"));
  CHECK(has_field(gap, "PRIORITY=4"));
  CHECK(gap.find("MESSAGE={\"schema\":\"fimctl.v1\",\"type\":\"gap\"") != std::string::npos);
  CHECK(has_field(alert, "MESSAGE_ID=575fafad72cc443fbb511c31d5d43d01"));
  CHECK(jd.next().empty());
  std::rewind(out);
  char line[4096];
  int lines = 0;
  while (std::fgets(line, sizeof line, out)) ++lines;
  CHECK(lines == 2);
  std::fclose(out);
}

TEST_CASE("StreamSink: stdout that is the journal stream becomes entries, not lines (once with --syslog)") {
  fim::test::TempDir tmp;
  FakeJournald jd(tmp / "socket");
  FILE* out = std::fopen((tmp / "out").c_str(), "w+");
  REQUIRE(out);
  struct stat st {};
  REQUIRE(::fstat(::fileno(out), &st) == 0);
  ::setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)).c_str(), 1);
  for (bool use_syslog : {false, true}) {
    {
      StreamSink sink(out, Format::Plain, use_syslog, Journal(tmp / "socket"));
      sink.event("watch_start", json::Writer::fields(), "watching 1 root(s)");
    }
    const std::string e = jd.next();
    CHECK(has_field(e, "MESSAGE_ID=f784f4c577d94247b3689432667c3f88"));
    CHECK(has_field(e, "PRIORITY=5"));
    CHECK(e.find(" watch_start: watching 1 root(s)\n") != std::string::npos);  // the plain line
    CHECK(jd.next().empty());
  }
  // Without journald (no socket), the lines go to stdout as before.
  {
    StreamSink sink(out, Format::Plain, false, Journal(tmp / "absent"));
    sink.event("watch_stop", json::Writer::fields(), "stopped");
  }
  ::unsetenv("JOURNAL_STREAM");
  std::fflush(out);
  struct stat after {};
  REQUIRE(::fstat(::fileno(out), &after) == 0);
  std::rewind(out);
  char line[4096] = {};
  REQUIRE(std::fgets(line, sizeof line, out));
  CHECK(std::string(line).find("watch_stop: stopped") != std::string::npos);
  CHECK_FALSE(std::fgets(line, sizeof line, out));
  std::fclose(out);
}
