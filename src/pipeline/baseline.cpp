// SPDX-License-Identifier: GPL-2.0-or-later
// The pieces every command shares about the baseline (see merge.h): opening it trusted, the
// policy it is compared under, the verified read of its rows, the manifest of its successor.
#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "fim/base/sys.h"
#include "fim_config.h"
#include "fim/merge.h"

namespace fim::detail {

Result<std::optional<VerifyKey>> find_image_key(const Bytes& keys_dir, const std::string& key_id) {
  const Bytes dir = join_path(keys_dir, "images");
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return std::optional<VerifyKey>();
    return make_error(Errc::Io, "cannot read the image-signing keys in " + quote(dir), errno);
  }
  std::vector<Bytes> names;
  while (dirent* de = ::readdir(d)) {
    const std::string n = de->d_name;
    if (n.size() > 4 && n.compare(n.size() - 4, 4, ".pub") == 0) names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  std::string refused;
  for (const auto& n : names) {
    const Bytes path = join_path(dir, n);
    // Trusting a key is trusting whoever can write its file: it must be root's alone.
    if (auto st = check_trusted_path(path, "image-signing key"); !st) {
      refused += (refused.empty() ? "" : "; ") + st.error().message;
      continue;
    }
    auto vk = VerifyKey::load(path);
    if (vk && vk->key_id() == key_id) return std::optional<VerifyKey>(std::move(*vk));
  }
  if (!refused.empty()) return make_error(Errc::Trust, "no trusted image-signing key has id " + escape_terminal(key_id) +
                                                         ", and some were not used: " + refused);
  return std::optional<VerifyKey>();
}

Status check_signature(const RunOptions& opts, const BaselineMeta& meta, Sink& sink) {
  const Bytes pub_path = join_path(opts.keys_dir, "signing.pub");
  const bool have_pub = ::access(pub_path.c_str(), F_OK) == 0;
  const std::string base = "baseline " + quote(opts.db_path);
  if (meta.is_signed) {
    std::optional<VerifyKey> vk;
    if (have_pub) {
      auto host = VerifyKey::load(pub_path);
      if (!host) return host.error();
      if (host->key_id() == meta.key_id) vk = std::move(*host);
    }
    // An image baseline built elsewhere (CI) is signed by an image-signing key this host
    // was told to trust, one file each in keys/images/.
    if (!vk && meta.source == "image" && opts.image_baseline) {
      auto k = find_image_key(opts.keys_dir, meta.key_id);
      if (!k) return k.error();
      vk = std::move(*k);
    }
    if (!vk && !have_pub)
      return make_error(Errc::Trust, base + " is signed (key " + escape_terminal(meta.key_id) +
                                         ") but there is no public key at " + quote(pub_path) +
                                         (meta.source == "image" ? " or in " + quote(join_path(opts.keys_dir, "images")) : "") +
                                         " to verify it");
    if (!vk)
      return make_error(Errc::Trust, base + " is signed by key " + escape_terminal(meta.key_id) +
                                         ", not by the configured key (" + quote(pub_path) + ")" +
                                         (meta.source == "image" ? " nor by an image-signing key in " +
                                                                       quote(join_path(opts.keys_dir, "images"))
                                                                 : std::string()));
    if (!vk->verify(manifest_text(meta), meta.signature))
      return make_error(Errc::Trust, base + " failed verification: its signature does not match its manifest (edited "
                                            "or forged); no result of this run can be trusted");
    return {};
  }
  if (!opts.allow_unsigned)
    return make_error(Errc::Trust, base + " is not signed" +
                                       (have_pub ? " although a public key is configured (" + quote(pub_path) +
                                                       "): refusing what could be a downgrade"
                                                 : std::string()) +
                                       "; pass --unsigned to use an unsigned baseline");
  sink.alert("unsigned", kUnsignedWarning);
  return {};
}

BaselineFacts facts_of(const Bytes& path, const BaselineMeta& m) {
  return BaselineFacts{path, m.is_signed, m.key_id, m.created_ns, m.entry_count, m.content_sha256, m.baseline_id, m.roots};
}

std::string current_user() {
  const uid_t uid = ::getuid();
  std::string name = std::to_string(uid);
  if (const passwd* pw = ::getpwuid(uid)) name = pw->pw_name;
  if (const char* sudo = ::getenv("SUDO_USER"); sudo && uid == 0) name += " (sudo by " + std::string(sudo) + ")";
  return name;
}

Result<std::unique_ptr<StateStore>> open_state(const Bytes& db_path) {
  Bytes dir, name;
  split_path(db_path, &dir, &name);
  return StateStore::open(dir);
}

Result<std::optional<SigningKey>> signing_key(const RunOptions& opts) {
  const Bytes key_path = join_path(opts.keys_dir, "signing.key");
  if (::access(key_path.c_str(), F_OK) == 0) {
    auto k = SigningKey::load(key_path);
    if (!k) return k.error();
    return std::optional<SigningKey>(std::move(*k));
  }
  // Only a key that is not there is missing: one behind a directory this user may not search
  // (/etc/fimctl/keys is 0700) is unreadable, and the error says so (errno: "needs root").
  if (errno != ENOENT && errno != ENOTDIR)
    return make_error(Errc::Io, "cannot read signing key " + quote(key_path), errno);
  if (!opts.allow_unsigned)
    return make_error(Errc::Usage, "no signing key at " + quote(key_path) +
                                       ": create one with 'fimctl key generate', or pass --unsigned to write an "
                                       "unsigned baseline (every later command then needs --unsigned and every "
                                       "report says so)");
  return std::optional<SigningKey>();
}

Status check_successor_key(const RunOptions& opts, const BaselineMeta& meta, const std::optional<SigningKey>& key) {
  if (!meta.is_signed || key) return {};
  return make_error(Errc::Usage, "refusing to replace a signed baseline with an unsigned one: no signing key at " +
                                     quote(join_path(opts.keys_dir, "signing.key")));
}

Status check_image_origin(const RunOptions& opts, const BaselineMeta& meta) {
  const std::string base = "baseline " + quote(opts.db_path);
  if (!meta.source.empty() && !opts.image_baseline)
    return make_error(Errc::Trust, base + " is the baseline of an image (" + escape_terminal(meta.image_digest) +
                                       "), not of this host: refused");
  // Named for one image, built from another: a baseline put at the wrong name would make a
  // container of the first image compare clean against what the second ships.
  if (opts.image_baseline && !opts.image.digest.empty() && meta.image_digest != opts.image.digest)
    return make_error(Errc::Trust, base + " is named for image " + opts.image.digest + " but was built from " +
                                       (meta.image_digest.empty() ? std::string("an unnamed image") : escape_terminal(meta.image_digest)) +
                                       ": refused");
  return {};
}

Result<Trusted> open_trusted(const RunOptions& opts, Sink& sink) {
  Trusted t;
  {
    Bytes dir, name;
    split_path(opts.db_path, &dir, &name);
    if (::access(dir.c_str(), F_OK) == 0) FIM_TRY(check_baseline_dir(dir));
  }
  if (::access(opts.db_path.c_str(), F_OK) == 0) {
    if (auto st = check_trusted_path(opts.db_path, "baseline"); !st) return make_error(Errc::Trust, st.error().message);
  }
  auto opened = BaselineReader::open(opts.db_path);
  if (!opened) return opened.error();
  t.base = std::move(*opened);
  const BaselineMeta& meta = t.base->meta();
  // Trust before any result: signature, host, sequence. The rows are verified as they stream.
  FIM_TRY(check_signature(opts, meta, sink));
  FIM_TRY(check_image_origin(opts, meta));
  if (meta.source != "image" && meta.host_id != machine_id())
    return make_error(Errc::Trust, "baseline " + quote(opts.db_path) + " was made on host " +
                                       escape_terminal(meta.host_id) + ", this is host " + machine_id());
  // A read-only state directory must not stop a check: say so.
  t.state = open_state(opts.db_path);
  // A state.db that cannot be written is an alert (T16), a planted one is refused: alerting
  // and going on would let whoever planted it switch the rollback check off.
  if (!t.state && t.state.error().code == Errc::Trust) return t.state.error();
  if (t.state) {
    auto l = (*t.state)->last_sequence(opts.db_path);
    if (l) t.last_seq = *l;
    else t.state = l.error();
  }
  if (!t.state) sink.alert("state", "cannot use state.db, so an older baseline put back would not be noticed: " +
                                        t.state.error().describe());
  if (meta.sequence < t.last_seq)
    return make_error(Errc::Trust, "baseline " + quote(opts.db_path) + " is older than one already seen here "
                                       "(sequence " + std::to_string(meta.sequence) + " < " + std::to_string(t.last_seq) +
                                       "): a rolled-back or replayed baseline is refused");
  FIM_TRY(check_identity(opts, meta, t, sink));
  return t;
}

Status read_verified(BaselineReader& base, const std::function<Status(const Record&)>& each) {
  Record r;
  for (;;) {
    auto more = base.next(&r);
    if (!more) return more.error();
    if (!*more) break;
    if (each) FIM_TRY(each(r));
  }
  return base.verify();
}

Policy effective_policy(const Policy& policy, const BaselineMeta& meta) {
  Policy effective = policy;
  if (meta.roots_source == "cli") add_path_rules(&effective, meta.roots, "baseline roots (init PATH)");
  return effective;
}

bool policy_changed(const Policy& policy, const BaselineMeta& meta) {
  const bool roots_changed = meta.roots_source == "policy" && policy.roots() != meta.roots;
  return meta.policy_digest != policy_digest(policy) || roots_changed;
}

BaselineMeta successor_meta(const Policy& policy, const std::string& roots_source, std::vector<Bytes> roots,
                            uint64_t after, std::vector<JournalEntry> journal, std::vector<Acceptance> accepted,
                            const std::string& baseline_id) {
  BaselineMeta next;
  next.baseline_id = baseline_id.empty() ? new_baseline_id() : baseline_id;
  next.created_ns = now_ns();
  next.fimctl_version = FIM_VERSION;
  next.host_id = machine_id();
  next.policy_digest = policy_digest(policy);
  next.policy_source = policy.source;
  next.roots_source = roots_source;
  next.roots = std::move(roots);
  next.sequence = after + 1;
  next.journal = std::move(journal);
  for (auto& a : accepted) {
    if (!a.at_ns) a.at_ns = next.created_ns;  // window open: its start, taken before its scan
    next.append_journal(a);
  }
  return next;
}

Result<Writing> open_for_writing(const RunOptions& opts, Sink& sink) {
  auto key = signing_key(opts);
  if (!key) return key.error();
  auto lock = BaselineLock::acquire(opts.db_path);
  if (!lock) return lock.error();
  auto trusted = open_trusted(opts, sink);
  if (!trusted) return trusted.error();
  FIM_TRY(check_successor_key(opts, trusted->base->meta(), *key));
  return Writing{std::move(*key), std::move(*lock), std::move(*trusted)};
}

void carry_image_origin(const BaselineMeta& from, BaselineMeta* to) {
  to->set_image_origin(from.source, from.image_digest, from.image_index_digest, from.image_ref);
}

}  // namespace fim::detail
