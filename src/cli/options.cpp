// SPDX-License-Identifier: GPL-2.0-or-later
// The command surface of DESIGN.md (Decisions) that this build implements. CLI11 throws; the
// exceptions stay in this file.
#include "options.h"

#include <CLI/CLI.hpp>
#include <cstdio>

#include "fim_config.h"

namespace fim::cli {

namespace {

constexpr const char* kFooter = R"(Exit status:
  0   no differences
  1   entries were added        (bits combine: 6 = removed and changed)
  2   entries were removed
  4   entries were changed
  8   incomplete: some entries could not be read, changed while hashed, or the policy changed
  16  usage or policy error (every policy problem is listed as FILE:LINE:COLUMN: message)
  17  baseline missing, corrupt, foreign or newer
  18  baseline failed verification (signature, content, host, an older sequence than one seen
      before, -wal/-journal beside it) or is unsigned without --unsigned
  19  baseline locked by another fimctl    20  I/O error    22  internal error

Files:
  )" FIM_DEFAULT_CONFIG R"(     the policy (-c moves it; built-in default if absent)
  /etc/fimctl/conf.d/*.toml       drop-ins, loaded after it in name order
  )" FIM_DEFAULT_KEYS R"(/signing.key  signs new baselines (--keys moves the directory)
  )" FIM_DEFAULT_KEYS R"(/signing.pub  verifies them
  /var/lib/fimctl/state.db        per baseline: the last verified sequence and the last report,
                                  which 'accept' acts on (beside --db)
  )" FIM_DEFAULT_DB R"(   the baseline (--db moves it; a .lock file sits beside it)

See fimctl(1) and fimctl.toml(5).)";

}  // namespace

int parse_options(int argc, char** argv, Options* o) {
  CLI::App app{"fimctl: file integrity monitor. Records what files are (content digest, owner, mode,\n"
               "xattrs, ACLs, capabilities, ...) in a baseline and reports what changed since.",
               "fimctl"};
  app.footer(kFooter);
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand
  o->db = FIM_DEFAULT_DB;
  o->config = FIM_DEFAULT_CONFIG;
  o->keys = FIM_DEFAULT_KEYS;

  app.add_option("--db", o->db, "baseline file")->type_name("FILE")->capture_default_str();
  app.add_option("--keys", o->keys,
                 "key directory: signing.key signs new baselines (init), signing.pub verifies them (check)")
      ->type_name("DIR")
      ->capture_default_str();
  auto* cfg_opt = app.add_option("-c,--config", o->config,
                                 "policy file (TOML, fimctl.toml(5)); its conf.d/*.toml drop-ins are loaded too")
                      ->type_name("FILE")
                      ->capture_default_str();
  app.add_option("--format", o->format, "report format: plain (for people), json (one document), "
                                        "ndjson (one record per line)")
      ->check(CLI::IsMember({"plain", "json", "ndjson"}))
      ->capture_default_str();
  app.add_option("-j,--jobs", o->jobs, "hashing threads (default: number of CPUs)")
      ->check(CLI::Range(1u, 1024u))
      ->type_name("N");
  app.add_flag("-q,--quiet", o->quiet, "no progress, no notices on stderr");
  app.add_flag("-v,--verbose", o->verbose, "more detail on stderr");
  app.add_flag("--no-color", o->no_color, "never colour the plain report");
  app.add_flag("--unsigned", o->allow_unsigned,
               "allow an unsigned baseline: init without a signing key, check of a baseline that is not "
               "signed (every report then says UNSIGNED)");

  auto* init = app.add_subcommand("init", "scan the roots and write a new baseline (replaces the old one atomically)");
  init->add_option("PATH", o->paths,
                   "roots to record instead of the built-in policy's; stored in the baseline, so a later "
                   "'check' without PATHs checks exactly these")
      ->type_name("PATH");
  init->footer("Without PATHs the policy's rules decide what is recorded (the default policy:\n"
               "/usr/bin, /usr/sbin, /usr/lib, cron, ssh, accounts, sudoers, ld.so, PAM, systemd\n"
               "units, modules, login records). With PATHs, each PATH is recorded with the policy's\n"
               "default_attrs, and policy rules that match below a PATH still apply.\n"
               "A PATH that does not exist is an error; a policy path that does not exist is\n"
               "recorded as absent and reported as added if it appears.");

  auto* check = app.add_subcommand("check", "compare the filesystem with the baseline and report differences");
  check->add_option("PATH", o->paths,
                    "check only these subtrees (each must lie within the baseline's roots)")
      ->type_name("PATH");
  check->footer("Every selected regular file is re-hashed. The baseline's content digest is verified\n"
                "while it is read; a baseline that fails verification ends the run with exit 18 and\n"
                "no report.");

  auto* update = app.add_subcommand("update", "check, then replace the baseline with what is on disk now "
                                             "(signed, next sequence number, atomically)");
  update->add_option("--reason", o->reason, "why, recorded in the journal with every difference accepted")
      ->type_name("TEXT");
  update->footer("The report lists exactly the differences the new baseline accepts (exit bits as for check).\n"
                 "The old baseline must verify first; nothing is replaced if it does not, or if the scan fails.\n"
                 "Also the way to re-baseline after a policy change.");

  auto* accept = app.add_subcommand("accept", "accept chosen differences of the last check into the baseline, "
                                             "with a reason kept in its signed journal");
  accept->add_option("PATH", o->paths, "reported entries to accept: a path (it and everything reported below it) "
                                       "or a glob (*, ?, [...], **)")
      ->type_name("PATH|GLOB");
  accept->add_option("--reason", o->reason, "why (required): recorded with who, when, and the old and new state")
      ->type_name("TEXT");
  accept->add_option("--rule", o->rules, "accept what the rule at FILE:LINE:COLUMN selected (as in the report)")
      ->type_name("FILE:LINE:COLUMN");
  accept->add_flag("--all", o->all, "accept every difference of the last report");
  accept->footer("Acts on the last 'fimctl check' of this baseline (kept in state.db beside it). An entry\n"
                 "that changed again since it was reported is refused, and then nothing is accepted.\n"
                 "Writes the next signed baseline; 'fimctl log' shows the journal. Exit 0 when accepted.");

  app.add_subcommand("log", "print the baseline's acceptance journal and verify its hash chain and signature");

  auto* config = app.add_subcommand("config", "check or show the policy");
  config->require_subcommand(1);
  config->add_subcommand("check", "load the policy and its drop-ins and report every problem as FILE:LINE:COLUMN "
                                  "(exit 0 when it is valid, 16 when not)");
  config->add_subcommand("show", "print the effective policy (drop-ins merged, defaults filled in, groups "
                                 "expanded) as TOML, each rule with the file and line it comes from");

  auto* explain = app.add_subcommand("explain", "say which rule decides PATH: the attributes recorded, severity and "
                                                "tags, or the exclusion that drops it");
  explain->add_option("PATH", o->paths, "the paths to explain (they need not exist)")->required()->type_name("PATH");
  explain->footer("Lists every rule that covers PATH in precedence order: nearest match first, then path\n"
                  "over glob over regex, then the rule defined last. Exit 0 when every PATH is\n"
                  "recorded, 1 when one is excluded or no rule covers it.");

  auto* key = app.add_subcommand("key", "manage the Ed25519 key that signs baselines");
  key->require_subcommand(1);
  key->add_subcommand("generate", "create signing.key (0600) and signing.pub in the --keys directory; never "
                                  "replaces an existing key")
      ->footer("init signs every new baseline with signing.key; check verifies with signing.pub and refuses\n"
               "(exit 18) a baseline whose signature, content, host or sequence does not verify. To sign off\n"
               "the host, keep only signing.pub here.");

  app.add_subcommand("version", "print the version and the formats this build reads and writes");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    // One line, like every other fimctl error (scripts match "fimctl: error:").
    std::fprintf(stderr, "fimctl: error: %s (see 'fimctl --help')\n", e.what());
    return 16;
  }
  for (const auto* sub : app.get_subcommands()) {
    o->command = sub->get_name();
    for (const auto* inner : sub->get_subcommands()) o->action = inner->get_name();
  }
  o->config_given = cfg_opt->count() > 0;
  return -1;
}

}  // namespace fim::cli
