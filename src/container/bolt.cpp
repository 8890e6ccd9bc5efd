// SPDX-License-Identifier: GPL-2.0-or-later
// bolt (src/container/bolt.h). The on-disk format, as go.etcd.io/bbolt (v1.3, the version
// containerd 1.6/1.7 vendor) writes it, little-endian (the only byte order it is written in on
// the machines fimctl supports):
//   page header (16 bytes): id u64, flags u16 (branch 0x01, leaf 0x02, meta 0x04, freelist
//     0x10), count u16 (elements), overflow u32 (the page continues over that many more pages).
//   meta (pages 0 and 1, after the header): magic u32 0xED0CDAED, version u32 2, pageSize u32,
//     flags u32, root bucket {root pgid u64, sequence u64}, freelist pgid u64, pgid u64 (the
//     high-water mark: pages in use are below it), txid u64, checksum u64 (FNV-64a of the 56
//     bytes before it). A commit writes meta txid%2: the valid one with the higher txid wins.
//   branch element (16 bytes): pos u32, ksize u32, pgid u64; key at element + pos.
//   leaf element (16 bytes): flags u32 (bucket 0x01), pos u32, ksize u32, vsize u32; key at
//     element + pos, the value right after it.
//   A bucket's value: {root pgid u64, sequence u64}; root 0 is an inline bucket: a leaf page
//     (header and elements) follows in the value itself.
#include "bolt.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

namespace fim::bolt {
namespace {

constexpr size_t kHeader = 16;
constexpr size_t kElement = 16;
constexpr uint16_t kBranch = 0x01, kLeaf = 0x02, kMeta = 0x04;
constexpr uint32_t kBucketLeaf = 0x01;
constexpr size_t kMetaBytes = 64;      // the meta struct
constexpr size_t kChecksummed = 56;    // the meta bytes its checksum covers
constexpr size_t kMaxCached = size_t{256} << 20;

template <class T>
T load(std::string_view s, size_t off) {
  T v;
  std::memcpy(&v, s.data() + off, sizeof v);
  return v;
}

struct Meta {
  uint32_t page_size = 0;
  uint64_t root = 0, high_water = 0, txid = 0;
};

/// The meta at the start of `page` (header included), if it is one bbolt would accept.
std::optional<Meta> parse_meta(std::string_view page, uint64_t id) {
  if (page.size() < kHeader + kMetaBytes) return std::nullopt;
  if (load<uint64_t>(page, 0) != id || load<uint16_t>(page, 8) != kMeta) return std::nullopt;
  const std::string_view m = page.substr(kHeader, kMetaBytes);
  if (load<uint32_t>(m, 0) != Db::kMagic || load<uint32_t>(m, 4) != 2) return std::nullopt;
  if (load<uint64_t>(m, kChecksummed) != fnv64a(m.substr(0, kChecksummed))) return std::nullopt;
  Meta out;
  out.page_size = load<uint32_t>(m, 8);
  out.root = load<uint64_t>(m, 16);
  out.high_water = load<uint64_t>(m, 40);
  out.txid = load<uint64_t>(m, 48);
  // Page sizes bbolt is used with: the OS page size (4 KiB to 64 KiB) or one given.
  if (out.page_size < 1024 || out.page_size > 65536 || (out.page_size & (out.page_size - 1)) != 0) return std::nullopt;
  return out;
}

struct Header {
  uint16_t flags = 0;
  size_t count = 0;
};

}  // namespace

uint64_t fnv64a(std::string_view data) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

Result<Db> Db::open(const Bytes& path) {
  Db db;
  db.path_ = path;
  // O_NONBLOCK: a FIFO planted in its place must not hang the caller.
  db.fd_ = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!db.fd_.valid()) return make_error(Errc::Io, "cannot open " + quote(path), errno);
  struct stat st {};
  if (::fstat(db.fd_.get(), &st) != 0) return make_error(Errc::Io, "cannot stat " + quote(path), errno);
  if (!S_ISREG(st.st_mode)) return make_error(Errc::Database, quote(path) + " is not a regular file");
  db.file_size_ = static_cast<uint64_t>(st.st_size);
  auto read_at = [&](uint64_t off, size_t n) {
    std::string buf(n, '\0');
    if (off >= db.file_size_) return std::string();
    const ssize_t r = ::pread(db.fd_.get(), buf.data(), n, static_cast<off_t>(off));
    buf.resize(r > 0 ? static_cast<size_t>(r) : 0);
    return buf;
  };
  const auto m0 = parse_meta(read_at(0, kHeader + kMetaBytes), 0);
  std::optional<Meta> m1;
  if (m0) {
    m1 = parse_meta(read_at(m0->page_size, kHeader + kMetaBytes), 1);
  } else {  // meta 0 torn: bbolt then tries meta 1 at the OS page size; so do we, at each size
    for (uint32_t ps = 1024; ps <= 65536 && !m1; ps *= 2) {
      m1 = parse_meta(read_at(ps, kHeader + kMetaBytes), 1);
      if (m1 && m1->page_size != ps) m1.reset();
    }
  }
  if (m0 && m1 && m0->page_size != m1->page_size) m1.reset();
  const Meta* m = m0 && (!m1 || m0->txid >= m1->txid) ? &*m0 : m1 ? &*m1 : nullptr;
  if (!m) return make_error(Errc::Database, quote(path) + " is not a bbolt database (no valid meta page)");
  db.page_size_ = m->page_size;
  db.high_water_ = m->high_water;
  db.txid_ = m->txid;
  db.root_.root = m->root;
  if (db.high_water_ < 3 || db.high_water_ > db.file_size_ / db.page_size_)
    return make_error(Errc::Database, quote(path) + ": its pages in use (" + std::to_string(db.high_water_) +
                                          ") do not fit the file");
  if (db.root_.root < 2 || db.root_.root >= db.high_water_)
    return make_error(Errc::Database, quote(path) + ": root page " + std::to_string(db.root_.root) + " out of range");
  return db;
}

