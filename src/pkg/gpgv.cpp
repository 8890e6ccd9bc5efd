// SPDX-License-Identifier: GPL-2.0-or-later
// gpgv as apt's gpgv method runs it: its exit status is not the verdict (gpgv exits 0 for a
// signature by an expired or revoked key, or with a SHA-1 digest); its --status-fd lines are,
// judged the way apt judges them (methods/gpgv.cc):
//   a signature counts when gpgv says GOODSIG and VALIDSIG for the same key, with a digest apt
//   trusts (not MD5, SHA-1, RIPEMD-160), by a key Signed-By allows (its fingerprint, or its
//   primary key's unless the fingerprint ends in '!');
//   EXPKEYSIG, REVKEYSIG, EXPSIG, KEYEXPIRED, KEYREVOKED, ERRSIG make that signature worthless;
//   one BADSIG anywhere refuses the file; otherwise one signature that counts is enough (a
//   Release is often signed by several keys, and a host need not have them all: apt accepts
//   it too).
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <ctime>
#include <optional>

#include "fim/base/bytes.h"
#include "internal.h"
#include "fim/base/spawn.h"

namespace fim::pkg {
namespace {

struct Sig {
  std::string goodsig;              // key id (16 hex) or fingerprint
  std::vector<std::string> valid;   // VALIDSIG fields
  std::vector<std::string> worthless;  // why this signature does not count
  bool bad = false;
};

std::vector<std::string> fields(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// apt's IsTheSameKey: GOODSIG gives a long key id or a fingerprint, VALIDSIG a fingerprint.
bool same_key(const std::string& fpr, const std::string& id) {
  if (id.size() == 40) return fpr == id;
  return id.size() == 16 && fpr.size() == 40 && fpr.compare(24, 16, id) == 0;
}

const char* digest_name(int id) {
  switch (id) {
    case 1: return "MD5";
    case 2: return "SHA1";
    case 3: return "RIPEMD160";
    case 8: return "SHA256";
    case 9: return "SHA384";
    case 10: return "SHA512";
    case 11: return "SHA224";
    default: return nullptr;
  }
}

Result<UniqueFd> memfd_with(std::string_view data, const char* name) {
  UniqueFd fd(::memfd_create(name, MFD_CLOEXEC));
  if (!fd.valid()) return make_error(Errc::Io, "memfd_create", errno);
  for (size_t off = 0; off < data.size();) {
    const ssize_t w = ::write(fd.get(), data.data() + off, data.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return make_error(Errc::Io, "writing to memory", errno);
    off += static_cast<size_t>(w);
  }
  if (::lseek(fd.get(), 0, SEEK_SET) != 0) return make_error(Errc::Io, "lseek", errno);
  return fd;
}

}  // namespace

GpgvVerdict judge_gpgv_status(std::string_view status, const std::vector<std::string>& fingerprints) {
  std::vector<Sig> sigs(1);  // NEWSIG starts each signature's lines
  bool nodata = false, bad = false;
  size_t pos = 0;
  while (pos < status.size()) {
    size_t end = status.find('\n', pos);
    if (end == std::string_view::npos) end = status.size();
    std::string_view line = status.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    constexpr std::string_view prefix = "[GNUPG:] ";
    if (line.substr(0, prefix.size()) != prefix) continue;
    const std::vector<std::string> f = fields(line.substr(prefix.size()));
    if (f.empty()) continue;
    const std::string& kw = f[0];
    Sig& s = sigs.back();
    const std::string key = f.size() > 1 ? f[1] : std::string("?");
    if (kw == "NEWSIG") {
      if (!s.goodsig.empty() || !s.valid.empty() || !s.worthless.empty() || s.bad) sigs.emplace_back();
    } else if (kw == "GOODSIG") {
      s.goodsig = key;
    } else if (kw == "VALIDSIG") {
      s.valid = std::vector<std::string>(f.begin() + 1, f.end());
    } else if (kw == "BADSIG") {
      s.bad = bad = true;
      s.worthless.push_back("bad signature by key " + key + " (the text is not what was signed)");
    } else if (kw == "EXPKEYSIG") {
      s.worthless.push_back("signed by expired key " + key);
    } else if (kw == "REVKEYSIG") {
      s.worthless.push_back("signed by revoked key " + key);
    } else if (kw == "EXPSIG") {
      s.worthless.push_back("expired signature by key " + key);
    } else if (kw == "KEYEXPIRED") {
      s.worthless.push_back("the signing key has expired");
    } else if (kw == "KEYREVOKED") {
      s.worthless.push_back("the signing key was revoked");
    } else if (kw == "NO_PUBKEY") {
      s.worthless.push_back("signed by unknown key " + key);
    } else if (kw == "ERRSIG") {
      // NO_PUBKEY follows when the key is missing; anything else is an unusable signature.
      s.worthless.push_back("unverifiable signature by key " + key);
    } else if (kw == "NODATA") {
      nodata = true;
    }
  }
  GpgvVerdict v;
  std::vector<std::string> why;
  auto note = [&](const std::string& w) {
    if (std::find(why.begin(), why.end(), w) == why.end()) why.push_back(w);
  };
  for (const Sig& s : sigs) {
    if (!s.worthless.empty()) {
      // "unknown key" says more than the ERRSIG that comes with it.
      for (const auto& w : s.worthless)
        if (w.rfind("unverifiable", 0) != 0 || s.worthless.size() == 1) note(w);
      continue;
    }
    if (s.goodsig.empty()) continue;
    if (s.valid.size() < 8 || !same_key(s.valid[0], s.goodsig)) {
      note("a good signature by key " + s.goodsig + " without a matching VALIDSIG");
      continue;
    }
    const std::string& fpr = s.valid[0];
    const int algo = std::atoi(s.valid[7].c_str());
    const char* name = digest_name(algo);
    if (algo < 8 || algo > 11) {
      note("weak digest algorithm " + std::string(name ? name : "#" + s.valid[7]) + " in the signature by key " + fpr +
           " (apt refuses it)");
      continue;
    }
    if (!fingerprints.empty()) {
      const std::string primary = s.valid.size() > 9 ? s.valid[9] : fpr;
      bool allowed = false;
      for (const auto& want : fingerprints) {
        const bool exact = !want.empty() && want.back() == '!';
        const std::string w = exact ? want.substr(0, want.size() - 1) : want;
        if (w == fpr || (!exact && w == primary)) allowed = true;
      }
      if (!allowed) {
        note("signed by key " + fpr + ", which its Signed-By fingerprints do not name");
        continue;
      }
    }
    if (!v.ok) v.signer = fpr;
    v.ok = true;
  }
  if (nodata) {
    v.ok = false;
    note("no signed data (NODATA)");
  }
  if (bad) v.ok = false;
  if (!v.ok) {
    if (why.empty()) why.push_back("no good signature");
    for (const auto& w : why) v.why += (v.why.empty() ? "" : "; ") + w;
  }
  return v;
}

Result<std::string> gpgv_verify(const Options& o, const Trust& trust, const std::string& data,
                                const std::string* detached) {
  if (trust.keyrings.empty()) return make_error(Errc::Io, "no keyring to verify it with (" + trust.label + ")");
  auto status = memfd_with({}, "fimctl-gpgv-status");
  auto in = memfd_with(data, "fimctl-gpgv-data");
  if (!status) return status.error();
  if (!in) return in.error();
  std::optional<UniqueFd> sig;
  // The status goes to a memfd, not a pipe: read after gpgv exits, it cannot fill up and
  // block gpgv while its stdout is being read.
  std::vector<int> pass{status->get()};
  std::vector<std::string> argv{o.gpgv, "--status-fd", std::to_string(status->get())};
  for (const Keyring* k : trust.keyrings) {
    pass.push_back(k->fd.get());
    argv.insert(argv.end(), {"--keyring", "/proc/self/fd/" + std::to_string(k->fd.get())});
  }
  if (detached) {
    auto s = memfd_with(*detached, "fimctl-gpgv-sig");
    if (!s) return s.error();
    sig = std::move(*s);
    pass.push_back(sig->get());
    argv.insert(argv.end(), {"--", "/proc/self/fd/" + std::to_string(sig->get()), "-"});
  } else {
    argv.insert(argv.end(), {"--output", "-", "--", "-"});
  }
  auto child = Child::start(argv, in->get(), pass);
  if (!child) return child.error();
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(child->out(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Errc::Io, "reading from gpgv", errno);
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > (256u << 20)) return make_error(Errc::Io, "gpgv wrote too much");
    out.append(buf, static_cast<size_t>(n));
  }
  // Like apt, the exit status is not the verdict: a good signature with another by a key this
  // host lacks exits 2, and one by an expired key exits 0.
  const Status exited = child->wait();
  // All of it or nothing: a verdict on a truncated status could miss a BADSIG at its end.
  const off_t size = ::lseek(status->get(), 0, SEEK_END);
  if (size < 0 || size > (4 << 20)) return make_error(Errc::Io, "gpgv's status output is unreadable or too long");
  std::string st(static_cast<size_t>(size), '\0');
  if (size > 0 && ::pread(status->get(), st.data(), st.size(), 0) != size)
    return make_error(Errc::Io, "reading gpgv's status output", errno);
  const GpgvVerdict v = judge_gpgv_status(st, trust.fingerprints);
  if (!v.ok) {
    std::string why = v.why;
    if (why.find("unknown key") != std::string::npos) why += " (not in " + trust.label + ")";
    if (st.empty() && !exited) why = exited.error().describe();
    return make_error(Errc::Io, why);
  }
  return detached ? data : out;
}

Status check_valid_until(std::string_view release, int64_t now) {
  std::string until;
  parse_stanzas(release, [&](const Stanza& st) {
    if (auto it = st.find("Valid-Until"); it != st.end()) until = it->second;
    return false;
  });
  if (until.empty()) return {};
  // RFC 1123, as apt writes and reads it: "Sat, 12 Dec 2026 08:00:00 UTC".
  struct tm tm {};
  const char* rest = ::strptime(until.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  std::string_view zone = rest ? std::string_view(rest) : std::string_view();
  while (!zone.empty() && zone.front() == ' ') zone.remove_prefix(1);
  while (!zone.empty() && zone.back() == ' ') zone.remove_suffix(1);
  if (!rest || (zone != "UTC" && zone != "GMT" && zone != "+0000" && zone != "Z"))
    return make_error(Errc::Io, "its Valid-Until is unreadable: " + quote(until));
  const int64_t t = ::timegm(&tm);
  if (now > t) return make_error(Errc::Io, "it expired on " + until + " (Valid-Until; apt refuses it too)");
  return {};
}

}  // namespace fim::pkg
