// SPDX-License-Identifier: GPL-2.0-or-later
// The TOML prescan: what toml++ must never see, refused with a position before it sees a
// byte. Needs no toml++ (so it compiles fast and fuzzes alone). Private to rules/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fim::rules {

struct PrescanError {
  uint32_t line = 0;
  uint32_t column = 0;
  std::string message;
};

/// NUL bytes, invalid UTF-8, non-ASCII outside strings and comments, quotes and '=' inside
/// bare values, table names that start with a character no key can start with: the inputs
/// that reach toml++ 3.3.0's assertions and undefined behaviour (notes in config_toml.cpp).
/// std::nullopt when `text` may be parsed.
std::optional<PrescanError> prescan_toml(std::string_view text);

}  // namespace fim::rules
