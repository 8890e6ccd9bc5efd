// SPDX-License-Identifier: GPL-2.0-or-later
// Errors and progress on stderr, and the check of a command's --format: the only code that turns an Error into a message and an
// exit code.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "fim/base/bytes.h"
#include "fim/db.h"
#include "fim_config.h"

namespace fim::cli {

std::string version_text() {
  // One "name: value" line each after the first, in a fixed order, for scripts (man page,
  // VERSION): what a bug report needs and what this build can do.
#if defined(FIM_HAVE_BPF) && FIM_HAVE_BPF
  constexpr const char* bpf = "yes";
#else
  constexpr const char* bpf = "no";
#endif
#if defined(FIM_HAVE_LIBSYSTEMD) && FIM_HAVE_LIBSYSTEMD
  constexpr const char* libsystemd = "yes";
#else
  constexpr const char* libsystemd = "no";
#endif
  return std::string("fimctl " FIM_VERSION "\n") + "baseline schema: " + std::to_string(kSchemaVersion) + "\n" +
         "report schema: " + kReportSchema + "\n" + "BPF LSM sensors: " + bpf + "\n" + "libsystemd: " + libsystemd +
         "\n";
}

std::string nearest_name(const std::string& typed, const std::vector<std::string>& names) {
  // Optimal string alignment distance: a swap of two neighbours ("chekc") counts as one edit.
  const auto distance = [](const std::string& a, const std::string& b) {
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (size_t i = 1; i <= a.size(); ++i)
      for (size_t j = 1; j <= b.size(); ++j) {
        d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    return d[a.size()][b.size()];
  };
  if (typed.size() > 64) return "";  // not a typo of a name
  std::string best;
  size_t best_d = 3;  // at most 2 edits
  for (const auto& n : names) {
    const size_t dist = distance(typed, n);
    if (dist < best_d && 2 * dist < typed.size()) {
      best = n;
      best_d = dist;
    }
  }
  return best;
}

int exit_code_for_error(const Error& e) {
  switch (e.code) {
    case Errc::Usage: return 16;
    case Errc::Database: return 17;
    case Errc::Trust: return 18;
    case Errc::Locked: return 19;
    case Errc::Io: return 20;
    case Errc::Unsupported: return 21;
    case Errc::Bug: return 22;
    case Errc::Cancelled: return 22;  // cancellation is handled where it is asked for
  }
  return 22;
}

namespace {
std::string g_command;  // set_command(): the command being run, for "needs root"
}  // namespace

void set_command(const std::string& command) { g_command = command; }

int needs_root(const std::string& why) {
  std::fprintf(stderr, "fimctl: error: %s: needs root (%s)\n", g_command.c_str(), escape_terminal(why).c_str());
  return exit_code_for_error(make_error(Errc::Io, why));
}

int report_error(const Error& e) {
  // Permission denied to a user who is not root: not a missing, corrupt or untrusted file (the
  // baseline directory and the key directory are 0700 root), but a command run without the
  // privileges it needs. Said as such, with the I/O error's code (docs/design.md, Exit codes).
  if ((e.sys_errno == EACCES || e.sys_errno == EPERM) && ::geteuid() != 0 && !g_command.empty())
    return needs_root(e.describe());
  // One "fimctl: error:" line per problem (a policy can have several, one per line).
  const std::string msg = e.describe();
  size_t start = 0;
  for (;;) {
    const size_t nl = msg.find('\n', start);
    const std::string line = msg.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    std::fprintf(stderr, "fimctl: error: %s\n", escape_terminal(line).c_str());
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return exit_code_for_error(e);
}

std::string Formats::names() const {
  std::vector<const char*> names;
  for (const auto& f : kFormats)
    if (has(f.format)) names.push_back(f.name);
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += std::string(i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return out;
}

Status check_format(Format format, const Formats& formats, const std::string& command) {
  if (formats.has(format)) return {};
  return make_error(Errc::Usage, std::string("--format ") + format_name(format) + ": fimctl " + command + " writes " +
                                     formats.names());
}

void AlertSink::alert(std::string_view code, std::string_view message) {
  std::fprintf(stderr, "fimctl: alert %.*s: %s\n", static_cast<int>(code.size()), code.data(),
               escape_terminal(message).c_str());
}

}  // namespace fim::cli
