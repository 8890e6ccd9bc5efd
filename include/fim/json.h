// SPDX-License-Identifier: GPL-2.0-or-later
// The one JSON writer and the one JSON reader of fimctl (docs/design.md, Record schema).
// Every record fimctl prints or sends (reports, the watch daemon's records, Falco payloads,
// the status document) is built by json::Writer, so commas, escaping and the "<key>_b64"
// twin of bytes that are not UTF-8 are decided in one place. json::parse reads what the few
// readers need (the status client) into a plain tree: the parser library stays in one file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "fim/base/result.h"

namespace fim {

/// The report schema every record names: {"schema":"fimctl.v1","type":...}.
inline constexpr const char* kReportSchema = "fimctl.v1";

namespace json {

/// Builds one JSON text front to back. Keyed calls (str(key, v)) add a member to the object
/// being built; the one-argument forms add an element to the array being built. Nested
/// objects and arrays are opened with object()/array() and closed with close(); take()
/// closes whatever is still open.
class Writer {
 public:
  Writer() = default;
  /// Members only, without braces: fields that other records take in with members() (the
  /// trigger of a watch record, a container's name, Falco's output_fields).
  static Writer fields();

  /// Opens a record of the report schema: {"schema":"fimctl.v1","type":TYPE (left open).
  Writer& schema(std::string_view type);
  Writer& object();
  Writer& object(std::string_view key);
  Writer& array();
  Writer& array(std::string_view key);
  /// Closes the innermost open object or array.
  Writer& close();

  Writer& str(std::string_view key, std::string_view v);
  Writer& str(std::string_view v);
  /// "key":"v", and "key_b64":"base64 of v" when v is not valid UTF-8 (paths are bytes).
  Writer& bytes(std::string_view key, std::string_view v);
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Writer& num(std::string_view key, T v) {
    put_key(key);
    return put_int(v);
  }
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Writer& num(T v) {
    put_elem();
    return put_int(v);
  }
  /// A number with `decimals` digits after the point ("seconds":0.042).
  Writer& fixed(std::string_view key, double v, int decimals);
  Writer& boolean(std::string_view key, bool v);
  /// An already-built JSON value (another Writer's take()).
  Writer& raw(std::string_view key, std::string_view value);
  Writer& raw(std::string_view value);
  /// The members of a fields() writer, appended to the object being built.
  Writer& members(const Writer& fields);

  bool empty() const { return out_.empty(); }
  /// Closes what is open and returns the text (the members alone for fields()).
  std::string take();
  /// The text written so far, what is open left open: a document streamed in parts (a
  /// report's records are copied from a spool between its head and its closing brackets).
  std::string flush() { return std::exchange(out_, std::string()); }

 private:
  struct Frame {
    char closer;  // '}' or ']'; 0 for the brace-less frame of fields()
    bool first;
  };
  void put_key(std::string_view key);
  void put_elem();
  Writer& open(char opener, char closer);
  template <class T>
  Writer& put_int(T v) {
    if constexpr (std::is_signed_v<T>) out_ += std::to_string(static_cast<long long>(v));
    else out_ += std::to_string(static_cast<unsigned long long>(v));
    return *this;
  }

  std::string out_;
  std::vector<Frame> open_;
};

/// A parsed JSON value: a plain tree, members in document order.
struct Value {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  bool integral = false;  ///< the number had no fraction or exponent (then `integer` is exact)
  int64_t integer = 0;
  double number = 0;
  std::string string;
  std::vector<Value> items;
  struct Member;
  std::vector<Member> members;

  /// The member `key` of an object, or null when absent (or this is not an object).
  const Value* get(std::string_view key) const;
  /// Typed reads of a member, with `fallback` when it is absent or of another kind.
  std::string str(std::string_view key, std::string_view fallback = {}) const;
  int64_t i64(std::string_view key, int64_t fallback = 0) const;
  bool flag(std::string_view key, bool fallback = false) const;
  /// The exact bytes Writer::bytes wrote: "key_b64" decoded when present, else "key".
  std::string bytes(std::string_view key) const;
};

struct Value::Member {
  std::string key;
  Value value;
};

/// Parses one JSON text (what a peer sent: Errc::Io when it is not JSON). Bounded: more than
/// `max_bytes` of input or `max_depth` levels of nesting is refused the same way.
Result<Value> parse(std::string_view text, size_t max_bytes = size_t{1} << 24, int max_depth = 64);

}  // namespace json
}  // namespace fim
