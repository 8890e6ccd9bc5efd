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
#include "fim/state.h"
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
  /// Whether a window is being classified (the caller then looks up the event's inode).
  bool active();
  /// Main thread: `path` written (or removed) by `pid`; `dev`/`ino` the file the event names
  /// (0: none). A path is the writer's only while every write to it, and to the file now at
  /// it under any name, was; its row keeps that file, so another renamed over it is not.
  void on_write(int32_t pid, const Bytes& path, uint64_t dev, uint64_t ino);
  /// Main thread: an event by `pid` on a baseline file, whatever name it came through (a hard
  /// link outside the window's paths): classified now, given to its names by attach().
  void on_inode(int32_t pid, uint64_t dev, uint64_t ino);
  /// Worker: `path` is a baseline name of that file (the compare of an inode event).
  void attach(const Bytes& path, uint64_t dev, uint64_t ino);
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
  void note(Active& a, const std::string& id, const Bytes& path, bool by_writer, const std::string& who, uint64_t dev,
            uint64_t ino);
  /// ANDs one classification into the file's, for window `id`; its result.
  bool note_inode(const std::string& id, uint64_t dev, uint64_t ino, bool by_writer, const std::string& who);
  struct InodeWrite {
    std::map<std::string, bool> by_writer;  // window id -> every writer seen was its writer
    std::string who;
  };
  std::map<std::pair<uint64_t, uint64_t>, InodeWrite> inodes_;  // (dev, ino) -> while windows are active
  std::mutex mu_;
  std::string baseline_id_;
  std::vector<Window> windows_;
  std::map<std::string, Active> active_;  // window id -> being classified
};

}  // namespace fim::watchd
