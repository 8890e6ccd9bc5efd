// SPDX-License-Identifier: GPL-2.0-or-later
// Maintenance windows: their journal lines, windows_of(), and what WindowTags tags.
#include <doctest/doctest.h>

#include "pipeline/fast.h"
#include "fim/base/sys.h"
#include "fim/window.h"

using namespace fim;

namespace {

class Alerts final : public Sink {
 public:
  std::vector<std::string> codes;
  void change(ChangeKind, const Record*, const Record*, AttrMask, const Rule*) override {}
  void entry_status(const Record&, bool, const Rule*) override {}
  void alert(std::string_view code, std::string_view) override { codes.emplace_back(code); }
  Status finish(const Summary&) override { return {}; }
};

Record file(const Bytes& path, int64_t ctime) {
  Record r;
  r.path = path;
  r.set_num(Attr::Type, static_cast<int64_t>(FileType::File));
  r.set_num(Attr::Ctime, ctime);
  return r;
}

/// A baseline whose journal opens window 1 at `at` for `dur` on `paths`, on this boot's clock
/// unless `clock` says otherwise.
BaselineMeta with_window(int64_t at, int64_t dur, std::vector<Bytes> paths, std::string writer = {},
                         std::string clock = {}) {
  BaselineMeta m;
  m.baseline_id = "b";
  Acceptance a{at, "root", "window", "deploy", {}, "open", "-", "-", "", ""};
  a.window = "1";
  a.window_until_ns = at + dur;
  a.window_paths = std::move(paths);
  a.window_writer = std::move(writer);
  const StateStore::CheckClock c = detail::clock_now("b");
  a.window_clock = clock.empty() ? c.boot_id + " " + std::to_string(c.offset_ns) : clock;
  m.append_journal(a);
  return m;
}

constexpr int64_t kMin = 60'000'000'000;

}  // namespace

TEST_CASE("a window's journal lines round-trip, and nothing else parses") {
  Acceptance a{5, "root", "window", "CHG-1", {}, "open", "-", "-", "", "T-1"};
  a.window = "3";
  a.window_until_ns = 99;
  a.window_paths = {"/srv/app", "/etc/a,b"};  // a comma in a path is hex, not a separator
  a.window_writer = "unit:deploy.service";
  a.window_clock = "boot 12";
  const std::string text = journal_text(a);
  Acceptance b;
  REQUIRE(parse_journal_text(text, &b));
  CHECK(b.window == "3");
  CHECK(b.window_until_ns == 99);
  CHECK(b.window_paths == a.window_paths);
  CHECK(b.window_writer == a.window_writer);
  CHECK(b.window_clock == a.window_clock);
  CHECK(journal_text(b) == text);
  // An expiry without a window, or a window line out of order, is not canonical.
  Acceptance plain{5, "root", "accept", "r", "/f", "changed", "a", "b", "", ""};
  CHECK_FALSE(parse_journal_text(journal_text(plain) + "until=7\n", &b));
  const std::string moved = "window=" + hex_encode("3") + "\n";
  std::string reordered = text;
  reordered.erase(reordered.find(moved), moved.size());
  CHECK_FALSE(parse_journal_text(reordered + moved, &b));
  CHECK_FALSE(parse_journal_text(journal_text(plain) + "window=zz\n", &b));
}

TEST_CASE("windows_of: opened, closed, expired") {
  const int64_t now = now_ns();
  BaselineMeta m = with_window(now - kMin, 10 * kMin, {"/srv"});
  Acceptance close{now, "root", "window", "done", {}, "close", "-", "-", "", ""};
  close.window = "1";
  auto ws = windows_of(with_window(now - kMin, 10 * kMin, {"/srv"}));
  REQUIRE(ws.size() == 1);
  CHECK(std::string(ws[0].state(now)) == "open");
  CHECK(std::string(ws[0].state(now + 10 * kMin)) == "expired");
  CHECK(ws[0].covers("/srv/x"));
  CHECK_FALSE(ws[0].covers("/srvx"));
  m.append_journal(close);
  ws = windows_of(m);
  CHECK(std::string(ws[0].state(now)) == "closed");
  CHECK(ws[0].end_ns() == now);
}

