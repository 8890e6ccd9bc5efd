// SPDX-License-Identifier: GPL-2.0-or-later
// The fleet's options: the image baseline commands, and watch from the node's mount namespace
// (the rest of the command surface is options.cpp's).
#include <CLI/CLI.hpp>

#include "options.h"

namespace fim::cli {

void add_image_commands(CLI::App& app, Options* o) {
  auto* exp = app.add_subcommand("export-image-baseline", "write the baseline of an image (built by init --image) to one "
                                  "file, verified first, for a pipeline to ship with the image");
  exp->add_option("IMAGE", o->image, "oci:DIR[:TAG], containers-storage:REF, or the manifest digest sha256:HEX")
      ->required()
      ->type_name("REF");
  exp->add_option("-o,--output", o->output, "the file to write")->required()->type_name("FILE");
  auto* imp = app.add_subcommand("import-image-baseline", "verify an image baseline FILE against the trusted "
                                  "image-signing keys (KEYS/images/*.pub) and install it for its image");
  imp->add_option("FILE", o->paths, "the baseline export-image-baseline wrote")->required()->expected(1)->type_name("FILE");
  imp->add_flag("--force", o->force, "trust another key than the one pinned for this image's baseline (journalled by the "
                                     "message; the new key must still be in KEYS/images/)");
}

void add_watch_fleet_options(CLI::App* watch, Options* o) {
  watch->add_option("--mount-ns", o->mount_ns,
                    "watch from this mount namespace (/proc/1/ns/mnt: the node's, from a pod with hostPID and "
                    "SYS_CHROOT), once the policy is read: the node's own paths are marked and reported")
      ->type_name("PATH");
}

}  // namespace fim::cli
