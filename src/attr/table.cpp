// SPDX-License-Identifier: GPL-2.0-or-later
// The attribute registry, file types and entry statuses: the persisted vocabularies.
#include <sys/stat.h>

#include "fim/attr.h"

namespace fim {
namespace {

constexpr AttrInfo kAttrTable[] = {
#define FIM_X(id, key, kind) {Attr::id, key, AttrKind::kind},
    FIM_ATTRIBUTES(FIM_X)
#undef FIM_X
};
static_assert(std::size(kAttrTable) == kAttrCount);
static_assert(kAttrCount <= 64, "AttrMask is 64 bits");

}  // namespace

const AttrInfo& attr_info(Attr a) { return kAttrTable[static_cast<size_t>(a)]; }

std::optional<Attr> attr_from_key(std::string_view key) {
  for (const auto& info : kAttrTable)
    if (info.key == key) return info.id;
  return std::nullopt;
}

bool attr_is_integer(Attr a) {
  switch (attr_info(a).kind) {
    case AttrKind::Type:
    case AttrKind::Mode:
    case AttrKind::Int:
    case AttrKind::Time:
    case AttrKind::DevNo:
    case AttrKind::Flags:
      return true;
    default:
      return false;
  }
}

FileType file_type_of(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return FileType::File;
    case S_IFDIR: return FileType::Dir;
    case S_IFLNK: return FileType::Symlink;
    case S_IFIFO: return FileType::Fifo;
    case S_IFSOCK: return FileType::Socket;
    case S_IFCHR: return FileType::CharDev;
    case S_IFBLK: return FileType::BlockDev;
    default: return FileType::Unknown;
  }
}

std::string_view file_type_name(FileType t) {
  switch (t) {
    case FileType::File: return "file";
    case FileType::Dir: return "dir";
    case FileType::Symlink: return "symlink";
    case FileType::Fifo: return "fifo";
    case FileType::Socket: return "socket";
    case FileType::CharDev: return "chardev";
    case FileType::BlockDev: return "blockdev";
    case FileType::Unknown: break;
  }
  return "unknown";
}

std::string_view entry_status_name(EntryStatus s) {
  switch (s) {
    case EntryStatus::Ok: return "ok";
    case EntryStatus::Unreadable: return "unreadable";
    case EntryStatus::Vanished: return "vanished";
    case EntryStatus::Unstable: return "unstable";
    case EntryStatus::TooLarge: return "too_large";
    case EntryStatus::SkippedFs: return "skipped_fs";
    case EntryStatus::Timeout: return "timeout";
  }
  return "unknown";
}

std::string_view evidence_name(EntryEvidence e) {
  static constexpr std::string_view kNames[kEvidenceCount] = {"hashed", "verity", "watched", "stat"};
  return kNames[static_cast<size_t>(e)];
}

bool entry_status_is_failure(EntryStatus s) {
  return s == EntryStatus::Unreadable || s == EntryStatus::Vanished ||
         s == EntryStatus::Unstable || s == EntryStatus::Timeout;
}

void fill_stat_attrs(const struct stat& st, AttrMask mask, Record* r) {
  const auto put = [&](Attr a, int64_t n) {
    if (mask & attr_bit(a)) r->set_num(a, n);
  };
  const FileType type = file_type_of(st.st_mode);
  r->set_num(Attr::Type, static_cast<int64_t>(type));  // always: every comparison needs it
  put(Attr::Mode, st.st_mode & 07777);
  put(Attr::Uid, st.st_uid);
  put(Attr::Gid, st.st_gid);
  put(Attr::Size, st.st_size);
  put(Attr::Mtime, static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec);
  put(Attr::Ctime, static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec);
  put(Attr::Inode, static_cast<int64_t>(st.st_ino));
  put(Attr::Dev, static_cast<int64_t>(st.st_dev));
  if (type == FileType::CharDev || type == FileType::BlockDev)
    put(Attr::Rdev, static_cast<int64_t>(st.st_rdev));
  put(Attr::Nlink, static_cast<int64_t>(st.st_nlink));
}

}  // namespace fim
