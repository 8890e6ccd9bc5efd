// SPDX-License-Identifier: GPL-2.0-or-later
#include <cstring>

#include "fim/base/result.h"

namespace fim {

std::string Error::describe() const {
  if (sys_errno == 0) return message;
  return message + ": " + std::strerror(sys_errno);
}

Error make_error(Errc code, std::string message, int sys_errno) {
  return Error{code, sys_errno, std::move(message)};
}

}  // namespace fim
