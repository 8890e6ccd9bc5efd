// SPDX-License-Identifier: GPL-2.0-or-later
#include "fim/diff.h"

namespace fim {

std::string_view change_kind_name(ChangeKind k) {
  switch (k) {
    case ChangeKind::Added: return "added";
    case ChangeKind::Removed: return "removed";
    case ChangeKind::Changed: return "changed";
  }
  return "unknown";
}

AttrMask compare(const Record& old_rec, const Record& new_rec, bool growing) {
  const bool type_changed = old_rec.type() != new_rec.type();
  AttrMask changed = 0;
  for (size_t i = 0; i < kAttrCount; ++i) {
    const Attr a = static_cast<Attr>(i);
    const bool in_old = old_rec.has(a), in_new = new_rec.has(a);
    if (in_old && in_new) {
      if (a == Attr::Size && growing && !type_changed && new_rec.get(a).num >= old_rec.get(a).num) continue;
      if (!(old_rec.get(a) == new_rec.get(a))) changed |= attr_bit(a);
    } else if (type_changed && (in_old || in_new)) {
      // An empty set on one side and "not applicable" on the other (no capabilities on a
      // file that became a symlink) is no information: leave it out.
      const AttrValue& v = in_old ? old_rec.get(a) : new_rec.get(a);
      if (attr_is_integer(a) || !v.bytes.empty()) changed |= attr_bit(a);
    }
  }
  return changed;
}

}  // namespace fim
