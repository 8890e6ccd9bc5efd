// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon's servers: the status socket ('fimctl status') and the Prometheus endpoint
// (--metrics), served from a thread of their own (docs/design.md, Real time: servers).
//
// Nothing a client does reaches the event loop: one that connects and says nothing, reads
// slowly or opens hundreds of connections costs this thread a pollfd and the client a closed
// connection. Clients are non-blocking; at most ServerLimits::max_clients are open per
// listener (more are accepted and closed at once, counted); each is closed at its deadline
// (counted); a request is read up to kMaxHttpRequest. What they are told comes from a
// Snapshot the main thread publishes, never from the Watcher's live state. An answer waits
// (briefly, bounded) for a snapshot built after its request arrived, so a client that saw a
// record and then asks is told about it: the thread asks the main thread for one through
// refresh_fd(), and the main thread, which also publishes at every tick, publishes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <array>
#include <string>
#include <thread>

#include "fim/base/fd.h"
#include "fim/base/result.h"
#include "fim/pipeline.h"

namespace fim::watchd {

/// What the servers answer: the status record and the values the metrics need that it does
/// not hold, as the main thread saw them when it published.
struct Snapshot {
  WatchStatus status;
  int64_t started_ns = 0;
  int64_t last_full_ns = 0;  ///< 0: no full compare yet
  bool falco = false;        ///< --falco-url: the poster's counters below are shown
  uint64_t falco_posted = 0, falco_failed = 0, falco_dropped = 0;
  uint64_t open_writers = 0;             ///< watched files held open for writing (open_writers.h)
  uint64_t open_writer_incomplete = 0;   ///< scans a bound stopped early
  /// Changes reported, by the severity of their rule: [0] none, then info .. critical.
  std::array<uint64_t, 6> changes_by_severity{};
};

/// One listener's connections, as counted by the server thread.
struct ServerStats {
  uint64_t accepted = 0;   ///< every connection accepted, the refused included
  uint64_t refused = 0;    ///< accepted and closed at once: max_clients were open
  uint64_t timed_out = 0;  ///< closed at their deadline before their answer was sent
};

struct ServerLimits {
  size_t max_clients = 32;          ///< open connections per listener
  double deadline_seconds = 1;      ///< from accept to the answer's last byte
  double fresh_wait_seconds = 0.3;  ///< longest wait for a snapshot newer than the request (> a tick)
};

/// The Prometheus text (exposition format 0.0.4) of a snapshot and of the servers' counts.
std::string metrics_text(const Snapshot& s, const ServerStats& status, const ServerStats& metrics);

class Servers {
 public:
  explicit Servers(ServerLimits limits = {}) : limits_(limits) {}
  ~Servers() { stop(); }
  Servers(const Servers&) = delete;
  Servers& operator=(const Servers&) = delete;

  /// Starts the thread, which owns the listeners from now on (an invalid one is not served),
  /// with `first` to answer from until the next publish().
  Status start(UniqueFd status_listener, UniqueFd metrics_listener, Snapshot first);
  /// Ends the thread and closes every fd it held, clients and listeners: nothing accepts on
  /// the status socket afterwards, so its name can be unlinked. Idempotent.
  void stop();
  /// True when started with a status listener (still after stop()).
  bool serves_status() const { return serves_status_; }

  /// Readable when a client waits for a fresh snapshot: the main thread polls it and then
  /// calls publish(). Valid after start().
  int refresh_fd() const { return refresh_.get(); }
  /// A new snapshot to answer from, built by `build` (any thread; the daemon's main thread):
  /// it answers every request that came before `build` was called. Clears refresh_fd().
  void publish(const std::function<Snapshot()>& build);

  ServerStats status_stats() const { return load(status_stats_); }
  ServerStats metrics_stats() const { return load(metrics_stats_); }

 private:
  struct Counters {
    std::atomic<uint64_t> accepted{0}, refused{0}, timed_out{0};
  };
  struct Loop;
  static ServerStats load(const Counters& c) { return {c.accepted, c.refused, c.timed_out}; }
  void run();
  /// A ticket for a request that just came: answered by a snapshot that covers it. Asks the
  /// main thread for one (once until it comes).
  uint64_t ask_refresh();

  const ServerLimits limits_;
  UniqueFd status_fd_, metrics_fd_;
  UniqueFd wake_;     // publish() and stop() wake the thread
  UniqueFd refresh_;  // the thread asks the main thread to publish
  bool serves_status_ = false;
  Counters status_stats_, metrics_stats_;
  std::thread thread_;

  std::mutex mu_;  // guards what follows
  std::shared_ptr<const Snapshot> snap_;
  uint64_t tickets_ = 0;          // requests so far
  uint64_t covered_ = 0;          // the requests snap_ was built after
  bool refresh_pending_ = false;  // refresh_ was written and publish() has not come yet
  bool stop_ = false;
};

}  // namespace fim::watchd
