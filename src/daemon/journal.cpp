// SPDX-License-Identifier: GPL-2.0-or-later
// journald's native protocol (see journal.h; systemd's JOURNAL_NATIVE_PROTOCOL document).
#include "journal.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace fim::watchd {
namespace {

// Generated once (python3 uuid4) and never changed: a MESSAGE_ID is an interface, like a
// record type's name. New types get new ids; docs/design.md, Record schema, lists them.
constexpr std::pair<std::string_view, std::string_view> kMessageIds[] = {
    {"change", "c0aee8a1b2d24a75afd95d2456ee37f1"},
    {"transient", "51b0b4018a2642eb83e22da47de42ad3"},
    {"entry_status", "7d16022b759944b1839201c1ef98bed8"},
    {"alert", "575fafad72cc443fbb511c31d5d43d01"},
    {"watch_start", "f784f4c577d94247b3689432667c3f88"},
    {"watch_stop", "8779c86495aa47db9d2f7a282a6d7514"},
    {"rescan_start", "dad8b9ed5eee43778d844d76498ef18b"},
    {"rescan_done", "aa64816feb2e47129677d10284fd1d34"},
    {"rescan_progress", "d89057a22bd24d479eabb330530878d2"},
    {"gap", "17897c6caff34d9db499fda66fed944f"},
    {"degraded", "53ebde1d10aa445d875c37c67d1e0132"},
    {"restored", "74119b5a15054ccb95853b3e65a083ea"},
    {"reload", "c36c2673b4204881858c8dea43bc95ce"},
    {"heartbeat", "525c3f677820433aa5a8f21ef6862e49"},
    {"response", "c25872b268da48ac998b7c17e2d74517"},
    {"container_start", "c63311cc2f824e29a9cde51fa7dfffc9"},
    {"container_stop", "a38fc4bba3b24c1aada11f9e4a62cda2"},
    {"containers_watch", "86dbad2e212146a6b9bde912feedcddd"},
    {"alternative", "8bc9104e50af4cfdb56eecba7ffdcc85"},
};

bool send_memfd(int sock, const sockaddr_un& sa, socklen_t len, const std::string& datagram) {
  UniqueFd m(::memfd_create("fimctl-journal", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!m.valid()) return false;
  for (std::string_view rest = datagram; !rest.empty();) {
    const ssize_t n = ::write(m.get(), rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    rest.remove_prefix(static_cast<size_t>(n));
  }
  // journald takes a memfd only sealed: nobody can change the entry after it was sent.
  if (::fcntl(m.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) return false;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr_un*>(&sa);
  msg.msg_namelen = len;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  const int fd = m.get();
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  return ::sendmsg(sock, &msg, MSG_NOSIGNAL) >= 0;
}

}  // namespace

std::string_view journal_message_id(std::string_view type) {
  for (const auto& [t, id] : kMessageIds)
    if (t == type) return id;
  return {};
}

const std::vector<std::string_view>& journal_record_types() {
  static const std::vector<std::string_view> types = [] {
    std::vector<std::string_view> v;
    for (const auto& [t, id] : kMessageIds) v.push_back(t);
    return v;
  }();
  return types;
}

JournalFields journal_fields(std::string_view type, int priority, std::string_view message) {
  JournalFields f;
  f.emplace_back("MESSAGE", std::string(message));
  f.emplace_back("PRIORITY", std::to_string(priority < 0 ? 0 : priority > 7 ? 7 : priority));
  if (auto id = journal_message_id(type); !id.empty()) f.emplace_back("MESSAGE_ID", std::string(id));
  f.emplace_back("FIMCTL_TYPE", std::string(type));
  f.emplace_back("SYSLOG_IDENTIFIER", "fimctl");
  f.emplace_back("SYSLOG_FACILITY", "3");
  return f;
}

std::string journal_encode(const JournalFields& fields) {
  std::string out;
  for (const auto& [key, value] : fields) {
    out += key;
    if (value.find('\n') == std::string::npos) {
      out += '=';
      out += value;
    } else {
      out += '\n';
      uint64_t n = value.size();
      for (int i = 0; i < 8; ++i, n >>= 8) out += static_cast<char>(n & 0xff);
      out += value;
    }
    out += '\n';
  }
  return out;
}

bool is_journal_stream(int fd, const char* journal_stream) {
  if (!journal_stream || fd < 0) return false;
  unsigned long long dev = 0, ino = 0;
  char extra = 0;
  if (std::sscanf(journal_stream, "%llu:%llu%c", &dev, &ino, &extra) != 2) return false;
  struct stat st {};
  return ::fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

Journal::Journal(std::string path) : path_(std::move(path)) {
  if (path_.size() < sizeof(sockaddr_un::sun_path)) fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
}

bool Journal::available() const {
  struct stat st {};
  return fd_.valid() && ::stat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

bool Journal::send(const std::string& datagram) const {
  if (!fd_.valid()) return false;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path_.data(), path_.size());
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_.size());
  for (;;) {
    if (::sendto(fd_.get(), datagram.data(), datagram.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&sa), len) >= 0)
      return true;
    if (errno == EINTR) continue;
    // Larger than the socket takes in one datagram (a change record with many xattrs).
    if (errno == EMSGSIZE || errno == ENOBUFS) return send_memfd(fd_.get(), sa, len, datagram);
    return false;
  }
}

}  // namespace fim::watchd
