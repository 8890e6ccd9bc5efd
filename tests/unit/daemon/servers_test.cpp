// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon's server thread (src/daemon/servers.h) on real sockets, no root: answers come
// from the published snapshot (a fresh one when the main thread answers the refresh), a
// client beyond the cap is closed at once, an idle one at its deadline, requests are bounded,
// and stop() leaves nothing listening. Waits are bounded and generous; nothing is timed.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <thread>

#include "daemon/servers.h"
#include "fim/base/sys.h"
#include "fim/watch.h"
#include "testutil.h"

using namespace fim;
using namespace fim::watchd;

namespace {

Snapshot with_events(uint64_t events) {
  Snapshot s;
  s.status.running = true;
  s.status.pid = 7;
  s.status.baseline = "/var/lib/fimctl/baseline.db";
  s.status.events = events;
  return s;
}

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());
  return sa;
}

UniqueFd unix_listener(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  const sockaddr_un sa = unix_address(path);
  REQUIRE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(::listen(fd.get(), 16) == 0);
  return fd;
}

UniqueFd unix_client(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const sockaddr_un sa = unix_address(path);
  REQUIRE(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  return fd;
}

/// A TCP listener on 127.0.0.1 (a port the kernel picks) and that port.
std::pair<UniqueFd, uint16_t> tcp_listener() {
  auto fd = listen_tcp("127.0.0.1", 0);
  REQUIRE(fd.has_value());
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  REQUIRE(::getsockname(fd->get(), reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  return {std::move(*fd), ntohs(sa.sin_port)};
}

UniqueFd tcp_client(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  return fd;
}

/// Everything the peer sends until it closes (bounded: 10 s, then what came).
std::string read_all(int fd) {
  std::string out;
  const double end = monotonic_seconds() + 10;
  char buf[4096];
  while (monotonic_seconds() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
  FAIL("the server neither answered nor closed within 10 s");
  return out;
}

/// Waits (bounded) until `pred` holds.
template <class P>
bool eventually(P pred) {
  const double end = monotonic_seconds() + 10;
  while (!pred()) {
    if (monotonic_seconds() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

std::string get(uint16_t port, const std::string& request) {
  UniqueFd c = tcp_client(port);
  REQUIRE(::send(c.get(), request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
  return read_all(c.get());
}

}  // namespace

TEST_CASE("metrics text: every sample has its HELP and TYPE, the servers' counts per server") {
  Snapshot s = with_events(5);
  s.started_ns = 2'000'000'000;
  const std::string text = metrics_text(s, {10, 2, 1}, {20, 4, 3});
  CHECK(text.find("\nfimctl_events_total 5\n") != std::string::npos);
  CHECK(text.find("\nfimctl_start_time_seconds 2\n") != std::string::npos);
  CHECK(text.find("fimctl_server_connections_refused_total{server=\"status\"} 2\n") != std::string::npos);
  CHECK(text.find("fimctl_server_connections_refused_total{server=\"metrics\"} 4\n") != std::string::npos);
  CHECK(text.find("fimctl_server_connections_timed_out_total{server=\"metrics\"} 3\n") != std::string::npos);
  CHECK(text.find("fimctl_server_connections_total{server=\"status\"} 10\n") != std::string::npos);
  CHECK(text.find("falco") == std::string::npos);
  s.falco = true, s.falco_posted = 9;
  CHECK(metrics_text(s, {}, {}).find("\nfimctl_falco_posted_total 9\n") != std::string::npos);
  // Each sample's name was introduced by "# HELP name" and "# TYPE name" lines before it.
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = text.find('\n', pos);
    REQUIRE(end != std::string::npos);
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.rfind("# ", 0) == 0) continue;
    const std::string name = line.substr(0, line.find_first_of("{ "));
    CAPTURE(line);
    CHECK(text.find("# HELP " + name + " ") < text.find(line));
    CHECK(text.find("# TYPE " + name + " ") < text.find(line));
  }
}

TEST_CASE("status: answered from a snapshot published after the client came") {
  test::TempDir dir;
  Servers servers({32, 5, 5});
  REQUIRE(servers.start(unix_listener(dir / "s.sock"), UniqueFd(), with_events(1)));
  CHECK(servers.serves_status());
  UniqueFd c = unix_client(dir / "s.sock");
  // The main thread's part: the servers ask for a fresh snapshot, it publishes one.
  pollfd p{servers.refresh_fd(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 10000) == 1);
  servers.publish([] { return with_events(2); });
  auto s = parse_status(read_all(c.get()));
  REQUIRE(s.has_value());
  CHECK(s->events == 2);
  CHECK(s->pid == 7);
  // Answered: the refresh was taken.
  CHECK(::poll(&p, 1, 0) == 0);
  servers.stop();
  CHECK(servers.status_stats().accepted == 1);
  CHECK(servers.status_stats().timed_out == 0);
}

TEST_CASE("status: nobody publishes, the client gets the snapshot there is (bounded)") {
  test::TempDir dir;
  Servers servers({32, 5, 0.05});
  REQUIRE(servers.start(unix_listener(dir / "s.sock"), UniqueFd(), with_events(1)));
  UniqueFd c = unix_client(dir / "s.sock");
  auto s = parse_status(read_all(c.get()));
  REQUIRE(s.has_value());
  CHECK(s->events == 1);
}

TEST_CASE("stale_status_answer_vouches_for_no_coverage") {
  // An answer from a snapshot built before the request (the main thread did not publish in
  // time) cannot say the events queued meanwhile were recorded: it carries no covered_since,
  // so a fast check does not rest `watched` evidence on it. A fresh one does.
  test::TempDir dir;
  Servers servers({32, 5, 0.05});
  Snapshot snap = with_events(1);
  snap.status.covered = {{"/etc", 1}};
  REQUIRE(servers.start(unix_listener(dir / "s.sock"), UniqueFd(), snap));
  {
    UniqueFd c = unix_client(dir / "s.sock");
    auto s = parse_status(read_all(c.get()));
    REQUIRE(s.has_value());
    CHECK(s->events == 1);
    CHECK(s->covered.empty());
  }
  servers.publish([] { return with_events(1); });  // takes the first client's refresh request
  UniqueFd c = unix_client(dir / "s.sock");
  pollfd p{servers.refresh_fd(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 10000) == 1);
  servers.publish([&] { return snap; });
  auto s = parse_status(read_all(c.get()));
  REQUIRE(s.has_value());
  REQUIRE(s->covered.size() == 1);
  CHECK(s->covered[0].root == "/etc");
}

TEST_CASE("beyond the cap a client is closed at once; an idle one at its deadline; then served again") {
  auto [listener, port] = tcp_listener();
  Servers servers({2, 0.3, 0.05});
  REQUIRE(servers.start(UniqueFd(), std::move(listener), with_events(3)));
  CHECK(!servers.serves_status());
  UniqueFd idle1 = tcp_client(port), idle2 = tcp_client(port);
  REQUIRE(eventually([&] { return servers.metrics_stats().accepted == 2; }));
  UniqueFd third = tcp_client(port);
  CHECK(read_all(third.get()).empty());  // closed without a word
  CHECK(servers.metrics_stats().refused == 1);
  CHECK(read_all(idle1.get()).empty());  // closed at the deadline
  CHECK(read_all(idle2.get()).empty());
  REQUIRE(eventually([&] { return servers.metrics_stats().timed_out == 2; }));
  const std::string answer = get(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(answer.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(answer.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  CHECK(answer.find("\nfimctl_events_total 3\n") != std::string::npos);
  CHECK(answer.find("fimctl_server_connections_refused_total{server=\"metrics\"} 1\n") != std::string::npos);
  CHECK(answer.find("fimctl_server_connections_timed_out_total{server=\"metrics\"} 2\n") != std::string::npos);
}

TEST_CASE("metrics requests: other paths and methods, garbage, and more than a request may take") {
  auto [listener, port] = tcp_listener();
  Servers servers({32, 5, 0.05});
  REQUIRE(servers.start(UniqueFd(), std::move(listener), with_events(0)));
  CHECK(get(port, "GET / HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(get(port, "GET /nothing HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
  CHECK(get(port, "POST /metrics HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405 ", 0) == 0);
  CHECK(get(port, "nonsense\r\n\r\n").rfind("HTTP/1.1 400 ", 0) == 0);
  // 64 KiB of header that never ends: answered (400) once 8 KiB came and closed, the rest
  // never read (so the close may reset the connection before the client reads the 400).
  UniqueFd c = tcp_client(port);
  const std::string big(65536, 'A');
  (void)::send(c.get(), big.data(), big.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  const std::string answer = read_all(c.get());
  CHECK((answer.empty() || answer.rfind("HTTP/1.1 400 ", 0) == 0));
  // A request cut short by the client's own half-close is still answered.
  UniqueFd h = tcp_client(port);
  const std::string req = "GET /metrics HTTP/1.0\r\n\r\n";
  REQUIRE(::send(h.get(), req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
  ::shutdown(h.get(), SHUT_WR);
  CHECK(read_all(h.get()).rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(servers.metrics_stats().timed_out == 0);
}

TEST_CASE("stop(): nothing listens afterwards, and it can be called again") {
  test::TempDir dir;
  Servers servers;
  REQUIRE(servers.start(unix_listener(dir / "s.sock"), UniqueFd(), with_events(0)));
  UniqueFd idle = unix_client(dir / "s.sock");  // held while stopping: closed with the rest
  servers.stop();
  servers.stop();
  UniqueFd c(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const sockaddr_un sa = unix_address(dir / "s.sock");
  CHECK(::connect(c.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0);
  CHECK(errno == ECONNREFUSED);
}
