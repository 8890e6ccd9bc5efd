// SPDX-License-Identifier: GPL-2.0-or-later
// Shell completion written from the CLI11 definition itself (completion.cpp), so a new
// command or option appears in every shell's script without further edits.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace fim::cli {

/// `fimctl completion WHAT`: "bash", "zsh" or "fish" -> that shell's completion script;
/// "list" -> every command, option and policy key, one per line (the man-page test).
std::string completion_script(CLI::App& app, const std::string& what);

}  // namespace fim::cli
