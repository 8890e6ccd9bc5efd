// SPDX-License-Identifier: GPL-2.0-or-later
// The one duration grammar (command line and policy file): a table of valid, invalid and
// out-of-bounds inputs, and the unit set and bounds as parameters.
#include <doctest/doctest.h>

#include "fim/base/duration.h"

using namespace fim;

TEST_CASE("parse_duration: numbers with an optional unit, fractions and days") {
  struct {
    const char* in;
    double seconds;
  } valid[] = {
      {"0", 0},       {"90", 90},       {"90s", 90},     {"250ms", 0.25}, {"5m", 300},
      {"1.5h", 5400}, {"1d", 86400},    {"0.5s", 0.5},   {"2.25m", 135},  {"007", 7},
      {"1.5d", 129600}, {"10ms", 0.01},
  };
  for (const auto& c : valid) {
    CAPTURE(c.in);
    auto d = parse_duration(c.in);
    REQUIRE(d.has_value());
    CHECK(*d == doctest::Approx(c.seconds));
  }
  const char* invalid[] = {"", "s", "h1", "-1", "+5", " 5", "5 ", "5.", ".5", "1e3", "0x10", "inf", "nan",
                           "5x", "5 s", "5S", "5sec", "1h30m", "1.5.h", "5mss"};
  for (const char* in : invalid) {
    CAPTURE(in);
    auto d = parse_duration(in);
    REQUIRE_FALSE(d.has_value());
    CHECK(d.error().code == Errc::Usage);
    CHECK(d.error().message.find("is not a duration") != std::string::npos);
  }
}

TEST_CASE("parse_duration: the bounds and the unit set are the caller's") {
  const DurationSpec day{DurationSpec::kAllUnits, 0, 86400};
  CHECK(parse_duration("1d", day).has_value());
  CHECK(parse_duration("24h", day).has_value());
  CHECK(parse_duration("86400", day).has_value());
  for (const char* over : {"86401", "24.5h", "1.1d", "2d", "99999999999999999999999999999"}) {
    CAPTURE(over);
    auto d = parse_duration(over, day);
    REQUIRE_FALSE(d.has_value());
    CHECK(d.error().message.find("longer than the maximum, 1d") != std::string::npos);
  }
  const DurationSpec at_least{DurationSpec::kAllUnits, 1, 60};
  auto below = parse_duration("500ms", at_least);
  REQUIRE_FALSE(below.has_value());
  CHECK(below.error().message.find("shorter than the minimum, 1s") != std::string::npos);
  CHECK(parse_duration("1s", at_least).has_value());
  // Only seconds and minutes: the others are not units here, and the message lists these two.
  const DurationSpec sm{(1u << static_cast<unsigned>(DurationUnit::S)) | (1u << static_cast<unsigned>(DurationUnit::M)), 0, 1e9};
  CHECK(parse_duration("2m", sm).has_value());
  CHECK(parse_duration("30", sm).has_value());
  auto h = parse_duration("1h", sm);
  REQUIRE_FALSE(h.has_value());
  CHECK(h.error().message.find("s or m,") != std::string::npos);
  // The default: every unit, up to 1e9 s (about 31 years).
  CHECK_FALSE(parse_duration("11575d").has_value());
  CHECK(parse_duration("11574d").has_value());
}

TEST_CASE("duration_text: the largest whole unit") {
  CHECK(duration_text(86400) == "1d");
  CHECK(duration_text(5400) == "90m");
  CHECK(duration_text(30) == "30s");
  CHECK(duration_text(0) == "0s");
  CHECK(duration_text(0.5) == "500ms");
}
