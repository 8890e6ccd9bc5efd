// SPDX-License-Identifier: GPL-2.0-or-later
// Maintenance windows that name a writer (fim/window.h): while such a window is open, each
// write or removal below its paths is classified by its writer (the event's pid, looked up in
// /proc when the event is read: its command name, systemd unit or uid). A path is the
// window's only if every write the daemon saw to it during the window was the writer's; a
// writer already gone is unknown, so not the writer. What it saw goes to state.db (check and
// accept --window read it there) with the span it watched and whether it lost events; the
// daemon's own change records are tagged from the same record.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fim/db.h"
#include "fim/window.h"

namespace fim::watchd {

/// Whether process `pid` is the writer a window names ("process:COMM", "unit:UNIT",
/// "user:UID"), read from `proc`; `who` says who it was ("comm (pid N)", or "pid N, gone").
bool is_window_writer(const std::string& writer, int32_t pid, std::string* who, const char* proc = "/proc");

class WindowWrites {
 public:
  /// Worker: the windows of the baseline just loaded.
  void set_windows(const std::string& baseline_id, std::vector<Window> windows);
  /// Main thread (the loop's timer): begins classifying for a writer window that is open,
  /// stores what was seen and the span watched, and ends the windows that closed or expired.
  void poll(StateStore& st);
  /// Main thread: `path` written (or removed) by `pid`.
  void on_write(int32_t pid, const Bytes& path);
  /// Events were lost: no open window vouches for anything.
  void on_loss(StateStore& st);
  /// Worker: the tag of a change the daemon reports, as check would give it (id, why).
  std::optional<std::pair<std::string, std::string>> tag(ChangeKind kind, const Record* o, const Record* n);

 private:
  struct Active {
    const Window* window = nullptr;
    int64_t from_ns = 0;
    bool lossy = false;
    std::map<Bytes, StateStore::WindowWrite> seen;  // this run of the daemon
    std::vector<Bytes> pending;                       // not yet in state.db
  };
  void flush(StateStore& st, Active& a, int64_t to_ns);
  std::mutex mu_;
  std::string baseline_id_;
  std::vector<Window> windows_;
  std::map<std::string, Active> active_;  // window id -> being classified
};

}  // namespace fim::watchd
