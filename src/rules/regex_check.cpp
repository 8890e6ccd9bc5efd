// SPDX-License-Identifier: GPL-2.0-or-later
// What a [[rule]] regex may be (regex_check.h): glibc expands repetitions at compile time, so
// their size is estimated before regcomp sees the pattern.
#include "regex_check.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace fim::rules {
namespace {

constexpr size_t kMaxRegex = 1024;
constexpr uint64_t kMaxRegexNodes = 1024;  // estimated compiled size; regexec cost grows with it

/// The end of the bracket expression that opens at rx[i] ('{' inside is literal).
size_t bracket_end(std::string_view rx, size_t i) {
  size_t k = i + 1;
  if (k < rx.size() && rx[k] == '^') ++k;
  if (k < rx.size() && rx[k] == ']') ++k;
  while (k < rx.size() && rx[k] != ']') {
    if (rx[k] == '[' && k + 1 < rx.size() && (rx[k + 1] == ':' || rx[k + 1] == '.' || rx[k + 1] == '=')) {
      const size_t e = rx.find(std::string{rx[k + 1], ']'}, k + 2);
      k = e == std::string_view::npos ? rx.size() : e + 2;
    } else {
      ++k;
    }
  }
  return k;
}

/// How many copies of its item glibc makes for the interval rx[open..close] ("{2,5}": 5).
uint64_t interval_copies(std::string_view rx, size_t open, size_t close) {
  uint64_t lo = 0, hi = 0;
  bool comma = false;
  for (size_t k = open + 1; k < close; ++k) {
    if (rx[k] >= '0' && rx[k] <= '9') {
      uint64_t& v = comma ? hi : lo;
      v = std::min<uint64_t>(v * 10 + static_cast<uint64_t>(rx[k] - '0'), 100000);
    } else if (rx[k] == ',') {
      comma = true;
    }
  }
  return std::max<uint64_t>({lo, comma ? hi : lo, 1}) + (comma && hi == 0 ? 1 : 0);
}

/// The compiled size of a regex as glibc grows it, estimated group by group.
class RegexSize {
 public:
  void item(uint64_t n) {
    stack_.back().last = n;
    stack_.back().total += n;
  }
  /// The last item now appears `times` times.
  void repeat(uint64_t times) {
    Frame& f = stack_.back();
    f.total += f.last * (times - 1);
    f.last *= times;
  }
  void branch() {
    stack_.back().last = 0;
    stack_.back().total += 1;
  }
  void loop() { stack_.back().total += 1; }  // a loop or a branch, not a copy
  bool open() {
    if (stack_.size() > 64) return false;
    stack_.emplace_back();
    return true;
  }
  bool close() {
    if (stack_.size() == 1) return false;
    const uint64_t inner = stack_.back().total + 1;
    stack_.pop_back();
    item(inner);
    return true;
  }
  bool too_big() const { return stack_.back().total > kMaxRegexNodes; }

 private:
  struct Frame {
    uint64_t total = 0;  // estimated nodes of this group so far
    uint64_t last = 0;   // nodes of the last item (what a quantifier repeats)
  };
  std::vector<Frame> stack_ = std::vector<Frame>(1);
};

Error regex_too_complex() {
  return make_error(Errc::Usage, "regex too complex: nested or stacked repetitions (+, {m,n}) multiply its size past "
                                 "glibc's practical limit; simplify it");
}

/// Rejects what would make glibc's regcomp or regexec blow up: back-references, long
/// patterns, and patterns whose compiled size grows too far. glibc expands `x+` into `xx*` and
/// `x{m,n}` into n copies of x, so stacked or nested repetitions multiply ("/a++++++...",
/// "((a+)+)+", "(a{1,100}){1,100}" took seconds and gigabytes, fuzz-found). The size is
/// estimated the same way and capped at kMaxRegexNodes.
Status check_regex_size_impl(std::string_view rx) {
  if (rx.size() > kMaxRegex) return make_error(Errc::Usage, "regex longer than 1024 bytes");
  RegexSize size;
  bool after_quantifier = false;
  for (size_t i = 0; i < rx.size(); ++i) {
    const char c = rx[i];
    const size_t close = c == '{' ? rx.find('}', i) : std::string_view::npos;
    const bool quantifier = c == '*' || c == '+' || c == '?' || (c == '{' && close != std::string_view::npos);
    if (quantifier && after_quantifier)
      return make_error(Errc::Usage, "stacked repetitions ('a+*', 'a**', 'a+{2}') are not supported: group the "
                                     "repeated part instead");
    after_quantifier = quantifier;
    if (c == '\\' && i + 1 < rx.size()) {
      if (rx[i + 1] >= '1' && rx[i + 1] <= '9') return make_error(Errc::Usage, "back-references (\\1...) are not supported");
      ++i;
      size.item(1);
    } else if (c == '[') {
      i = bracket_end(rx, i);
      size.item(1);
    } else if (c == '(') {
      if (!size.open()) return regex_too_complex();
    } else if (c == ')') {
      // glibc would take it as a literal, but it would also close the group fimctl wraps the
      // pattern in ("^(" pattern ")$"), changing what is anchored (fuzz-found).
      if (!size.close()) return make_error(Errc::Usage, "unbalanced ')' in regex");
    } else if (c == '|') {
      size.branch();
    } else if (c == '+') {
      size.repeat(2);
    } else if (c == '*' || c == '?') {
      size.loop();
    } else if (quantifier) {  // an interval
      size.repeat(interval_copies(rx, i, close));
      i = close;
    } else {
      size.item(1);  // a literal '{' without a '}' too
    }
    if (size.too_big()) return regex_too_complex();
  }
  return {};
}

/// The fixed prefix: literal bytes after an optional '^' up to the first operator. An
/// alternative at the top level ("/a|/b") has no common prefix: refused.
Result<Bytes> regex_prefix(std::string_view rx) {
  int depth = 0;
  for (size_t k = 0; k < rx.size(); ++k) {
    if (rx[k] == '\\') ++k;
    else if (rx[k] == '(') ++depth;
    else if (rx[k] == ')') --depth;
    else if (rx[k] == '|' && depth <= 0) return make_error(Errc::Usage, "a regex with '|' at the top level has no fixed beginning; "
                                                                         "group the alternatives: /usr/(bin|sbin)/.*");
  }
  size_t i = rx.size() && rx[0] == '^' ? 1 : 0;
  Bytes lit;
  for (; i < rx.size(); ++i) {
    const char c = rx[i];
    if (c == '\\' && i + 1 < rx.size() && std::strchr(".[]()*+?{}|^$\\/", rx[i + 1])) {
      lit += rx[++i];
      continue;
    }
    if (std::strchr(".[]()*+?{}|^$\\", c)) {
      if ((c == '*' || c == '?' || c == '{') && !lit.empty()) lit.pop_back();  // the last byte is optional
      break;
    }
    lit += c;
  }
  if (lit.empty() || lit[0] != '/')
    return make_error(Errc::Usage, "a regex must start with '/' (or '^/'): it is matched against whole paths, "
                                   "and its fixed beginning says where the walk starts");
  return lit;
}

}  // namespace

Status check_regex_size(std::string_view rx) { return check_regex_size_impl(rx); }

Result<Bytes> check_regex(std::string_view rx) {
  FIM_TRY(check_regex_size_impl(rx));
  return regex_prefix(rx);
}

}  // namespace fim::rules
