// SPDX-License-Identifier: GPL-2.0-or-later
// The commands that change the baseline and read its journal: update, accept, window, seal,
// adopt, apt-hook and log (the rest of the command surface is options.cpp's and options_fleet.cpp's).
#include <CLI/CLI.hpp>
#include <string>

#include "options.h"

namespace fim::cli {

void add_image_commands(CLI::App& app, Options* o);  // options_fleet.cpp

namespace {

/// accept/update --ticket: any text but none empty, bounded so a journal entry stays small.
void add_ticket_option(CLI::App* cmd, Options* o) {
  cmd->add_option("--ticket", o->ticket,
                  "the change ticket this belongs to (any text up to 256 bytes): kept in every journal entry "
                  "written (hash-chained and signed), shown by 'fimctl log' and in the report's summary")
      ->type_name("ID")
      ->check([](const std::string& t) {
        if (t.empty()) return std::string("--ticket needs a ticket id (an empty one names nothing)");
        if (t.size() > 256) return std::string("--ticket is longer than 256 bytes");
        return std::string();
      });
}

/// window open|close|list (fim/window.h).
void add_window_command(CLI::App& app, Options* o) {
  auto* window = app.add_subcommand("window", "maintenance windows: announce a planned change, so that what it "
                                             "changes is tagged in reports and accepted in one step");
  window->require_subcommand(1);
  auto* open = window->add_subcommand("open", "open a window: a signed journal entry in the next baseline");
  open->add_option("PATH", o->paths, "what it covers: changes below these paths (default: everything the "
                                     "baseline records)")
      ->type_name("PATH");
  open->add_option("--for", o->window_for, "how long it stays open (30m, 2h, 1d; at most 7d)")
      ->type_name("DURATION")
      ->required();
  open->add_option("--reason", o->reason, "the change it is for (required): kept in the journal, the default "
                                          "reason of 'accept --window'")
      ->type_name("TEXT");
  add_ticket_option(open, o);
  // Only changes this writer made (seen by 'fimctl watch'; check cannot tell writers).
  auto* proc = open->add_option("--by-process", o->by_process, "only changes by processes of this command name, as "
                                                               "the kernel keeps it (ps -o comm); seen by 'fimctl watch'")
                   ->type_name("COMM");
  auto* unit = open->add_option("--by-unit", o->by_unit, "only changes by processes of this systemd unit "
                                                         "(deploy.service); seen by 'fimctl watch'")
                   ->type_name("UNIT");
  auto* user = open->add_option("--by-user", o->by_user, "only changes by processes of this effective user (name or "
                                                         "uid); seen by 'fimctl watch'")
                   ->type_name("USER");
  proc->excludes(unit)->excludes(user);
  unit->excludes(user);
  open->footer("A change is tagged when it is below the PATHs and its ctime is inside the window (check), or\n"
               "the watch daemon saw the named writer, and nobody else, write it while the window was open.\n"
               "Tagged changes are still reported (with their window); 'fimctl accept --window ID' takes\n"
               "exactly them. A change after the window ended is not tagged. A clock step or a reboot since\n"
               "the window opened withdraws its tags (alert window_clock). Exit 0 when opened.");
  auto* close = window->add_subcommand("close", "end a window before it expires (a signed journal entry)");
  close->add_option("ID", o->window, "the window (default: the one open)")->type_name("ID");
  close->add_option("--reason", o->reason, "why, for the journal (default 'closed')")->type_name("TEXT");
  window->add_subcommand("list", "list the baseline's windows: id, state, time, scope, writer, reason");
}

}  // namespace

/// update, accept, apt-hook and log: what changes the baseline, and its journal.
void add_journal_commands(CLI::App& app, Options* o) {
  auto* update = app.add_subcommand("update", "check, then replace the baseline with what is on disk now "
                                             "(signed, next sequence number, atomically)");
  update->add_option("--reason", o->reason, "why, recorded in the journal with every difference accepted")
      ->type_name("TEXT");
  update->add_option("--report", o->report,
                     "the id of the report you reviewed (check prints it; 12 or more of its hex digits): the new "
                     "baseline is written only when the differences found now are exactly that report's")
      ->type_name("ID");
  add_ticket_option(update, o);
  update->add_flag("--yes", o->yes,
                   "without --report: accept whatever differs now without asking (by default update shows the "
                   "differences and asks on a terminal, and refuses without one)");
  update->footer("The report lists exactly the differences the new baseline accepts (exit bits as for check).\n"
                 "The old baseline must verify first; nothing is replaced if it does not, or if the scan fails.\n"
                 "Bound to what was reviewed: with --report ID, refused (exit 16, naming both ids) unless the\n"
                 "differences are that report's; without it, shown and confirmed on a terminal, else refused\n"
                 "unless --yes. Also the way to re-baseline after a policy change.");

  auto* accept = app.add_subcommand("accept", "accept chosen differences of a check (the report you reviewed, "
                                             "or the last) into the baseline, with a reason kept in its signed "
                                             "journal");
  accept->add_option("PATH", o->paths, "reported entries to accept: a path (it and everything reported below it) "
                                       "or a glob (*, ?, [...], **)")
      ->type_name("PATH|GLOB");
  accept->add_option("--reason", o->reason, "why (required): recorded with who, when, and the old and new state")
      ->type_name("TEXT");
  accept->add_option("--rule", o->rules, "accept what the rule at FILE:LINE:COLUMN selected (as in the report)")
      ->type_name("FILE:LINE:COLUMN");
  accept->add_flag("--all", o->all, "accept every difference of the report (--report ID, or the last one)");
  accept->add_option("--report", o->report,
                     "act on the report you reviewed: its id as check printed it (12 or more hex digits; state.db "
                     "keeps the last 20); an entry chosen from it that is no longer as it showed is refused")
      ->type_name("ID");
  add_ticket_option(accept, o);
  accept->add_flag("--also", o->also,
                   "keep each accepted file's previous state as still good beside the new one (a rollout where "
                   "hosts run either version): a later check reports it as 'ok (alternative N)', not changed");
  accept->add_flag("--drop-alternatives", o->drop_alternatives,
                   "instead of accepting: the PATHs lose the states --also kept (no report needed)")
      ->excludes("--also");
  accept->add_option("--window", o->window,
                     "accept exactly the differences maintenance window ID tags (fimctl window; also after it "
                     "closed); --reason defaults to the window's")
      ->type_name("ID");
  accept->add_flag("--yes", o->yes,
                   "without --report: accept from the last report without asking (by default accept shows what "
                   "it would accept and asks on a terminal, and refuses without one)");
  accept->add_flag("--package-verified", o->package_verified,
                   "accept only the differences whose new state the package's signed .deb vouches for (with "
                   "PATHs or --rule: only those among them); the rest stay reported");
  accept->add_flag("--weak", o->weak_evidence,
                   "with --package-verified: also accept what only dpkg's own MD5s and file lists vouch for "
                   "(records kept on this host, so as trustworthy as the host)");
  accept->add_option("--package-mirror", o->package_mirrors, "as for check --packages")->type_name("DIR");
  accept->footer("Acts on the report --report names (one of the last 20 checks of this baseline, kept in\n"
                 "state.db beside it), or on the last one: shown and confirmed on a terminal, else refused\n"
                 "unless --yes. An entry that is no longer as the report showed it (changed again on disk, or\n"
                 "accepted since) is refused (exit 16), and then nothing is accepted. Writes the next signed\n"
                 "baseline; 'fimctl log' shows the journal. Exit 0 when accepted.");

  auto* seal = app.add_subcommand("seal", "enable fs-verity on baselined files whose rule says seal = true, so "
                                         "check --fast measures them instead of reading them");
  seal->add_option("PATH", o->paths, "files, or directories: the regular files below them")->required()->type_name("PATH");
  seal->footer("Only content the verified baseline records (sha256) is sealed; then run 'fimctl update'.\n"
               "Exit 0 all sealed, 4 a file differs from the baseline, 16 refused by the policy or not\n"
               "in the baseline, 20 the kernel refused one (a writer has it open), 21 no fs-verity here.");

  auto* adopt = app.add_subcommand("adopt", "make FILE (a restored backup, a golden image, a copy signed off the "
                                           "host) the baseline at --db: verified, journalled, pinned");
  adopt->add_option("FILE", o->paths, "the baseline to adopt (it may be --db itself)")->required()->type_name("FILE");
  adopt->add_option("--reason", o->reason, "why (required): recorded in the journal with who and when")
      ->type_name("TEXT");
  adopt->footer("check refuses (exit 18) a baseline this host did not write at --db: another baseline (a\n"
                "different id), other roots, another key, or any baseline once state.db was reset. adopt is\n"
                "how the operator says a baseline is the one to use: FILE's signature (with --keys) and every\n"
                "row are verified (another host's: named in the journal), and a successor with FILE's rows\n"
                "and a sequence above every one seen here is written at --db, signed with this host's key,\n"
                "with the adoption in its journal; its identity is then pinned in state.db and in the file's\n"
                "trusted.fimctl.identity attribute.\n"
                "Exit 0 when adopted.");

  add_window_command(app, o);
  add_image_commands(app, o);

  auto* hook = app.add_subcommand("apt-hook", "record what an apt run changes (run by apt through "
                                             "share/apt/99fimctl: 'pre' before dpkg runs, 'post' after)");
  hook->add_option("PHASE", o->hook_phase, "pre, pre-install, record or post")
      ->required()
      ->check(CLI::IsMember({"pre", "pre-install", "record", "post"}));
  hook->add_flag("--sync", o->hook_sync, "pre-install: do not start 'record' detached (run it yourself)");
  hook->footer("pre keeps the installed package versions in state.db (beside --db); post compares\n"
               "them with the versions now installed and records the run: 'fimctl check --packages'\n"
               "then groups the changes it explains under it. pre-install (DPkg::Pre-Install-Pkgs) reads\n"
               "the .debs apt is about to install from stdin (hook protocol 3 or 1), verifies each\n"
               "against the signed apt index chain, links it into a spool beside state.db and starts\n"
               "'record' detached, which keeps what each holds in state.db, signed with the host key,\n"
               "so a check has deb-sha256 evidence after apt deleted them (one recorder at a time:\n"
               "'fimctl apt-hook record' waits for a running one). Never fails the apt run: errors\n"
               "are printed and the exit code is 0.");
  app.add_subcommand("log", "print the baseline's acceptance journal and verify its hash chain and signature");

}

}  // namespace fim::cli
