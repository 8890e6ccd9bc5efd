// SPDX-License-Identifier: GPL-2.0-or-later
// watch: the kernel side of `fimctl watch` (docs/design.md, Real time).
//
// A fanotify notification group in FID mode (FAN_REPORT_DFID_NAME | FAN_REPORT_FID) with a
// filesystem mark on every filesystem that holds a watched root; never mount marks (they
// miss create/delete/rename and other mount namespaces). Events name a directory by its file
// handle and the entry by name; the Resolver turns the handle back into a path through a
// directory fd on the same filesystem (open_by_handle_at + /proc/self/fd), and the daemon
// keeps only paths below its roots. The parser is a pure function over the bytes read(2)
// returned, so it is unit-tested and fuzzed without a kernel.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "fim/base/bytes.h"
#include "fim/base/fd.h"
#include "fim/base/result.h"

namespace fim {

/// One information record of an event: a file handle on filesystem `fsid`, and for the
/// DFID_NAME kinds the name of the entry in that directory ("." for the directory itself).
struct FanInfo {
  enum class Kind : uint8_t { Fid, Dfid, DfidName, OldDfidName, NewDfidName };
  Kind kind = Kind::Fid;
  uint64_t fsid = 0;     ///< __kernel_fsid_t, both words
  int32_t handle_type = 0;
  Bytes handle;          ///< f_handle bytes
  Bytes name;            ///< empty for Fid/Dfid
};

struct FanEvent {
  uint64_t mask = 0;
  int32_t pid = 0;
  std::vector<FanInfo> infos;
  bool overflow() const;
  /// A directory moved: cached directory paths may be stale.
  bool dir_renamed() const;
};

/// Parses what read(2) returned from a FID-mode fanotify fd. Malformed records (a length
/// that does not fit, an unknown metadata version, a handle longer than its record) end the
/// parse with an error: they mean the buffer is not what the kernel writes.
Status parse_fanotify(std::string_view buf, const std::function<void(FanEvent&&)>& on_event);

/// Human names of the mask bits ("create", "close_write", ...), for reports and logs.
std::vector<std::string> fan_mask_names(uint64_t mask);

/// The notification group. One per daemon.
class FanotifySource {
 public:
  /// fanotify_init in FID mode; Errc::Unsupported when the kernel or the capabilities lack it.
  static Result<FanotifySource> open();
  /// A filesystem mark on the filesystem holding `dir` (create, delete, move, attrib,
  /// modify, close_write, directories included). Marking one filesystem twice is harmless.
  Status mark_filesystem(const Bytes& dir);
  int fd() const { return fd_.get(); }
  /// Reads what is queued (non-blocking) and parses it; false when nothing was queued.
  Result<bool> read(const std::function<void(FanEvent&&)>& on_event);

 private:
  explicit FanotifySource(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  std::string buf_;
};

/// Directory handles to paths, with a bounded cache. A handle resolves through an fd on its
/// filesystem (registered with add_filesystem); the path is checked to name the same inode
/// as the handle, so a directory moved or deleted since the event does not resolve to a
/// wrong path.
class Resolver {
 public:
  explicit Resolver(size_t cache_limit = 16384) : limit_(cache_limit) {}
  /// Registers the filesystem of `dir` (its fsid, and an fd for open_by_handle_at).
  Status add_filesystem(const Bytes& dir);
  /// The same for a mount the daemon must not keep busy (one attached below a root while it
  /// runs, which its owner may unmount): `dir` is opened again for each lookup.
  Status add_unpinned(const Bytes& dir);
  /// The path the handle names now, or nothing (gone, moved, unknown filesystem).
  std::optional<Bytes> resolve(const FanInfo& info);
  /// Forget cached directory paths (after a directory rename).
  void invalidate() { cache_.clear(); lru_.clear(); }
  uint64_t failures() const { return failures_; }

 private:
  struct Cached { Bytes path; std::list<std::string>::iterator lru; };
  std::unordered_map<uint64_t, UniqueFd> mounts_;
  std::unordered_map<uint64_t, Bytes> unpinned_;
  std::unordered_map<std::string, Cached> cache_;
  std::list<std::string> lru_;
  size_t limit_;
  uint64_t failures_ = 0;
};

/// http://HOST[:PORT][/PATH]: where Falco-compatible events are posted (falcosidekick).
/// Plain HTTP only: for TLS, post to a local falcosidekick or a TLS-terminating proxy.
struct HttpUrl {
  std::string host;
  uint16_t port = 80;
  std::string path = "/";
};
Result<HttpUrl> parse_http_url(std::string_view url);

/// HOST:PORT, [V6]:PORT or :PORT (all addresses) for a listening socket.
Result<std::pair<std::string, uint16_t>> parse_listen_address(std::string_view addr);

/// A TCP listener (SOCK_NONBLOCK) on `host`:`port`.
Result<UniqueFd> listen_tcp(const std::string& host, uint16_t port);

/// Reads one HTTP request from a connected socket (bounded: 8 KiB, 2 s) and answers it with
/// what `handler` returns for the request's method and path (it sets *status and *type).
void serve_http(int fd, const std::function<std::string(std::string_view method, std::string_view path, int* status,
                                                        std::string* type)>& handler);

/// Posts JSON bodies to one URL from its own thread. The queue is bounded: when the receiver
/// is slow or down, the oldest bodies are dropped and counted, never the daemon's memory.
class HttpPoster {
 public:
  HttpPoster(HttpUrl url, size_t max_queue);
  ~HttpPoster();  ///< stops after trying what is queued, for at most a few seconds
  HttpPoster(const HttpPoster&) = delete;
  HttpPoster& operator=(const HttpPoster&) = delete;
  void post(std::string body);
  uint64_t sent() const;
  uint64_t failed() const;   ///< posts that got no 2xx answer
  uint64_t dropped() const;  ///< bodies dropped from a full queue
  std::string last_error() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// systemd's notify protocol (sd_notify(3)) without libsystemd: one datagram to
/// $NOTIFY_SOCKET. Does nothing when not started by systemd.
class Notifier {
 public:
  Notifier();
  bool active() const { return fd_.valid(); }
  void send(std::string_view state) const;
  /// The watchdog interval systemd asked for ($WATCHDOG_USEC), 0 when none.
  uint64_t watchdog_usec() const { return watchdog_usec_; }

 private:
  UniqueFd fd_;
  std::string addr_;
  uint64_t watchdog_usec_ = 0;
};

}  // namespace fim
