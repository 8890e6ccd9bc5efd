// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl status: the running watch daemon's status document over its socket, or what
// state.db remembers when no daemon answers.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fim/db.h"
#include "fim/pipeline.h"
#include "watch_sink.h"

namespace fim {

using watchd::add_str;

namespace {
std::string q(const Bytes& p) { return "'" + escape_terminal(p) + "'"; }
}  // namespace

Result<std::string> watch_status(const Bytes& socket_path, const Bytes& db_path, bool* running) {
  *running = false;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (!socket_path.empty() && socket_path.size() < sizeof sa.sun_path) {
    std::memcpy(sa.sun_path, socket_path.data(), socket_path.size());
    UniqueFd c(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(c.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
      timeval tv{5, 0};
      ::setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string doc;
      char buf[4096];
      ssize_t n;
      while ((n = ::read(c.get(), buf, sizeof buf)) > 0 && doc.size() < (1u << 24)) doc.append(buf, static_cast<size_t>(n));
      if (n < 0) return make_error(Errc::Io, "reading the daemon's status from " + q(socket_path), errno);
      *running = true;
      return doc;
    }
  }
  // Nobody answers: what state.db remembers.
  Bytes dir, name;
  split_path(db_path, &dir, &name);
  auto st = StateStore::open(dir);
  if (!st) return st.error();
  std::string o = "{\"schema\":\"";
  o += kReportSchema;
  o += "\",\"type\":\"status\",\"running\":false";
  {
    std::string b = "{";
    json::add_bytes(b, "baseline", db_path);
    o += "," + b.substr(1);
  }
  auto d = (*st)->daemon(db_path);
  if (!d) return d.error();
  if (*d) {
    add_str(o, "last_started", format_time_ns((*d)->started_ns));
    add_str(o, "last_heartbeat", format_time_ns((*d)->heartbeat_ns));
    add_str(o, "stopped", (*d)->stopped_ns ? format_time_ns((*d)->stopped_ns) : "not cleanly (killed or crashed)");
  }
  auto dirty = (*st)->dirty(db_path);
  if (!dirty) return dirty.error();
  o += ",\"dirty\":[";
  for (size_t i = 0; i < dirty->size(); ++i) {
    std::string e = "{";
    json::add_bytes(e, "root", (*dirty)[i].root);
    add_str(e, "reason", (*dirty)[i].reason);
    add_str(e, "since", format_time_ns((*dirty)[i].first_ns));
    o += (i ? "," : "") + e + "}";
  }
  o += "],\"gaps\":[";
  auto gaps = (*st)->gaps(db_path, 20);
  if (!gaps) return gaps.error();
  for (size_t i = 0; i < gaps->size(); ++i) {
    std::string e;  // ",k":v pairs
    add_str(e, "start", format_time_ns((*gaps)[i].start_ns));
    add_str(e, "end", format_time_ns((*gaps)[i].end_ns));
    add_str(e, "reason", (*gaps)[i].reason);
    o += (i ? ",{" : "{") + e.substr(1) + "}";
  }
  return o + "]}\n";
}

}  // namespace fim
