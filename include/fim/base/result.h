// SPDX-License-Identifier: GPL-2.0-or-later
// One error type and Result<T> for every fallible call (docs/design.md, Conventions 2).
// Spelled like std::expected (has_value, value, error) so switching later is a rename.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace fim {

/// What kind of failure; each maps to one documented fatal exit code (docs/design.md, Exit codes).
enum class Errc {
  Usage,        ///< bad arguments or policy: exit 16
  Database,     ///< baseline missing, corrupt, foreign or newer: exit 17
  Trust,        ///< baseline failed verification: exit 18
  Locked,       ///< another writer holds the lock: exit 19
  Io,           ///< I/O error outside a scanned entry: exit 20
  Unsupported,  ///< a required kernel feature is missing: exit 21
  Bug,          ///< internal error: exit 22
  Cancelled,    ///< stopped on request (a daemon's shutdown); never reaches an exit code
};

struct Error {
  Errc code = Errc::Bug;
  int sys_errno = 0;    ///< errno when a system call failed, else 0
  std::string message;  ///< names the object in single quotes; no trailing newline

  /// The message, with strerror(sys_errno) appended when there is one.
  std::string describe() const;
};

Error make_error(Errc code, std::string message, int sys_errno = 0);

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : e_(std::move(error)) {}  // NOLINT
  bool has_value() const { return !e_.has_value(); }
  explicit operator bool() const { return has_value(); }
  const Error& error() const { return *e_; }

 private:
  std::optional<Error> e_;
};

using Status = Result<void>;

}  // namespace fim

/// Propagates the error of a Result-returning expression.
#define FIM_TRY(expr)                           \
  do {                                          \
    auto fim_try_r_ = (expr);                   \
    if (!fim_try_r_) return fim_try_r_.error(); \
  } while (0)
