// SPDX-License-Identifier: GPL-2.0-or-later
// Human-readable attribute values, one function for every report format.
#include <sys/sysmacros.h>

#include <cstdio>

#include "fim/attr.h"
#include "fim/base/sys.h"

namespace fim {

std::string render_attr(Attr a, const AttrValue& v) {
  char buf[64];
  switch (attr_info(a).kind) {
    case AttrKind::Type:
      return std::string(file_type_name(static_cast<FileType>(v.num)));
    case AttrKind::Mode:
      std::snprintf(buf, sizeof buf, "%04llo", static_cast<unsigned long long>(v.num));
      return buf;
    case AttrKind::Int:
      return std::to_string(v.num);
    case AttrKind::Time:
      return format_time_ns(v.num);
    case AttrKind::DevNo: {
      const auto d = static_cast<dev_t>(v.num);
      std::snprintf(buf, sizeof buf, "%u:%u", major(d), minor(d));
      return buf;
    }
    case AttrKind::Flags:
      return render_flags(static_cast<uint32_t>(v.num));
    case AttrKind::Text:
      return v.bytes;
    case AttrKind::Digest:
      return hex_encode(v.bytes);
    case AttrKind::Xattrs:
      return render_xattrs(v.bytes);
    case AttrKind::Acl:
      return render_acl(v.bytes);
    case AttrKind::Caps:
      return render_caps(v.bytes);
  }
  return {};
}

}  // namespace fim
