// SPDX-License-Identifier: GPL-2.0-or-later
// The host's Ed25519 keys (docs/design.md, Files: /etc/fimctl/keys): the signing key that
// signs a baseline's manifest and the public half that verifies it. Implemented in
// src/db/manifest.cpp, beside the manifest text they sign.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "fim/base/bytes.h"
#include "fim/base/result.h"

namespace fim {

/// An Ed25519 key and its id (the first 16 hex digits of the SHA-256 of the raw public key):
/// what SigningKey and VerifyKey share.
class Ed25519Key {
 public:
  ~Ed25519Key();
  Ed25519Key(Ed25519Key&&) noexcept;
  Ed25519Key& operator=(Ed25519Key&&) noexcept;
  const std::string& key_id() const;

 protected:
  struct Impl;
  explicit Ed25519Key(std::unique_ptr<Impl> impl);
  static Result<std::unique_ptr<Impl>> load_impl(const Bytes& path, bool private_key);
  std::unique_ptr<Impl> impl_;
};

/// The host's Ed25519 signing key (PEM, mode 0600, on a trusted path).
class SigningKey : public Ed25519Key {
 public:
  static Result<SigningKey> load(const Bytes& path);
  /// Writes DIR/signing.key (0600) and DIR/signing.pub (0644); refuses to replace either.
  /// Returns the new key id.
  static Result<std::string> generate(const Bytes& dir);
  /// Hex signature of `message`.
  Result<std::string> sign(std::string_view message) const;

 private:
  using Ed25519Key::Ed25519Key;
};

/// The public half, which is all a host needs to verify (signing may happen elsewhere).
class VerifyKey : public Ed25519Key {
 public:
  static Result<VerifyKey> load(const Bytes& path);
  bool verify(std::string_view message, std::string_view signature_hex) const;

 private:
  using Ed25519Key::Ed25519Key;
};

}  // namespace fim
