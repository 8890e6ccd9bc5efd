// SPDX-License-Identifier: GPL-2.0-or-later
// fanotify in FID mode: the group, its filesystem marks, and the parser of what read(2)
// returns (docs/design.md, Real time). The parser trusts no length in the buffer.
#include <fcntl.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "fim/watch.h"

#ifndef FAN_EVENT_INFO_TYPE_OLD_DFID_NAME
#define FAN_EVENT_INFO_TYPE_OLD_DFID_NAME 10
#define FAN_EVENT_INFO_TYPE_NEW_DFID_NAME 12
#endif

namespace fim {

namespace {

// What a change to a watched file can look like (docs/design.md, Real time). FAN_MODIFY as well as
// close_write: a writer that keeps the file open must not hide its writes until it closes.
constexpr uint64_t kMarkMask = FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_ATTRIB |
                               FAN_CLOSE_WRITE | FAN_MODIFY | FAN_ONDIR;

template <class T>
T load(std::string_view buf, size_t off) {
  T v;
  std::memcpy(&v, buf.data() + off, sizeof v);
  return v;
}

}  // namespace

bool FanEvent::overflow() const { return (mask & FAN_Q_OVERFLOW) != 0; }
bool FanEvent::dir_renamed() const { return (mask & FAN_ONDIR) && (mask & (FAN_MOVED_FROM | FAN_MOVED_TO)); }

std::vector<std::string> fan_mask_names(uint64_t mask) {
  static const std::pair<uint64_t, const char*> kNames[] = {
      {FAN_CREATE, "create"},       {FAN_DELETE, "delete"},       {FAN_MOVED_FROM, "moved_from"},
      {FAN_MOVED_TO, "moved_to"},   {FAN_ATTRIB, "attrib"},       {FAN_CLOSE_WRITE, "close_write"},
      {FAN_MODIFY, "modify"},       {FAN_DELETE_SELF, "delete_self"}, {FAN_MOVE_SELF, "move_self"},
      {FAN_Q_OVERFLOW, "overflow"}, {FAN_ONDIR, "ondir"},
  };
  std::vector<std::string> out;
  for (const auto& [bit, name] : kNames)
    if (mask & bit) out.emplace_back(name);
  return out;
}

Status parse_fanotify(std::string_view buf, const std::function<void(FanEvent&&)>& on_event) {
  size_t off = 0;
  while (off < buf.size()) {
    if (buf.size() - off < sizeof(fanotify_event_metadata))
      return make_error(Errc::Io, "fanotify: truncated event header");
    const auto md = load<fanotify_event_metadata>(buf, off);
    if (md.vers != FANOTIFY_METADATA_VERSION)
      return make_error(Errc::Unsupported, "fanotify: metadata version " + std::to_string(md.vers) + " (this fimctl knows " +
                                               std::to_string(FANOTIFY_METADATA_VERSION) + ")");
    if (md.event_len < sizeof md || md.event_len > buf.size() - off || md.metadata_len < sizeof md ||
        md.metadata_len > md.event_len)
      return make_error(Errc::Io, "fanotify: event length out of range");
    FanEvent ev;
    ev.mask = md.mask;
    ev.pid = md.pid;
    // md.fd is FAN_NOFD in FID mode; the parser never touches descriptors (it is fuzzed).
    size_t ioff = off + md.metadata_len;
    const size_t end = off + md.event_len;
    while (ioff < end) {
      if (end - ioff < sizeof(fanotify_event_info_header)) return make_error(Errc::Io, "fanotify: truncated info record");
      const auto hdr = load<fanotify_event_info_header>(buf, ioff);
      if (hdr.len < sizeof hdr || hdr.len > end - ioff) return make_error(Errc::Io, "fanotify: info record length out of range");
      FanInfo info;
      bool known = true;
      switch (hdr.info_type) {
        case FAN_EVENT_INFO_TYPE_FID: info.kind = FanInfo::Kind::Fid; break;
        case FAN_EVENT_INFO_TYPE_DFID: info.kind = FanInfo::Kind::Dfid; break;
        case FAN_EVENT_INFO_TYPE_DFID_NAME: info.kind = FanInfo::Kind::DfidName; break;
        case FAN_EVENT_INFO_TYPE_OLD_DFID_NAME: info.kind = FanInfo::Kind::OldDfidName; break;
        case FAN_EVENT_INFO_TYPE_NEW_DFID_NAME: info.kind = FanInfo::Kind::NewDfidName; break;
        default: known = false;  // pidfd, error, range...: not asked for, skipped
      }
      if (known) {
        // fanotify_event_info_fid: header, fsid, then a struct file_handle (bytes, type, data).
        constexpr size_t kFixed = sizeof(fanotify_event_info_header) + sizeof(__kernel_fsid_t) + 8;
        if (hdr.len < kFixed) return make_error(Errc::Io, "fanotify: FID record too short");
        const auto fsid = load<__kernel_fsid_t>(buf, ioff + sizeof hdr);
        info.fsid = (static_cast<uint64_t>(static_cast<uint32_t>(fsid.val[0])) << 32) | static_cast<uint32_t>(fsid.val[1]);
        const auto hbytes = load<uint32_t>(buf, ioff + sizeof hdr + sizeof fsid);
        info.handle_type = load<int32_t>(buf, ioff + sizeof hdr + sizeof fsid + 4);
        if (hbytes > hdr.len - kFixed) return make_error(Errc::Io, "fanotify: file handle longer than its record");
        info.handle.assign(buf.data() + ioff + kFixed, hbytes);
        if (info.kind != FanInfo::Kind::Fid && info.kind != FanInfo::Kind::Dfid) {
          const std::string_view rest(buf.data() + ioff + kFixed + hbytes, hdr.len - kFixed - hbytes);
          const size_t nul = rest.find('\0');
          if (nul == std::string_view::npos) return make_error(Errc::Io, "fanotify: name not terminated");
          info.name.assign(rest.substr(0, nul));
        }
        ev.infos.push_back(std::move(info));
      }
      ioff += hdr.len;
    }
    on_event(std::move(ev));
    off = end;
  }
  return {};
}

Result<FanotifySource> FanotifySource::open() {
  // FAN_REPORT_TARGET_FID (5.17): a create, delete or move also names the entry itself, so a
  // hard link made outside every root to a baseline file is seen for what it links to.
  constexpr unsigned kBase = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME | FAN_REPORT_FID;
  // FAN_UNLIMITED_MARKS: one inode mark per directory below the roots (and per file with a
  // second name); the default cap is meant for unprivileged groups.
  int fd = ::fanotify_init(kBase | FAN_UNLIMITED_MARKS | FAN_REPORT_TARGET_FID, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (fd < 0 && errno == EINVAL) fd = ::fanotify_init(kBase | FAN_UNLIMITED_MARKS, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == EPERM)
      return make_error(Errc::Unsupported, "fanotify needs CAP_SYS_ADMIN (run fimctl watch as root)", err);
    return make_error(Errc::Unsupported, "fanotify in FID mode is not available (Linux 5.9 or later is needed)", err);
  }
  FanotifySource s{UniqueFd(fd)};
  s.buf_.resize(256 * 1024);
  return s;
}

Status FanotifySource::mark_filesystem(const Bytes& dir) {
  if (::fanotify_mark(fd_.get(), FAN_MARK_ADD | FAN_MARK_FILESYSTEM, kMarkMask, AT_FDCWD, dir.c_str()) != 0) {
    const int err = errno;
    return make_error(err == EXDEV || err == EOPNOTSUPP || err == ENODEV ? Errc::Unsupported : Errc::Io,
                      "cannot watch the filesystem of " + quote(dir), err);
  }
  return {};
}

Status FanotifySource::mark(Mark kind, int fd) {
  uint64_t mask = 0;
  unsigned flags = FAN_MARK_ADD;
  switch (kind) {
    case Mark::Directory: mask = kMarkMask | FAN_EVENT_ON_CHILD; break;
    case Mark::Ancestor: mask = FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_ATTRIB | FAN_ONDIR; break;
    case Mark::File: mask = FAN_CLOSE_WRITE | FAN_MODIFY | FAN_ATTRIB; break;
    case Mark::Links: mask = FAN_ATTRIB, flags |= FAN_MARK_FILESYSTEM; break;
  }
  // Through /proc/self/fd: fanotify_mark(2) with no pathname refuses O_PATH descriptors (EBADF),
  // and opening a file to read it only to mark it would touch its access time.
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  if (::fanotify_mark(fd_.get(), flags, mask, AT_FDCWD, path) != 0) {
    const int err = errno;
    return make_error(err == EXDEV || err == EOPNOTSUPP || err == ENODEV ? Errc::Unsupported : Errc::Io,
                      "fanotify_mark", err);
  }
  return {};
}

Result<bool> FanotifySource::read(const std::function<void(FanEvent&&)>& on_event) {
  const ssize_t n = ::read(fd_.get(), buf_.data(), buf_.size());
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return false;
    return make_error(Errc::Io, "reading fanotify events", errno);
  }
  if (n == 0) return false;
  FIM_TRY(parse_fanotify(std::string_view(buf_.data(), static_cast<size_t>(n)), on_event));
  return true;
}

}  // namespace fim
