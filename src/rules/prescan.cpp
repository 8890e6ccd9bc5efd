// SPDX-License-Identifier: GPL-2.0-or-later
// The TOML prescan (prescan.h): a small lexer that knows where TOML allows strings, comments
// and bare values, and refuses, with a position, the bytes toml++ 3.3.0 mishandles there.
#include "prescan.h"

#include <cctype>
#include <cstring>

namespace fim::rules {
namespace {

/// The length of the UTF-8 sequence at text[i] (its first byte >= 0x80); 0 when invalid
/// (bad lead byte, truncated, bad continuation, overlong, surrogate, beyond U+10FFFF).
size_t utf8_length(std::string_view text, size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  const size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
  if (len == 0 || i + len > text.size()) return 0;
  for (size_t k = 1; k < len; ++k)
    if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return 0;
  const auto c1 = static_cast<unsigned char>(text[i + 1]);
  if (len == 3 && ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0))) return 0;
  if (len == 4 && ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90))) return 0;
  return len;
}

class Prescan {
 public:
  explicit Prescan(std::string_view text) : text_(text) {}

  std::optional<PrescanError> run() {
    for (i_ = 0; i_ < text_.size();) {
      const auto c = static_cast<unsigned char>(text_[i_]);
      if (c == 0) return fail(0, "NUL byte in the file");
      len_ = 1;
      if (c >= 0x80) {
        len_ = utf8_length(text_, i_);
        if (len_ == 0) return fail(0, "invalid UTF-8 (the policy must be UTF-8 text)");
        if (st_ == Code) return fail(0, "non-ASCII character outside a string or comment (quote the key or value)");
      }
      if (st_ == Code) {
        if (auto e = code(c)) return e;
      } else {
        in_string_or_comment(c);
      }
      advance();
    }
    return std::nullopt;
  }

 private:
  enum State { Code, Comment, Basic, Literal, MlBasic, MlLiteral };

  std::optional<PrescanError> fail(size_t ahead, std::string msg) const {
    return PrescanError{line_, col_ + static_cast<uint32_t>(ahead), std::move(msg)};
  }
  bool at(std::string_view s) const { return text_.substr(i_, s.size()) == s; }

  /// One byte of code (keys, values, brackets): where strings, comments and bare values start.
  std::optional<PrescanError> code(unsigned char c) {
    // toml++ reads a bare value up to a terminator; a quote, '=' or non-ASCII inside it
    // reaches its Unicode UB ("1=1=\"é\"", fuzz-found): refuse them there.
    if (bare_ && std::strchr(" \t\r\n,]}#", c)) {
      bare_ = false;
    } else if (!bare_ && (last_ == '=' || (!open_.empty() && open_.back() == '[' && (last_ == '[' || last_ == ','))) &&
               !std::strchr(" \t\r\n\"'[{#", c)) {
      bare_ = true;
    }
    if (bare_ && (c == '"' || c == '\'' || c == '='))
      return fail(0, std::string("unexpected '") + static_cast<char>(c) + "' in a value");
    // Valid TOML opens a string only where a key or a value starts. Elsewhere ("a=1\"é\"")
    // toml++ would still be reading a bare token when it meets non-ASCII.
    if ((c == '"' || c == '\'') && !std::strchr("\n=[,{.", last_))
      return fail(0, "unexpected quote (a string can only start a key or a value)");
    if (c == '[' && open_.empty() && last_ == '\n') {
      if (auto e = table_header()) return e;
    } else if (c == '[' || c == '{') {
      open_.push_back(static_cast<char>(c));  // an array or inline table value
    } else if ((c == ']' || c == '}') && !open_.empty()) {
      open_.pop_back();
    }
    if (c == '#') st_ = Comment;
    else if (at("\"\"\"")) st_ = MlBasic, len_ = 3;
    else if (at("'''")) st_ = MlLiteral, len_ = 3;
    else if (c == '"') st_ = Basic;
    else if (c == '\'') st_ = Literal;
    if (c == '\n') last_ = '\n';
    else if (c != ' ' && c != '\t' && c != '\r') last_ = static_cast<char>(c);
    return std::nullopt;
  }

  /// A table header. toml++ asserts (UB under NDEBUG) when its name starts with anything but
  /// a bare-key character or a quote ("[`]", fuzz-found): say so here.
  std::optional<PrescanError> table_header() const {
    size_t k = i_ + 1;
    if (k < text_.size() && text_[k] == '[') ++k;
    while (k < text_.size() && (text_[k] == ' ' || text_[k] == '\t')) ++k;
    const auto n = k < text_.size() ? static_cast<unsigned char>(text_[k]) : '\n';
    if (std::isalnum(n) || std::strchr("_-\"']\n\r", n) || n == 0) return std::nullopt;
    return fail(k - i_, "expected bare key starting character or string delimiter in a table name");
  }

  /// One byte inside a comment or string: where it ends.
  void in_string_or_comment(unsigned char c) {
    const bool escape = c == '\\' && i_ + 1 < text_.size() && text_[i_ + 1] != '\n';
    switch (st_) {
      case Comment:
        if (c == '\n') st_ = Code, last_ = '\n';
        break;
      case Basic:
        if (escape) len_ = 2;
        else if (c == '"' || c == '\n') st_ = Code, last_ = c == '"' ? 's' : '\n';
        break;
      case Literal:
        if (c == '\'' || c == '\n') st_ = Code, last_ = c == '\'' ? 's' : '\n';
        break;
      case MlBasic:
        if (escape) len_ = 2;
        else if (at("\"\"\"")) close_multiline('"');
        break;
      case MlLiteral:
        if (at("'''")) close_multiline('\'');
        break;
      case Code:
        break;
    }
  }

  /// A multi-line string ends at three quotes; up to two more belong to its content.
  void close_multiline(char q) {
    len_ = 3;
    while (i_ + len_ < text_.size() && text_[i_ + len_] == q && len_ < 5) ++len_;
    st_ = Code, last_ = 's';
  }

  /// Moves past the current token, counting lines and columns (a column per code point).
  void advance() {
    for (size_t k = 0; k < len_ && i_ + k < text_.size(); ++k) {
      if (text_[i_ + k] == '\n') line_++, col_ = 1;
      else if ((static_cast<unsigned char>(text_[i_ + k]) & 0xC0) != 0x80) col_++;
    }
    i_ += len_;
  }

  std::string_view text_;
  size_t i_ = 0, len_ = 1;
  uint32_t line_ = 1, col_ = 1;
  State st_ = Code;
  char last_ = '\n';   // the last significant byte in code ('\n': the start of a line)
  std::string open_;   // brackets open in values: '[' array, '{' inline table
  bool bare_ = false;  // inside a bare value (number, boolean, date): up to a terminator
};

}  // namespace

std::optional<PrescanError> prescan_toml(std::string_view text) { return Prescan(text).run(); }

}  // namespace fim::rules