TEST_CASE("a window without a writer tags by ctime inside it, below its paths, never a removal") {
  const int64_t now = now_ns();
  Alerts sink;
  const WindowTags tags(with_window(now - 10 * kMin, 5 * kMin, {"/srv"}), {}, sink);
  const Record inside = file("/srv/a", now - 8 * kMin), after = file("/srv/a", now - 4 * kMin),
               before = file("/srv/a", now - 11 * kMin), outside = file("/etc/a", now - 8 * kMin);
  CHECK(tags.tag(ChangeKind::Changed, &inside, &inside));
  CHECK_FALSE(tags.tag(ChangeKind::Changed, &after, &after));
  CHECK_FALSE(tags.tag(ChangeKind::Changed, &before, &before));
  CHECK_FALSE(tags.tag(ChangeKind::Added, nullptr, &outside));
  CHECK_FALSE(tags.tag(ChangeKind::Removed, &inside, nullptr));
  Record undated = inside;
  undated.have &= ~attr_bit(Attr::Ctime);  // a rule that does not record ctime
  CHECK_FALSE(tags.tag(ChangeKind::Changed, &undated, &undated));
  CHECK(sink.codes.empty());
}

TEST_CASE("another boot or a stepped clock withdraws a window's tags, said once") {
  const int64_t now = now_ns();
  const StateStore::CheckClock c = detail::clock_now("b");
  const Record inside = file("/srv/a", now - 8 * kMin);
  for (const std::string& clock : {std::string("another-boot ") + std::to_string(c.offset_ns),
                                   c.boot_id + " " + std::to_string(c.offset_ns + 3'000'000'000LL)}) {
    Alerts sink;
    const WindowTags tags(with_window(now - 10 * kMin, 5 * kMin, {"/srv"}, "", clock), {}, sink);
    CHECK_FALSE(tags.tag(ChangeKind::Changed, &inside, &inside));
    CHECK_FALSE(tags.tag(ChangeKind::Changed, &inside, &inside));
    CHECK(sink.codes == std::vector<std::string>{"window_clock"});
  }
}

TEST_CASE("a window naming a writer tags only what the daemon saw that writer alone write") {
  const int64_t now = now_ns();
  const int64_t opened = now - 10 * kMin;
  StateStore::WindowWrite w;
  w.window = "1";
  w.path = "/srv/a";
  w.at_ns = opened + 3 * kMin;
  w.by_writer = true;
  w.who = "deployer (pid 7)";
  w.watched_from_ns = opened + kMin;
  w.watched_to_ns = opened + 5 * kMin;
  const BaselineMeta m = with_window(opened, 6 * kMin, {"/srv"}, "process:deployer");
  Alerts sink;
  const Record written = file("/srv/a", opened + 3 * kMin - 1000);
  CHECK_FALSE(WindowTags(m, {}, sink).tag(ChangeKind::Changed, &written, &written));  // no daemon record
  CHECK(WindowTags(m, {w}, sink).tag(ChangeKind::Changed, &written, &written));
  const Record later = file("/srv/a", opened + 4 * kMin);  // after the last write it saw
  CHECK_FALSE(WindowTags(m, {w}, sink).tag(ChangeKind::Changed, &later, &later));
  const Record unwatched = file("/srv/a", opened + 30'000'000'000);  // before it watched
  CHECK_FALSE(WindowTags(m, {w}, sink).tag(ChangeKind::Changed, &unwatched, &unwatched));
  CHECK(WindowTags(m, {w}, sink).tag(ChangeKind::Removed, &written, nullptr));
  StateStore::WindowWrite other = w;
  other.by_writer = false;
  CHECK_FALSE(WindowTags(m, {other}, sink).tag(ChangeKind::Changed, &written, &written));
  StateStore::WindowWrite lossy = w;
  lossy.lossy = true;
  CHECK_FALSE(WindowTags(m, {lossy}, sink).tag(ChangeKind::Changed, &written, &written));
  StateStore::WindowWrite elsewhere = w;
  elsewhere.path = "/srv/b";
  CHECK_FALSE(WindowTags(m, {elsewhere}, sink).tag(ChangeKind::Changed, &written, &written));
}
