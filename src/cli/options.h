// SPDX-License-Identifier: GPL-2.0-or-later
// The command line, parsed by CLI11 in options.cpp only (it is slow to compile).
#pragma once

#include <string>
#include <vector>

#include "fim/report.h"

namespace fim::cli {

struct Options {
  std::string command;  ///< the command's name, as main.cpp's table has it
  std::string db;
  Format format = Format::Plain;  ///< --format, one row of kFormats
  unsigned jobs = 0;  ///< 0: number of online CPUs
  bool quiet = false;
  std::string progress = "auto";  ///< init/check/update/accept --progress: auto, always, never
  int verbose = 0;
  bool no_color = false;
  bool allow_unsigned = false;
  std::vector<std::string> paths;
  std::string keys;             ///< --keys: directory of signing.key / signing.pub
  std::string sysroot;          ///< --sysroot: treat this directory as "/"
  std::string config;           ///< -c: the policy file
  bool config_given = false;    ///< -c was on the command line (no built-in fallback)
  std::string action;           ///< "config check" / "config show": the second word
  std::string reason;           ///< update/accept/init --force/adopt/key rotate --reason
  bool force = false;           ///< init --force
  bool all = false;             ///< accept --all
  std::string report;           ///< accept/update --report ID
  std::string ticket;           ///< accept/update --ticket ID
  bool also = false;            ///< accept --also
  bool drop_alternatives = false;  ///< accept --drop-alternatives
  std::string window;           ///< accept --window ID, window close ID
  std::string window_for;       ///< window open --for DURATION
  std::string by_process, by_unit, by_user;  ///< window open --by-process|--by-unit|--by-user
  bool yes = false;             ///< accept/update --yes
  std::vector<std::string> rules;  ///< accept --rule
  bool packages = false;           ///< check --packages
  bool fast = false, full = false; ///< check --fast / --full (docs/design.md, Evidence)
  bool containers = false;         ///< init/check --containers
  bool new_images_only = false;    ///< init --containers --new-images-only
  std::string image;               ///< init --image REF; export-image-baseline REF|DIGEST
  std::string container_poll = "2s";  ///< watch --container-poll
  bool package_verified = false;   ///< accept --package-verified
  bool weak_evidence = false;      ///< accept --weak
  std::vector<std::string> package_mirrors;  ///< check/accept --package-mirror DIR
  std::string hook_phase;          ///< apt-hook pre|pre-install|record|post
  bool hook_sync = false;          ///< apt-hook pre-install --sync: record before returning
  // watch / status
  std::string output;                       ///< watch --output FILE
  bool syslog = false;                      ///< watch --syslog
  std::string full_check_interval = "24h";  ///< watch --full-check-interval
  std::string debounce = "10ms";            ///< watch --debounce
  std::string heartbeat = "5m";             ///< watch --heartbeat
  std::string socket = "/run/fimctl/watch.sock";  ///< watch/status --socket
  bool watched = false;  ///< status --watched (hidden): what 'check --fast' may rest on
  std::string falco_url;                    ///< watch --falco-url
  std::string metrics;                      ///< watch --metrics HOST:PORT
  std::string bpf = "auto";                 ///< watch --bpf auto|off|required
  bool enforce = false;                     ///< watch --enforce
  std::string mount_events = "auto";        ///< watch --mount-events auto|poll
  std::vector<std::string> protect;         ///< watch --protect FILE...
  std::string mount_ns;                     ///< watch --mount-ns PATH (the node's: /proc/1/ns/mnt)
  std::string show_path;                    ///< show PATH (options_show.cpp)
  int64_t show_at = -1;                     ///< show --at SEQ (-1: the current baseline)
};

/// `fimctl version` and --version: "fimctl VERSION", then one "name: value" line per fact of
/// this build (schemas, BPF LSM sensors, libsystemd). Defined in output.cpp.
std::string version_text();

/// Of `names`, the one nearest to `typed` (Damerau-Levenshtein distance, at most 2 and less
/// than half of `typed`), or "" when none is that near: for "did you mean". Defined in output.cpp.
std::string nearest_name(const std::string& typed, const std::vector<std::string>& names);

/// Parses argv. Returns -1 to go on, or the exit code to end with (0 after --help, 16 after
/// a usage error, which CLI11 has already printed).
int parse_options(int argc, char** argv, Options* out);

}  // namespace fim::cli
