// SPDX-License-Identifier: GPL-2.0-or-later
// The package manager's word on changes, for check --packages and accept --package-verified.
#include <algorithm>
#include <optional>

#include "fim/base/sys.h"
#include "fim/diff.h"
#include "fim/merge.h"

namespace fim::detail {

namespace {

/// What the watch daemon saw dpkg's descendants write in apt runs since the baseline (a
/// state.db it cannot read: none, and nothing is written-by-dpkg).
std::multimap<Bytes, pkg::Verifier::DpkgWritten> written_by_dpkg(StateStore& state, int64_t since_ns) {
  std::multimap<Bytes, pkg::Verifier::DpkgWritten> out;
  auto writes = state.dpkg_writes_since(since_ns);
  if (!writes) return out;
  for (auto& [w, s] : *writes) {
    const std::string run = s.run_id ? "apt run " + std::to_string(s.run_id) : "an apt run that changed no package version";
    out.emplace(w.path, pkg::Verifier::DpkgWritten{w.dev, w.ino, s.watched_from_ns, s.ended_ns,
                                                   run + " (" + format_time_ns(s.began_ns) + ")", w.who});
  }
  return out;
}

}  // namespace

namespace {

/// The baseline's SHA-256 of a path, read from a second reader of the baseline file, verified
/// in full on first use (only derived evidence asks, after an upgrade) and only if it is the
/// baseline the caller trusts.
std::function<std::optional<Bytes>(const Bytes&)> baseline_digests(const Bytes& db, const std::string& trusted) {
  struct Lazy {
    std::unique_ptr<BaselineReader> reader;
    bool tried = false;
  };
  auto lazy = std::make_shared<Lazy>();
  return [lazy, db, trusted](const Bytes& path) -> std::optional<Bytes> {
    if (!lazy->tried) {
      lazy->tried = true;
      auto r = BaselineReader::open(db);
      if (!r || (*r)->meta().content_sha256 != trusted) return std::nullopt;
      Record rec;
      for (;;) {
        auto more = (*r)->next(&rec);
        if (!more) return std::nullopt;
        if (!*more) break;
      }
      if (!(*r)->verify()) return std::nullopt;
      lazy->reader = std::move(*r);
    }
    if (!lazy->reader || !lazy->reader->seek(path)) return std::nullopt;
    Record rec;
    auto got = lazy->reader->range_next(&rec);
    if (!got || !*got || rec.path != path || !rec.has(Attr::Sha256)) return std::nullopt;
    return rec.get(Attr::Sha256).bytes;
  };
}

}  // namespace

Result<Packages> open_packages(const RunOptions& opts, StateStore* state, int64_t since_ns, const std::string& trusted) {
  Packages p;
  auto v = pkg::Verifier::open(opts.package_sources);
  if (!v) return v.error();
  p.verifier = std::move(*v);
  std::map<std::string, std::string> replaced;
  if (state) {
    // The apt hook's records: each run's "name:arch old new" lines. A later run wins.
    auto runs = state->apt_runs_since(since_ns);
    if (runs) {
      for (const auto& r : *runs) {
        const std::string label = "apt run " + std::to_string(r.id) + " at " + format_time_ns(r.at_ns);
        size_t pos = 0;
        while (pos < r.changes.size()) {
          size_t end = r.changes.find('\n', pos);
          if (end == std::string::npos) end = r.changes.size();
          const std::string line = r.changes.substr(pos, end - pos);
          pos = end + 1;
          const size_t sp = line.find(' ');
          if (sp == std::string::npos) continue;
          const std::string pkg = line.substr(0, sp);
          p.run_of[pkg] = label;
          // "name:arch old new": the first old version since the baseline is what it replaced.
          const size_t sp2 = line.find(' ', sp + 1);
          if (sp2 != std::string::npos) replaced.emplace(pkg, line.substr(sp + 1, sp2 - sp - 1));
        }
      }
    }
  }
  p.replaced = replaced;
  p.verifier->set_replaced(replaced);
  if (state) load_hook_records(opts, *state, since_ns, &p);
  if (state) p.verifier->set_written_by_dpkg(written_by_dpkg(*state, since_ns));
  if (!trusted.empty()) p.verifier->set_baseline_digest(baseline_digests(opts.db_path, trusted));
  return p;
}

void load_hook_records(const RunOptions& opts, StateStore& state, int64_t since_ns, Packages* p) {
  if (auto pending = state.hook_pending(); pending && !pending->empty())
    p->alerts.push_back("the apt hook is still reading the members of " + std::to_string(pending->size()) +
                        " verified .deb(s): until it is done their files have only dpkg's evidence ('fimctl "
                        "apt-hook record' waits for it)");
  auto rows = state.hook_records();
  if (!rows) {
    p->alerts.push_back("the apt hook's records in state.db cannot be read: " + rows.error().describe());
    return;
  }
  if (rows->empty()) return;
  // Every record is verified with the pinned public key before use: state.db is not signed.
  std::optional<VerifyKey> vk;
  if (auto k = VerifyKey::load(join_path(opts.keys_dir, "signing.pub")); k) vk.emplace(std::move(*k));
  std::vector<pkg::TrustedHookRecord> use;
  std::map<std::string, std::string> refused;
  uint64_t bad = 0;
  std::string example;
  for (const auto& row : *rows) {
    const std::string key = row.name + " " + row.version + " " + row.arch;
    auto rec = pkg::decode_hook_record(row.body);
    std::string why;
    if (!rec) why = "malformed";
    else if (rec->name != row.name || rec->version != row.version || rec->arch != row.arch)
      why = "filed under another package than it records";
    else if (!row.signature.empty() && !vk) why = "signed, but there is no public key to verify it with";
    else if (!row.signature.empty() && (row.key_id != vk->key_id() || !vk->verify(row.body, row.signature)))
      why = "its signature does not verify with the configured key (forged or edited in state.db)";
    if (!why.empty()) {
      refused[key] = "the apt hook's record of " + key + " was ignored: " + why;
      if (bad++ == 0) example = refused[key];
      continue;
    }
    pkg::TrustedHookRecord t;
    t.is_signed = !row.signature.empty();
    t.since_baseline = rec->at_ns >= since_ns;
    t.rec = std::move(*rec);
    use.push_back(std::move(t));
  }
  if (bad)
    p->alerts.push_back(std::to_string(bad) + " apt hook record(s) in state.db did not verify and were ignored (e.g. " +
                        escape_terminal(example) + ")");
  p->verifier->set_hook_records(std::move(use), std::move(refused));
}

void prune_hook_records(const RunOptions& opts, StateStore& state, Sink& sink) {
  // Kept: the records of the versions installed now. Every other one is of a version an apt
  // run before this new baseline replaced: the baseline has accepted (or not) what it did.
  auto rows = state.hook_records();
  if (!rows || rows->empty()) return;
  Status read;
  const auto installed = pkg::installed_versions(opts.package_sources, &read);
  if (!read) return;  // dpkg's status unreadable: keep them rather than drop what is in use
  std::set<std::string> keep;
  for (const auto& r : *rows)
    if (auto it = installed.find(r.name + ":" + r.arch); it != installed.end() && it->second == r.version)
      keep.insert(r.name + " " + r.version + " " + r.arch);
  if (auto dropped = state.prune_hook_records(keep); !dropped)
    sink.alert("state_unwritten", "cannot prune the apt hook's records in state.db: " + dropped.error().describe());
}

namespace {

Bytes parent_of(const Bytes& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos || path == "/") return {};
  return slash == 0 ? Bytes("/") : path.substr(0, slash);
}

}  // namespace

