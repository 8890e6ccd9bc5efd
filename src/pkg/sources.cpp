// SPDX-License-Identifier: GPL-2.0-or-later
// apt's sources as apt reads them: which repositories the host configured, and with which
// Signed-By, so that each Release file in /var/lib/apt/lists is verified only with the keys
// apt binds to it (a key trusted for one repository must not vouch for another).
#include <dirent.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>

#include "fim/base/bytes.h"
#include "internal.h"

namespace fim::pkg {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// apt's StringToBool: what "trusted=yes" may be spelled as.
bool truthy(std::string_view v) {
  const std::string l = lower(v);
  return l == "yes" || l == "true" || l == "with" || l == "on" || l == "enable" || l == "1";
}

std::string with_slash(std::string uri) {
  if (!uri.empty() && uri.back() != '/') uri += '/';
  return uri;
}

// apt ignores files in *.d directories whose names have other characters (run-parts rules).
bool apt_name(const std::string& n) {
  return !n.empty() && n[0] != '.' && std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

}  // namespace

std::vector<AptSource> parse_sources_list(std::string_view text, const std::string& file) {
  std::vector<AptSource> out;
  size_t pos = 0, lineno = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(pos, end - pos));
    pos = end + 1;
    ++lineno;
    if (const size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    // "[opt=a opt2=b]" may touch its neighbours: make the brackets words of their own.
    std::string spaced;
    for (char c : line) {
      if (c == '[' || c == ']') {
        spaced += ' ';
        spaced += c;
        spaced += ' ';
      } else {
        spaced += c;
      }
    }
    std::vector<std::string> w = words(spaced);
    if (w.empty() || (w[0] != "deb" && w[0] != "deb-src")) continue;
    AptSource s;
    s.where = file + ":" + std::to_string(lineno);
    size_t i = 1;
    if (i < w.size() && w[i] == "[") {
      for (++i; i < w.size() && w[i] != "]"; ++i) {
        const size_t eq = w[i].find('=');
        if (eq == std::string::npos) continue;
        const std::string key = lower(w[i].substr(0, eq)), val = w[i].substr(eq + 1);
        if (key == "signed-by") s.signed_by = val;
        if (key == "trusted") s.trusted_yes = truthy(val);
      }
      if (i >= w.size()) continue;  // no closing bracket: apt rejects the line
      ++i;
    }
    if (i + 1 >= w.size()) continue;  // needs a URI and a suite
    s.uri = with_slash(w[i]);
    s.suite = w[i + 1];
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<AptSource> parse_sources_deb822(std::string_view text, const std::string& file) {
  std::vector<AptSource> out;
  size_t n = 0;
  parse_stanzas(text, [&](const Stanza& raw) {
    ++n;
    std::map<std::string, std::string> st;  // apt's deb822 field names are case-insensitive
    for (const auto& [k, v] : raw) st[lower(k)] = v;
    auto g = [&](const char* k) {
      auto it = st.find(k);
      return it == st.end() ? std::string() : it->second;
    };
    const std::vector<std::string> types = words(g("types"));
    if (std::none_of(types.begin(), types.end(), [](const std::string& t) { return t == "deb" || t == "deb-src"; }))
      return true;
    if (st.count("enabled") && !truthy(g("enabled"))) return true;
    std::string signed_by = g("signed-by");
    if (signed_by.find("-----BEGIN PGP PUBLIC KEY BLOCK-----") != std::string::npos) {
      // An inline key: continuation lines are joined with '\n'; a line " ." stands for an empty one.
      std::string block;
      size_t p = 0;
      while (p <= signed_by.size()) {
        size_t e = signed_by.find('\n', p);
        if (e == std::string::npos) e = signed_by.size();
        std::string_view l(signed_by.data() + p, e - p);
        while (!l.empty() && (l.front() == ' ' || l.front() == '\t')) l.remove_prefix(1);
        block += (l == "." ? std::string_view() : l);
        block += '\n';
        p = e + 1;
      }
      signed_by = block;
    }
    for (const auto& uri : words(g("uris")))
      for (const auto& suite : words(g("suites"))) {
        AptSource s;
        s.where = file + " stanza " + std::to_string(n);
        s.uri = with_slash(uri);
        s.suite = suite;
        s.signed_by = signed_by;
        s.trusted_yes = st.count("trusted") && truthy(g("trusted"));
        out.push_back(std::move(s));
      }
    return true;
  });
  return out;
}

std::string uri_to_filename(std::string_view uri) {
  // apt parses the URI, drops Access (the scheme) and User/Password, and prints the rest.
  std::string_view authority, path = uri;
  if (const size_t colon = uri.find(':'); colon != std::string_view::npos) {
    std::string_view rest = uri.substr(colon + 1);
    if (rest.substr(0, 2) == "//") {
      rest.remove_prefix(2);
      const size_t slash = rest.find('/');
      authority = rest.substr(0, slash);
      path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
      if (const size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
    } else {
      path = rest;
    }
  }
  std::string plain(authority);
  if (!path.empty() && path.front() != '/') plain += '/';
  plain += path;
  // QuoteString(U, "\\|{}[]<>\"^~_=!@#$%^&*"): these, '%', controls, space and non-ASCII -> %xx.
  static constexpr std::string_view bad = "\\|{}[]<>\"^~_=!@#$%^&*";
  std::string out;
  for (const char ch : plain) {
    const auto c = static_cast<unsigned char>(ch);
    if (bad.find(ch) != std::string_view::npos || c <= 0x20 || c >= 0x7f) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02x", c);
      out += buf;
    } else {
      out += ch == '/' ? '_' : ch;
    }
  }
  return out;
}

std::string release_stem(const AptSource& s) {
  // apt's debReleaseIndex::MetaIndexURI: "/" is the URI itself, "path/" a flat repository.
  std::string base;
  if (s.suite == "/")
    base = s.uri;
  else if (!s.suite.empty() && s.suite.back() == '/')
    base = s.uri + s.suite;
  else
    base = s.uri + "dists/" + s.suite + "/";
  return uri_to_filename(base);
}

std::vector<AptSource> read_apt_sources(const Options& o, std::vector<std::string>* problems) {
  std::vector<AptSource> out;
  auto add = [&](const std::string& path, bool deb822) {
    auto text = read_in_root(o, path, 4 << 20);
    if (!text) {
      if (text.error().sys_errno != ENOENT) problems->push_back(quote(path) + ": " + text.error().describe());
      return;
    }
    auto got = deb822 ? parse_sources_deb822(*text, path) : parse_sources_list(*text, path);
    out.insert(out.end(), got.begin(), got.end());
  };
  add("/etc/apt/sources.list", false);
  std::vector<std::string> names;
  if (const std::unique_ptr<DIR, CDeleter<::closedir>> d(::opendir(under_root(o.root, "/etc/apt/sources.list.d").c_str()));
      d) {
    while (dirent* e = ::readdir(d.get())) names.emplace_back(e->d_name);
  }
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    if (!apt_name(n)) continue;
    if (n.size() > 5 && n.compare(n.size() - 5, 5, ".list") == 0) add("/etc/apt/sources.list.d/" + n, false);
    if (n.size() > 8 && n.compare(n.size() - 8, 8, ".sources") == 0) add("/etc/apt/sources.list.d/" + n, true);
  }
  return out;
}

}  // namespace fim::pkg
