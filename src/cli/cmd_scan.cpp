// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl init / check / version: options -> RunOptions -> pipeline -> report -> exit code.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <cstdio>
#include <set>

#include "commands.h"
#include "progress_line.h"
#include "fim/base/sys.h"
#include "fim/container.h"
#include "fim/db.h"
#include "fim/state.h"
#include "fim/pipeline.h"
#include "fim/window.h"
#include "fim/base/duration.h"
#include "fim_config.h"

namespace fim::cli {

namespace {

/// accept/update without --report or --yes, on a terminal: what would be accepted, one line
/// each on stderr (the report itself is held until the command ends), and the question; true
/// for "y" or "yes".
bool ask_on_terminal(const std::string& question, const std::vector<StateStore::Reported>& what) {
  std::fputs("\r\x1b[K", stderr);  // the progress line
  for (const auto& r : what) std::fprintf(stderr, "  %s: %s\n", r.kind.c_str(), escape_terminal(r.path).c_str());
  std::fprintf(stderr, "fimctl: %s", question.c_str());
  std::fflush(stderr);
  char line[64] = "";
  if (!std::fgets(line, sizeof line, stdin)) return false;
  const std::string answer(line, std::strcspn(line, "\r\n"));
  return answer == "y" || answer == "Y" || answer == "yes";
}

}  // namespace

Result<RunOptions> run_options(const Options& o) {
  RunOptions r;
  auto policy = load_cli_policy(o);
  if (!policy) return policy.error();
  r.policy = std::move(*policy);
  auto db = absolute_path(o.db);
  if (!db) return db.error();
  r.db_path = *db;
  auto keys = absolute_path(o.keys);
  if (!keys) return keys.error();
  r.keys_dir = *keys;
  if (!o.sysroot.empty()) {
    char* real = ::realpath(o.sysroot.c_str(), nullptr);
    if (!real) return make_error(Errc::Usage, "--sysroot " + quote(o.sysroot), errno);
    r.package_sources.root = real;
    std::free(real);
    // Held open for the life of the process: every root and PATH is opened inside it.
    r.sysroot_fd = ::open(r.package_sources.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (r.sysroot_fd < 0)
      return make_error(Errc::Usage, "--sysroot " + quote(o.sysroot) + " is not a directory", errno);
  }
  for (const auto& p : o.paths) {
    if (r.sysroot_fd >= 0 && (p.empty() || p[0] != '/'))
      return make_error(Errc::Usage, "with --sysroot, PATHs are absolute paths as seen inside it, not " + quote(p));
    auto abs = absolute_path(p);
    if (!abs) return abs.error();
    r.paths.push_back(*abs);
  }
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  r.jobs = o.jobs ? o.jobs : static_cast<unsigned>(cpus > 0 ? cpus : 1);
  r.allow_unsigned = o.allow_unsigned;
  r.reason = o.reason;
  r.force = o.force;
  r.accept_all = o.all;
  r.report = o.report;
  r.ticket = o.ticket;
  r.also = o.also;
  r.drop_alternatives = o.drop_alternatives;
  r.window = o.window;
  if (!o.window_for.empty()) {
    auto d = parse_duration(o.window_for, DurationSpec{DurationSpec::kAllUnits, 0.001, 7 * 86400.0});
    if (!d) return make_error(Errc::Usage, "--for: " + d.error().message);
    r.window_for_ns = static_cast<int64_t>(*d * 1e9);
  }
  for (const auto& [by, name] : {std::pair<const char*, const std::string&>{"process", o.by_process},
                                 {"unit", o.by_unit}, {"user", o.by_user}}) {
    if (name.empty()) continue;
    auto w = window_writer(by, name);
    if (!w) return w.error();
    r.window_writer = *w;
  }
  r.yes = o.yes;
  if (o.report.empty() && !o.yes && ::isatty(STDIN_FILENO) && ::isatty(STDERR_FILENO)) r.confirm = ask_on_terminal;
  r.accept_rules = o.rules;
  r.packages = o.packages;
  r.check_mode = o.fast ? "fast" : o.full ? "full" : "";
  r.package_verified = o.package_verified;
  r.weak_evidence = o.weak_evidence;
  for (const auto& m : r.policy.package_mirrors) r.package_sources.mirrors.push_back(m);
  for (const auto& m : o.package_mirrors) r.package_sources.mirrors.push_back(m);
  return r;
}

namespace {

std::unique_ptr<Sink> report_sink(const Options& o, const json::Writer* extra = nullptr) {
  // A report larger than the memory bound spools beside the baseline, not in /tmp: an
  // intruder who fills /tmp must not be able to make the report vanish.
  Bytes dir, name;
  if (auto db = absolute_path(o.db)) split_path(*db, &dir, &name);
  return make_sink(o.format, stdout, !o.no_color && ::isatty(STDOUT_FILENO), extra, dir, o.verbose > 0);
}

/// A record of the container run itself (its header, its alert, its response), stamped like
/// the report's: as written (ndjson), or as its ECS document.
void print_record(const Options& o, json::Writer& w) {
  json::stamp(w);
  const std::string text = w.take();
  std::printf("%s\n", o.format == Format::Ecs ? ecs_document(text).c_str() : text.c_str());
}

bool records(const Options& o) { return o.format == Format::Ndjson || o.format == Format::Ecs; }

/// A rule with response = "kill" reported drift: the container's processes are killed, and
/// the report says so (ndjson: a "response" record).
void respond(const Options& o, const Container& c, const ContainerRun& run, const std::string& who,
             const json::Writer& fields) {
  if (records(o)) {
    const std::string text = response_record(run, run.action == "kill" ? c.pid : run.offender, &fields);
    std::printf("%s\n", o.format == Format::Ecs ? ecs_document(text).c_str() : text.c_str());
  } else {
    std::printf("response: %s: %s (drift under the rule at %s)\n", who.c_str(),
                run.kill_error.empty() ? (run.action + ": killed " + std::to_string(run.killed)).c_str()
                                       : ("nothing killed: " + run.kill_error).c_str(),
                escape_terminal(run.kill_rule).c_str());
  }
  std::fflush(stdout);
}

/// init/check --containers: the same run for each container (init: for each image), inside its
/// root, against the baseline of its image (docs/design.md, Containers). Exit: the bits of every
/// container's report together; a fatal error of one container is printed, the others still
/// run, and the first such error decides the exit code.
int run_containers(const Options& o, const RunOptions& base) {
  if (!o.sysroot.empty()) return report_error(make_error(Errc::Usage, "--containers and --sysroot exclude each other"));
  if (o.new_images_only && o.command != "init")
    return report_error(make_error(Errc::Usage, "--new-images-only goes with init --containers"));
  if (::geteuid() != 0) return needs_root(kContainersNeedRoot);
  auto found = discover_containers();
  if (!found) return report_error(found.error());
  const Bytes images = images_dir(base.db_path);
  if (o.command == "init" && ::mkdir(images.c_str(), 0700) != 0 && errno != EEXIST)
    return report_error(make_error(Errc::Io, "cannot create " + quote(images), errno));
  RuntimeMetadata meta;
  std::set<std::string> done;
  int bits = 0, fatal = 0;
  size_t ran = 0, kept = 0;
  const bool init = o.command == "init";
  for (const auto& c : *found) {
    const ContainerIdentity id = meta.identify(c);
    ImageBaselineKey key = baseline_key_of(c, id);
    if (init && !done.insert(key.key).second) continue;  // one baseline per image
    const Bytes db = image_baseline_path(base.db_path, key.key);
    key.source = baseline_source(db);
    if (init && o.new_images_only && ::access(db.c_str(), F_OK) == 0) {
      ++kept;
      continue;
    }
    const std::string who = container_label(c, id);
    const std::string container_obj = container_object(c, id, key);  // on every record of its report
    if (!init && ::access(db.c_str(), F_OK) != 0) {
      // An alert, not a skipped line on stderr: a container nobody baselined is exactly where
      // drift goes unseen.
      const std::string message = no_image_baseline_message(who, id, key, db);
      if (records(o)) {
        json::Writer a;
        a.schema("alert").str("code", "container_no_baseline").str("message", message);
        a.raw("container", container_obj);
        print_record(o, a);
      } else {
        std::fprintf(o.format == Format::Json ? stderr : stdout, "alert: container_no_baseline: %s\n",
                     message.c_str());
      }
      bits |= 8;
      continue;
    }
    if (records(o)) {
      json::Writer rec;
      rec.schema("container");
      container_fields(rec, c, id, key);
      rec.bytes("baseline", db);
      print_record(o, rec);
    } else {
      std::printf("%s== %s, baseline %s (%s%s)\n", ran ? "\n" : "", who.c_str(), escape_terminal(db).c_str(),
                  key.source == "image" ? "built from the image" : "recorded from a running container",
                  key.kind == "lower-layers" ? "; keyed by its lower layers: the runtime named no image digest" : "");
    }
    std::fflush(stdout);
    ++ran;
    json::Writer extra = json::Writer::fields();
    extra.raw("container", container_obj);
    auto sink = report_sink(o, &extra);
    ContainerRun run;
    run.image = key.key;
    auto summary = run_in_container(base, c, init, *sink, &run);
    if (!summary) {
      const int code = report_error(summary.error());
      if (!fatal) fatal = code;
      continue;
    }
    if (auto st = sink->finish(*summary); !st) {
      const int code = report_error(st.error());
      if (!fatal) fatal = code;
      continue;
    }
    bits |= summary->exit_code;
    if (!run.kill_rule.empty()) respond(o, c, run, who, extra);
  }
  if (ran == 0 && !o.quiet) {
    if (kept) std::fprintf(stderr, "fimctl: every running container's image has a baseline already (%zu)\n", kept);
    else std::fprintf(stderr, "fimctl: no running container to %s\n", o.command.c_str());
  }
  return fatal ? fatal : bits;
}

/// The apt runs state.db records since the baseline was written, for a reason (read without
/// verifying: only to decide whether auto_accept has anything to look at; the check that
/// follows verifies everything it uses).
std::string apt_runs_since_baseline(const RunOptions& ro) {
  auto base = BaselineReader::open(ro.db_path);
  if (!base) return {};
  Bytes dir, name;
  split_path(ro.db_path, &dir, &name);
  auto state = StateStore::open(dir);
  if (!state) return {};
  auto runs = (*state)->apt_runs_since((*base)->meta().created_ns);
  std::string labels;
  if (runs)
    for (const auto& r : *runs)
      labels += (labels.empty() ? "apt run " : ", apt run ") + std::to_string(r.id) + " at " + format_time_ns(r.at_ns);
  return labels;
}

/// [options] auto_accept = "package-verified" (docs/design.md, Packages): before the check that
/// is reported, a silent check and an accept --package-verified of its report, limited to what
/// recorded apt runs explain with strong evidence; signed and journalled like any accept. Only
/// after a recorded apt run, so a night without upgrades costs one check, not two. Whatever it
/// did or could not do is one alert in the report that follows.
void auto_accept(const Options& o, const RunOptions& ro, Sink& sink) {
  if (ro.policy.auto_accept != "package-verified" || !ro.packages || !ro.paths.empty() || !o.sysroot.empty()) return;
  const std::string runs = apt_runs_since_baseline(ro);
  if (runs.empty()) return;
  std::unique_ptr<FILE, CDeleter<std::fclose>> null(std::fopen("/dev/null", "w"));
  if (!null) return;
  auto quiet = make_sink(Format::Json, null.get(), false);
  RunOptions silent = ro;
  silent.progress = {};
  auto checked = run_check(silent, *quiet);
  if (!checked) {
    sink.alert("auto_accept", "auto_accept did not run: the check before it failed: " + checked.error().describe());
    return;
  }
  if (checked->packages.count("verified") == 0) return;
  RunOptions a = silent;
  a.package_verified = true;
  a.weak_evidence = false;
  a.recorded_runs_only = true;
  a.report = checked->report_id;
  a.yes = true;
  a.confirm = {};
  a.reason = "auto_accept = \"package-verified\" (policy): verified by their packages after " + runs;
  auto accepted = run_accept(a, *quiet);
  if (!accepted) {
    // Not a failure of the run (the check that follows reports everything), but said.
    sink.alert("auto_accept", "auto_accept accepted nothing: " + accepted.error().describe());
    return;
  }
  sink.alert("auto_accepted", std::to_string(accepted->added + accepted->removed + accepted->changed) +
                                  " changes that recorded apt runs explain were accepted by auto_accept (see 'fimctl log')");
}

int run(const Options& o, Result<Summary> (*fn)(const RunOptions&, Sink&)) {
  auto ro = run_options(o);
  if (!ro) return report_error(ro.error());
  if (!o.image.empty() && o.containers) return report_error(make_error(Errc::Usage, "--image and --containers exclude each other"));
  if (!o.image.empty()) return run_init_image_cli(o, *ro);
  if (o.containers) return run_containers(o, *ro);
  if (o.new_images_only) return report_error(make_error(Errc::Usage, "--new-images-only goes with init --containers"));
  auto sink = report_sink(o);
  if (o.verbose && !o.quiet) {
    std::string roots;
    for (const auto& p : ro->paths.empty() && o.command == "init" ? ro->policy.roots() : ro->paths)
      roots += " " + escape_terminal(p);
    std::fprintf(stderr, "fimctl: %s: baseline %s, %u hashing threads, policy %s, roots:%s\n", o.command.c_str(),
                 escape_terminal(ro->db_path).c_str(), ro->jobs, ro->policy.source.c_str(),
                 roots.empty() ? " those stored in the baseline" : roots.c_str());
  }
  if (fn == run_check) {
    auto_accept(o, *ro, *sink);
    // check --fast: what a running watch daemon vouches for (docs/design.md, Evidence), asked
    // before the check opens state.db for writing (the daemon writes it every tick).
    const bool fast = ro->check_mode == "fast" || (ro->check_mode.empty() && ro->policy.check_mode == "fast");
    if (fast && ro->sysroot_fd < 0) {
      auto sock = absolute_path(o.socket);
      if (auto w = sock ? watched_roots(*sock, ro->db_path) : Result<std::vector<WatchedRoot>>(sock.error())) ro->watched = std::move(*w);
      else if (!o.quiet) std::fprintf(stderr, "fimctl: check --fast without the watch daemon's coverage: %s\n", w.error().describe().c_str());
    }
  }
  // --progress (docs/design.md, Record schema: the progress line): on stderr, gone before
  // anything else prints there; its final line stays, above the report.
  const auto line = progress_line_for(o);
  if (line) ro->progress = [line](const ScanProgress& p) { line->update(p); };
  auto summary = fn(*ro, *sink);
  if (line) {
    if (summary) line->finish();
    else line->clear();
  }
  if (!summary) return report_error(summary.error());
  if (auto st = sink->finish(*summary); !st) return report_error(st.error());
  return summary->exit_code;
}

}  // namespace

int cmd_init(const Options& o) { return run(o, run_init); }
int cmd_check(const Options& o) { return run(o, run_check); }
int cmd_update(const Options& o) { return run(o, run_update); }
int cmd_accept(const Options& o) { return run(o, run_accept); }

int cmd_log(const Options& o) {
  auto ro = run_options(o);
  if (!ro) return report_error(ro.error());
  auto sink = report_sink(o);  // alerts (unsigned, state) are not printed by log; trust failures are errors
  auto meta = run_log(*ro, *sink);
  if (!meta) return report_error(meta.error());
  const bool json = o.format == Format::Ndjson;
  for (const auto& e : meta->journal) {
    Acceptance a;
    parse_journal_text(e.text, &a);  // the chain check parsed every entry already
    if (json) {
      json::Writer j;
      j.schema("journal").num("seq", e.seq);
      j.str("at", format_time_ns(a.at_ns)).str("who", a.who).str("action", a.action).str("reason", a.reason);
      j.bytes("path", a.path).str("kind", a.kind);
      j.str("old_row_sha256", a.old_row).str("new_row_sha256", a.new_row);
      if (!a.report.empty()) j.str("report_id", a.report);
      if (!a.ticket.empty()) j.bytes("ticket", a.ticket);  // any bytes: ticket_b64 when not UTF-8
      if (!a.window.empty()) window_fields(j, a);
      j.str("hash", e.hash);
      std::printf("%s\n", j.take().c_str());
    } else {
      std::printf("#%llu %s %s by %s: %s %s\n  reason: %s\n  row sha256: %s -> %s\n%s%s",
                  static_cast<unsigned long long>(e.seq), format_time_ns(a.at_ns).c_str(), a.action.c_str(),
                  escape_terminal(a.who).c_str(), a.kind.c_str(), escape_terminal(a.path).c_str(),
                  escape_terminal(a.reason).c_str(), a.old_row.c_str(), a.new_row.c_str(),
                  a.report.empty() ? "" : ("  report: " + a.report + "\n").c_str(),
                  a.ticket.empty() ? "" : ("  ticket: " + escape_terminal(a.ticket) + "\n").c_str());
      if (!a.window.empty()) std::printf("%s", window_lines(a).c_str());
    }
  }
  if (!json)
    std::printf("journal: %zu entries, hash chain intact, head %s; baseline %s (sequence %llu, %s)\n",
                meta->journal.size(), meta->journal_head().c_str(), escape_terminal(ro->db_path).c_str(),
                static_cast<unsigned long long>(meta->sequence),
                meta->is_signed ? ("signed, key " + meta->key_id).c_str() : "UNSIGNED");
  return 0;
}

int cmd_version(const Options&) {
  std::fputs(version_text().c_str(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 20;
}

}  // namespace fim::cli
