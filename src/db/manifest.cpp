// SPDX-License-Identifier: GPL-2.0-or-later
// The signed manifest (docs/design.md, Formats): Ed25519 over a small
// canonical text that names the content digest, so the signature covers every row without
// streaming them through the signer (PureEdDSA in OpenSSL 3.0 is one-shot only). The only
// file that sees OpenSSL's key and signature API.
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "fim/base/digest.h"
#include "fim/base/sys.h"
#include "fim/db.h"

namespace fim {
namespace {

using Pkey = std::unique_ptr<EVP_PKEY, CDeleter<EVP_PKEY_free>>;
using FilePtr = std::unique_ptr<FILE, CDeleter<std::fclose>>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, CDeleter<EVP_MD_CTX_free>>;

/// The raw 32-byte public key's SHA-256, first 16 hex digits: short, stable, printable.
Result<std::string> key_id_of(EVP_PKEY* k) {
  unsigned char raw[32];
  size_t len = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(k, raw, &len) != 1 || len != 32)
    return make_error(Errc::Usage, "not an Ed25519 key");
  return hex_encode(sha256_of(std::string_view(reinterpret_cast<const char*>(raw), len))).substr(0, 16);
}

Result<Pkey> read_pem(const Bytes& path, bool private_key) {
  const char* what = private_key ? "signing key" : "public key";
  FIM_TRY(check_trusted_path(path, what));
  // A symlinked key is allowed: check_trusted_path() vetted every component of its target.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return make_error(errno == ENOENT ? Errc::Usage : Errc::Io, std::string("cannot open ") + what + " " + quote(path), errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return make_error(Errc::Usage, std::string(what) + " " + quote(path) + " is not a regular file");
  if (private_key && (st.st_mode & 077))
    return make_error(Errc::Usage, "signing key " + quote(path) + " can be read or written by others (mode " +
                                       [&] {
                                         char m[8];
                                         std::snprintf(m, sizeof m, "%04o", st.st_mode & 07777);
                                         return std::string(m);
                                       }() + "): it must be 0600 and owned by its user");
  FilePtr f(::fdopen(fd.get(), "r"));
  if (!f) return make_error(Errc::Io, std::string("cannot read ") + what + " " + quote(path), errno);
  fd.release();
  Pkey k(private_key ? PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr)
                     : PEM_read_PUBKEY(f.get(), nullptr, nullptr, nullptr));
  if (!k || EVP_PKEY_get_base_id(k.get()) != EVP_PKEY_ED25519)
    return make_error(Errc::Usage, std::string(what) + " " + quote(path) + " is not an Ed25519 key in PEM format");
  return k;
}

Status write_pem(const Bytes& path, EVP_PKEY* k, bool private_key, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd.valid()) return make_error(errno == EEXIST ? Errc::Usage : Errc::Io, "cannot create " + quote(path), errno);
  if (::fchmod(fd.get(), mode) != 0) return make_error(Errc::Io, "cannot set the mode of " + quote(path), errno);
  FilePtr f(::fdopen(fd.get(), "w"));
  if (!f) return make_error(Errc::Io, "cannot write " + quote(path), errno);
  fd.release();
  const int ok = private_key ? PEM_write_PrivateKey(f.get(), k, nullptr, nullptr, 0, nullptr, nullptr)
                             : PEM_write_PUBKEY(f.get(), k);
  if (ok != 1 || std::fflush(f.get()) != 0 || ::fsync(::fileno(f.get())) != 0)
    return make_error(Errc::Io, "cannot write " + quote(path), errno);
  return {};
}

}  // namespace

