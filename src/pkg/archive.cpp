// SPDX-License-Identifier: GPL-2.0-or-later
// apt's archive chain, verified link by link before anything in it is believed:
//   InRelease   gpgv against the keyrings apt binds to its source (keyring.cpp), judged by its
//   (Release    status lines as apt judges them (gpgv.cpp); only the signed text is parsed:
//   +.gpg)      gpgv --output of InRelease, or the in-memory copy of Release that gpgv verified
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
#include <ctime>
#include <optional>
#include <set>

#include "fim/base/digest.h"
#include "fim/base/sys.h"
#include "internal.h"
#include "fim/base/spawn.h"

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

/// Copies `fd` into a memfd while hashing it: what is extracted later is what was hashed.
Result<UniqueFd> copy_hashing(int fd, std::string* sha256_hex) {
  UniqueFd mem(::memfd_create("fimctl-deb", MFD_CLOEXEC));
  if (!mem.valid()) return make_error(Errc::Io, "memfd_create", errno);
  Sha256Stream sha;
  auto st = read_chunks(fd, "a .deb", [&](std::string_view b) {
    sha.update(b);
    return write_all(mem.get(), b, "a .deb's copy in memory");
  });
  if (!st) return st.error();
  *sha256_hex = hex_encode(sha.finish());
  if (::lseek(mem.get(), 0, SEEK_SET) != 0) return make_error(Errc::Io, "lseek", errno);
  return mem;
}

}  // namespace

void AptArchive::load_indexes(const std::vector<Package>& packages) {
  loaded_ = true;
  std::set<std::string> wanted;
  for (const auto& p : packages) wanted.insert(p.name + " " + p.version + " " + p.arch);
  const AptKeys keys = AptKeys::load(opts_);
  const Bytes lists = under_root(opts_.root, opts_.lists);
  const std::vector<Bytes> files = list_dir(lists);
  const std::set<Bytes> present(files.begin(), files.end());
  std::vector<std::string> problems;
  size_t verified_releases = 0, releases = 0;
  for (const auto& f : files) {
    // apt keeps either InRelease (clearsigned) or Release + Release.gpg (detached) per source.
    const bool inrelease = f.size() > 10 && f.compare(f.size() - 10, 10, "_InRelease") == 0;
    const bool release = f.size() > 8 && f.compare(f.size() - 8, 8, "_Release") == 0;
    if (!inrelease && !release) continue;
    const std::string stem = f.substr(0, f.size() - (inrelease ? 9 : 7));
    if (release && present.count(stem + "InRelease")) continue;  // apt prefers InRelease too
    ++releases;
    const Trust trust = keys.trust_for(stem);
    if (!trust.refused.empty()) {
      problems.push_back(f + ": " + trust.refused);
      continue;
    }
    // Read once: what gpgv verifies is the very copy parsed below.
    auto data = read_in_root(opts_, opts_.lists + "/" + f, 256 << 20);
    if (!data) {
      problems.push_back(f + ": " + data.error().describe());
      continue;
    }
    std::optional<std::string> sig;
    if (release) {
      auto s = read_in_root(opts_, opts_.lists + "/" + stem + "Release.gpg", 1 << 20);
      if (!s) {
        problems.push_back(f + ": unsigned (no Release.gpg)");
        continue;
      }
      // apt refuses a binary Release.gpg ("unsupported binary format"): so does fimctl.
      if (s->find("-----BEGIN PGP SIGNATURE-----") == std::string::npos) {
        problems.push_back(f + ": its Release.gpg is not an armoured signature (apt refuses it)");
        continue;
      }
      sig = std::move(*s);
    }
    auto signed_text = gpgv_verify(opts_, trust, *data, sig ? &*sig : nullptr);
    if (!signed_text) {
      problems.push_back(f + ": " + signed_text.error().describe());
      continue;
    }
    if (Status fresh = check_valid_until(*signed_text, static_cast<int64_t>(::time(nullptr))); !fresh) {
      problems.push_back(f + ": " + fresh.error().describe());
      continue;
    }
    ++verified_releases;
    for (const auto& [index, want] : release_sha256(*signed_text)) {
      if (index.size() < 9 || index.compare(index.size() - 9, 9, "/Packages") != 0) continue;
      std::string index_stem = stem + index;
      for (char& c : index_stem)
        if (c == '/') c = '_';
      for (const auto& candidate : files) {  // apt keeps it as stem, stem.lz4, stem.gz, ...
        if (candidate != index_stem && candidate.rfind(index_stem + ".", 0) != 0) continue;
        // apt-helper picks the decompressor by the name's extension; what it writes is
        // hashed, so the file cannot change under the check.
        auto text = run_capture({opts_.apt_helper, "cat-file", lists + "/" + candidate}, -1, 1ull << 30);
        if (!text) {
          problems.push_back(candidate + ": " + text.error().describe());
          continue;
        }
        if (hex_encode(sha256_of(*text)) != want) {
          problems.push_back(candidate + " does not match the SHA-256 its signed Release gives");
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
  if (verified_releases > 0) return;
  // Nothing verified: say why, per file (and what was wrong with the keyrings themselves).
  if (releases == 0) {
    load_problem_ = "no InRelease or Release file in " + quote(lists) + " (run apt-get update)";
    return;
  }
  std::string why;
  for (size_t i = 0; i < problems.size() && i < 8; ++i) why += (why.empty() ? "" : "; ") + escape_terminal(problems[i]);
  if (problems.size() > 8) why += "; and " + std::to_string(problems.size() - 8) + " more";
  for (const auto& p : keys.problems()) why += "; keyring: " + escape_terminal(p);
  load_problem_ = "no Release file verified (" + why + ")";
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
