// SPDX-License-Identifier: GPL-2.0-or-later
// json::Writer (see fim/json.h): commas, escaping and the _b64 twin, in one place.
#include <cstdio>

#include "fim/base/bytes.h"
#include "fim/json.h"

namespace fim::json {

Writer Writer::fields() {
  Writer w;
  w.open_.push_back({0, true});
  return w;
}

void Writer::put_key(std::string_view key) {
  if (!open_.empty()) {
    if (!open_.back().first) out_ += ',';
    open_.back().first = false;
  }
  append_json_string(out_, key);
  out_ += ':';
}

void Writer::put_elem() {
  if (open_.empty()) return;
  if (!open_.back().first) out_ += ',';
  open_.back().first = false;
}

Writer& Writer::open(char opener, char closer) {
  out_ += opener;
  open_.push_back({closer, true});
  return *this;
}

Writer& Writer::schema(std::string_view type) {
  object();
  str("schema", kReportSchema);
  return str("type", type);
}

Writer& Writer::object() {
  put_elem();
  return open('{', '}');
}

Writer& Writer::object(std::string_view key) {
  put_key(key);
  return open('{', '}');
}

Writer& Writer::array() {
  put_elem();
  return open('[', ']');
}

Writer& Writer::array(std::string_view key) {
  put_key(key);
  return open('[', ']');
}

Writer& Writer::close() {
  if (open_.empty()) return *this;
  if (open_.back().closer) out_ += open_.back().closer;
  open_.pop_back();
  return *this;
}

Writer& Writer::str(std::string_view key, std::string_view v) {
  put_key(key);
  append_json_string(out_, v);
  return *this;
}

Writer& Writer::str(std::string_view v) {
  put_elem();
  append_json_string(out_, v);
  return *this;
}

Writer& Writer::bytes(std::string_view key, std::string_view v) {
  put_key(key);
  if (!append_json_string(out_, v)) {
    std::string k64(key);
    k64 += "_b64";
    str(k64, base64_encode(v));
  }
  return *this;
}

Writer& Writer::fixed(std::string_view key, double v, int decimals) {
  put_key(key);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  out_ += buf;
  return *this;
}

Writer& Writer::boolean(std::string_view key, bool v) {
  put_key(key);
  out_ += v ? "true" : "false";
  return *this;
}

Writer& Writer::raw(std::string_view key, std::string_view value) {
  put_key(key);
  out_ += value;
  return *this;
}

Writer& Writer::raw(std::string_view value) {
  put_elem();
  out_ += value;
  return *this;
}

Writer& Writer::members(const Writer& f) {
  if (f.out_.empty()) return *this;
  if (!open_.empty()) {
    if (!open_.back().first) out_ += ',';
    open_.back().first = false;
  }
  out_ += f.out_;
  return *this;
}

std::string Writer::take() {
  while (!open_.empty()) close();
  return std::move(out_);
}

}  // namespace fim::json
