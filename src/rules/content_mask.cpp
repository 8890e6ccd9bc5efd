// SPDX-License-Identifier: GPL-2.0-or-later
// content_mask and content_deny (docs/design.md, Content store): what of a file's text is
// never kept or shown. Masking runs before anything is written or diffed, so the unmasked
// text of a kept file reaches neither the store nor a report.
#include <regex.h>

#include <memory>

#include "fim/rules.h"
#include "regex_check.h"

namespace fim {

struct ContentMasks {
  struct Compiled {
    regex_t rx{};
    bool compiled = false;
    bool keep_group = false;  // re_nsub > 0: the first group's text stays before "***"
    Compiled() = default;
    Compiled(const Compiled&) = delete;
    Compiled& operator=(const Compiled&) = delete;
    ~Compiled() {
      if (compiled) regfree(&rx);
    }
  };
  std::vector<std::unique_ptr<Compiled>> masks;
};

Result<std::shared_ptr<const ContentMasks>> compile_content_masks(const std::vector<std::string>& patterns) {
  auto out = std::make_shared<ContentMasks>();
  for (const std::string& p : patterns) {
    std::string_view rx = p;
    int flags = REG_EXTENDED;
    if (rx.substr(0, 4) == "(?i)") rx.remove_prefix(4), flags |= REG_ICASE;
    if (rx.empty()) return make_error(Errc::Usage, "content_mask " + quote(p) + ": an empty pattern");
    if (auto st = rules::check_regex_size(rx); !st)
      return make_error(Errc::Usage, "content_mask " + quote(p) + ": " + st.error().message);
    auto c = std::make_unique<ContentMasks::Compiled>();
    const std::string text(rx);
    if (const int e = regcomp(&c->rx, text.c_str(), flags); e != 0) {
      char buf[256];
      regerror(e, &c->rx, buf, sizeof buf);
      return make_error(Errc::Usage, "content_mask " + quote(p) + ": invalid regex: " + buf);
    }
    c->compiled = true;
    c->keep_group = c->rx.re_nsub > 0;
    out->masks.push_back(std::move(c));
  }
  return std::shared_ptr<const ContentMasks>(std::move(out));
}

namespace {

/// One line (no '\n', no NUL) with every match of `m` replaced.
std::string mask_line(const ContentMasks::Compiled& m, const std::string& line) {
  std::string out;
  size_t at = 0;
  regmatch_t g[2];
  while (at <= line.size()) {
    const int eflags = at > 0 ? REG_NOTBOL : 0;
    if (regexec(&m.rx, line.c_str() + at, 2, g, eflags) != 0) break;
    const auto so = static_cast<size_t>(g[0].rm_so), eo = static_cast<size_t>(g[0].rm_eo);
    out.append(line, at, so);
    if (m.keep_group && g[1].rm_so >= 0) out.append(line, at + static_cast<size_t>(g[1].rm_so),
                                                    static_cast<size_t>(g[1].rm_eo - g[1].rm_so));
    out += "***";
    if (eo == so) {  // an empty match: keep one byte and go on, or the loop would not end
      if (at + so < line.size()) out += line[at + so];
      at += so + 1;
    } else {
      at += eo;
    }
  }
  if (at < line.size()) out.append(line, at, std::string::npos);
  return out;
}

}  // namespace

std::string mask_content(const ContentMasks* masks, std::string_view text) {
  if (!masks || masks->masks.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  size_t start = 0;
  while (start <= text.size()) {
    const size_t nl = text.find('\n', start);
    std::string line(text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
    for (const auto& m : masks->masks) line = mask_line(*m, line);
    out += line;
    if (nl == std::string_view::npos) break;
    out += '\n';
    start = nl + 1;
  }
  return out;
}

bool content_denied(std::string_view path, const std::vector<std::string>& extra) {
  for (const char* g : kBuiltinContentDeny)
    if (glob_match(g, path)) return true;
  for (const std::string& g : extra)
    if (g == path || glob_match(g, path)) return true;
  return false;
}

}  // namespace fim
