// SPDX-License-Identifier: GPL-2.0-or-later
// json::parse (see fim/json.h): nlohmann-json (Debian's nlohmann-json3-dev, header-only)
// reads the text; this is the only file that includes it. It throws: every exception ends
// here, and the input is bounded in size and depth before a tree of json::Value is built.
#include <nlohmann/json.hpp>

#include <cstring>

#include "fim/json.h"

namespace fim::json {
namespace {

using Doc = nlohmann::ordered_json;  // members in document order

Value convert(const Doc& d) {
  Value v;
  switch (d.type()) {
    case Doc::value_t::null:
    case Doc::value_t::discarded:
      break;
    case Doc::value_t::boolean:
      v.kind = Value::Kind::Bool;
      v.boolean = d.get<bool>();
      break;
    case Doc::value_t::number_integer:
    case Doc::value_t::number_unsigned:
      v.kind = Value::Kind::Number;
      v.integral = true;
      v.integer = d.is_number_unsigned() ? static_cast<int64_t>(d.get<uint64_t>()) : d.get<int64_t>();
      v.number = static_cast<double>(v.integer);
      break;
    case Doc::value_t::number_float:
      v.kind = Value::Kind::Number;
      v.number = d.get<double>();
      break;
    case Doc::value_t::string:
      v.kind = Value::Kind::String;
      v.string = d.get<std::string>();
      break;
    case Doc::value_t::binary:
      break;  // not produced by parsing text
    case Doc::value_t::array:
      v.kind = Value::Kind::Array;
      for (const auto& item : d) v.items.push_back(convert(item));
      break;
    case Doc::value_t::object:
      v.kind = Value::Kind::Object;
      for (const auto& [k, item] : d.items()) v.members.push_back({k, convert(item)});
      break;
  }
  return v;
}

int b64_digit(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/// Base64 (RFC 4648, padded) back to bytes; empty for text that is not base64.
std::string b64_decode(std::string_view s) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (const char c : s) {
    if (c == '=') break;
    const int d = b64_digit(c);
    if (d < 0) return {};
    acc = (acc << 6) | static_cast<uint32_t>(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

}  // namespace

const Value* Value::get(std::string_view key) const {
  for (const auto& [k, v] : members)
    if (k == key) return &v;
  return nullptr;
}

std::string Value::str(std::string_view key, std::string_view fallback) const {
  const Value* v = get(key);
  return v && v->kind == Kind::String ? v->string : std::string(fallback);
}

int64_t Value::i64(std::string_view key, int64_t fallback) const {
  const Value* v = get(key);
  return v && v->kind == Kind::Number && v->integral ? v->integer : fallback;
}

bool Value::flag(std::string_view key, bool fallback) const {
  const Value* v = get(key);
  return v && v->kind == Kind::Bool ? v->boolean : fallback;
}

std::string Value::bytes(std::string_view key) const {
  std::string k64(key);
  k64 += "_b64";
  if (const Value* b = get(k64); b && b->kind == Kind::String) return b64_decode(b->string);
  return str(key);
}

Result<Value> parse(std::string_view text, size_t max_bytes, int max_depth) {
  if (text.size() > max_bytes)
    return make_error(Errc::Io, "JSON text of " + std::to_string(text.size()) + " bytes (at most " +
                                    std::to_string(max_bytes) + ")");
  bool too_deep = false;
  const Doc::parser_callback_t bound = [&](int depth, Doc::parse_event_t, Doc&) {
    if (depth > max_depth) too_deep = true;
    return !too_deep;
  };
  try {
    const Doc d = Doc::parse(text.begin(), text.end(), bound);
    if (too_deep) return make_error(Errc::Io, "JSON nested deeper than " + std::to_string(max_depth) + " levels");
    return convert(d);
  } catch (const Doc::exception& e) {
    return make_error(Errc::Io, std::string("not JSON: ") + e.what());
  }
}

}  // namespace fim::json
