// SPDX-License-Identifier: GPL-2.0-or-later
// Just enough HTTP/1.1 for the daemon's two network features: posting Falco-compatible
// events to falcosidekick (one JSON body per POST, Connection: close, from the poster's own
// thread) and answering Prometheus scrapes (the request read and the answer written by the
// daemon's server thread, src/daemon/servers.cpp; here only what it parses and sends). Every
// read and write has a deadline; nothing here can grow without bound.
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "fim/base/sys.h"
#include "fim/watch.h"

namespace fim {

namespace {

bool parse_port(std::string_view s, uint16_t* out) {
  uint64_t v = 0;
  if (s.size() > 5 || !parse_decimal(s, &v) || v == 0 || v > 65535) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

/// Waits until fd is readable/writable or the deadline (monotonic seconds) passes.
bool wait_fd(int fd, short events, double deadline) {
  for (;;) {
    const double left = deadline - monotonic_seconds();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left * 1000) + 1);
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

bool send_all(int fd, std::string_view data, double deadline) {
  size_t off = 0;
  while (off < data.size()) {
    if (!wait_fd(fd, POLLOUT, deadline)) return false;
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Result<HttpUrl> parse_http_url(std::string_view url) {
  const auto bad = [&](const std::string& why) {
    return make_error(Errc::Usage, quote(url) + " is not a usable URL: " + why);
  };
  if (url.rfind("https://", 0) == 0)
    return bad("https is not supported; post to a local falcosidekick (http://127.0.0.1:2801/) or a TLS proxy");
  if (url.rfind("http://", 0) != 0) return bad("it must start with http://");
  std::string_view rest = url.substr(7);
  HttpUrl u;
  const size_t slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  if (slash != std::string_view::npos) u.path = std::string(rest.substr(slash));
  if (hostport.empty()) return bad("no host");
  if (hostport.front() == '[') {
    const size_t close = hostport.find(']');
    if (close == std::string_view::npos) return bad("unterminated [IPv6 address]");
    u.host = std::string(hostport.substr(1, close - 1));
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty() && (after.front() != ':' || !parse_port(after.substr(1), &u.port))) return bad("bad port");
  } else {
    const size_t colon = hostport.rfind(':');
    u.host = std::string(hostport.substr(0, colon));
    if (colon != std::string_view::npos && !parse_port(hostport.substr(colon + 1), &u.port)) return bad("bad port");
  }
  if (u.host.empty()) return bad("no host");
  for (const char c : u.path + u.host)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return bad("control characters or spaces");
  return u;
}

Result<std::pair<std::string, uint16_t>> parse_listen_address(std::string_view addr) {
  const auto bad = [&] {
    return make_error(Errc::Usage, quote(addr) + " is not HOST:PORT, [V6]:PORT or :PORT");
  };
  std::string host;
  std::string_view port;
  if (!addr.empty() && addr.front() == '[') {
    const size_t close = addr.find("]:");
    if (close == std::string_view::npos) return bad();
    host = std::string(addr.substr(1, close - 1));
    port = addr.substr(close + 2);
  } else {
    const size_t colon = addr.rfind(':');
    if (colon == std::string_view::npos) return bad();
    host = std::string(addr.substr(0, colon));
    port = addr.substr(colon + 1);
  }
  uint16_t p = 0;
  if (!parse_port(port, &p)) return bad();
  return std::make_pair(host, p);
}

Result<UniqueFd> listen_tcp(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res); rc != 0)
    return make_error(Errc::Usage, "cannot listen on " + quote(host) + ": " + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, CDeleter<::freeaddrinfo>> owner(res);
  int err = 0;
  for (addrinfo* a = res; a; a = a->ai_next) {
    UniqueFd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
    if (!fd.valid()) continue;
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd.get(), 16) == 0) return fd;
    err = errno;
  }
  return make_error(Errc::Io, "cannot listen on " + escape_terminal(host) + ":" + service, err);
}

std::optional<HttpRequest> parse_http_request(std::string_view received) {
  if (received.find("\r\n\r\n") == std::string_view::npos && received.size() < kMaxHttpRequest) return std::nullopt;
  received = received.substr(0, kMaxHttpRequest);
  HttpRequest r;
  const size_t sp1 = received.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : received.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return r;  // no "METHOD PATH ": bad request
  r.method = std::string(received.substr(0, sp1));
  r.path = std::string(received.substr(sp1 + 1, sp2 - sp1 - 1));
  return r;
}

std::string http_response(int status, std::string_view type, std::string_view body) {
  const char* reason = status == 200 ? "OK" : status == 404 ? "Not Found" : status == 405 ? "Method Not Allowed" : "Bad Request";
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + std::string(type) +
                    "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  out += body;
  return out;
}

struct HttpPoster::Impl {
  HttpUrl url;
  size_t max_queue;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> queue;
  bool stop = false;
  std::atomic<uint64_t> sent{0}, failed{0}, dropped{0};
  std::string last_error;
  std::thread thread;

