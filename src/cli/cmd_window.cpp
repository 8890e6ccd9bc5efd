// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl window open|close|list (fim/window.h), and how 'fimctl log' shows a window's entry.
#include <cstdio>

#include "commands.h"
#include "fim/base/sys.h"
#include "fim/window.h"

namespace fim::cli {

namespace {

std::string scope_text(const std::vector<Bytes>& paths) {
  if (paths.empty()) return "everything";
  std::string out;
  for (const Bytes& p : paths) out += (out.empty() ? "" : ", ") + escape_terminal(p);
  return out;
}

void window_record(json::Writer& j, const Window& w, int64_t now) {
  j.schema("window");
  j.str("id", w.id).str("state", w.state(now));
  j.str("opened", format_time_ns(w.opened_ns)).str("until", format_time_ns(w.until_ns));
  if (w.closed_ns) j.str("closed", format_time_ns(w.closed_ns));
  j.array("paths");
  for (const Bytes& p : w.paths) j.str(p);
  j.close();
  if (!w.writer.empty()) j.str("writer", w.writer);
  j.str("reason", w.reason).str("who", w.who);
  if (!w.ticket.empty()) j.bytes("ticket", w.ticket);
}

}  // namespace

void window_fields(json::Writer& j, const Acceptance& a) {
  j.str("window", a.window);
  if (a.window_until_ns) j.str("until", format_time_ns(a.window_until_ns));
  if (!a.window_paths.empty()) {
    j.array("window_paths");
    for (const Bytes& p : a.window_paths) j.str(p);
    j.close();
  }
  if (!a.window_writer.empty()) j.str("window_writer", a.window_writer);
}

std::string window_lines(const Acceptance& a) {
  std::string out = "  window: " + escape_terminal(a.window);
  if (a.window_until_ns)
    out += ", until " + format_time_ns(a.window_until_ns) + ", covers " + scope_text(a.window_paths) +
           (a.window_writer.empty() ? "" : ", written by " + escape_terminal(a.window_writer));
  return out + "\n";
}

int cmd_window(const Options& o) {
  auto ro = run_options(o);
  if (!ro) return report_error(ro.error());
  if (o.action != "open" && !ro->paths.empty()) return report_error({Errc::Usage, 0, "window " + o.action + " takes no PATHs"});
  if (o.action == "open" && ro->window_for_ns == 0) return report_error({Errc::Usage, 0, "window open needs --for"});
  AlertSink sink;
  auto res = run_window(*ro, o.action, sink);
  if (!res) return report_error(res.error());
  const int64_t now = now_ns();
  if (o.action == "list") {
    for (const Window& w : res->windows) {
      if (o.format == Format::Ndjson) {
        json::Writer j;
        window_record(j, w, now);
        std::printf("%s\n", j.take().c_str());
        continue;
      }
      std::printf("window %s: %s, %s .. %s%s, covers %s%s; %s (opened by %s)%s\n", w.id.c_str(), w.state(now),
                  format_time_ns(w.opened_ns).c_str(), format_time_ns(w.until_ns).c_str(),
                  w.closed_ns ? (", closed " + format_time_ns(w.closed_ns)).c_str() : "", scope_text(w.paths).c_str(),
                  w.writer.empty() ? "" : (", written by " + escape_terminal(w.writer_text())).c_str(),
                  escape_terminal(w.reason).c_str(), escape_terminal(w.who).c_str(),
                  w.ticket.empty() ? "" : (" [ticket " + escape_terminal(w.ticket) + "]").c_str());
    }
    if (res->windows.empty() && o.format != Format::Ndjson) std::printf("no windows in this baseline's journal\n");
    return 0;
  }
  for (const Window& w : res->windows) {
    if (w.id != res->touched) continue;
    if (o.action == "open")
      std::printf("window %s open until %s, covers %s%s: %s\naccept what it tags with 'fimctl accept --window %s' "
                  "after 'fimctl check'\n",
                  w.id.c_str(), format_time_ns(w.until_ns).c_str(), scope_text(w.paths).c_str(),
                  w.writer.empty() ? "" : (", written by " + escape_terminal(w.writer_text())).c_str(),
                  escape_terminal(w.reason).c_str(), w.id.c_str());
    else
      std::printf("window %s closed at %s\n", w.id.c_str(), format_time_ns(w.closed_ns).c_str());
  }
  return 0;
}

}  // namespace fim::cli
