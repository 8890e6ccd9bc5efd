// SPDX-License-Identifier: GPL-2.0-or-later
// The replay harness the daemon's unit tests share (replay_test.cpp, coverage_test.cpp): a
// tree's baseline and the watch daemon on it, on a thread of its own, fed by a replay source.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "daemon/daemon.h"
#include "daemon/source.h"
#include "fim/pipeline.h"
#include "testutil.h"

namespace fim::test::replay {

using fim::watchd::Event;
using fim::watchd::ReplaySource;

class NullSink final : public Sink {
 public:
  void change(ChangeKind, const Record*, const Record*, AttrMask, const Rule*) override {}
  void entry_status(const Record&, bool, const Rule*) override {}
  void alert(std::string_view, std::string_view) override {}
  Status finish(const Summary&) override { return {}; }
};

/// A baseline of `roots` in d/db and the daemon on it, fed by a replay source.
class Daemon {
 public:
  /// `socket`: the status socket's path (empty: none); `reload`: SIGHUP reloads the default policy.
  Daemon(const TempDir& d, std::vector<Bytes> roots, Bytes socket = {}, bool reload = false)
      : out_path_(d / "records.ndjson") {
    o_.run.policy = default_policy();
    o_.run.db_path = d / "db";
    o_.run.paths = std::move(roots);
    o_.run.allow_unsigned = true;
    NullSink sink;
    if (::access(o_.run.db_path.c_str(), F_OK) != 0) REQUIRE(run_init(o_.run, sink).has_value());  // else: a restart
    o_.run.paths.clear();  // watch uses the baseline's roots
    o_.out = std::fopen(out_path_.c_str(), "w");
    o_.bpf = "off";
    o_.quiet = true;
    o_.debounce_seconds = 0.02;
    o_.heartbeat_seconds = 0;
    o_.socket_path = std::move(socket);
    if (reload) o_.reload_policy = [] { return Result<Policy>(default_policy()); };
    // The daemon reads its stop from a signalfd: SIGTERM stays pending for it, on every thread.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    auto src = std::make_unique<ReplaySource>();
    src_ = src.get();
    thread_ = std::thread([this, s = std::move(src)]() mutable {
      watchd::Watcher w(o_, std::move(s));
      result_ = w.run();
    });
    wait_for("\"type\":\"rescan_done\",\"reason\":\"start\"");
  }
  ~Daemon() {
    stop();
    std::fclose(o_.out);
  }
  void push(Event ev) { src_->push(std::move(ev)); }
  std::vector<std::string> records() const {
    std::ifstream in(out_path_);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
  }
  /// The first record that contains every one of `parts` (waits up to 10 s).
  std::string wait_for(std::initializer_list<std::string> parts) const {
    for (int i = 0; i < 1000; ++i) {
      for (const auto& l : records()) {
        bool all = true;
        for (const auto& p : parts) all &= l.find(p) != std::string::npos;
        if (all) return l;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("no record with " << *parts.begin() << " in:\n" << dump());
    return {};
  }
  std::string wait_for(const std::string& part) const { return wait_for({part}); }
  size_t count(const std::string& part) const {
    size_t n = 0;
    for (const auto& l : records()) n += l.find(part) != std::string::npos;
    return n;
  }
  std::string dump() const {
    std::string all;
    for (const auto& l : records()) all += l + "\n";
    return all;
  }
  void stop() {
    if (!thread_.joinable()) return;
    ::kill(::getpid(), SIGTERM);
    thread_.join();
    CHECK(result_.has_value());
  }

 private:
  std::string out_path_;
  WatchOptions o_;
  ReplaySource* src_ = nullptr;
  std::thread thread_;
  Status result_;
};

inline std::string q(const std::string& s) { return "\"" + s + "\""; }

inline Event named(uint64_t mask, const std::string& dir, const std::string& name) {
  return ReplaySource::named(mask, dir, name, ::getpid());
}


}  // namespace fim::test::replay
