// SPDX-License-Identifier: GPL-2.0-or-later
// The one duration parser (include/fim/base/duration.h). std::from_chars, not strtod: the
// decimal point must not depend on the locale, and "1e3", "0x10", "inf" or " 5" are no durations.
#include "fim/base/duration.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <vector>

#include "fim/base/bytes.h"

namespace fim {
namespace {

struct UnitRow {
  DurationUnit unit;
  std::string_view suffix;
  double seconds;
};
constexpr UnitRow kUnits[] = {
    {DurationUnit::Ms, "ms", 1e-3}, {DurationUnit::S, "s", 1},       {DurationUnit::M, "m", 60},
    {DurationUnit::H, "h", 3600},   {DurationUnit::D, "d", 86400},
};

bool allows(const DurationSpec& spec, DurationUnit u) {
  return (spec.units & (1u << static_cast<unsigned>(u))) != 0;
}

/// "ms, s, m, h or d": the units `spec` accepts, for messages.
std::string unit_list(const DurationSpec& spec) {
  std::vector<std::string_view> names;
  for (const auto& r : kUnits)
    if (allows(spec, r.unit)) names.push_back(r.suffix);
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + std::string(names[i]);
  return out;
}

/// The length of the number at the start of `s`: digits, then optionally '.' and digits.
size_t number_length(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i == 0) return 0;
  if (i < s.size() && s[i] == '.') {
    size_t j = i + 1;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
    if (j == i + 1) return 0;  // "5." is not a number here
    i = j;
  }
  return i;
}

}  // namespace

Result<double> parse_duration(std::string_view text, const DurationSpec& spec) {
  const auto invalid = [&] {
    return make_error(Errc::Usage, quote(text) + " is not a duration (a number and an optional unit: " +
                                       unit_list(spec) + ", such as 90s or 1.5h; seconds by default)");
  };
  const size_t len = number_length(text);
  if (len == 0 || len > 32) return invalid();
  double value = 0;
  if (std::from_chars(text.data(), text.data() + len, value).ec != std::errc()) return invalid();
  const std::string_view suffix = text.substr(len);
  double scale = suffix.empty() ? 1 : -1;
  for (const auto& r : kUnits)
    if (suffix == r.suffix && allows(spec, r.unit)) scale = r.seconds;
  if (scale < 0) return invalid();
  const double seconds = value * scale;
  if (!std::isfinite(seconds) || seconds > spec.max_seconds)
    return make_error(Errc::Usage, quote(text) + " is longer than the maximum, " + duration_text(spec.max_seconds));
  if (seconds < spec.min_seconds)
    return make_error(Errc::Usage, quote(text) + " is shorter than the minimum, " + duration_text(spec.min_seconds));
  return seconds;
}

std::string duration_text(double seconds) {
  for (auto it = std::rbegin(kUnits); it != std::rend(kUnits); ++it) {
    const double n = seconds / it->seconds;
    if (n >= 1 && n == std::floor(n) && n < 1e15) return std::to_string(static_cast<int64_t>(n)) + std::string(it->suffix);
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%gs", seconds);
  return buf;
}

}  // namespace fim
