// SPDX-License-Identifier: GPL-2.0-or-later
// main(): parse, then dispatch through the command table (each command's formats in it). The only place the process ends.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "commands.h"
#include "fim/base/bytes.h"
#include "fim/base/sys.h"
#include "fim/pipeline.h"

namespace {

using fim::Format;
using fim::cli::Formats;

constexpr Formats kAll = {Format::Plain, Format::Json, Format::Ndjson};
/// Record streams (a daemon's records, one report per container, journal entries): a record
/// per line, no one document around them.
constexpr Formats kStream = {Format::Plain, Format::Ndjson};
/// Reports and record streams a SIEM ingests: also as ECS documents (--format ecs).
constexpr Formats kReports = {Format::Plain, Format::Json, Format::Ndjson, Format::Ecs};
constexpr Formats kEvents = {Format::Plain, Format::Ndjson, Format::Ecs};
/// Commands that print no records.
constexpr Formats kText = {Format::Plain};

struct Command {
  const char* name;
  int (*run)(const fim::cli::Options&);
  Formats formats;          ///< the --format values it has
  Formats with_containers;  ///< ... with --containers
};

constexpr Command kCommands[] = {
    {"init", fim::cli::cmd_init, kReports, kEvents},
    {"check", fim::cli::cmd_check, kReports, kEvents},
    {"update", fim::cli::cmd_update, kReports, kReports},
    {"accept", fim::cli::cmd_accept, kReports, kReports},
    {"log", fim::cli::cmd_log, kStream, kStream},
    {"show", fim::cli::cmd_show, kText, kText},
    {"config", fim::cli::cmd_config, kText, kText},
    {"explain", fim::cli::cmd_explain, kText, kText},
    {"key", fim::cli::cmd_key, kText, kText},
    {"migrate", fim::cli::cmd_migrate, kText, kText},
    {"adopt", fim::cli::cmd_adopt, kText, kText},
    {"export-image-baseline", fim::cli::cmd_export_image, kText, kText},
    {"import-image-baseline", fim::cli::cmd_import_image, kText, kText},
    {"seal", fim::cli::cmd_seal, kText, kText},
    {"window", fim::cli::cmd_window, kStream, kStream},
    {"watch", fim::cli::cmd_watch, kEvents, kEvents},
    {"status", fim::cli::cmd_status, kAll, kAll},
    {"containers", fim::cli::cmd_containers, kAll, kAll},
    {"apt-hook", fim::cli::cmd_apt_hook, kText, kText},
    {"version", fim::cli::cmd_version, kText, kText},
};

/// SIGINT/SIGTERM while a baseline is written (init, update, accept): the temp file and init
/// --force's link to the replaced baseline are removed, one line says what became of the run,
/// and the process exits 128+signal. Without this the default action would end it with the temp
/// file left beside the baseline (only the next writer would remove it). The old baseline is
/// untouched: it is only ever replaced by the writer's rename. Async-signal-safe only; it may
/// run on any thread (a hashing thread too), and a second signal waits for the first.
void on_interrupt(int sig) {
  static std::atomic<bool> seen{false};
  if (seen.exchange(true)) return;  // the first one's _exit is on its way
  fim::remove_temp_files();
  const char* msg = fim::baseline_installed() ? "fimctl: interrupted: the new baseline was already installed\n"
                                              : "fimctl: interrupted: no baseline written\n";
  if (::isatty(STDERR_FILENO)) (void)!::write(STDERR_FILENO, "\r\x1b[K", 4);  // the progress line
  (void)!::write(STDERR_FILENO, msg, std::strlen(msg));
  ::_exit(128 + sig);
}

/// Runs `fn` in a child process and exits with its status as soon as the child reports it.
/// A scan gives up on a read that never returns (a hung FUSE or network filesystem) but
/// cannot end the thread stuck in it: the kernel keeps a process with such a thread from
/// exiting until the filesystem answers. The child reports its exit code through a pipe and
/// closes its standard streams first, so the caller (cron, a shell, systemd) gets the report,
/// end of file and the exit status on time; a stuck child is left to finish alone.
int run_isolated(int (*fn)(const fim::cli::Options&), const fim::cli::Options& opts) {
  int pfd[2];
  if (::pipe2(pfd, O_CLOEXEC) != 0) return fn(opts);
  std::fflush(nullptr);
  const pid_t child = ::fork();
  if (child < 0) {
    ::close(pfd[0]);
    ::close(pfd[1]);
    return fn(opts);
  }
  if (child == 0) {
    ::close(pfd[0]);
    // Killed with the parent (kill -9 of fimctl must still stop the scan and the writer).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() == 1) ::_exit(22);
    const int rc = fn(opts);
    std::fflush(nullptr);
    const unsigned char code = static_cast<unsigned char>(rc);
    if (fim::abandoned_threads() > 0) {
      // A thread is stuck in the kernel: this process will not end soon. Let go of
      // everything the caller waits on, then report.
      ::close(STDIN_FILENO);
      ::close(STDOUT_FILENO);
      ::close(STDERR_FILENO);
      (void)!::write(pfd[1], &code, 1);
      ::_exit(rc);
    }
    (void)!::write(pfd[1], &code, 1);
    std::exit(rc);  // the normal way out (sanitizers check for leaks here)
  }
  ::close(pfd[1]);
  // SIGINT/SIGTERM/SIGHUP sent to this process go to the child, which decides.
  static pid_t forward_to;
  forward_to = child;
  struct sigaction sa {};
  sa.sa_handler = [](int sig) { ::kill(forward_to, sig); };
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  unsigned char code = 0;
  ssize_t n;
  do n = ::read(pfd[0], &code, 1);
  while (n < 0 && errno == EINTR);
  // _exit: this process only waited; its exit handlers have nothing to do (and a sanitizer's
  // leak check here would race with the child's own).
  std::fflush(nullptr);
  if (n == 1) ::_exit(code);
  // No code: the child died before it could say (a signal, a crash). Its status says how.
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) ::_exit(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) ::_exit(128 + WTERMSIG(status));
  ::_exit(22);
}

}  // namespace

int main(int argc, char** argv) {
  fim::cli::Options opts;
  if (const int rc = fim::cli::parse_options(argc, argv, &opts); rc >= 0) return rc;
  fim::raise_fd_limit();
  for (const auto& c : kCommands) {
    if (opts.command != c.name) continue;
    const std::string command = opts.command + (opts.containers ? " --containers" : "");
    fim::cli::set_command(opts.action.empty() ? command : opts.command + " " + opts.action);
    if (auto st = fim::cli::check_format(opts.format, opts.containers ? c.with_containers : c.formats, command); !st)
      return fim::cli::report_error(st.error());
    // The commands that scan files: their exit must not wait for a read that never returns.
    const bool scans = opts.command == "init" || opts.command == "check" || opts.command == "update" ||
                       opts.command == "accept";
    if (opts.command == "init" || opts.command == "update" || opts.command == "accept") {
      // Inherited by run_isolated's child, which writes the baseline (the parent forwards).
      struct sigaction sa {};
      sa.sa_handler = on_interrupt;
      ::sigemptyset(&sa.sa_mask);
      for (int sig : {SIGINT, SIGTERM}) ::sigaction(sig, &sa, nullptr);
    }
    return scans ? run_isolated(c.run, opts) : c.run(opts);
  }
  std::fprintf(stderr, "fimctl: error: unknown command '%s'\n", fim::escape_terminal(opts.command).c_str());
  return 22;
}