Result<const std::string*> Db::page(uint64_t id) {
  if (auto it = pages_.find(id); it != pages_.end()) return &it->second;
  const std::string where = quote(path_) + ": page " + std::to_string(id);
  if (id < 2 || id >= high_water_) return make_error(Errc::Database, where + " out of range");
  const uint64_t off = id * page_size_;  // id < high_water_ <= file_size_ / page_size_: no overflow
  std::string buf(page_size_, '\0');
  ssize_t r = ::pread(fd_.get(), buf.data(), buf.size(), static_cast<off_t>(off));
  if (r != static_cast<ssize_t>(buf.size())) return make_error(Errc::Io, where + ": short read", r < 0 ? errno : 0);
  if (load<uint64_t>(buf, 0) != id) return make_error(Errc::Database, where + ": its header names another page");
  const uint64_t overflow = load<uint32_t>(buf, 12);
  if (overflow >= high_water_ - id || (overflow + 1) * page_size_ > kMaxPageBytes)
    return make_error(Errc::Database, where + ": overflow " + std::to_string(overflow) + " out of range");
  if (overflow > 0) {
    buf.resize((overflow + 1) * page_size_);
    const size_t rest = buf.size() - page_size_;
    r = ::pread(fd_.get(), buf.data() + page_size_, rest, static_cast<off_t>(off + page_size_));
    if (r != static_cast<ssize_t>(rest)) return make_error(Errc::Io, where + ": short read", r < 0 ? errno : 0);
  }
  if (cached_bytes_ + buf.size() > kMaxCached) return make_error(Errc::Database, quote(path_) + ": too many pages read");
  cached_bytes_ += buf.size();
  return &pages_.emplace(id, std::move(buf)).first->second;
}

namespace {

/// The header of a branch or leaf page, its elements checked to lie inside it.
Result<Header> header(std::string_view p, const std::string& where) {
  if (p.size() < kHeader) return make_error(Errc::Database, where + ": truncated page");
  Header h{load<uint16_t>(p, 8), load<uint16_t>(p, 10)};
  if (h.flags != kBranch && h.flags != kLeaf)
    return make_error(Errc::Database, where + ": not a branch or leaf page (flags " + std::to_string(h.flags) + ")");
  if (kHeader + h.count * kElement > p.size()) return make_error(Errc::Database, where + ": elements past its end");
  if (h.flags == kBranch && h.count == 0) return make_error(Errc::Database, where + ": empty branch page");
  return h;
}

/// Element i's key (and, for a leaf, value), bounds-checked; 64-bit sums of 32-bit fields.
Result<Entry> element(std::string_view p, uint16_t flags, size_t i, uint64_t* child, const std::string& where) {
  const size_t e = kHeader + i * kElement;
  Entry out;
  uint64_t start = 0, ksize = 0, vsize = 0;
  if (flags == kBranch) {
    start = e + uint64_t{load<uint32_t>(p, e)};
    ksize = load<uint32_t>(p, e + 4);
    *child = load<uint64_t>(p, e + 8);
  } else {
    out.is_bucket = (load<uint32_t>(p, e) & kBucketLeaf) != 0;
    start = e + uint64_t{load<uint32_t>(p, e + 4)};
    ksize = load<uint32_t>(p, e + 8);
    vsize = load<uint32_t>(p, e + 12);
  }
  if (start + ksize + vsize > p.size())
    return make_error(Errc::Database, where + ": element " + std::to_string(i) + " past the page's end");
  out.key = p.substr(start, ksize);
  out.value = p.substr(start + ksize, vsize);
  return out;
}

}  // namespace