std::string manifest_text(const BaselineMeta& m) {
  // One "key=value" per line; every value is hex, digits or fixed text except the version,
  // host and policy source, which cannot contain a newline when they come from fimctl (and
  // are checked to be single lines when read back).
  std::string out = "fimctl-manifest-v1\n";
  out += "schema_version=" + std::to_string(m.schema_version) + "\n";
  out += "content_sha256=" + m.content_sha256 + "\n";
  out += "entry_count=" + std::to_string(m.entry_count) + "\n";
  out += "sequence=" + std::to_string(m.sequence) + "\n";
  out += "host_id=" + m.host_id + "\n";
  out += "policy_digest=" + m.policy_digest + "\n";
  out += "policy_source=" + hex_encode(m.policy_source) + "\n";
  out += "roots_source=" + m.roots_source + "\n";
  out += "created_at=" + std::to_string(m.created_ns) + "\n";
  out += "fimctl_version=" + hex_encode(m.fimctl_version) + "\n";
  out += "key_id=" + m.key_id + "\n";
  // Baselines written before ids existed have none; their manifests (and signatures) stay as
  // they were. An id removed from a baseline that had one breaks its signature.
  if (!m.baseline_id.empty()) out += "baseline_id=" + m.baseline_id + "\n";
  // Image baselines only: a host's manifest stays as it was.
  if (!m.source.empty()) out += "source=" + m.source + "\n";
  if (!m.image_digest.empty()) out += "image_digest=" + m.image_digest + "\n";
  if (!m.image_index_digest.empty()) out += "image_index_digest=" + m.image_index_digest + "\n";
  if (!m.image_ref.empty()) out += "image_ref=" + hex_encode(m.image_ref) + "\n";
  return out;
}

struct Ed25519Key::Impl {
  Pkey key;
  std::string id;
};

Ed25519Key::Ed25519Key(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Ed25519Key::~Ed25519Key() = default;
Ed25519Key::Ed25519Key(Ed25519Key&&) noexcept = default;
Ed25519Key& Ed25519Key::operator=(Ed25519Key&&) noexcept = default;
const std::string& Ed25519Key::key_id() const { return impl_->id; }

/// Reads a key and its id.
Result<std::unique_ptr<Ed25519Key::Impl>> Ed25519Key::load_impl(const Bytes& path, bool private_key) {
  auto k = read_pem(path, private_key);
  if (!k) return k.error();
  auto id = key_id_of(k->get());
  if (!id) return id.error();
  auto impl = std::make_unique<Impl>();
  impl->key = std::move(*k);
  impl->id = *id;
  return impl;
}

Result<SigningKey> SigningKey::load(const Bytes& path) {
  auto impl = load_impl(path, true);
  if (!impl) return impl.error();
  return SigningKey(std::move(*impl));
}

Result<std::string> SigningKey::generate(const Bytes& dir) {
  Pkey k(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!k) return make_error(Errc::Bug, "OpenSSL cannot generate an Ed25519 key");
  const Bytes priv = join_path(dir, "signing.key"), pub = join_path(dir, "signing.pub");
  if (::access(priv.c_str(), F_OK) == 0 || ::access(pub.c_str(), F_OK) == 0)
    // Refused (16), never replaced: a script that asked for a new key must not go on as if it
    // had one. Said so that someone who only wanted a key knows they have it.
    return make_error(Errc::Usage, "a key already exists in " + quote(dir) +
                                       ": nothing done (init, check and update use it); 'fimctl key rotate "
                                       "--reason WHY' replaces it and re-signs the baseline");
  FIM_TRY(write_pem(priv, k.get(), true, 0600));
  if (auto st = write_pem(pub, k.get(), false, 0644); !st) {
    ::unlink(priv.c_str());
    return st.error();
  }
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.valid()) (void)::fsync(dfd.get());
  return key_id_of(k.get());
}

Result<std::string> SigningKey::sign(std::string_view message) const {
  MdCtx ctx(EVP_MD_CTX_new());
  unsigned char sig[64];
  size_t len = sizeof sig;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &len, reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1)
    return make_error(Errc::Bug, "Ed25519 signing failed");
  return hex_encode(std::string_view(reinterpret_cast<const char*>(sig), len));
}

Result<VerifyKey> VerifyKey::load(const Bytes& path) {
  auto impl = load_impl(path, false);
  if (!impl) return impl.error();
  return VerifyKey(std::move(*impl));
}

bool VerifyKey::verify(std::string_view message, std::string_view signature_hex) const {
  const std::optional<Bytes> sig = hex_decode(signature_hex);
  // Lower-case only, as sign() writes it: one spelling per signature.
  if (!sig || sig->size() != 64 || hex_encode(*sig) != signature_hex) return false;
  MdCtx ctx(EVP_MD_CTX_new());
  return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, impl_->key.get()) == 1 &&
         EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()), sig->size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

}  // namespace fim
