// SPDX-License-Identifier: GPL-2.0-or-later
// Every decoder of attacker-controlled bytes (CVE-2021-45417, CVE-2025-54409 in AIDE): ACLs,
// capabilities, xattr lists, and the output escapers. Invariants checked, not just "no crash".
#include <cstdint>
#include <cstring>
#include <string>

#include "fim/attr.h"
#include "fim/base/bytes.h"

using namespace fim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)render_acl(in);
  (void)render_caps(in);
  if (size >= 4) {
    uint32_t flags;
    std::memcpy(&flags, data, 4);
    (void)render_flags(flags);
  }
  std::vector<XattrEntry> entries;
  if (decode_xattrs(in, &entries)) {
    // A valid encoding round-trips once sorted.
    const Bytes again = encode_xattrs(entries);
    std::vector<XattrEntry> twice;
    if (!decode_xattrs(again, &twice) || twice.size() != entries.size()) __builtin_trap();
  }
  const std::string x = render_xattrs(in);
  if (!is_valid_utf8(x)) __builtin_trap();

  const std::string t = escape_terminal(in);
  for (const char c : t)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) __builtin_trap();
  std::string j;
  const bool utf8 = append_json_string(j, in);
  if (utf8 != is_valid_utf8(in) || !is_valid_utf8(j)) __builtin_trap();
  for (const char c : j)
    if (static_cast<unsigned char>(c) < 0x20) __builtin_trap();
  (void)base64_encode(in);
  return 0;
}
