// SPDX-License-Identifier: GPL-2.0-or-later
// Paths and names are bytes (docs/design.md, Conventions 4). Escaping happens only here, at the
// edge.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fim {

/// A byte string; never assumed to be UTF-8.
using Bytes = std::string;

bool is_valid_utf8(std::string_view s);

/// Terminal-safe text: printable ASCII and valid printable UTF-8 pass through; backslash,
/// control bytes, DEL, C1 controls and invalid UTF-8 become C escapes (\n, \t, \x1b, \xff)
/// that can be pasted back into a shell as $'...'. Output never contains a control byte.
std::string escape_terminal(std::string_view s);

/// Appends a JSON string literal (with quotes). Valid UTF-8 is kept (control characters,
/// quote and backslash escaped); each byte of an invalid sequence becomes \u00XX, so the
/// result is always valid JSON. Returns false when the input was not valid UTF-8, in which
/// case the caller must also emit the exact bytes in base64 (docs/design.md, Record schema).
bool append_json_string(std::string& out, std::string_view s);

/// A path or name for a user-facing message: 'p', terminal-safe (escape_terminal). The one
/// way every message quotes a name, so a hostile name can never forge a line.
std::string quote(std::string_view s);

std::string base64_encode(std::string_view s);
std::string hex_encode(std::string_view s);
/// Lower- or upper-case hex of even length to bytes; std::nullopt for anything else.
std::optional<Bytes> hex_decode(std::string_view hex);

/// Joins a directory path and a name: "/" + "x" is "/x", "/a" + "x" is "/a/x".
Bytes join_path(std::string_view dir, std::string_view name);

/// True when `path` is `root` or lies below it (component-wise).
bool path_within(std::string_view path, std::string_view root);

/// A decimal number of 1 to 19 digits, nothing else (no sign, no spaces); false otherwise.
bool parse_decimal(std::string_view s, uint64_t* out);

}  // namespace fim
