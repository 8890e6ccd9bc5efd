// SPDX-License-Identifier: GPL-2.0-or-later
// main(): parse, then dispatch through the command table. The only place the process ends.
#include <cstdio>
#include <cstring>

#include "commands.h"
#include "fim/base/sys.h"

namespace {

struct Command {
  const char* name;
  int (*run)(const fim::cli::Options&);
};

constexpr Command kCommands[] = {
    {"init", fim::cli::cmd_init},
    {"check", fim::cli::cmd_check},
    {"update", fim::cli::cmd_update},
    {"accept", fim::cli::cmd_accept},
    {"log", fim::cli::cmd_log},
    {"config", fim::cli::cmd_config},
    {"explain", fim::cli::cmd_explain},
    {"key", fim::cli::cmd_key},
    {"watch", fim::cli::cmd_watch},
    {"status", fim::cli::cmd_status},
    {"version", fim::cli::cmd_version},
};

}  // namespace

int main(int argc, char** argv) {
  fim::cli::Options opts;
  if (const int rc = fim::cli::parse_options(argc, argv, &opts); rc >= 0) return rc;
  fim::raise_fd_limit();
  for (const auto& c : kCommands)
    if (opts.command == c.name) return c.run(opts);
  std::fprintf(stderr, "fimctl: error: unknown command '%s'\n", opts.command.c_str());
  return 22;
}
