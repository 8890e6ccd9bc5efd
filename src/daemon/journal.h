// SPDX-License-Identifier: GPL-2.0-or-later
// journald's native protocol without libsystemd (as src/watch/notify.cpp speaks sd_notify's):
// each watch record becomes one journal entry with a PRIORITY and a MESSAGE_ID of its type, so
// `journalctl MESSAGE_ID=... -p warning` selects records without parsing them.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fim/base/fd.h"

namespace fim::watchd {

using JournalFields = std::vector<std::pair<std::string, std::string>>;

/// The MESSAGE_ID of a record type watch writes (128 bits, hex; stable: docs/design.md lists
/// them), or empty for a type that has none.
std::string_view journal_message_id(std::string_view type);
/// Every record type that has a MESSAGE_ID, in the order of docs/design.md.
const std::vector<std::string_view>& journal_record_types();
/// One entry: MESSAGE, PRIORITY (syslog(3)'s level, 0-7), MESSAGE_ID, FIMCTL_TYPE,
/// SYSLOG_IDENTIFIER=fimctl, SYSLOG_FACILITY=3 (daemon, as the syslog(3) path uses).
JournalFields journal_fields(std::string_view type, int priority, std::string_view message);
/// The native protocol's datagram: KEY=value lines; a value holding a newline as KEY, a newline,
/// its length as 64-bit little-endian, the value and a newline.
std::string journal_encode(const JournalFields& fields);
/// True when `fd` is the stream $JOURNAL_STREAM ("DEV:INODE", set by systemd for a service's
/// stdout/stderr) names: writing to it already reaches the journal, as a line without fields.
bool is_journal_stream(int fd, const char* journal_stream);

/// A datagram socket to journald's /run/systemd/journal/socket (or `path`, for tests).
class Journal {
 public:
  explicit Journal(std::string path = "/run/systemd/journal/socket");
  /// The socket exists: journald runs (sd_booted() hosts have it).
  bool available() const;
  /// Sends one entry, through a sealed memfd when it is too large for a datagram (as
  /// sd_journal_sendv does). False when journald did not take it.
  bool send(const std::string& datagram) const;

 private:
  std::string path_;
  UniqueFd fd_;
};

}  // namespace fim::watchd
