// SPDX-License-Identifier: GPL-2.0-or-later
// systemd's notify protocol without libsystemd (sd_notify(3)): one datagram to $NOTIFY_SOCKET.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "fim/watch.h"

namespace fim {

Notifier::Notifier() {
  const char* sock = std::getenv("NOTIFY_SOCKET");
  if (sock && (sock[0] == '/' || sock[0] == '@') && std::strlen(sock) < sizeof(sockaddr_un::sun_path)) {
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    addr_ = sock;
  }
  if (const char* wd = std::getenv("WATCHDOG_USEC")) {
    const char* pid = std::getenv("WATCHDOG_PID");
    if (!pid || std::strtol(pid, nullptr, 10) == ::getpid()) watchdog_usec_ = std::strtoull(wd, nullptr, 10);
  }
}

void Notifier::send(std::string_view state) const {
  if (!fd_.valid()) return;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, addr_.data(), addr_.size());
  if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0';  // abstract namespace
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + addr_.size());
  (void)::sendto(fd_.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa), len);
}

}  // namespace fim
