// SPDX-License-Identifier: GPL-2.0-or-later
// The apt hook's records of .debs (fim/pkg.h HookRecord): their canonical encoding, which the
// host key signs, and their use by the Verifier when apt has deleted the .debs.
//
// Encoding: a magic line, then every field as "<decimal length>:<bytes>\n", so no byte of a
// path (newlines included) can shift one field into the next. Decoding is strict and
// re-encodes to compare: one record has one encoding, so a signature covers exactly one reading.
#include <charconv>

#include "fim/base/sys.h"
#include "internal.h"

namespace fim::pkg {
namespace {

constexpr std::string_view kMagic = "fimctl-apt-hook-record 1\n";

void put(std::string* out, std::string_view v) {
  *out += std::to_string(v.size());
  *out += ':';
  *out += v;
  *out += '\n';
}
void put_num(std::string* out, uint64_t v) { put(out, std::to_string(v)); }

struct Reader {
  std::string_view s;
  bool ok = true;
  std::string_view field() {
    const size_t colon = s.find(':');
    size_t n = 0;
    if (!ok || colon == std::string_view::npos || colon == 0 || colon > 10 ||
        std::from_chars(s.data(), s.data() + colon, n).ptr != s.data() + colon || s.size() - colon - 1 < n + 1 ||
        s[colon + 1 + n] != '\n') {
      ok = false;
      return {};
    }
    const std::string_view v = s.substr(colon + 1, n);
    s.remove_prefix(colon + 2 + n);
    return v;
  }
  uint64_t num() {
    const std::string_view f = field();
    uint64_t v = 0;
    if (!ok || f.empty() || std::from_chars(f.data(), f.data() + f.size(), v).ptr != f.data() + f.size()) ok = false;
    return v;
  }
};

}  // namespace

std::string encode_hook_record(const HookRecord& r) {
  std::string out(kMagic);
  put(&out, r.name);
  put(&out, r.version);
  put(&out, r.arch);
  put(&out, r.deb_sha256);
  put_num(&out, static_cast<uint64_t>(r.at_ns));
  put(&out, r.old_version);
  put_num(&out, r.members.size());
  for (const auto& [path, m] : r.members) {
    put(&out, path);
    put(&out, std::string_view(&m.type, 1));
    put_num(&out, m.mode);
    put_num(&out, m.uid);
    put_num(&out, m.gid);
    put(&out, m.uname);
    put(&out, m.gname);
    put(&out, hex_encode(m.sha256));
    put(&out, m.link);
  }
  put_num(&out, r.old_list.size());
  for (const auto& p : r.old_list) put(&out, p);
  return out;
}

Result<HookRecord> decode_hook_record(std::string_view body) {
  const auto bad = [] { return make_error(Errc::Database, "malformed apt hook record"); };
  if (body.substr(0, kMagic.size()) != kMagic) return bad();
  Reader in{body.substr(kMagic.size())};
  HookRecord r;
  r.name = in.field();
  r.version = in.field();
  r.arch = in.field();
  r.deb_sha256 = in.field();
  r.at_ns = static_cast<int64_t>(in.num());
  r.old_version = in.field();
  const uint64_t members = in.num();
  for (uint64_t i = 0; in.ok && i < members; ++i) {
    const Bytes path(in.field());
    DebMember m;
    const std::string_view type = in.field();
    m.type = type.size() == 1 ? type[0] : '?';
    m.mode = static_cast<uint32_t>(in.num());
    m.uid = in.num();
    m.gid = in.num();
    m.uname = in.field();
    m.gname = in.field();
    auto sha = hex_decode(in.field());
    if (!sha) in.ok = false;
    else m.sha256 = std::move(*sha);
    m.link = in.field();
    r.members.emplace(path, std::move(m));
  }
  const uint64_t listed = in.num();
  for (uint64_t i = 0; in.ok && i < listed; ++i) r.old_list.emplace_back(in.field());
  if (!in.ok || !in.s.empty() || encode_hook_record(r) != body) return bad();
  return r;
}

void HookRecords::set(std::vector<TrustedHookRecord> records, std::map<std::string, std::string> refused) {
  records_ = std::move(records);
  refused_ = std::move(refused);
  listed_.clear();
  indexed_ = false;
}

const TrustedHookRecord* HookRecords::find(const Package& p) const {
  const TrustedHookRecord* best = nullptr;
  for (const auto& t : records_)
    if (t.rec.name == p.name && t.rec.version == p.version && t.rec.arch == p.arch && (!best || t.is_signed > best->is_signed))
      best = &t;
  return best;
}

std::string HookRecords::refused(const Package& p) const {
  auto it = refused_.find(p.name + " " + p.version + " " + p.arch);
  return it == refused_.end() ? std::string() : it->second;
}

const TrustedHookRecord* HookRecords::removed(const Bytes& canonical_path, const std::function<Bytes(const Bytes&)>& canon) {
  if (!indexed_) {
    indexed_ = true;
    for (size_t i = 0; i < records_.size(); ++i) {
      const auto& t = records_[i];
      if (!t.since_baseline || t.rec.old_version.empty()) continue;
      for (const auto& p : t.rec.old_list) listed_.emplace(canon(p), i);  // the first (a signed one wins below)
    }
  }
  const TrustedHookRecord* best = nullptr;
  auto [from, to] = listed_.equal_range(canonical_path);
  for (auto it = from; it != to; ++it)
    if (!best || records_[it->second].is_signed > best->is_signed) best = &records_[it->second];
  return best;
}

std::string HookRecords::label(const TrustedHookRecord& t) {
  const std::string at = " by the apt hook at " + format_time_ns(t.rec.at_ns) + " (" + t.rec.name + " " + t.rec.version + ")";
  return t.is_signed ? "as recorded from the signed .deb" + at : "as the unsigned hook record of the .deb has it" + at;
}

}  // namespace fim::pkg
