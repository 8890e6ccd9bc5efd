// SPDX-License-Identifier: GPL-2.0-or-later
// apt's archive chain, verified link by link before anything in it is believed:
//   InRelease   gpgv against apt's keyrings; only the signed text (gpgv --output) is parsed
//   Packages    decompressed by apt-helper (apt keeps lists as lz4/gz/xz); its SHA-256 must be
//               the one the signed Release text gives for that index
//   .deb        from apt's cache or a configured mirror; its SHA-256 must be the index's
//   members     dpkg-deb --fsys-tarfile of the very bytes that were hashed (a memfd copy)
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include "fim/base/digest.h"
#include "fim/base/sys.h"
#include "internal.h"
#include "spawn.h"

namespace fim::pkg {
namespace {

std::vector<Bytes> list_dir(const Bytes& dir) {
  std::vector<Bytes> out;
  const std::unique_ptr<DIR, CDeleter<::closedir>> d(::opendir(dir.c_str()));
  if (!d) return out;
  while (dirent* e = ::readdir(d.get())) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// apt's default keyrings plus every Signed-By file named in its sources (binary keyrings:
/// gpgv cannot read armored ones).
std::vector<Bytes> apt_keyrings(const Options& o) {
  std::set<Bytes> k;
  const auto add = [&](const Bytes& p) {
    struct stat st;
    const Bytes at = under_root(o.root, p);
    if (::stat(at.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (p.size() < 4 || p.compare(p.size() - 4, 4, ".asc") != 0))
      k.insert(at);
  };
  add("/etc/apt/trusted.gpg");
  for (const auto& n : list_dir(under_root(o.root, "/etc/apt/trusted.gpg.d"))) add("/etc/apt/trusted.gpg.d/" + n);
  std::vector<Bytes> sources{"/etc/apt/sources.list"};
  for (const auto& n : list_dir(under_root(o.root, "/etc/apt/sources.list.d"))) sources.push_back("/etc/apt/sources.list.d/" + n);
  for (const auto& s : sources) {
    auto text = read_small_file(under_root(o.root, s).c_str(), 1 << 20);
    if (!text) continue;
    // "Signed-By: /path" (deb822) or "[signed-by=/path]" (one-line); paths only.
    for (const char* key : {"Signed-By:", "signed-by="}) {
      size_t pos = 0;
      while ((pos = text->find(key, pos)) != std::string::npos) {
        pos += std::char_traits<char>::length(key);
        while (pos < text->size() && (*text)[pos] == ' ') ++pos;
        size_t end = pos;
        while (end < text->size() && !std::isspace(static_cast<unsigned char>((*text)[end])) && (*text)[end] != ']' &&
               (*text)[end] != ',')
          ++end;
        if (end > pos && (*text)[pos] == '/') add(text->substr(pos, end - pos));
      }
    }
  }
  return {k.begin(), k.end()};
}

/// Copies `fd` into a memfd while hashing it: what is extracted later is what was hashed.
Result<UniqueFd> copy_hashing(int fd, std::string* sha256_hex) {
  UniqueFd mem(::memfd_create("fimctl-deb", MFD_CLOEXEC));
  if (!mem.valid()) return make_error(Errc::Io, "memfd_create", errno);
  Sha256Stream sha;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Errc::Io, "reading a .deb", errno);
    if (n == 0) break;
    sha.update(std::string_view(buf, static_cast<size_t>(n)));
    for (ssize_t off = 0; off < n;) {
      const ssize_t w = ::write(mem.get(), buf + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return make_error(Errc::Io, "copying a .deb to memory", errno);
      off += w;
    }
  }
  *sha256_hex = hex_encode(sha.finish());
  if (::lseek(mem.get(), 0, SEEK_SET) != 0) return make_error(Errc::Io, "lseek", errno);
  return mem;
}

}  // namespace

void AptArchive::load_indexes(const std::vector<Package>& packages) {
  loaded_ = true;
  std::set<std::string> wanted;
  for (const auto& p : packages) wanted.insert(p.name + " " + p.version + " " + p.arch);
  const std::vector<Bytes> keyrings = opts_.keyrings.empty() ? apt_keyrings(opts_) : opts_.keyrings;
  if (keyrings.empty()) {
    load_problem_ = "no apt keyring found to verify the archive's InRelease files";
    return;
  }
  const Bytes lists = under_root(opts_.root, opts_.lists);
  const std::vector<Bytes> files = list_dir(lists);
  std::vector<std::string> problems;
  size_t verified_releases = 0;
  for (const auto& f : files) {
    const std::string suffix = "_InRelease";
    if (f.size() <= suffix.size() || f.compare(f.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    const std::string prefix = f.substr(0, f.size() - std::string("InRelease").size());
    std::vector<std::string> argv{opts_.gpgv};
    for (const auto& k : keyrings) {
      argv.push_back("--keyring");
      argv.push_back(k);
    }
    argv.insert(argv.end(), {"--output", "-", "--", lists + "/" + f});
    auto signed_text = run_capture(argv, -1, 256 << 20);
    if (!signed_text) {
      problems.push_back(f + ": " + signed_text.error().describe());
      continue;
    }
    ++verified_releases;
    for (const auto& [index, want] : release_sha256(*signed_text)) {
      if (index.size() < 9 || index.compare(index.size() - 9, 9, "/Packages") != 0) continue;
      std::string stem = prefix + index;
      for (char& c : stem)
        if (c == '/') c = '_';
      for (const auto& candidate : files) {  // apt keeps it as stem, stem.lz4, stem.gz, ...
        if (candidate != stem && candidate.rfind(stem + ".", 0) != 0) continue;
        // apt-helper picks the decompressor by the name's extension; what it writes is
        // hashed, so the file cannot change under the check.
        auto text = run_capture({opts_.apt_helper, "cat-file", lists + "/" + candidate}, -1, 1ull << 30);
        if (!text) {
          problems.push_back(candidate + ": " + text.error().describe());
          continue;
        }
        if (hex_encode(sha256_of(*text)) != want) {
          problems.push_back(candidate + " does not match the SHA-256 its signed InRelease gives");
          continue;
        }
        parse_stanzas(*text, [&](const Stanza& st) {
          auto g = [&](const char* k) {
            auto it = st.find(k);
            return it == st.end() ? std::string() : it->second;
          };
          const std::string key = g("Package") + " " + g("Version") + " " + g("Architecture");
          if (wanted.count(key)) listed_[key] = Listed{g("SHA256"), g("Filename")};
          return true;
        });
        break;
      }
    }
  }
  if (verified_releases == 0)
    load_problem_ = problems.empty() ? "no InRelease file in " + quote(lists) + " (run apt-get update)"
                                     : "no InRelease file verified (" + problems.front() + ")";
}

const std::map<Bytes, DebMember>* AptArchive::members(const Package& p, std::string* why) {
  const std::string key = p.name + " " + p.version + " " + p.arch;
  if (auto c = cache_.find(key); c != cache_.end()) {
    *why = why_[key];
    return c->second ? &*c->second : nullptr;
  }
  auto& slot = cache_[key];
  auto fail = [&](std::string w) -> const std::map<Bytes, DebMember>* {
    why_[key] = w;
    *why = std::move(w);
    return nullptr;
  };
  if (!loaded_) return fail("archive indexes not loaded");
  if (!load_problem_.empty()) return fail(load_problem_);
  auto l = listed_.find(key);
  if (l == listed_.end()) return fail("no signed apt index lists " + p.name + " " + p.version + " (" + p.arch + ")");
  std::string version = p.version;
  if (auto colon = version.find(':'); colon != std::string::npos) version.replace(colon, 1, "%3a");
  const size_t slash = l->second.filename.rfind('/');
  const Bytes base = slash == std::string::npos ? l->second.filename : l->second.filename.substr(slash + 1);
  // Cache paths are inside the root; mirrors are paths of this host.
  std::vector<std::pair<Bytes, bool>> candidates;
  for (const auto& a : opts_.archives) {
    candidates.emplace_back(a + "/" + p.name + "_" + version + "_" + p.arch + ".deb", true);
    candidates.emplace_back(a + "/" + base, true);
  }
  for (const auto& m : opts_.mirrors) candidates.emplace_back(m + "/" + l->second.filename, false);
  std::string mismatch;
  for (const auto& [c, in_root] : candidates) {
    UniqueFd in(in_root ? open_in(opts_, c, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : ::open(c.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!in.valid()) continue;
    bool differs = false;
    std::string got;
    auto parsed = extract_if_listed(in.get(), l->second, &differs, &got);
    if (differs) {
      mismatch = quote(c) + " does not match the signed index";
      continue;
    }
    if (!parsed) return fail(quote(c) + ": " + parsed.error().describe());
    slot = std::move(*parsed);
    why_[key].clear();
    why->clear();
    return &*slot;
  }
  return fail(!mismatch.empty() ? mismatch
                                : "no .deb of " + p.name + " " + p.version + " in apt's cache" +
                                      (opts_.mirrors.empty() ? "" : " or the mirrors"));
}

Result<std::map<Bytes, DebMember>> AptArchive::extract_if_listed(int fd, const Listed& want, bool* mismatch,
                                                                 std::string* got_hex) {
  *mismatch = false;
  auto mem = copy_hashing(fd, got_hex);
  if (!mem) return mem.error();
  if (*got_hex != want.sha256_hex) {
    *mismatch = true;
    return make_error(Errc::Trust, "does not match the signed index");
  }
  // dpkg-deb reads the private copy: what is extracted is what was hashed.
  auto child = Child::start({opts_.dpkg_deb, "--fsys-tarfile", "/dev/stdin"}, mem->get());
  if (!child) return child.error();
  auto parsed = parse_data_tar(child->out());
  // Drain what the parser left (it stops at the end-of-archive blocks), then reap.
  char sink[4096];
  while (::read(child->out(), sink, sizeof sink) > 0) {
  }
  const Status st = child->wait();
  if (!parsed) return parsed.error();
  if (!st) return st.error();
  return std::move(*parsed);
}

Result<std::string> AptArchive::listed_sha256(const Package& p) const {
  if (!loaded_) return make_error(Errc::Bug, "archive indexes not loaded");
  if (!load_problem_.empty()) return make_error(Errc::Trust, load_problem_);
  auto l = listed_.find(p.name + " " + p.version + " " + p.arch);
  if (l == listed_.end())
    return make_error(Errc::Trust, "no signed apt index lists " + p.name + " " + p.version + " (" + p.arch + ")");
  return l->second.sha256_hex;
}

Result<std::map<Bytes, DebMember>> AptArchive::extract_verified(int fd, const std::string& sha256_hex) {
  bool mismatch = false;
  std::string got;
  auto members = extract_if_listed(fd, Listed{sha256_hex, ""}, &mismatch, &got);
  if (mismatch) return make_error(Errc::Trust, "the .deb is not the one that was verified (SHA-256 " + got + ")");
  return members;
}

}  // namespace fim::pkg
