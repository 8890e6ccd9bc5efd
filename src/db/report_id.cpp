// SPDX-License-Identifier: GPL-2.0-or-later
// A report's id (docs/design.md, Baseline: acceptance): what binds 'accept --report ID' and
// 'update --report ID' to the report the operator reviewed.
#include <endian.h>

#include "fim/base/bytes.h"
#include "fim/db.h"
#include "fim/state.h"

namespace fim {

namespace {

/// Each field length-prefixed (u32, little-endian): no two different records encode alike.
void field(Sha256Stream& sha, std::string_view s) {
  const uint32_t n = htole32(static_cast<uint32_t>(s.size()));
  sha.update(std::string_view(reinterpret_cast<const char*>(&n), sizeof n));
  sha.update(s);
}

}  // namespace

ReportDigest::ReportDigest() { sha_.update("fimctl-report-v1\n"); }

void ReportDigest::add(const StateStore::Reported& r) {
  field(sha_, r.path);
  field(sha_, r.kind);
  field(sha_, r.old_row);
  field(sha_, r.new_row);
}

std::string ReportDigest::hex() { return hex_encode(sha_.finish()); }

std::string report_id_of(const std::vector<StateStore::Reported>& entries) {
  ReportDigest d;
  for (const auto& r : entries) d.add(r);
  return d.hex();
}

}  // namespace fim
