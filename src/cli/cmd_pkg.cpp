// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl apt-hook pre|pre-install|post: apt runs it around dpkg (share/apt/99fimctl). It keeps
// what each apt run changed (package versions before and after) in state.db, so 'check
// --packages' can group the changes a run explains; pre-install (DPkg::Pre-Install-Pkgs) also
// keeps a signed record of what each .deb holds, since apt deletes the .debs afterwards. It
// must never break an apt run: every error is printed (one line each) and the exit code is 0.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <memory>
#include <thread>

#include "commands.h"
#include "fim/ancestry.h"
#include "fim/base/sys.h"
#include "fim/db.h"
#include "fim/state.h"
#include "fim/pkg.h"

namespace fim::cli {

namespace {

/// The spool beside state.db where verified .debs wait for their members to be read: the
/// baseline directory's owner's alone.
Result<UniqueFd> open_spool(const Bytes& dir) {
  const Bytes spool = join_path(dir, "apt-spool");
  if (::mkdir(spool.c_str(), 0700) != 0 && errno != EEXIST) return make_error(Errc::Io, "cannot create " + quote(spool), errno);
  UniqueFd fd(::open(spool.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st;
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0) return make_error(Errc::Io, "cannot open " + quote(spool), errno);
  if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0)
    return make_error(Errc::Trust, quote(spool) + " is not this user's alone (mode " + std::to_string(st.st_mode & 0777) + ")");
  return fd;
}

/// Starts `fimctl apt-hook record` detached (its own session, no terminal, nice 10), so apt
/// does not wait for dpkg-deb to read every .deb.
void start_recorder(const Options& o, const Bytes& db) {
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return;
  self[n] = 0;
  const pid_t pid = ::fork();
  if (pid < 0) return;
  if (pid > 0) {
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return;
  }
  ::setsid();
  if (::fork() != 0) ::_exit(0);
  const int null = ::open("/dev/null", O_RDWR);
  for (int fd : {0, 1, 2}) ::dup2(null, fd);
  if (::nice(10) == -1) {
  }
  const std::string keys = o.keys;
  const char* argv[] = {"fimctl", "-q", "--db", db.c_str(), "--keys", keys.c_str(), "apt-hook", "record", nullptr};
  ::execv(self, const_cast<char* const*>(argv));
  ::_exit(127);
}

/// The .debs apt is about to install: verified against the signed index and spooled, with
/// the replaced versions' file lists, while apt waits (docs/design.md, Packages: hook records);
/// their members are read by 'apt-hook record', started detached.
int pre_install(const Options& o, StateStore& state, const Bytes& dir, const Bytes& db) {
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
  auto spool = open_spool(dir);
  if (!spool) return report_error(spool.error());
  std::vector<std::string> problems;
  const size_t asked = debs.size();
  const auto records = pkg::verify_and_spool(pkg::Options{}, std::move(debs), now_ns(), spool->get(), &problems);
  for (const auto& p : problems) std::fprintf(stderr, "fimctl: apt hook: %s\n", escape_terminal(p).c_str());
  std::vector<std::string> bodies;
  for (const auto& r : records) bodies.push_back(pkg::encode_hook_record(r));
  if (auto s = state.add_hook_pending(bodies); !s) return report_error(s.error());
  if (!o.quiet) std::fprintf(stderr, "fimctl: apt hook: verified %zu of %zu .debs\n", records.size(), asked);
  if (!bodies.empty() && !o.hook_sync) start_recorder(o, db);
  return 0;
}

/// 'apt-hook record': the members of every spooled .deb, signed with the host key when it is
/// readable here (else kept unsigned: readers then count them as no better than dpkg's MD5s).
/// One recorder at a time (a lock on the spool); another waits, then finds nothing left.
int record(const Options& o, StateStore& state, const Bytes& dir) {
  auto spool = open_spool(dir);
  if (!spool) return report_error(spool.error());
  while (::flock(spool->get(), LOCK_EX) != 0 && errno == EINTR) {
  }
  auto pending = state.hook_pending();
  if (!pending) return report_error(pending.error());
  std::optional<SigningKey> key;
  if (auto keys = absolute_path(o.keys)) {
    const Bytes key_path = join_path(*keys, "signing.key");
    if (::access(key_path.c_str(), R_OK) == 0) {
      auto k = SigningKey::load(key_path);
      if (k) key.emplace(std::move(*k));
      else report_error(k.error());
    }
  }
  size_t done = 0;
  for (const auto& body : *pending) {
    auto rec = pkg::decode_hook_record(body);
    std::optional<StateStore::HookRow> row;
    if (rec) {
      auto members = pkg::spooled_members(pkg::Options{}, spool->get(), *rec);
      if (members) {
        rec->members = std::move(*members);
        row.emplace(StateStore::HookRow{rec->name, rec->version, rec->arch, rec->at_ns, pkg::encode_hook_record(*rec), "", ""});
        if (key) {
          auto sig = key->sign(row->body);
          if (!sig) return report_error(sig.error());
          row->key_id = key->key_id();
          row->signature = std::move(*sig);
        }
      } else {
        report_error(members.error());
      }
      ::unlinkat(spool->get(), (rec->deb_sha256 + ".deb").c_str(), 0);
    }
    if (auto s = state.finish_hook_pending(body, row ? &*row : nullptr); !s) return report_error(s.error());
    done += row ? 1 : 0;
  }
  // Spooled files no pending record names (a recorder killed midway) go once they are an hour
  // old: younger ones may be a running hook's, linked but not yet noted (linking sets ctime).
  if (const std::unique_ptr<DIR, CDeleter<::closedir>> d(::fdopendir(::dup(spool->get()))); d) {
    while (dirent* e = ::readdir(d.get())) {
      struct stat st;
      if (e->d_name[0] == '.' || ::fstatat(spool->get(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (st.st_ctime + 3600 < ::time(nullptr)) ::unlinkat(spool->get(), e->d_name, 0);
    }
  }
  if (!o.quiet && !pending->empty())
    std::fprintf(stderr, "fimctl: apt hook: recorded %zu of %zu .debs (%s)\n", done, pending->size(),
                 key ? "signed" : "unsigned: no private key here");
  return 0;
}

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
  if (o.hook_phase == "pre-install") return pre_install(o, **state, dir, *db);
  if (o.hook_phase == "record") return record(o, **state, dir);
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
