// SPDX-License-Identifier: GPL-2.0-or-later
// Directories under a package upgrade (fim/pkg.h, directory_note; docs/design.md, Packages):
// dpkg unpacks each file as NAME.dpkg-new and renames it, so every directory it touches gets
// new times and nothing else. Such a directory is vouched for by what changed inside it.
#include <algorithm>

#include "fim/base/bytes.h"
#include "fim/pkg.h"

namespace fim::pkg {

void Children::add(const Bytes& path, const Note& n) {
  ++changed;
  if (n.verdict == Verdict::Verified) {
    ++verified;
    weakest = std::min(weakest, n.evidence);
  } else if (unverified.empty()) {
    unverified = path;
  }
}

void Children::add_unknown(const Bytes& path) {
  ++changed;
  if (unverified.empty()) unverified = path;
}

namespace {

std::string weakest_text(const Children& kids) {
  return std::to_string(kids.changed) + (kids.changed == 1 ? " changed entry" : " changed entries") +
         " in it verified (weakest evidence " + std::string(evidence_name(kids.weakest)) + ")";
}

}  // namespace

Note directory_note(Note own, const Record* old, const Record* now, bool only_times, const Children& kids) {
  if (kids.changed == 0) return own;
  if (kids.verified < kids.changed) {
    // An unverified entry inside makes the directory's own change unexplained too.
    if (own.verdict == Verdict::Verified) {
      own.verdict = Verdict::Unverifiable;
      own.detail = std::to_string(kids.changed - kids.verified) + " of the changed entries in it not verified (e.g. " +
                   quote(kids.unverified) + ")";
    }
    return own;
  }
  if (old && now) {
    if (!only_times) return own;  // mode, owner, xattrs...: explain() weighed those
    // A directory no package ships (__pycache__) is at most as good as a regeneration.
    own.evidence = own.verdict == Verdict::Unpackaged ? std::min(kids.weakest, Evidence::Derived) : kids.weakest;
    own.verdict = Verdict::Verified;
    own.detail = "only times, size or link count changed; " + weakest_text(kids);
    return own;
  }
  if (own.verdict == Verdict::Verified) {
    own.evidence = std::min(own.evidence, kids.weakest);
    own.detail += "; " + weakest_text(kids);
    return own;
  }
  if (now && own.verdict == Verdict::Unpackaged) {
    const uint64_t mode = static_cast<uint64_t>(now->get(Attr::Mode).num);
    if (now->get(Attr::Uid).num == 0 && (mode & 07002) == 0) {
      own.verdict = Verdict::Verified;
      own.evidence = std::min(kids.weakest, Evidence::Derived);
      own.detail = "a directory no package ships, holding only verified entries: " + weakest_text(kids);
    }
  }
  return own;
}

}  // namespace fim::pkg
