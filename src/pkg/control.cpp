// SPDX-License-Identifier: GPL-2.0-or-later
// Debian control-file syntax (deb822: dpkg's status, apt's Packages and Release files) and
// the names of verdicts and evidence.
#include "fim/pkg.h"

namespace fim::pkg {

std::string_view evidence_name(Evidence e) {
  switch (e) {
    case Evidence::None: return "none";
    case Evidence::DpkgList: return "dpkg-list";
    case Evidence::WrittenByDpkg: return "written-by-dpkg";
    case Evidence::DpkgMd5: return "dpkg-md5";
    case Evidence::Derived: return "derived";
    case Evidence::DebSha256: return "deb-sha256";
  }
  return "none";
}

bool strong_evidence(std::string_view name) { return name == "deb-sha256" || name == "derived"; }

std::string_view verdict_name(Verdict v) {
  switch (v) {
    case Verdict::Verified: return "verified";
    case Verdict::Mismatch: return "mismatch";
    case Verdict::Conffile: return "conffile";
    case Verdict::Unverifiable: return "unverifiable";
    case Verdict::Unpackaged: return "unpackaged";
    case Verdict::Removed: return "removed";
  }
  return "unpackaged";
}

void parse_stanzas(std::string_view text, const std::function<bool(const Stanza&)>& f) {
  Stanza st;
  std::string* last = nullptr;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      if (!st.empty() && !f(st)) return;
      st.clear();
      last = nullptr;
      if (end == text.size()) break;
      continue;
    }
    if (line[0] == ' ' || line[0] == '\t') {  // continuation
      if (last) {
        *last += '\n';
        *last += line.substr(1);
      }
    } else if (line[0] != '#') {
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) {
        last = nullptr;
      } else {
        std::string_view v = line.substr(colon + 1);
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
        last = &(st[std::string(line.substr(0, colon))] = std::string(v));
      }
    }
    if (end == text.size()) break;
  }
  if (!st.empty()) f(st);
}

std::map<std::string, std::string> release_sha256(std::string_view release_text) {
  std::map<std::string, std::string> out;
  parse_stanzas(release_text, [&](const Stanza& st) {
    auto it = st.find("SHA256");
    if (it == st.end()) return true;
    std::string_view v = it->second;
    size_t pos = 0;
    while (pos < v.size()) {
      size_t end = v.find('\n', pos);
      if (end == std::string_view::npos) end = v.size();
      std::string_view line = v.substr(pos, end - pos);
      pos = end + 1;
      // " <hex> <size> <path>"
      while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
      const size_t a = line.find(' ');
      if (a == std::string_view::npos) continue;
      std::string_view rest = line.substr(a);
      while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
      const size_t b = rest.find(' ');
      if (b == std::string_view::npos) continue;
      std::string_view path = rest.substr(b);
      while (!path.empty() && path.front() == ' ') path.remove_prefix(1);
      const std::string_view hex = line.substr(0, a);
      if (hex.size() != 64 || path.empty()) continue;
      out[std::string(path)] = std::string(hex);
    }
    return false;  // the first stanza is the Release file
  });
  return out;
}

}  // namespace fim::pkg
