// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl apt-hook pre|pre-install|post: apt runs it around dpkg (share/apt/99fimctl). It keeps
// what each apt run changed (package versions before and after) in state.db, so 'check
// --packages' can group the changes a run explains; pre-install (DPkg::Pre-Install-Pkgs) also
// keeps a signed record of what each .deb holds, since apt deletes the .debs afterwards. It
// must never break an apt run: every error is printed (one line each) and the exit code is 0.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "commands.h"
#include "fim/base/sys.h"
#include "fim/db.h"
#include "fim/pkg.h"

namespace fim::cli {

namespace {

/// The .debs apt is about to install, verified and recorded (docs/design.md, Packages: hook
/// records). Signed with the host key when it is readable here; else kept unsigned, and then
/// readers count them as no better than dpkg's MD5s.
int pre_install(const Options& o, StateStore& state) {
  std::string input;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (input.size() + static_cast<size_t>(n) > (64u << 20)) return report_error(make_error(Errc::Io, "apt's input is too large"));
    input.append(buf, static_cast<size_t>(n));
  }
  auto debs = pkg::parse_hook_input(input);
  if (debs.empty()) return 0;
  const size_t asked = debs.size();
  std::vector<std::string> problems;
  const auto records = pkg::record_debs(pkg::Options{}, std::move(debs), now_ns(), &problems);
  for (const auto& p : problems) std::fprintf(stderr, "fimctl: apt hook: %s\n", escape_terminal(p).c_str());
  std::optional<SigningKey> key;
  if (auto keys = absolute_path(o.keys)) {
    const Bytes key_path = join_path(*keys, "signing.key");
    if (::access(key_path.c_str(), R_OK) == 0) {
      auto k = SigningKey::load(key_path);
      if (k) key.emplace(std::move(*k));
      else std::fprintf(stderr, "fimctl: apt hook: records kept unsigned: %s\n", escape_terminal(k.error().describe()).c_str());
    }
  }
  std::vector<StateStore::HookRow> rows;
  for (const auto& r : records) {
    StateStore::HookRow row{r.name, r.version, r.arch, r.at_ns, pkg::encode_hook_record(r), "", ""};
    if (key) {
      auto sig = key->sign(row.body);
      if (!sig) return report_error(sig.error());
      row.key_id = key->key_id();
      row.signature = std::move(*sig);
    }
    rows.push_back(std::move(row));
  }
  if (auto s = state.add_hook_records(rows); !s) return report_error(s.error());
  if (!o.quiet)
    std::fprintf(stderr, "fimctl: apt hook: recorded %zu of %zu .debs (%s)\n", rows.size(), asked,
                 key ? "signed" : "unsigned: no private key here");
  return 0;
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
  if (o.hook_phase == "pre-install") return pre_install(o, **state);
  if (o.hook_phase == "pre") {
    if (auto s = (*state)->set_apt_snapshot(now); !s) return report_error(s.error());
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
  return 0;
}

}  // namespace

int cmd_apt_hook(const Options& o) {
  hook(o);
  return 0;  // never fail apt
}

}  // namespace fim::cli