bool is_directory_change(const Record* old_rec, const Record* new_rec) {
  return (old_rec && old_rec->type() == FileType::Dir) || (new_rec && new_rec->type() == FileType::Dir);
}

bool only_times_changed(AttrMask changed) {
  // The inode too (and with it the birth time and file handle): a directory removed and made
  // again by the same name (py3clean in prerm, py3compile in postinst) has a new one; its mode,
  // owner and xattrs are still compared.
  const AttrMask times = attr_bit(Attr::Mtime) | attr_bit(Attr::Ctime) | attr_bit(Attr::Size) | attr_bit(Attr::Nlink) |
                         attr_bit(Attr::Inode) | attr_bit(Attr::Btime) | attr_bit(Attr::Handle);
  return changed != 0 && (changed & ~times) == 0;
}

bool Packages::by_depth(const Bytes& a, const Bytes& b) {
  const auto depth = [](const Bytes& p) { return std::count(p.begin(), p.end(), '/'); };
  const auto da = depth(a), db = depth(b);
  return da != db ? da > db : a < b;
}

PackageNote Packages::shown(const pkg::Note& n, const Bytes& path) {
  if (const Bytes parent = parent_of(path); !parent.empty()) children_[parent].add(path, n);
  PackageNote out;
  out.verdict = std::string(pkg::verdict_name(n.verdict));
  out.evidence = std::string(pkg::evidence_name(n.evidence));
  out.strong = pkg::strong_evidence(out.evidence);
  out.package = n.package;
  out.version = n.version;
  out.arch = n.arch;
  out.detail = n.detail;
  if (!n.package.empty())
    if (auto it = run_of.find(n.package + ":" + n.arch); it != run_of.end()) {
      out.upgrade = it->second;
      if (auto was = replaced.find(n.package + ":" + n.arch); was != replaced.end() && was->second != "-")
        out.from_version = was->second;
    }
  return out;
}