  /// One POST; true on a 2xx answer.
  bool post_one(const std::string& body) {
    const double deadline = monotonic_seconds() + 5;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string service = std::to_string(url.port);
    if (const int rc = ::getaddrinfo(url.host.c_str(), service.c_str(), &hints, &res); rc != 0) {
      note(std::string("cannot resolve ") + url.host + ": " + ::gai_strerror(rc));
      return false;
    }
    std::unique_ptr<addrinfo, CDeleter<::freeaddrinfo>> owner(res);
    UniqueFd fd;
    for (addrinfo* a = res; a && !fd.valid(); a = a->ai_next) {
      UniqueFd s(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
      if (!s.valid()) continue;
      if (::connect(s.get(), a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) continue;
      if (!wait_fd(s.get(), POLLOUT, deadline)) continue;
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) continue;
      fd = std::move(s);
    }
    if (!fd.valid()) {
      note("cannot connect to " + url.host + ":" + service);
      return false;
    }
    const std::string req = "POST " + url.path + " HTTP/1.1\r\nHost: " + url.host + ":" + service +
                            "\r\nUser-Agent: fimctl\r\nContent-Type: application/json\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    if (!send_all(fd.get(), req, deadline)) {
      note("sending to " + url.host + ":" + service + " failed");
      return false;
    }
    std::string answer;
    char buf[512];
    while (answer.find("\r\n") == std::string::npos && answer.size() < 4096) {
      if (!wait_fd(fd.get(), POLLIN, deadline)) break;
      const ssize_t n = ::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        break;
      }
      answer.append(buf, static_cast<size_t>(n));
    }
    // "HTTP/1.1 200 OK"
    if (answer.size() >= 12 && answer.compare(0, 5, "HTTP/") == 0) {
      const size_t sp = answer.find(' ');
      if (sp != std::string::npos && sp + 1 < answer.size() && answer[sp + 1] == '2') return true;
    }
    note("no 2xx answer from " + url.host + ":" + service + ": " + escape_terminal(answer.substr(0, answer.find('\r'))));
    return false;
  }

  void note(std::string e) {
    std::lock_guard<std::mutex> lk(mu);
    last_error = std::move(e);
  }

  void run() {
    for (;;) {
      std::string body;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return stop || !queue.empty(); });
        if (queue.empty()) return;
        body = std::move(queue.front());
        queue.pop_front();
      }
      const bool ok = post_one(body);
      if (ok) ++sent;
      else ++failed;
      bool stopping;
      {
        std::lock_guard<std::mutex> lk(mu);
        stopping = stop;
      }
      if (stopping && !ok) {
        // Shutting down and the receiver is failing: do not hold the stop up for every body.
        std::lock_guard<std::mutex> lk(mu);
        dropped += queue.size();
        queue.clear();
      }
    }
  }
};

HttpPoster::HttpPoster(HttpUrl url, size_t max_queue) : impl_(std::make_unique<Impl>()) {
  impl_->url = std::move(url);
  impl_->max_queue = max_queue;
  impl_->thread = std::thread([this] { impl_->run(); });
}

HttpPoster::~HttpPoster() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_one();
  impl_->thread.join();
}

void HttpPoster::post(std::string body) {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    if (impl_->queue.size() >= impl_->max_queue) {
      impl_->queue.pop_front();
      ++impl_->dropped;
    }
    impl_->queue.push_back(std::move(body));
  }
  impl_->cv.notify_one();
}

uint64_t HttpPoster::sent() const { return impl_->sent; }
uint64_t HttpPoster::failed() const { return impl_->failed; }
uint64_t HttpPoster::dropped() const { return impl_->dropped; }
std::string HttpPoster::last_error() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->last_error;
}

}  // namespace fim
