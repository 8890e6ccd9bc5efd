// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl apt-hook pre|post: apt runs it around dpkg (share/apt/99fimctl). It keeps what each
// apt run changed (package versions before and after) in state.db, so 'check --packages' can
// group the changes a run explains. It must never break an apt run: every error is printed
// and the exit code is 0.
#include <sys/stat.h>

#include <cstdio>
#include <thread>

#include "commands.h"
#include "fim/ancestry.h"
#include "fim/base/sys.h"
#include "fim/db.h"
#include "fim/pkg.h"

namespace fim::cli {

namespace {

/// The pre hook's half of written-by-dpkg (docs/design.md, Packages): the apt process this run
/// is, recorded so the watch daemon can tell its dpkg's descendants from anyone else. When a
/// daemon runs on this baseline, dpkg is held back until it took the session (at most 2 s):
/// writes it did not classify are never vouched for, and the hook must not be the gap.
void begin_session(StateStore& state, const Bytes& baseline, bool quiet) {
  auto apt = pkg::find_apt_process();
  if (!apt) return;
  auto id = state.begin_apt_session(apt->pid, apt->start, now_ns());
  if (!id) return (void)report_error(id.error());
  auto d = state.daemon(baseline);
  if (!d || !*d || (*d)->stopped_ns != 0 || now_ns() - (*d)->heartbeat_ns > 30'000'000'000) return;
  for (int i = 0; i < 100; ++i) {
    auto s = state.apt_session(*id);
    if (s && *s && (*s)->watched_from_ns != 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!quiet) std::fprintf(stderr, "fimctl: the watch daemon did not take this apt run: nothing it writes is written-by-dpkg\n");
}

int hook(const Options& o) {
  auto db = absolute_path(o.db);
  if (!db) return report_error(db.error());
  Bytes dir, name;
  split_path(*db, &dir, &name);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return 0;  // fimctl not set up here: nothing to record
  auto state = StateStore::open(dir);
  if (!state) return report_error(state.error());
  Status read;
  const auto now = pkg::installed_versions(pkg::Options{}, &read);
  if (!read) return report_error(read.error());
  if (o.hook_phase == "pre") {
    if (auto s = (*state)->set_apt_snapshot(now); !s) return report_error(s.error());
    begin_session(**state, *db, o.quiet);
    return 0;
  }
  auto before = (*state)->apt_snapshot();
  if (!before) return report_error(before.error());
  std::string changes;
  size_t n = 0;
  if (!before->empty()) {
    for (const auto& [pkg, version] : now) {
      auto it = before->find(pkg);
      if (it == before->end()) changes += pkg + " - " + version + "\n";
      else if (it->second != version) changes += pkg + " " + it->second + " " + version + "\n";
      else continue;
      ++n;
    }
    for (const auto& [pkg, version] : *before)
      if (!now.count(pkg)) {
        changes += pkg + " " + version + " -\n";
        ++n;
      }
  }
  if (!changes.empty()) {
    if (auto s = (*state)->add_apt_run(now_ns(), changes); !s) return report_error(s.error());
    if (!o.quiet) std::fprintf(stderr, "fimctl: recorded an apt run that changed %zu packages\n", n);
  }
  if (auto s = (*state)->set_apt_snapshot(now); !s) return report_error(s.error());
  if (auto apt = pkg::find_apt_process())  // after add_apt_run: the session links to it
    if (auto s = (*state)->end_apt_session(apt->pid, apt->start, now_ns()); !s) return report_error(s.error());
  return 0;
}

}  // namespace

int cmd_apt_hook(const Options& o) {
  hook(o);
  return 0;  // never fail apt
}

}  // namespace fim::cli
