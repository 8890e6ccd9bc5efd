// SPDX-License-Identifier: GPL-2.0-or-later
// Maintenance windows (docs/design.md, Reconciliation): a planned change announced before it
// is made. 'fimctl window open' writes a successor baseline whose journal entry defines the
// window (id, start, expiry, reason, paths, writer), so it is signed like an acceptance;
// 'window close' ends it early the same way. While a window is open, changes below its paths
// are still reported, tagged with it; 'accept --window ID' later takes exactly the tagged ones.
//
// What dates a change: check has only the entry's ctime (the kernel sets it at every change;
// no system call sets it to a chosen value, but root can step the clock and write under a
// false time), so a window that names no writer tags a change whose ctime is inside it, on a
// clock that did not step since the window opened (same boot, same realtime-boottime offset);
// otherwise its tags are withdrawn (alert window_clock). A window that names a writer
// (process, unit, user) tags only what the watch daemon saw that writer, and nobody else,
// write while it watched the whole window (state.db's window_writes).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "fim/db.h"
#include "fim/state.h"
#include "fim/pipeline.h"
#include "fim/report.h"

namespace fim {

/// The longest window 'window open --for' takes: a planned change, not a standing exemption.
inline constexpr int64_t kMaxWindowNs = 7LL * 86400 * 1'000'000'000;

struct Window {
  std::string id;  ///< "1", "2", ...: in the order they were opened
  int64_t opened_ns = 0, until_ns = 0;
  int64_t closed_ns = 0;  ///< 'window close' (0: not closed)
  std::vector<Bytes> paths;  ///< empty: the baseline's roots
  std::string writer;        ///< "process:COMM", "unit:UNIT", "user:UID"; empty: any writer
  std::string reason, who, ticket;
  std::string clock;  ///< "BOOT-ID OFFSET-NS" when it opened (the clock check)

  /// When it ends: its expiry, or its close when that came first.
  int64_t end_ns() const { return closed_ns && closed_ns < until_ns ? closed_ns : until_ns; }
  /// "open", "closed" or "expired" at `now_ns`.
  const char* state(int64_t now_ns) const;
  /// Whether `path` is below one of its paths (every path when it names none).
  bool covers(const Bytes& path) const;
  /// "process ansible-playbook" for people; "" for a window without a writer.
  std::string writer_text() const;
};

/// The windows a baseline's journal defines, in the order they were opened; a close entry
/// sets its window's closed_ns.
std::vector<Window> windows_of(const BaselineMeta& meta);

/// --by-process COMM / --by-unit UNIT / --by-user USER as a Window::writer; Errc::Usage for a
/// command name the kernel would truncate (comm holds 15 bytes), an empty one, or an unknown user.
Result<std::string> window_writer(const std::string& by, const std::string& name);

/// What check and update say of each difference: the window that tags it (the first opened of
/// those that do), with why. Built once per run from the verified baseline.
class WindowTags {
 public:
  /// `writes`: what the watch daemon recorded of the windows that name a writer (state.db; may
  /// be empty). Alerts (a clock step withdrawing tags) go to `sink`.
  WindowTags(const BaselineMeta& meta, std::vector<StateStore::WindowWrite> writes, Sink& sink);
  /// The tag of a difference (id and why), or none. `only`: consider that window alone.
  std::optional<std::pair<std::string, std::string>> tag(ChangeKind kind, const Record* old_rec, const Record* new_rec,
                                                         const std::string& only = {}) const;
  /// tag() into a report's notes, counted in the summary (Summary::windows).
  void note(ChangeKind kind, const Record* old_rec, const Record* new_rec, ChangeNotes* notes, Summary* s) const;
  const std::vector<Window>& windows() const { return windows_; }

 private:
  std::optional<std::string> why(size_t i, ChangeKind kind, const Record* o, const Record* n) const;
  std::vector<Window> windows_;
  std::vector<bool> clock_ok_;  // per window: the clock did not step since it opened
  mutable std::vector<bool> alerted_;  // per window: window_clock said
  std::vector<StateStore::WindowWrite> writes_;
  Sink* sink_;
  int64_t now_ns_ = 0;
};

/// fimctl window open|close|list (RunOptions::window_*): open and close write a successor
/// baseline (same rows, one journal entry); list reads the verified journal. The windows after
/// the command, and for open/close the one it made or ended.
struct WindowResult {
  std::vector<Window> windows;
  std::string touched;  ///< the id opened or closed
  BaselineFacts baseline;
  /// window open naming a writer: what the watch daemon did with it, for people.
  std::string daemon;
};
Result<WindowResult> run_window(const RunOptions& opts, const std::string& action, Sink& sink);

}  // namespace fim
