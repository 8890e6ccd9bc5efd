// SPDX-License-Identifier: GPL-2.0-or-later
// The progress line on stderr (progress_line.h). Its text is fim::progress_line's: numbers
// only, never a byte of a file name, so it needs no escaping.
#include "progress_line.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>

#include "fim/base/sys.h"

namespace fim::cli {

namespace {

constexpr double kTtyRefresh = 0.25;  // at most 4 redraws a second
constexpr double kPlainInterval = 10;

/// The terminal's width: the line is cut to it, since a wrapped line cannot be redrawn with "\r".
size_t terminal_columns(FILE* out) {
  winsize ws{};
  if (::ioctl(::fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1) return ws.ws_col - 1u;
  return 79;
}

}  // namespace

ProgressLine::ProgressLine(std::string command, bool tty, double interval, FILE* out)
    : command_(std::move(command)), tty_(tty), interval_(interval), out_(out), started_(monotonic_seconds()) {
  rate_.add(started_, 0, 0);
}

void ProgressLine::update(const ScanProgress& p) {
  const double now = monotonic_seconds();
  // A new scan within the run (counts start again): its rate starts again too.
  if (seen_ && (p.entries < last_.entries || p.bytes < last_.bytes)) rate_ = RateMeter();
  seen_ = true;
  last_ = p;
  rate_.add(now, p.entries, p.bytes);
  if (p.done) return;  // finish() says it
  if (now - last_draw_ < (tty_ ? kTtyRefresh : interval_) || (!tty_ && now - started_ < interval_)) return;
  last_draw_ = now;
  std::string line = progress_line(command_, p, rate_.bytes_per_second(), rate_.entries_per_second(), tty_);
  if (tty_) {
    const size_t cols = terminal_columns(out_);
    if (line.size() > cols) line.resize(cols);
    std::fprintf(out_, "\r%s\x1b[K", line.c_str());
    shown_ = true;
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
}

void ProgressLine::clear() {
  if (!tty_ || !shown_) return;
  std::fputs("\r\x1b[K", out_);
  std::fflush(out_);
  shown_ = false;
}

void ProgressLine::finish() {
  clear();
  if (!seen_) return;
  std::fprintf(out_, "%s\n", progress_final_line(command_, last_, monotonic_seconds() - started_).c_str());
  std::fflush(out_);
  seen_ = false;
}

std::shared_ptr<ProgressLine> progress_line_for(const Options& o) {
  if (o.quiet || o.progress == "never") return nullptr;
  const bool tty = ::isatty(STDERR_FILENO);
  if (!tty && o.progress != "always") return nullptr;
  double interval = kPlainInterval;
  // For tests only (man page, ENVIRONMENT): a shorter interval between plain lines.
  if (const char* v = std::getenv("FIMCTL_PROGRESS_INTERVAL")) {
    char* end = nullptr;
    const double d = std::strtod(v, &end);
    if (end != v && *end == '\0' && d > 0 && d <= 86400) interval = d;
  }
  return std::make_shared<ProgressLine>(o.command, tty, interval);
}

}  // namespace fim::cli
