// SPDX-License-Identifier: GPL-2.0-or-later
// One streaming tar reader for every archive fimctl opens: a .deb's data part (src/pkg) and
// an image's layers (src/container/image_layers.cpp). Archives are untrusted input: every
// header field is bounded and checked, and a malformed archive is an error, never a guess.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fim/base/result.h"

namespace fim {

struct TarEntry {
  std::string name;     ///< as archived ("./usr/bin/ls", "usr/bin/", pax path, GNU long name)
  char type = '0';      ///< '0' file ('7' is reported as '0'), '1' hard link, '2' symlink,
                        ///< '3' char dev, '4' block dev, '5' dir, '6' fifo
  uint32_t mode = 0;    ///< permission bits (07777)
  uint64_t uid = 0, gid = 0;
  std::string uname, gname;
  uint64_t size = 0;    ///< member data bytes
  int64_t mtime_ns = 0; ///< pax mtime when given (sub-second), else the header's seconds
  std::string link;     ///< symlink target or hard link name
  uint32_t dev_major = 0, dev_minor = 0;
  /// pax SCHILY.xattr.NAME records (file capabilities, ACLs, SELinux labels), in archive order.
  std::vector<std::pair<std::string, std::string>> xattrs;
};

/// Called once per member with a function that reads its data: `read_data(f)` hands every
/// chunk to `f`; data not read is skipped. `what` names the archive in errors ("the package's
/// data archive", "layer sha256:..."). Ends at the end-of-archive blocks or end of input.
using TarDataReader = std::function<Status(const std::function<Status(std::string_view)>&)>;
Status read_tar(int fd, const std::string& what,
                const std::function<Status(const TarEntry&, const TarDataReader&)>& each);

}  // namespace fim
