// SPDX-License-Identifier: GPL-2.0-or-later
// The command surface (docs/design.md, Architecture). CLI11 throws; the exceptions stay in
// this file.
#include "options.h"

#include "completion.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "fim/base/bytes.h"
#include "fim/rules.h"
#include "fim_config.h"

namespace fim::cli {

void add_watch_fleet_options(CLI::App* watch, Options* o);  // options_fleet.cpp
void add_journal_commands(CLI::App& app, Options* o);      // options_journal.cpp
void add_show_command(CLI::App& app, Options* o);          // options_show.cpp

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
  19  baseline locked by another fimctl (watch: another daemon runs)
  20  I/O error, or permission denied: the command needs root (said in one line)
  21  a required kernel feature is missing (watch: fanotify)             22  internal error
  130, 143  init/update/accept stopped by SIGINT/SIGTERM: no baseline written
  status: 0 the watch daemon runs with no coverage gap, 8 it does not or a root awaits its rescan

Files:
  )" FIM_DEFAULT_CONFIG R"(     the policy (-c moves it; built-in default if absent)
  /etc/fimctl/conf.d/*.toml       drop-ins, loaded after it in name order
  )" FIM_DEFAULT_KEYS R"(/signing.key  signs new baselines (--keys moves the directory)
  )" FIM_DEFAULT_KEYS R"(/signing.pub  verifies them
  /var/lib/fimctl/state.db        per baseline: the last verified sequence, the last 20 reports
                                  ('accept' acts on them) and watch's coverage gaps (beside --db)
  /run/fimctl/watch.sock          the watch daemon's status socket (--socket)
  )" FIM_DEFAULT_DB R"(   the baseline (--db moves it; a .lock file sits beside it)

See fimctl(8) and fimctl.toml(5).)";


/// fimctl's own options (they may also follow the command). Returns -c,--config.
CLI::Option* add_global_options(CLI::App& app, Options* o, std::string* format) {
  o->db = FIM_DEFAULT_DB;
  o->config = FIM_DEFAULT_CONFIG;
  o->keys = FIM_DEFAULT_KEYS;

  app.add_option("--db", o->db, "baseline file")->type_name("FILE")->capture_default_str();
  app.add_option("--sysroot", o->sysroot,
                 "treat DIR as / (an image, a chroot, a mounted disk): roots and PATHs are opened inside it "
                 "(symlinks cannot lead out) and recorded and reported as seen inside it; dpkg's and apt's "
                 "records for --packages are read from it too")
      ->type_name("DIR");
  app.add_option("--keys", o->keys,
                 "key directory: signing.key signs new baselines (init), signing.pub verifies them (check)")
      ->type_name("DIR")
      ->capture_default_str();
  auto* cfg_opt = app.add_option("-c,--config", o->config,
                                 "policy file (TOML, fimctl.toml(5)); its conf.d/*.toml drop-ins are loaded too")
                      ->type_name("FILE")
                      ->capture_default_str();
  std::vector<std::string> format_names;
  std::string format_help = "report format:";
  for (const auto& f : kFormats) {
    format_names.emplace_back(f.name);
    format_help += std::string(format_names.size() > 1 ? "," : "") + " " + f.name + " (" + f.help + ")";
  }
  app.add_option("--format", *format, format_help)
      ->check(CLI::IsMember(format_names))
      ->capture_default_str();
  app.add_option("-j,--jobs", o->jobs, "hashing threads (default: number of CPUs)")
      ->check(CLI::Range(1u, 1024u))
      ->type_name("N");
  app.add_flag("-q,--quiet", o->quiet, "no progress, no notices on stderr");
  app.add_flag("-v,--verbose", o->verbose, "more detail: on stderr, and in the plain report every change an apt run explains");
  app.add_flag("--no-color", o->no_color, "never colour the plain report");
  app.add_flag("--unsigned", o->allow_unsigned,
               "allow an unsigned baseline: init without a signing key, check of a baseline that is not "
               "signed (every report then says UNSIGNED)");

  return cfg_opt;
}

/// init and check: a baseline written, a baseline compared.
void add_baseline_commands(CLI::App& app, Options* o) {
  auto* init = app.add_subcommand("init", "scan the roots and write a new baseline (an existing one only with --force)");
  init->add_option("PATH", o->paths,
                   "roots to record instead of the built-in policy's; stored in the baseline, so a later "
                   "'check' without PATHs checks exactly these")
      ->type_name("PATH");
  init->add_flag("--force", o->force,
                 "replace an existing baseline: the old one is kept as BASELINE.prev and the replacement is "
                 "journalled in the new one (without --force, init over a baseline refuses: use 'update')");
  init->add_option("--reason", o->reason, "with --force: why, recorded in the new baseline's journal");
  init->add_flag("--containers", o->containers,
                 "instead of this host: one baseline per image of the running containers ('fimctl "
                 "containers'), of the policy's roots (or PATHs) inside the image's first container, in "
                 "images/IMAGE-KEY.db beside --db");
  init->add_option("--image", o->image, "instead of this host: the baseline of an image's own layers, not run: "
                   "oci:DIR[:TAG] or containers-storage:NAME[:TAG]|ID, in images/sha256-MANIFEST.db beside --db")->type_name("REF");
  init->add_flag("--new-images-only", o->new_images_only,
                 "with --containers: leave the baseline of an image that has one as it is (for a periodic job "
                 "that baselines images as they appear)");
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
  check->add_flag("--containers", o->containers,
                  "instead of this host: each running container against its image's baseline (init "
                  "--containers), inside its root through /proc/PID/root; what differs is the container's "
                  "drift, reported under the container (id, runtime, pid, image)");
  check->add_flag("--packages", o->packages,
                  "say for each change which dpkg package ships the path and whether the new state is the "
                  "package's: verified against the .deb in apt's cache through apt's signed index "
                  "(deb-sha256), or only against dpkg's MD5s (dpkg-md5, weaker)");
  auto* fast = check->add_flag("--fast", o->fast,
                                "fast mode: hash only what changed, what is due in the rolling re-hash, and what no "
                                "stronger evidence vouches for (fs-verity, a gapless watch daemon, unchanged identity "
                                "and times); each entry's report says which");
  check->add_flag("--full", o->full, "hash every selected byte (the default unless [options] check_mode = \"fast\")")
      ->excludes(fast);
  check->add_option("--package-mirror", o->package_mirrors,
                    "a local mirror (a directory holding the Filename paths of apt's indexes) to find .debs in "
                    "besides apt's cache; repeatable")
      ->type_name("DIR");
  check->footer("By default every selected regular file is re-hashed. With --fast an entry is unchanged\n"
                "by, strongest first: its fs-verity digest (measured by the kernel), a watch daemon that\n"
                "covered it without a gap since it was last hashed, or the same device, inode, handle,\n"
                "birth, change and modification times and size with no step of the clock since the\n"
                "last check; every run also hashes the entries whose turn in the rolling re-hash came\n"
                "(each within [options] rehash_interval, 7 days), and anything found different is\n"
                "hashed before it is reported. The report header counts entries per evidence.\n"
                "The baseline's content digest is verified\n"
                "while it is read; a baseline that fails verification ends the run with exit 18 and\n"
                "no report.\n"
                "With --packages, changes that the apt hook (share/apt/99fimctl) saw an apt run make\n"
                "are grouped under that run when their package verifies them; a packaged file that\n"
                "does not match its package is flagged 'mismatch', the most suspicious change of all.");

}

/// config, explain and key: the policy and the signing key.
void add_policy_commands(CLI::App& app, Options* o) {
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
  auto* sign = key->add_subcommand("sign", "sign a baseline with the --keys directory's signing.key (off the host: the "
                                           "host writes it with --unsigned and keeps only signing.pub)");
  sign->add_option("BASELINE", o->paths, "the baseline file to sign (its rows are verified first)")
      ->required()
      ->type_name("FILE");
  sign->footer("Copy the host's unsigned baseline to where the private key is, run 'fimctl --keys DIR key sign\n"
               "FILE', and copy it back over the baseline file (cp, not mv: the file keeps its identity\n"
               "attribute): the host's check then verifies it with signing.pub and pins the key.\n"
               "The sequence, id, roots, host, policy, time and journal are kept; an earlier signature is\n"
               "replaced (a baseline already pinned to another key is then refused: 'fimctl key rotate').\n"
               "Prints the roots it signs. Exit 0 when signed.");

  auto* rotate = key->add_subcommand("rotate", "replace the signing key: the baseline is verified with the current "
                                                "key, a new pair generated, and the baseline re-signed and journalled");
  rotate->add_option("--reason", o->reason, "why (required): recorded in the journal with both key ids")
      ->type_name("TEXT");
  rotate->footer("check pins the key that signed each baseline and refuses (exit 18, alert key_changed) a\n"
                 "baseline signed by another, so a key pair put in place by an intruder is not trusted. rotate\n"
                 "is the change of keys the old key vouches for: the baseline at --db must verify with the\n"
                 "current signing.pub; the old pair is kept as signing.key.old-ID and signing.pub.old-ID beside\n"
                 "the new one; the successor is signed with the new key and pinned. Exit 0 when rotated.");

  app.add_subcommand("migrate", "rewrite the baseline (--db), written by an older fimctl, in this one's schema: "
                                "verified first, then installed signed, atomically, under the lock")
      ->footer("check, update, accept and log refuse a baseline of an older schema (exit 17) and name this\n"
               "command. Its signature is verified with --keys DIR/signing.pub (an unsigned one needs\n"
               "--unsigned), its rows with its manifest; the new file keeps the sequence, host, policy,\n"
               "time and journal and is signed with signing.key (required when the old one was signed).\n"
               "Exit 0 when migrated or already current.");
}

/// watch, the daemon.
CLI::App* add_watch_command(CLI::App& app, Options* o) {
  auto* watch = app.add_subcommand("watch", "watch the baseline's roots in real time (fanotify) and report each "
                                           "difference as it happens; a daemon (fimctl-watch.service)");
  watch->add_option("--output", o->output, "append records here instead of standard output")->type_name("FILE");
  watch->add_flag("--syslog", o->syslog, "also send every record to syslog (facility daemon; journald keeps it)");
  watch->add_option("--full-check-interval", o->full_check_interval,
                    "run a full check this often besides the real-time events (s, m, h or d; 0: only at start)")
      ->type_name("DURATION")
      ->capture_default_str();
  watch->add_option("--debounce", o->debounce,
                    "compare a file once per burst of events: wait this long after the first (ms or s)")
      ->type_name("DURATION")
      ->capture_default_str();
  watch->add_option("--falco-url", o->falco_url,
                    "also post each change, gap and alert as Falco JSON to this URL (falcosidekick: "
                    "http://HOST:2801/); plain http only")
      ->type_name("URL");
  watch->add_flag("--containers", o->containers,
                  "also the running containers' drift as it happens, each against its image's baseline "
                  "(init --containers): containers that start later are found at once where the kernel reports "
                  "mounts (6.14+), else within --container-poll");
  watch->add_option("--container-poll", o->container_poll,
                    "with --containers: how often to look for containers that started or stopped")
      ->type_name("DURATION")
      ->capture_default_str();
  watch->add_option("--metrics", o->metrics,
                    "serve Prometheus metrics at http://ADDRESS/metrics (events, changes, overflows, queue depth, "
                    "rescans, last full check)")
      ->type_name("HOST:PORT");
  watch->add_option("--heartbeat", o->heartbeat, "a heartbeat record this often (0: none)")
      ->type_name("DURATION")
      ->capture_default_str();
  watch->add_option("--bpf", o->bpf,
                    "BPF LSM sensors (who made each change, module/BPF/exec detections, enforcement): auto "
                    "uses them when they load, off never, required exits 21 when they do not")
      ->check(CLI::IsMember({"auto", "off", "required"}))
      ->capture_default_str();
  watch->add_option("--mount-events", o->mount_events,
                    "how mounts over and under the roots are seen: auto uses the kernel's mount events where it "
                    "has them (6.14+), poll reads /proc/self/mountinfo when the kernel flags it and every second")
      ->check(CLI::IsMember({"auto", "poll"}))
      ->capture_default_str();
  watch->add_flag("--enforce", o->enforce,
                  "with the BPF sensors: deny writes, renames and unlinks of protected files (fimctl's own "
                  "baseline, state, keys, policy and binary, and --protect); every attempt is reported");
  watch->add_option("--protect", o->protect, "also protect this file (repeatable; denied only with --enforce)")
      ->type_name("FILE");
  add_watch_fleet_options(watch, o);
  watch->footer("Verifies the baseline first (exit 18 if it does not verify), marks the filesystems that hold\n"
                "its roots with fanotify, rescans every root once (changes made while no daemon ran), then\n"
                "reports each change as the same change record 'check' prints, with the events and the\n"
                "process that caused it. Lost events (queue overflow, read errors) and the time the daemon\n"
                "was not running mark roots dirty in state.db; they are rescanned and 'fimctl status' shows\n"
                "the gaps. --format ndjson gives one JSON record per line; plain, a line for people (json: a usage error).\n"
                "SIGHUP reloads the policy; SIGTERM compares what is queued and exits 0.");

  return watch;
}

/// status, containers and version; `watch` shares --socket with status.
void add_status_commands(CLI::App& app, CLI::App* watch, Options* o) {
  auto* status = app.add_subcommand("status", "ask the running watch daemon how it is doing; without one, what "
                                             "state.db says about coverage gaps");
  for (auto* sub : {watch, status, app.get_subcommand("check")})
    sub->add_option("--socket", o->socket, sub == watch || sub == status ? "the daemon's status socket"
                                                                         : "check --fast: the watch daemon to ask what it vouches for")
        ->type_name("FILE")
        ->capture_default_str();
  // Hidden (no group): watched_roots()'s answer, the daemon's coverage as a check sees it
  // (covered roots, since, the paths events named), for tests and for looking into one.
  status->add_flag("--watched", o->watched, "print what the daemon vouches for (watched evidence)")->group("");
  status->footer("Exit 0 when the daemon runs and no root is waiting for a rescan; 8 when it does not run or\n"
                 "some root's events were lost and its rescan has not finished (a coverage gap).");

  app.add_subcommand("containers", "list the containers running on this host: pid, namespaces, runtime and id, "
                                   "root filesystem and overlay layers (from /proc; any runtime)")
      ->footer("A container is a group of processes in a mount namespace of its own that also has a pid\n"
               "namespace of its own, an overlayfs root, or a runtime's cgroup (docker, containerd, CRI-O,\n"
               "podman, kubepods). Needs root to read other processes' namespaces. Exit 0.");

  app.add_subcommand("version", "print the version and the formats this build reads and writes");

}

/// The commands below `app` a user can type (hidden ones, such as `completion`, have no group:
/// they are not suggested), and the option names of `app` and the commands above it.
std::vector<std::string> visible_commands(const CLI::App* app) {
  std::vector<std::string> names;
  for (const auto* sub : app->get_subcommands([](const CLI::App* s) { return !s->get_group().empty(); }))
    names.push_back(sub->get_name());
  return names;
}

std::vector<std::string> visible_option_names(const CLI::App* app) {
  std::vector<std::string> names;
  for (const CLI::App* a = app; a; a = a->get_parent())
    for (const auto* opt : a->get_options([](const CLI::Option* x) { return !x->get_group().empty(); })) {
      for (const auto& l : opt->get_lnames()) names.push_back("--" + l);
      for (const auto& sn : opt->get_snames()) names.push_back("-" + sn);
    }
  return names;
}

/// The usage error for a word CLI11 could not place: an unknown command ("fimctl key generat")
/// or option ("--froce") with the nearest visible name, when there is one close enough, else
/// CLI11's own message. `app` is the deepest command parsed.
std::string usage_message(const CLI::App* app, const CLI::ParseError& e) {
  const std::string where = app->get_parent() ? " " + app->get_name() : "";
  // CLI11 leaves a word a command could not place to the commands above it (fallthrough).
  std::vector<std::string> words;
  for (const CLI::App* a = app; a; a = a->get_parent())
    for (const auto& w : a->remaining()) words.push_back(w);
  for (const auto& word : words) {
    if (word == "--") break;
    const bool option = word.size() > 1 && word[0] == '-';
    if (!option && visible_commands(app).empty()) continue;  // a command with no subcommands: an extra argument
    const std::string name = option ? word.substr(0, word.find('=')) : word;
    const std::string what = std::string(option ? "unknown option '" : "unknown command '") +
                             escape_terminal(name) + "'";
    const std::string near = nearest_name(name, option ? visible_option_names(app) : visible_commands(app));
    if (option && near == name)  // an option of the command, given before it (CLI11 parses it later)
      return "option '" + escape_terminal(name) + "' goes after its command: 'fimctl" + where + " " +
             escape_terminal(name) + " ...'";
    return what + (near.empty() ? " (see 'fimctl" + where + " --help')" : "; did you mean '" + near + "'?");
  }
  return std::string(e.what()) + " (see 'fimctl --help')";
}

}  // namespace

int parse_options(int argc, char** argv, Options* o) {
  CLI::App app{"fimctl: file integrity monitor. Records what files are (content digest, owner, mode,\n"
               "xattrs, ACLs, capabilities, ...) in a baseline and reports what changed since.",
               "fimctl"};
  app.footer(kFooter);
  {
    std::string v = version_text();
    v.pop_back();  // CLI11 adds the newline
    app.set_version_flag("-V,--version", v, "print the version and what this build has, as 'fimctl version'");
  }
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand
  std::string format = format_name(o->format);
  CLI::Option* cfg_opt = add_global_options(app, o, &format);
  add_baseline_commands(app, o);
  add_journal_commands(app, o);
  add_show_command(app, o);
  add_policy_commands(app, o);
  add_status_commands(app, add_watch_command(app, o), o);
  for (const char* name : {"init", "check", "update", "accept"})
    app.get_subcommand(name)
        ->add_option("--progress", o->progress,
                     "progress line on stderr: auto (on a terminal), always (into a log: a plain line every 10 s), "
                     "never; -q: never")
        ->check(CLI::IsMember({"auto", "always", "never"}))
        ->type_name("WHEN")
        ->capture_default_str();

  // Hidden (no group): `completion bash|zsh|fish` prints that shell's completion script (meson
  // installs their output), `completion list` every command, option and policy key (the
  // man-page test). completion.cpp writes them.
  auto* completion = app.add_subcommand("completion", "print completion data")->group("");
  completion->require_subcommand(1);
  completion->add_subcommand("bash", "the bash completion script")->group("");
  completion->add_subcommand("zsh", "the zsh completion script")->group("");
  completion->add_subcommand("fish", "the fish completion script")->group("");
  completion->add_subcommand("list", "commands, options and policy keys, one per line")->group("");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    const CLI::App* deepest = &app;
    for (bool deeper = true; deeper;) {
      deeper = false;
      for (const auto* sub : deepest->get_subcommands())
        if (sub->parsed()) {
          deepest = sub;
          deeper = true;
          break;
        }
    }
    // One line, like every other fimctl error (scripts match "fimctl: error:").
    std::fprintf(stderr, "fimctl: error: %s\n", usage_message(deepest, e).c_str());
    return 16;
  }
  if (completion->parsed()) {
    std::fputs(completion_script(app, completion->get_subcommands().at(0)->get_name()).c_str(), stdout);
    return 0;
  }
  for (const auto* sub : app.get_subcommands()) {
    o->command = sub->get_name();
    for (const auto* inner : sub->get_subcommands()) o->action = inner->get_name();
  }
  o->config_given = cfg_opt->count() > 0;
  o->format = *parse_format(format);  // one of kFormats' names (IsMember)
  return -1;
}

}  // namespace fim::cli
