// SPDX-License-Identifier: GPL-2.0-or-later
// Durations as people write them ("90", "250ms", "1.5h", "1d"): one grammar for the command
// line and the policy file (docs/design.md, Policy), each caller choosing its units and bounds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "fim/base/result.h"

namespace fim {

enum class DurationUnit : uint8_t { Ms, S, M, H, D };

/// What one setting accepts: a set of units (bit 1 << DurationUnit) and bounds in seconds,
/// both inclusive.
struct DurationSpec {
  static constexpr uint8_t kAllUnits = 0x1f;
  uint8_t units = kAllUnits;
  double min_seconds = 0;
  double max_seconds = 1e9;
};

/// A decimal number (digits, optionally '.' and more digits) followed by no unit (seconds) or
/// one of spec.units: "90", "90s", "250ms", "5m", "1.5h", "1d" -> seconds. Errc::Usage with a
/// message that quotes `text` and says what is accepted; the caller prefixes the setting's name.
Result<double> parse_duration(std::string_view text, const DurationSpec& spec = {});

/// A bound or value for a message: "1d", "90m", "30s", "0.5s".
std::string duration_text(double seconds);

}  // namespace fim
