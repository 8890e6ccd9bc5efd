// SPDX-License-Identifier: GPL-2.0-or-later
// The policy keys as one table (policy_keys.cpp): {tables, key, handler, type}. The loader
// (config_toml.cpp) converts each TOML value into a ConfigValue and dispatches it here, so a
// key is listed exactly where it is handled; config_keys() (the loader's "did you mean", the
// man-page test through `fimctl completion list`, completion) is derived from the same rows.
// Needs no toml++. Private to rules/.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fim/rules.h"

namespace fim::rules {

/// A TOML value as the handlers see it: scalars, and arrays one level deep (enough for every
/// key; a nested table is only named by its kind).
struct ConfigValue {
  enum class Kind : uint8_t { String, Integer, Float, Boolean, Array, Table, Date };
  Kind kind = Kind::String;
  std::string str;
  int64_t integer = 0;
  double real = 0;
  bool boolean = false;
  std::vector<ConfigValue> items;  ///< Array: its elements
  bool array_of_tables = false;    ///< Array: every element is a table ([[x]])
  SourcePos where;

  /// "a string", "an integer", ... for messages.
  std::string_view type_name() const;
};

/// What a handler reads and writes: the policy being built, the rule (in [[rule]] and
/// [[exclude]]), and the state the loader keeps across keys.
struct KeyContext {
  KeyContext(Policy& p, std::string w, std::function<void(const SourcePos&, std::string)> e)
      : policy(p), what(std::move(w)), error(std::move(e)) {}

  Policy& policy;
  Rule* rule = nullptr;
  std::string what;  ///< the key as messages name it: "options.severity", "[[rule]].depth"
  std::function<void(const SourcePos&, std::string)> error;

  // Set by handlers for the loader.
  std::string default_attrs_expr;  ///< options.default_attrs, resolved after [groups]
  SourcePos default_attrs_pos;
  int selectors = 0;               ///< path, glob and regex keys seen in this rule
  SourcePos selector_pos;
  std::vector<std::string> includes;  ///< the top level's include patterns

  std::optional<std::string> string(const ConfigValue& v);
  /// A string or an array of strings.
  std::optional<std::vector<std::string>> strings(const ConfigValue& v);
  std::optional<bool> boolean(const ConfigValue& v);
};

/// The table a key is in.
enum class Section : uint8_t { Top, Options, Rule, Exclude };

/// Hands `v` to the handler of `key` in `section`, or reports an unknown key at `key_pos`
/// (naming the nearest known key).
void dispatch(Section section, std::string_view key, const ConfigValue& v, const SourcePos& key_pos, KeyContext& ctx);

/// A [groups] name: a letter or '_', then letters, digits or '_'; at most 64.
bool valid_group_name(std::string_view n);

}  // namespace fim::rules
