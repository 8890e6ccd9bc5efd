// SPDX-License-Identifier: GPL-2.0-or-later
// parse_fanotify on buffers laid out as the kernel writes them (include/uapi/linux/fanotify.h),
// and on buffers it never writes: every length is checked before it is used.
#include <sys/fanotify.h>

#include <cstring>
#include <doctest/doctest.h>

#include "fim/watch.h"

using namespace fim;

namespace {

/// One FID-kind info record: header, fsid, handle_bytes, handle_type, handle, name + NUL, padded.
std::string info_record(uint8_t type, uint32_t fsid0, const std::string& handle, const std::string& name) {
  std::string body;
  const int32_t fsid[2] = {static_cast<int32_t>(fsid0), 7};
  body.append(reinterpret_cast<const char*>(fsid), sizeof fsid);
  const uint32_t hbytes = static_cast<uint32_t>(handle.size());
  const int32_t htype = 1;
  body.append(reinterpret_cast<const char*>(&hbytes), 4);
  body.append(reinterpret_cast<const char*>(&htype), 4);
  body += handle;
  if (type != FAN_EVENT_INFO_TYPE_FID && type != FAN_EVENT_INFO_TYPE_DFID) body += name + '\0';
  while ((body.size() + sizeof(fanotify_event_info_header)) % 4) body += '\0';
  fanotify_event_info_header hdr{};
  hdr.info_type = type;
  hdr.len = static_cast<uint16_t>(sizeof hdr + body.size());
  return std::string(reinterpret_cast<const char*>(&hdr), sizeof hdr) + body;
}

std::string event(uint64_t mask, int32_t pid, const std::string& infos) {
  fanotify_event_metadata md{};
  md.event_len = static_cast<uint32_t>(sizeof md + infos.size());
  md.vers = FANOTIFY_METADATA_VERSION;
  md.metadata_len = sizeof md;
  md.mask = mask;
  md.fd = FAN_NOFD;
  md.pid = pid;
  return std::string(reinterpret_cast<const char*>(&md), sizeof md) + infos;
}

std::vector<FanEvent> parse(const std::string& buf, Status* st) {
  std::vector<FanEvent> out;
  *st = parse_fanotify(buf, [&](FanEvent&& e) { out.push_back(std::move(e)); });
  return out;
}

}  // namespace

TEST_CASE("a create with its directory handle and name, then a rename with both sides") {
  const std::string buf =
      event(FAN_CREATE, 42, info_record(FAN_EVENT_INFO_TYPE_DFID_NAME, 1, "HANDLE01", "passwd") +
                                info_record(FAN_EVENT_INFO_TYPE_FID, 1, "OBJECT01", "")) +
      event(FAN_MOVED_FROM | FAN_ONDIR, 43, info_record(FAN_EVENT_INFO_TYPE_DFID_NAME, 2, "H2", "old dir"));
  Status st;
  const auto evs = parse(buf, &st);
  REQUIRE(st);
  REQUIRE(evs.size() == 2);
  CHECK(evs[0].mask == FAN_CREATE);
  CHECK(evs[0].pid == 42);
  REQUIRE(evs[0].infos.size() == 2);
  CHECK(evs[0].infos[0].kind == FanInfo::Kind::DfidName);
  CHECK(evs[0].infos[0].handle == "HANDLE01");
  CHECK(evs[0].infos[0].name == "passwd");
  CHECK(evs[0].infos[0].fsid == ((uint64_t{1} << 32) | 7));
  CHECK(evs[0].infos[1].kind == FanInfo::Kind::Fid);
  CHECK(evs[0].infos[1].name.empty());
  CHECK(evs[1].dir_renamed());
  CHECK(evs[1].infos[0].name == "old dir");
  CHECK(fan_mask_names(evs[1].mask) == std::vector<std::string>{"moved_from", "ondir"});
}

TEST_CASE("an overflow carries no record") {
  Status st;
  const auto evs = parse(event(FAN_Q_OVERFLOW, 0, ""), &st);
  REQUIRE(st);
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].overflow());
  CHECK(evs[0].infos.empty());
}

TEST_CASE("records the kernel never writes are errors, not reads past the buffer") {
  const std::string good = event(FAN_CREATE, 1, info_record(FAN_EVENT_INFO_TYPE_DFID_NAME, 1, "HH", "x"));
  Status st;
  SUBCASE("truncated header") { parse(good.substr(0, 10), &st); CHECK(!st); }
  SUBCASE("event_len beyond the buffer") { parse(good.substr(0, good.size() - 4), &st); CHECK(!st); }
  SUBCASE("wrong metadata version") {
    std::string b = good;
    b[4] = 99;  // vers
    parse(b, &st);
    CHECK(!st);
    CHECK(st.error().code == Errc::Unsupported);
  }
  SUBCASE("info length past the event") {
    std::string b = good;
    const size_t hdr = sizeof(fanotify_event_metadata);
    b[hdr + 2] = static_cast<char>(0xff);  // len low byte
    b[hdr + 3] = 0x7f;
    parse(b, &st);
    CHECK(!st);
  }
  SUBCASE("handle longer than its record") {
    std::string b = good;
    const size_t hb = sizeof(fanotify_event_metadata) + sizeof(fanotify_event_info_header) + 8;
    b[hb] = 100;
    parse(b, &st);
    CHECK(!st);
  }
  SUBCASE("name without its NUL") {
    std::string b = good;
    for (size_t i = b.size() - 1; i > b.size() - 4; --i) b[i] = 'z';
    b[b.size() - 4] = 'z';
    parse(b, &st);
    CHECK(!st);
  }
  SUBCASE("the good one parses") { CHECK(parse(good, &st).size() == 1); CHECK(st); }
}
