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

#include <sys/types.h>

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
  /// Replayed events (tests, no CAP_DAC_READ_SEARCH): the object by path instead of a
  /// handle. Empty for every event the kernel reports.
  Bytes path;
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

/// The notification group. One per daemon (and one for container drift).
class FanotifySource {
 public:
  /// fanotify_init in FID mode; Errc::Unsupported when the kernel or the capabilities lack it.
  static Result<FanotifySource> open();
  /// A filesystem mark on the filesystem holding `dir` (create, delete, move, attrib,
  /// modify, close_write, directories included). Marking one filesystem twice is harmless.
  Status mark_filesystem(const Bytes& dir);
  /// What a mark on the object `fd` opens (O_PATH is enough) asks for:
  ///   Directory  every change of the directory and of its direct children (an inode mark);
  ///   Ancestor   names created, deleted or moved in it, and its own attributes (the
  ///              directories above a root: the root replaced or moved away);
  ///   File       writes and attribute changes of the file, through any of its names;
  ///   Links      attribute changes anywhere on fd's filesystem (a filesystem mark that asks
  ///              for nothing a busy writer does: link(2) changes a file's link count, and a
  ///              hard link made outside every root to a baseline file is seen so).
  enum class Mark : uint8_t { Directory, Ancestor, File, Links };
  Status mark(Mark kind, int fd);
  int fd() const { return fd_.get(); }
  /// Reads what is queued (non-blocking) and parses it; false when nothing was queued.
  Result<bool> read(const std::function<void(FanEvent&&)>& on_event);

 private:
  explicit FanotifySource(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  std::string buf_;
};

/// A file's identity: device and inode, as stat(2) gives them.
struct FileId {
  dev_t dev = 0;
  uint64_t ino = 0;
  bool operator==(const FileId& o) const { return dev == o.dev && ino == o.ino; }
  bool operator<(const FileId& o) const { return dev != o.dev ? dev < o.dev : ino < o.ino; }
};

/// Where an event's directory lies relative to the daemon's roots.
struct Located {
  enum class Where : uint8_t {
    Outside,    ///< below no root
    Inside,     ///< at or below a root: `path` is the directory as the baseline names it
    Unknown,    ///< gone, moved, or too deep to tell (counted as unresolved)
  };
  Where where = Where::Unknown;
  Bytes path;
  /// Roots this directory is an ancestor of, with the name of the next component on the way
  /// to each: an event naming that component (create, delete, rename, chmod) touches the root.
  std::vector<std::pair<Bytes, Bytes>> above;  ///< (component name, root)
};

/// Events to roots by identity, not by path string (docs/design.md, Real time): a directory
/// is inside a root when the root's (dev, ino) is among its ancestors, walked with ".." from
/// the handle. So a root reached through a symlinked ancestor or a bind mount, a write through
/// another mount of the same filesystem and a directory deeper than PATH_MAX are all found;
/// the path reported is the one the baseline uses (root as given + the names below it).
class Locator {
 public:
  explicit Locator(size_t cache_limit = 16384) : limit_(cache_limit) {}
  /// The roots as the baseline names them. Each is identified by what its path names now
  /// (symlinks followed), its ancestors by theirs; refresh() reads them again.
  void set_roots(const std::vector<Bytes>& roots);
  /// Re-reads the roots' identities (a root created, replaced or mounted over since); true
  /// when one changed (the cache is dropped then).
  bool refresh();
  /// Registers the filesystem of `dir` (its fsid, and an fd for open_by_handle_at).
  Status add_filesystem(const Bytes& dir);
  /// The same for a mount the daemon must not keep busy (one attached below a root while it
  /// runs, which its owner may unmount): `dir` is opened again for each lookup.
  Status add_unpinned(const Bytes& dir);
  /// Where the directory an info record names lies (a Dfid/DfidName record, or a replayed path).
  Located locate(const FanInfo& info);
  /// The object itself (O_PATH), to stat or to mark; invalid when it is gone.
  UniqueFd open_object(const FanInfo& info);
  /// The path a directory handle names now (readlink of the opened handle), for callers that
  /// map by path (container upper directories); nothing when gone or moved.
  std::optional<Bytes> resolve(const FanInfo& info);
  /// Forget cached locations (after a directory rename).
  void invalidate();
  uint64_t failures() const { return failures_; }

 private:
  struct Root {
    Bytes path;
    std::optional<FileId> id;
    std::vector<std::pair<FileId, Bytes>> ancestors;  ///< each ancestor and the next name below it
  };
  struct Cached {
    Located loc;
    std::list<std::string>::iterator lru;
  };
  UniqueFd open_info(const FanInfo& info, int flags);
  Located walk_up(UniqueFd fd);
  std::vector<Root> roots_;
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

/// An HTTP request as far as the metrics endpoint cares: its method and path (both empty when
/// the request line is not "METHOD PATH ...": answer 400).
struct HttpRequest {
  std::string method, path;
};
/// What a request may take before it is answered as it stands (the header alone, no body).
inline constexpr size_t kMaxHttpRequest = 8192;
/// The request in the bytes received so far; nullopt while its header has not ended (a blank
/// line) and fewer than kMaxHttpRequest bytes came.
std::optional<HttpRequest> parse_http_request(std::string_view received);
/// A whole answer (status line, Content-Type, Content-Length, Connection: close, body).
std::string http_response(int status, std::string_view type, std::string_view body);

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
