// SPDX-License-Identifier: GPL-2.0-or-later
// `fimctl show PATH [--at SEQ]`: a version of a file the content store keeps (docs/design.md,
// Content store). Its own file: the rest of the command surface is options.cpp's,
// options_journal.cpp's and options_fleet.cpp's.
#include <CLI/CLI.hpp>
#include <string>

#include "options.h"

namespace fim::cli {

void add_show_command(CLI::App& app, Options* o) {
  auto* show = app.add_subcommand("show", "print the content of a file as the baseline recorded it (rules with "
                                          "content = \"diff\": masked, from the content store)");
  show->add_option("PATH", o->show_path, "the file, as the baseline records it")->required()->type_name("PATH");
  show->add_option("--at", o->show_at, "as the baseline of this sequence number recorded it (the last 20 "
                                       "baselines written on this host)")
      ->type_name("SEQ")
      ->check(CLI::NonNegativeNumber);
  show->footer("The text is what the content store keeps: secrets matched by the rule's content_mask are\n"
               "*** there, and the unmasked text was never written. On a terminal every byte goes through\n"
               "the report's terminal escaping; redirected, the kept text is written as it is.\n"
               "Exit 0; 16 when PATH is not recorded or SEQ is not known; 17 when no content is kept for\n"
               "it (the message says why when fimctl knows: not world-readable, on the deny list, ...).");
}

}  // namespace fim::cli
