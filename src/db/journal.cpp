// SPDX-License-Identifier: GPL-2.0-or-later
// The acceptance journal (docs/design.md, Baseline): one canonical text per acceptance, each
// chained to the one before by SHA-256, the count and head covered by the content digest.
#include <map>

#include "fim/base/digest.h"
#include "fim/db.h"

namespace fim {
namespace {

constexpr const char* kZeroHash = "0000000000000000000000000000000000000000000000000000000000000000";

Bytes unhex(std::string_view h, bool* ok) {
  std::optional<Bytes> b = hex_decode(h);
  *ok = b.has_value();
  return b ? std::move(*b) : Bytes();
}

/// The window lines of an entry: window=ID, then for an opening until=NS, scope=HEX,HEX and
/// writer=HEX (each only when set).
std::string window_lines(const Acceptance& a) {
  if (a.window.empty()) return {};
  std::string out = "window=" + hex_encode(a.window) + "\n";
  if (a.window_until_ns) out += "until=" + std::to_string(a.window_until_ns) + "\n";
  if (!a.window_paths.empty()) {
    out += "scope=";
    for (size_t i = 0; i < a.window_paths.size(); ++i) out += (i ? "," : "") + hex_encode(a.window_paths[i]);
    out += "\n";
  }
  if (!a.window_writer.empty()) out += "writer=" + hex_encode(a.window_writer) + "\n";
  if (!a.window_clock.empty()) out += "clock=" + hex_encode(a.window_clock) + "\n";
  return out;
}

}  // namespace

std::string journal_text(const Acceptance& a) {
  // Free text (who, reason, path, ticket) is hex: no value can fake a line.
  return "at=" + std::to_string(a.at_ns) + "\nwho=" + hex_encode(a.who) + "\naction=" + a.action +
         "\nreason=" + hex_encode(a.reason) + "\npath=" + hex_encode(a.path) + "\nkind=" + a.kind +
         "\nold=" + a.old_row + "\nnew=" + a.new_row + "\n" + (a.report.empty() ? "" : "report=" + a.report + "\n") +
         (a.ticket.empty() ? "" : "ticket=" + hex_encode(a.ticket) + "\n") + window_lines(a);
}

bool parse_journal_text(std::string_view text, Acceptance* out) {
  const std::string_view text_in = text;
  std::map<std::string, std::string, std::less<>> kv;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return false;
    const std::string_view line = text.substr(0, nl);
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) return false;
    kv.emplace(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
    text.remove_prefix(nl + 1);
  }
  bool ok1 = true, ok2 = true, ok3 = true;
  for (const char* k : {"at", "who", "action", "reason", "path", "kind", "old", "new"})
    if (!kv.count(k)) return false;
  Acceptance a;
  a.at_ns = std::strtoll(kv["at"].c_str(), nullptr, 10);
  a.who = unhex(kv["who"], &ok1);
  a.action = kv["action"];
  a.reason = unhex(kv["reason"], &ok2);
  a.path = unhex(kv["path"], &ok3);
  a.kind = kv["kind"];
  a.old_row = kv["old"];
  a.new_row = kv["new"];
  if (auto r = kv.find("report"); r != kv.end()) a.report = r->second;  // optional: entries before report ids
  bool ok4 = true;
  if (auto t = kv.find("ticket"); t != kv.end()) a.ticket = unhex(t->second, &ok4);  // optional: --ticket
  if (!ok1 || !ok2 || !ok3 || !ok4) return false;
  if (auto w = kv.find("window"); w != kv.end()) {  // optional: fimctl window, accept --window
    bool ok = true;
    a.window = unhex(w->second, &ok);
    if (auto u = kv.find("until"); u != kv.end()) a.window_until_ns = std::strtoll(u->second.c_str(), nullptr, 10);
    if (auto sc = kv.find("scope"); sc != kv.end()) {
      std::string_view rest = sc->second;
      while (ok) {
        const size_t comma = rest.find(',');
        a.window_paths.push_back(unhex(rest.substr(0, comma), &ok));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    }
    if (auto wr = kv.find("writer"); wr != kv.end()) a.window_writer = unhex(wr->second, &ok);
    if (auto c = kv.find("clock"); c != kv.end()) a.window_clock = unhex(c->second, &ok);
    if (!ok) return false;
  }
  // One spelling per entry: keys in order, no extra keys, decimal time as written, lower-case
  // hex. What is hashed into the chain is then exactly what the fields say.
  if (journal_text(a) != text_in) return false;
  *out = std::move(a);
  return true;
}

std::string BaselineMeta::journal_head() const { return journal.empty() ? kZeroHash : journal.back().hash; }

void BaselineMeta::append_journal(const Acceptance& a) {
  JournalEntry e;
  e.seq = journal.empty() ? 1 : journal.back().seq + 1;
  e.text = journal_text(a);
  bool ok = true;
  e.hash = hex_encode(sha256_of(unhex(journal_head(), &ok) + e.text));
  journal.push_back(std::move(e));
}

/// Whether every entry chains to the one before (reader side).
bool journal_chain_ok(const std::vector<JournalEntry>& j) {
  std::string prev = kZeroHash;
  for (size_t i = 0; i < j.size(); ++i) {
    bool ok = true;
    if (j[i].seq != i + 1 || hex_encode(sha256_of(unhex(prev, &ok) + j[i].text)) != j[i].hash || !ok) return false;
    Acceptance a;
    if (!parse_journal_text(j[i].text, &a)) return false;
    prev = j[i].hash;
  }
  return true;
}

}  // namespace fim