PackageNote Packages::explain(const Record* old_rec, const Record* new_rec) {
  return shown(verifier->explain(old_rec, new_rec), (new_rec ? new_rec : old_rec)->path);
}

PackageNote Packages::explain_directory(const Record* old_rec, const Record* new_rec, bool only_times) {
  const Bytes& path = (new_rec ? new_rec : old_rec)->path;
  static const pkg::Children kNone;
  const auto kids = children_.find(path);
  const pkg::Note n = pkg::directory_note(verifier->explain(old_rec, new_rec), old_rec, new_rec, only_times,
                                          kids == children_.end() ? kNone : kids->second);
  return shown(n, path);
}

void Packages::note_unweighed(const Bytes& path) {
  if (const Bytes parent = parent_of(path); !parent.empty()) children_[parent].add_unknown(path);
}

}  // namespace fim::detail

namespace fim::detail {

Status keep_package_verified(const RunOptions& opts, const BaselineMeta& meta, StateStore* state,
                             const std::set<Bytes>& reported, std::map<Bytes, std::optional<Record>>* chosen,
                             std::map<Bytes, std::string>* vouched, Sink& sink) {
  auto pk = open_packages(opts, state, meta.created_ns, meta.content_sha256);
  if (!pk) return pk.error();
  for (const auto& a : pk->alerts) sink.alert("hook_record_refused", a);
  // The old states come from the baseline itself, read in full and verified like any other use.
  auto base = BaselineReader::open(opts.db_path);
  if (!base) return base.error();
  std::map<Bytes, Record> old;
  FIM_TRY(read_verified(**base, [&](const Record& r) -> Status {
    if (chosen->count(r.path)) old[r.path] = r;
    return {};
  }));
  if ((*base)->meta().content_sha256 != meta.content_sha256)
    return make_error(Errc::Trust, "the baseline changed while it was being read for accept");
  std::map<std::string, uint64_t> left;  // verdict (and evidence) -> changes not accepted
  std::string example;
  const bool any_run = !pk->run_of.empty();
  const auto weigh = [&](const Bytes& path, const PackageNote& n, bool dir) {
    // auto_accept: what a recorded apt run changed (its packages' files; files derived from
    // them and directories holding only such files, after a run).
    const bool of_a_run = !n.upgrade.empty() || (any_run && (dir || n.evidence == "derived"));
    if (opts.recorded_runs_only && !of_a_run) {
      ++left["not changed by a recorded apt run"];
      return false;
    }
    if (n.verdict == "verified" && (pkg::strong_evidence(n.evidence) || opts.weak_evidence)) {
      (*vouched)[path] = n.package.empty() ? n.evidence + ": " + n.detail
                                           : n.package + " " + n.version + " " + n.arch + ", " + n.evidence;
      return true;
    }
    ++left[n.verdict == "verified" ? "verified only by " + n.evidence + " (add --weak to accept those)" : n.verdict];
    if (example.empty()) example = quote(path) + ": " + n.verdict + ", " + escape_terminal(n.detail);
    return false;
  };
  // Reported changes that are not being accepted still count inside their directories.
  for (const Bytes& r : reported)
    if (!chosen->count(r)) pk->note_unweighed(r);
  // Everything but directories first; then directories, deepest first, each weighed by what
  // changed inside it.
  std::vector<Bytes> dirs;
  for (auto it = chosen->begin(); it != chosen->end();) {
    auto o = old.find(it->first);
    const Record* was = o == old.end() ? nullptr : &o->second;
    const Record* now = it->second ? &*it->second : nullptr;
    if (is_directory_change(was, now)) {
      dirs.push_back(it->first);
      ++it;
      continue;
    }
    it = weigh(it->first, pk->explain(was, now), false) ? std::next(it) : chosen->erase(it);
  }
  std::sort(dirs.begin(), dirs.end(), Packages::by_depth);
  for (const Bytes& d : dirs) {
    auto o = old.find(d);
    const Record* was = o == old.end() ? nullptr : &o->second;
    auto& now = chosen->at(d);
    const bool only_times = was && now && only_times_changed(compare(*was, *now));
    if (!weigh(d, pk->explain_directory(was, now ? &*now : nullptr, only_times), true)) chosen->erase(d);
  }
  std::string counts;
  for (const auto& [why, count] : left) counts += (counts.empty() ? "" : ", ") + std::to_string(count) + " " + why;
  if (chosen->empty())
    return make_error(Errc::Usage, "none of the chosen changes is vouched for by its package (" + counts +
                                       "; e.g. " + example + "): nothing was accepted");
  if (!left.empty())
    sink.alert("not_accepted", "not vouched for by a package, so still reported: " + counts + "; e.g. " + example);
  return {};
}

}  // namespace fim::detail
