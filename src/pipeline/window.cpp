// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl window open|close|list, and the tags windows put on differences (fim/window.h).
// Named steps of open/close: the request, the verified baseline, the window entry, the
// successor with the same rows (detail::commit_accepted, as accept writes it).
#include "fim/window.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "fast.h"
#include "fim/base/sys.h"
#include "fim/merge.h"

namespace fim {

const char* Window::state(int64_t now_ns) const {
  if (closed_ns && closed_ns <= until_ns) return "closed";
  return now_ns < until_ns ? "open" : "expired";
}

bool Window::covers(const Bytes& path) const {
  return paths.empty() || std::any_of(paths.begin(), paths.end(), [&](const Bytes& p) { return path_within(path, p); });
}

std::string Window::writer_text() const {
  const size_t colon = writer.find(':');
  if (colon == std::string::npos) return writer;
  return writer.substr(0, colon) + " " + writer.substr(colon + 1);
}

std::vector<Window> windows_of(const BaselineMeta& meta) {
  std::vector<Window> out;
  for (const JournalEntry& e : meta.journal) {
    Acceptance a;
    if (!parse_journal_text(e.text, &a) || a.action != "window") continue;  // the reader verified the chain
    if (a.kind == "open") {
      Window w;
      w.id = a.window;
      w.opened_ns = a.at_ns;
      w.until_ns = a.window_until_ns;
      w.paths = a.window_paths;
      w.writer = a.window_writer;
      w.reason = a.reason;
      w.who = a.who;
      w.ticket = a.ticket;
      w.clock = a.window_clock;
      out.push_back(std::move(w));
    } else if (a.kind == "close") {
      for (Window& w : out)
        if (w.id == a.window && !w.closed_ns) w.closed_ns = a.at_ns;
    }
  }
  return out;
}

Result<std::string> window_writer(const std::string& by, const std::string& name) {
  if (name.empty()) return make_error(Errc::Usage, "--by-" + by + " needs a name");
  if (by == "process") {
    // The kernel keeps 15 bytes of a command's name (TASK_COMM_LEN): a longer one never matches.
    if (name.size() > 15 || name.find('/') != std::string::npos)
      return make_error(Errc::Usage, "--by-process takes a command name as the kernel keeps it (at most 15 bytes, "
                                     "no '/'; 'ps -o comm' shows it): " + quote(name) + " would never match");
    return "process:" + name;
  }
  if (by == "unit") {
    if (name.find('/') != std::string::npos || name.find('.') == std::string::npos)
      return make_error(Errc::Usage, "--by-unit takes a systemd unit name such as deploy.service: " + quote(name));
    return "unit:" + name;
  }
  // A user by name or number, kept as the number the kernel reports.
  char* end = nullptr;
  const unsigned long n = std::strtoul(name.c_str(), &end, 10);
  if (end && *end == '\0' && !name.empty() && n < 0xffffffffUL) return "user:" + std::to_string(n);
  if (const passwd* pw = ::getpwnam(name.c_str())) return "user:" + std::to_string(pw->pw_uid);
  return make_error(Errc::Usage, "--by-user: no user " + quote(name) + " on this host");
}

// --- the tags ---

WindowTags::WindowTags(const BaselineMeta& meta, std::vector<StateStore::WindowWrite> writes, Sink& sink)
    : windows_(windows_of(meta)), writes_(std::move(writes)), sink_(&sink) {
  const StateStore::CheckClock now = detail::clock_now(meta.baseline_id);
  now_ns_ = now.realtime_ns;
  for (const Window& w : windows_) {
    // "BOOT-ID OFFSET": the same boot, and realtime still the same distance from boottime.
    const size_t sp = w.clock.find(' ');
    const bool same_boot = sp != std::string::npos && w.clock.substr(0, sp) == now.boot_id;
    const int64_t offset = sp == std::string::npos ? 0 : std::strtoll(w.clock.c_str() + sp + 1, nullptr, 10);
    clock_ok_.push_back(same_boot && std::llabs(now.offset_ns - offset) <= detail::kClockStepTolerance &&
                        now.realtime_ns >= w.opened_ns);
  }
  alerted_.assign(windows_.size(), false);
}

std::optional<std::string> WindowTags::why(size_t i, ChangeKind kind, const Record* o, const Record* n) const {
  const Window& w = windows_[i];
  const Record& any = n ? *n : *o;
  if (!w.covers(any.path)) return std::nullopt;
  const bool dated = n && n->has(Attr::Ctime);
  const int64_t ctime = dated ? n->get(Attr::Ctime).num : 0;
  // ctime inside the window, and not later than now (a ctime ahead of the clock was written
  // with the clock set forward, or the clock was set back since).
  const auto inside = [&](int64_t from, int64_t to) {
    return dated && ctime >= from && ctime < to && ctime <= now_ns_ + detail::kClockStepTolerance;
  };
  const auto clock_checked = [&]() {
    if (clock_ok_[i]) return true;
    if (!alerted_[i]) {
      alerted_[i] = true;
      sink_->alert("window_clock", "window " + w.id + ": the clock was stepped, or the host restarted, since it "
                                   "opened, so a change's time cannot be trusted to be inside it; what it would "
                                   "tag is reported untagged (accept it by path)");
    }
    return false;
  };
  if (w.writer.empty()) {
    if (kind == ChangeKind::Removed || !inside(w.opened_ns, w.end_ns()) || !clock_checked()) return std::nullopt;
    return "changed " + format_time_ns(ctime) + ", inside the window";
  }
  for (const StateStore::WindowWrite& ww : writes_) {
    if (ww.window != w.id || ww.path != any.path) continue;
    // Classified from watched_from_ns, and found as the baseline records it after that by
    // 'window open': no write before the daemon looked is hidden behind the writer's.
    if (!ww.by_writer || ww.lossy || !ww.watched_from_ns || ww.clean_ns < ww.watched_from_ns) return std::nullopt;
    // Seen by the daemon while it watched the window: a later write it did not see would have
    // a later ctime than the last one it saw.
    const int64_t from = std::max(w.opened_ns, ww.watched_from_ns);
    const int64_t to = std::min({w.end_ns(), ww.watched_to_ns, ww.at_ns}) + 1;
    // The file the writer wrote, not another renamed over its name (a temp file, a directory
    // swapped in): the same inode.
    const auto same_file = [&](const Record& r) {
      return ww.ino && r.has(Attr::Inode) && static_cast<uint64_t>(r.get(Attr::Inode).num) == ww.ino &&
             (!r.has(Attr::Dev) || static_cast<uint64_t>(r.get(Attr::Dev).num) == ww.dev);
    };
    if (kind == ChangeKind::Removed) {
      if (ww.at_ns < from || ww.at_ns >= std::min(w.end_ns(), ww.watched_to_ns + 1) || !clock_checked()) return std::nullopt;
      return "removed by " + ww.who + ", seen by watch";
    }
    if (!inside(from, to) || !same_file(*n) || !clock_checked()) return std::nullopt;
    return "written by " + ww.who + ", seen by watch";
  }
  return std::nullopt;
}

std::optional<std::pair<std::string, std::string>> WindowTags::tag(ChangeKind kind, const Record* old_rec,
                                                                   const Record* new_rec, const std::string& only) const {
  for (size_t i = 0; i < windows_.size(); ++i) {
    if (!only.empty() && windows_[i].id != only) continue;
    if (auto w = why(i, kind, old_rec, new_rec)) return std::make_pair(windows_[i].id, std::move(*w));
  }
  return std::nullopt;
}

void WindowTags::note(ChangeKind kind, const Record* old_rec, const Record* new_rec, ChangeNotes* notes,
                      Summary* s) const {
  if (windows_.empty()) return;
  auto t = tag(kind, old_rec, new_rec);
  if (!t) return;
  notes->window = t->first;
  notes->window_why = t->second;
  ++s->windows[t->first];
}

namespace detail {

WindowTags window_tags(Trusted& t, Sink& sink) {
  const BaselineMeta& meta = t.base->meta();
  std::vector<StateStore::WindowWrite> writes;
  if (t.state && !meta.journal.empty()) {
    if (auto w = (*t.state)->window_writes(meta.baseline_id); w) writes = std::move(*w);
  }
  return WindowTags(meta, std::move(writes), sink);
}

}  // namespace detail

// --- the commands ---

namespace {

/// window open: its paths are below the baseline's roots, and it ends within kMaxWindowNs.
Status check_open(const RunOptions& opts, const BaselineMeta& meta) {
  if (opts.reason.empty())
    return make_error(Errc::Usage, "window open needs --reason: the change it is for goes into the journal");
  if (opts.window_for_ns <= 0 || opts.window_for_ns > kMaxWindowNs)
    return make_error(Errc::Usage, "window open needs --for DURATION, more than 0 and at most 7 days (a window is a "
                                   "planned change, not a standing exemption)");
  for (const Bytes& p : opts.paths) {
    if (std::none_of(meta.roots.begin(), meta.roots.end(), [&](const Bytes& r) { return path_within(p, r); }))
      return make_error(Errc::Usage, quote(p) + " is not below the baseline's roots: a window there would tag nothing");
  }
  return {};
}

std::string clock_text() {
  const StateStore::CheckClock c = detail::clock_now("");
  return c.boot_id + " " + std::to_string(c.offset_ns);
}

}  // namespace

namespace {

/// window open|close: the journal entry, checked against the windows the baseline defines.
Result<Acceptance> window_entry(const RunOptions& opts, const std::string& action, const BaselineMeta& meta,
                                const std::vector<Window>& before) {
  const int64_t now = now_ns();
  Acceptance a{0, detail::current_user(), "window", opts.reason, {}, action, "-", "-", "", opts.ticket};
  if (action == "open") {
    FIM_TRY(check_open(opts, meta));
    a.window = std::to_string(before.size() + 1);
    // From the successor's time, a few milliseconds later: never longer than asked.
    a.window_until_ns = now + opts.window_for_ns;
    a.window_paths = opts.paths;
    a.window_writer = opts.window_writer;
    a.window_clock = clock_text();
    return a;
  }
  size_t open = 0;
  const Window* which = nullptr;
  for (const Window& w : before) {
    const bool is_open = std::string(w.state(now)) == "open";
    open += is_open;
    if (w.id == opts.window || (opts.window.empty() && is_open)) which = &w;
  }
  if (!which || (opts.window.empty() && open != 1))
    return make_error(Errc::Usage, !opts.window.empty() ? "there is no window " + quote(opts.window) + " ('fimctl window list')"
                                   : open == 0          ? std::string("no window is open ('fimctl window list')")
                                                        : std::to_string(open) + " windows are open: name the one to "
                                                                                 "close ('fimctl window list')");
  if (std::string(which->state(now)) != "open")
    return make_error(Errc::Usage, "window " + which->id + " is " + which->state(now) + " already");
  a.window = which->id;
  if (a.reason.empty()) a.reason = "closed";
  return a;
}

}  // namespace

/// window open: what it covers must not differ from the baseline when it opens. A ctime dates
/// a file's last change of any kind, so content planted before the window would be tagged
/// by the deploy's own chmod of it; refused here, that content is never under a window.
Status clean_scope(const RunOptions& opts, const BaselineMeta& meta, Sink& sink) {
  auto probe = detail::open_trusted(opts, sink);
  if (!probe) return probe.error();
  std::vector<Bytes> found;
  FIM_TRY(detail::differences_below(opts, *probe, opts.paths.empty() ? meta.roots : opts.paths, &found));
  if (found.empty()) return {};
  std::string list;
  for (size_t i = 0; i < found.size() && i < 5; ++i) list += (i ? ", " : "") + quote(found[i]);
  if (found.size() > 5) list += ", ...";
  return make_error(Errc::Usage, std::to_string(found.size()) + " entries below the window's paths differ from the "
                                 "baseline already (" + list + "): a window tags what changes while it is open, so "
                                 "what changed before must be reviewed first ('fimctl check', then accept or "
                                 "update); no window was opened");
}

/// How long 'window open' waits for the watch daemon to take a window that names a writer
/// (it notices a successor within a second).
constexpr int kDaemonWaitMs = 5000;

/// window open naming a writer: the daemon begins classifying a moment after the window
/// opened; what was written in between was not seen. So, once it classifies, the paths are
/// compared with the baseline again, and only when they are as recorded does the window tag
/// anything (state.db clean_ns). Errc::Usage when they are not: the window then tags nothing.
Result<std::string> taken_by_daemon(const RunOptions& opts, const Window& w, Sink& sink) {
  auto state = detail::open_state(opts.db_path);
  if (!state) return make_error(Errc::Io, "window " + w.id + " tags nothing: state.db cannot be used (" +
                                              state.error().describe() + ")");
  auto probe = detail::open_trusted(opts, sink);
  if (!probe) return probe.error();
  const std::string baseline_id = probe->base->meta().baseline_id;
  int64_t from = 0;
  for (int waited = 0; waited < kDaemonWaitMs && !from; waited += 100) {
    auto f = (*state)->window_watched_from(baseline_id, w.id);
    if (f) from = *f;
    if (!from) ::usleep(100 * 1000);
  }
  if (!from)
    return std::string("no watch daemon took it within 5 s: it tags nothing (only 'fimctl watch', running when "
                       "the window opens, can tell who writes)");
  const int64_t clean = now_ns();
  std::vector<Bytes> found;
  FIM_TRY(detail::differences_below(opts, *probe, w.paths.empty() ? probe->base->meta().roots : w.paths, &found));
  if (!found.empty())
    return make_error(Errc::Usage, "window " + w.id + " is open but tags nothing: " + quote(found.front()) +
                                       (found.size() > 1 ? " and " + std::to_string(found.size() - 1) + " more" : "") +
                                       " changed before the watch daemon began to watch it; close it ('fimctl window "
                                       "close " + w.id + "'), review what changed, and open another");
  FIM_TRY((*state)->window_clean(baseline_id, w.id, clean));
  return "the watch daemon classifies its writers since " + format_time_ns(from);
}

Result<WindowResult> run_window(const RunOptions& opts, const std::string& action, Sink& sink) {
  WindowResult out;
  if (action == "list") {
    auto trusted = detail::open_trusted(opts, sink);
    if (!trusted) return trusted.error();
    FIM_TRY(detail::read_verified(*trusted->base, {}));  // the journal is covered by the content digest
    out.windows = windows_of(trusted->base->meta());
    out.baseline = detail::facts_of(opts.db_path, trusted->base->meta());
    return out;
  }
  auto writing = detail::open_for_writing(opts, sink);
  if (!writing) return writing.error();
  const std::optional<SigningKey>* key = &writing->key;
  detail::Trusted* trusted = &writing->trusted;
  const BaselineMeta& meta = trusted->base->meta();
  out.windows = windows_of(meta);  // trusted once the rows below verify
  auto entry = window_entry(opts, action, meta, out.windows);
  if (!entry) return entry.error();
  if (action == "open") {
    // It starts before its paths are found clean: what is written once the scan has read a
    // file is inside the window, never before it.
    entry->at_ns = now_ns();
    FIM_TRY(clean_scope(opts, meta, sink));
  }
  auto writer = BaselineWriter::create(opts.db_path, *key ? &**key : nullptr);
  if (!writer) return writer.error();
  FIM_TRY(detail::read_verified(*trusted->base, [&](const Record& r) { return (*writer)->add(r); }));
  auto s = detail::commit_accepted(opts, meta, *trusted, **writer, *key, {*entry}, meta.alternatives, {}, sink);
  if (!s) return s.error();
  out.touched = entry->window;
  out.baseline = s->baseline;
  if (action == "open") {
    Window w;
    w.id = entry->window, w.opened_ns = entry->at_ns, w.until_ns = entry->window_until_ns;
    w.paths = entry->window_paths, w.writer = entry->window_writer, w.reason = entry->reason, w.who = entry->who;
    w.ticket = entry->ticket, w.clock = entry->window_clock;
    out.windows.push_back(std::move(w));
    if (!out.windows.back().writer.empty()) {
      auto d = taken_by_daemon(opts, out.windows.back(), sink);
      if (!d) return d.error();
      out.daemon = *d;
    }
  } else {
    for (Window& w : out.windows)
      if (w.id == entry->window) w.closed_ns = s->baseline.created_ns;
  }
  return out;
}

}  // namespace fim