Result<std::optional<Entry>> Db::find(const Bucket& b, std::string_view key) {
  std::string_view p = b.inline_page;
  std::string where = quote(path_) + ": inline bucket";
  if (b.root != 0) {
    auto pg = page(b.root);
    if (!pg) return pg.error();
    p = **pg;
    where = quote(path_) + ": page " + std::to_string(b.root);
  }
  for (int depth = 0; depth < kMaxDepth; ++depth) {
    auto h = header(p, where);
    if (!h) return h.error();
    if (b.root == 0 && h->flags != kLeaf) return make_error(Errc::Database, where + ": not a leaf page");
    if (h->flags == kLeaf) {
      for (size_t i = 0; i < h->count; ++i) {
        uint64_t unused = 0;
        auto e = element(p, h->flags, i, &unused, where);
        if (!e) return e.error();
        if (e->key == key) return std::optional<Entry>(*e);
      }
      return std::optional<Entry>();
    }
    // Branch: the last child whose first key is <= key (keys are sorted; if they are not,
    // the answer is wrong, never out of bounds).
    uint64_t next = 0;
    for (size_t i = 0; i < h->count; ++i) {
      uint64_t child = 0;
      auto e = element(p, h->flags, i, &child, where);
      if (!e) return e.error();
      if (i > 0 && e->key > key) break;
      next = child;
    }
    auto pg = page(next);
    if (!pg) return pg.error();
    p = **pg;
    where = quote(path_) + ": page " + std::to_string(next);
  }
  return make_error(Errc::Database, quote(path_) + ": B+tree deeper than " + std::to_string(kMaxDepth));
}

Result<std::optional<Bucket>> Db::bucket(const Bucket& parent, std::string_view name) {
  auto e = find(parent, name);
  if (!e) return e.error();
  if (!*e || !(*e)->is_bucket) return std::optional<Bucket>();
  const std::string_view v = (*e)->value;
  if (v.size() < 16) return make_error(Errc::Database, quote(path_) + ": bucket " + quote(name) + ": value too short");
  Bucket out;
  out.root = load<uint64_t>(v, 0);
  if (out.root == 0) {
    out.inline_page = std::string(v.substr(16));
  } else if (out.root < 2 || out.root >= high_water_) {
    return make_error(Errc::Database, quote(path_) + ": bucket " + quote(name) + ": root page out of range");
  }
  return std::optional<Bucket>(std::move(out));
}

Result<std::optional<Bucket>> Db::bucket_at(std::initializer_list<std::string_view> path) {
  std::optional<Bucket> b = root_;
  for (std::string_view name : path) {
    auto next = bucket(*b, name);
    if (!next || !*next) return next;
    b = std::move(**next);
  }
  return b;
}

Result<std::optional<std::string>> Db::get(const Bucket& b, std::string_view key) {
  auto e = find(b, key);
  if (!e) return e.error();
  if (!*e || (*e)->is_bucket) return std::optional<std::string>();
  return std::optional<std::string>(std::string((*e)->value));
}

Status Db::walk(std::string_view p, int depth, std::map<uint64_t, bool>& seen, size_t& n,
                const std::function<bool(const Entry&)>& f, bool& stop) {
  const std::string where = quote(path_) + ": page";
  if (depth >= kMaxDepth) return make_error(Errc::Database, quote(path_) + ": B+tree deeper than " + std::to_string(kMaxDepth));
  auto h = header(p, where);
  if (!h) return h.error();
  for (size_t i = 0; i < h->count && !stop; ++i) {
    uint64_t child = 0;
    auto e = element(p, h->flags, i, &child, where);
    if (!e) return e.error();
    if (h->flags == kLeaf) {
      if (++n > kMaxEntries) return make_error(Errc::Database, quote(path_) + ": bucket with too many keys");
      if (!f(*e)) stop = true;
      continue;
    }
    // Each page of a tree has one parent: a page met twice is a cycle or a shared subtree.
    if (!seen.emplace(child, true).second)
      return make_error(Errc::Database, quote(path_) + ": page " + std::to_string(child) + " reached twice");
    auto pg = page(child);
    if (!pg) return pg.error();
    FIM_TRY(walk(**pg, depth + 1, seen, n, f, stop));
  }
  return {};
}

Status Db::for_each(const Bucket& b, const std::function<bool(const Entry&)>& f) {
  std::map<uint64_t, bool> seen;
  size_t n = 0;
  bool stop = false;
  if (b.root == 0) {
    auto h = header(b.inline_page, quote(path_) + ": inline bucket");
    if (!h) return h.error();
    if (h->flags != kLeaf) return make_error(Errc::Database, quote(path_) + ": inline bucket: not a leaf page");
    return walk(b.inline_page, 0, seen, n, f, stop);
  }
  seen.emplace(b.root, true);
  auto pg = page(b.root);
  if (!pg) return pg.error();
  return walk(**pg, 0, seen, n, f, stop);
}

}  // namespace fim::bolt
