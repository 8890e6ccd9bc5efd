// SPDX-License-Identifier: GPL-2.0-or-later
// `fimctl show PATH [--at SEQ]` (options_show.cpp; docs/design.md, Content store).
#include <unistd.h>

#include <cstdio>

#include "commands.h"
#include "fim/base/sys.h"

namespace fim::cli {

int cmd_show(const Options& o) {
  auto ro = run_options(o);
  if (!ro) return report_error(ro.error());
  auto path = absolute_path(o.show_path);
  if (!path) return report_error(path.error());
  AlertSink sink;
  const std::optional<uint64_t> at = o.show_at >= 0 ? std::optional<uint64_t>(static_cast<uint64_t>(o.show_at)) : std::nullopt;
  auto shown = run_show(*ro, *path, at, sink);
  if (!shown) return report_error(shown.error());
  if (::isatty(STDOUT_FILENO)) {
    // Line by line, so the text keeps its lines; every byte else escaped (a kept file cannot
    // move the cursor or fake output).
    size_t start = 0;
    const std::string& t = shown->text;
    while (start < t.size()) {
      size_t nl = t.find('\n', start);
      if (nl == std::string::npos) nl = t.size();
      std::printf("%s\n", escape_terminal(std::string_view(t).substr(start, nl - start)).c_str());
      start = nl + 1;
    }
  } else {
    std::fwrite(shown->text.data(), 1, shown->text.size(), stdout);
  }
  return std::fflush(stdout) == 0 ? 0 : 20;
}

}  // namespace fim::cli
