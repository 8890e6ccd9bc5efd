// SPDX-License-Identifier: GPL-2.0-or-later
// written-by-dpkg (docs/design.md, Packages): while an apt run is in progress (the apt hook's
// session in state.db), each write event below a root is classified by its writer: a
// descendant of the run's dpkg (walked up /proc from the event's pid at the time the event is
// read), or anything else, including a writer that already exited (unknown ancestry). A path
// is recorded as dpkg's only if every write the daemon saw to it during the run was.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <utility>

#include "fim/db.h"
#include "fim/state.h"

namespace fim::watchd {

class DpkgWrites {
 public:
  /// Main thread, from the loop's timer (4 times a second: one small read of state.db). Takes
  /// a session the pre hook just began (the hook waits for this), and at its end reads what
  /// the kernel still holds (`drain`), stores the paths and says the whole run was watched.
  void poll(StateStore& st, const std::function<void()>& drain);
  bool active() const { return session_.has_value(); }
  /// A write (close_write, modify, create, moved_to, attrib) to `path` by `pid`; `dev`/`ino`
  /// the event's object (0: none reported).
  void on_write(int32_t pid, const Bytes& path, uint64_t dev, uint64_t ino);
  /// Events were lost: the session vouches for nothing.
  void on_loss(StateStore& st);

 private:
  void flush(StateStore& st);
  void end(StateStore& st, bool watched);
  std::optional<StateStore::AptSession> session_;
  std::map<std::pair<int32_t, uint64_t>, bool> cache_;  // (pid, start time) -> dpkg's
  std::map<Bytes, StateStore::DpkgWrite> pending_;       // not yet in state.db
  size_t stored_ = 0;
  bool lossy_ = false;
};

}  // namespace fim::watchd
