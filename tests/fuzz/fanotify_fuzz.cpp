// SPDX-License-Identifier: GPL-2.0-or-later
// The fanotify record parser on arbitrary bytes (docs/design.md, Tests): no read outside the
// buffer, and every parsed record lies inside it.
#include <cstdint>

#include "fim/watch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t bytes = 0;
  (void)fim::parse_fanotify(in, [&](fim::FanEvent&& e) {
    for (const auto& i : e.infos) bytes += i.handle.size() + i.name.size();
    (void)fim::fan_mask_names(e.mask);
  });
  if (bytes > size) __builtin_trap();
  return 0;
}
