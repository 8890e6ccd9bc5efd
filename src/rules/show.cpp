// SPDX-License-Identifier: GPL-2.0-or-later
// `fimctl config show`: the effective policy as TOML that loads back to the same policy
// (same digest), each rule with the place it came from.
#include <cstdio>

#include "fim/rules.h"

namespace fim {
namespace {

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string list(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + toml_string(v[i]);
  return out + "]";
}

std::string size_text(uint64_t n) { return n == 0 ? "\"none\"" : std::to_string(n); }

}  // namespace

std::string policy_to_toml(const Policy& p) {
  std::string out = "# effective policy: " + p.source + "\n# files:";
  for (const auto& f : p.files) out += " " + f;
  out += "\n# digest: " + policy_digest(p) + "\nversion = 1\ninclude = []\n\n[options]\n";
  out += "default_attrs = " + toml_string(attr_set_text(p.default_attrs)) + "\n";
  out += "severity = " + toml_string(severity_name(p.default_severity)) + "\n";
  out += std::string("cross_fs = ") + (p.cross_fs ? "true" : "false") + "\n";
  out += "max_hash_size = " + size_text(p.max_hash_bytes) + "\n";
  {
    char t[32];
    std::snprintf(t, sizeof t, "\"%gs\"", p.read_timeout_seconds);
    out += std::string("read_timeout = ") + t + "\n";
  }
  out += "check_mode = " + toml_string(p.check_mode) + "\n";
  {
    char t[32];
    std::snprintf(t, sizeof t, "\"%gs\"", p.rehash_interval_seconds);
    out += std::string("rehash_interval = ") + t + "\n";
  }
  out += "package_mirrors = " + list(p.package_mirrors) + "\n";
  out += "auto_accept = \"" + (p.auto_accept.empty() ? std::string("off") : p.auto_accept) + "\"\n";
  if (!p.content_deny.empty()) out += "content_deny = " + list(p.content_deny) + "\n";
  out += "content_store_max = " + std::to_string(p.content_store_max) + "\n";
  if (!p.groups.empty()) {
    out += "\n[groups]\n";
    for (const auto& [name, set] : p.groups) out += name + " = " + toml_string(attr_set_text(set)) + "\n";
  }
  for (size_t i = 0; i < p.rules.size(); ++i) {
    const Rule& r = p.rules[i];
    out += "\n# " + r.label(i) + "\n";
    out += r.exclude ? "[[exclude]]\n" : "[[rule]]\n";
    out += std::string(selector_kind_name(r.kind)) + " = " + toml_string(r.pattern) + "\n";
    if (r.depth != kAnyDepth) out += "depth = " + std::to_string(r.depth) + "\n";
    if (r.types) {
      std::vector<std::string> names;
      for (unsigned t = 1; t < 8; ++t)
        if (r.types & (1u << t)) names.emplace_back(file_type_name(static_cast<FileType>(t)));
      out += "type = " + list(names) + "\n";
    }
    if (!r.fstypes.empty()) out += "fstype = " + list(r.fstypes) + "\n";
    if (r.exclude) continue;
    out += "attrs = " + toml_string(attr_set_text(r.attrs));
    if (r.attrs_expr != "(default_attrs)") out += "  # " + r.attrs_expr;
    out += "\nseverity = " + toml_string(severity_name(r.severity)) + "\n";
    if (!r.tags.empty()) out += "tags = " + list(r.tags) + "\n";
    out += "max_hash_size = " + size_text(r.max_hash_bytes) + "\n";
    out += std::string("cross_fs = ") + (r.cross_fs ? "true" : "false") + "\n";
    if (r.response != Rule::Response::None)
      out += std::string("response = ") + (r.response == Rule::Response::Kill ? "\"kill\"" : "\"kill_process\"") + "\n";
    if (r.protect) out += "protect = true\n";
    if (r.deny_unknown_exec) out += "deny_unknown_exec = true\n";
    if (r.seal) out += "seal = true\n";
    if (r.content_diff) {
      out += "content = \"diff\"\ncontent_max_size = " + std::to_string(r.content_max_bytes) + "\n";
      if (r.content_private) out += "content_private = true\n";
      if (!r.content_mask.empty()) out += "content_mask = " + list(r.content_mask) + "\n";
    }
  }
  return out;
}

}  // namespace fim
