// SPDX-License-Identifier: GPL-2.0-or-later
// The progress line's text (include/fim/progress.h; docs/design.md, Reports: the progress
// line). Numbers only: the line never carries a byte of a file name.
#include "fim/progress.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace fim {

std::string group_thousands(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string human_bytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  if (!(bytes >= 0)) bytes = 0;
  size_t u = 0;
  while (bytes >= 999.5 && u + 1 < std::size(kUnits)) {
    bytes /= 1000;
    ++u;
  }
  // "1.2 GB", "210 MB": one decimal below 100 of a unit.
  char buf[32];
  if (u == 0 || bytes >= 99.95) std::snprintf(buf, sizeof buf, "%.0f %s", bytes, kUnits[u]);
  else std::snprintf(buf, sizeof buf, "%.1f %s", bytes, kUnits[u]);
  return buf;
}

std::string clock_duration(double seconds) {
  if (!(seconds >= 0)) seconds = 0;
  const auto s = static_cast<uint64_t>(std::ceil(std::min(seconds, 1e9)));
  char buf[48];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%llu:%02llu:%02llu", static_cast<unsigned long long>(s / 3600),
                               static_cast<unsigned long long>(s / 60 % 60), static_cast<unsigned long long>(s % 60));
  else std::snprintf(buf, sizeof buf, "%llu:%02llu", static_cast<unsigned long long>(s / 60), static_cast<unsigned long long>(s % 60));
  return buf;
}

void RateMeter::add(double now, uint64_t entries, uint64_t bytes) {
  samples_.push_back(Sample{now, entries, bytes});
  // Keep one sample at or before the window's start, so the rate spans the whole window.
  while (samples_.size() > 2 && now - samples_[1].t >= window_) samples_.pop_front();
}

double RateMeter::bytes_per_second() const {
  if (samples_.size() < 2) return 0;
  const double dt = samples_.back().t - samples_.front().t;
  if (dt <= 0 || samples_.back().bytes < samples_.front().bytes) return 0;
  return static_cast<double>(samples_.back().bytes - samples_.front().bytes) / dt;
}

double RateMeter::entries_per_second() const {
  if (samples_.size() < 2) return 0;
  const double dt = samples_.back().t - samples_.front().t;
  if (dt <= 0 || samples_.back().entries < samples_.front().entries) return 0;
  return static_cast<double>(samples_.back().entries - samples_.front().entries) / dt;
}

double progress_fraction(const ScanProgress& p) {
  if (p.counting) return -1;
  double f;
  if (p.total_bytes > 0) f = static_cast<double>(p.bytes) / static_cast<double>(p.total_bytes);
  else if (p.total_entries > 0) f = static_cast<double>(p.entries) / static_cast<double>(p.total_entries);
  else return -1;
  return std::clamp(f, 0.0, 0.999);
}

double progress_eta(const ScanProgress& p, double bytes_per_second, double entries_per_second) {
  if (progress_fraction(p) < 0) return -1;
  if (p.total_bytes > 0) {
    if (bytes_per_second <= 0) return -1;
    return static_cast<double>(p.total_bytes > p.bytes ? p.total_bytes - p.bytes : 0) / bytes_per_second;
  }
  if (entries_per_second <= 0) return -1;
  return static_cast<double>(p.total_entries > p.entries ? p.total_entries - p.entries : 0) / entries_per_second;
}

namespace {

std::string rate_text(double bytes_per_second, double entries_per_second) {
  if (bytes_per_second > 0) return human_bytes(bytes_per_second) + "/s";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s entries/s", group_thousands(static_cast<uint64_t>(entries_per_second + 0.5)).c_str());
  return buf;
}

}  // namespace

std::string progress_line(const std::string& command, const ScanProgress& p, double bytes_per_second,
                          double entries_per_second, bool tty) {
  constexpr int kBarWidth = 20;
  const double f = progress_fraction(p);
  std::string line = "fimctl " + command + ":";
  if (f >= 0) {
    const int pct = static_cast<int>(f * 100);
    if (tty) {
      const int filled = static_cast<int>(f * kBarWidth);
      line += " [" + std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(kBarWidth - filled), '.') + "]";
    }
    line += " " + std::to_string(pct) + "%";
  }
  line += " " + group_thousands(p.entries);
  if (p.total_entries > 0 && !p.counting) line += "/" + group_thousands(p.total_entries);
  line += " entries";
  if (p.bytes > 0 || p.total_bytes > 0) {
    line += ", " + human_bytes(static_cast<double>(p.bytes));
    if (p.total_bytes > 0 && !p.counting) line += "/" + human_bytes(static_cast<double>(p.total_bytes));
  }
  if (bytes_per_second > 0 || entries_per_second > 0) line += ", " + rate_text(bytes_per_second, entries_per_second);
  if (p.counting) {
    line += ", counting...";
  } else if (const double eta = progress_eta(p, bytes_per_second, entries_per_second); eta >= 0) {
    line += ", " + clock_duration(eta) + " left";
  }
  return line;
}

std::string progress_final_line(const std::string& command, const ScanProgress& p, double seconds) {
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.1f s", seconds < 0 ? 0.0 : seconds);
  return "fimctl " + command + ": " + group_thousands(p.entries) + (p.entries == 1 ? " entry, " : " entries, ") + human_bytes(static_cast<double>(p.bytes)) +
         " in " + secs;
}

bool RescanPacer::due(double now) {
  if (now < next_) return false;
  // One record per interval, however long a pause between the calls was.
  while (next_ <= now) next_ += interval_;
  return true;
}

}  // namespace fim
