// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl watch: fanotify events feed the same compare as check (docs/design.md, Architecture).
//
// Two threads. The main thread owns the kernel side: it reads fanotify, resolves each event
// to a path, keeps the paths below the baseline's roots in a pending set (bounded), and
// answers signals and timers; 'fimctl status' and Prometheus are a third thread's (servers.h),
// answered from what this one publishes. The worker takes the pending paths after a
// short debounce and compares each subtree with the baseline (a verified BaselineReader,
// range lookups), through the merge check uses. Loss is never silent: a queue overflow, a
// failed mark, a pending set that outgrew its bound and the time the daemon was not running
// mark roots dirty in state.db; the worker rescans exactly those, and clears them only when
// a rescan that began after the loss has finished.
#include <fcntl.h>
#include <signal.h>
#include <sys/fanotify.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "fim/coverage_rows.h"
#include "fim/merge.h"
#include "daemon.h"

namespace fim::watchd {

namespace {

sigset_t daemon_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

}  // namespace

Status Watcher::setup() {
  Bytes dir, name;
  split_path(o_.run.db_path, &dir, &name);
  auto st = StateStore::open(dir);
  if (!st) return st.error();
  state_ = std::move(*st);
  auto wst = StateStore::open(dir);
  if (!wst) return wst.error();
  worker_state_ = std::move(*wst);

  if (!o_.falco_url.empty()) {
    auto url = parse_http_url(o_.falco_url);
    if (!url) return url.error();
    falco_ = std::make_unique<HttpPoster>(std::move(*url), 10000);
    sink_.set_falco(falco_.get());
  }
  sink_.set_window([this](ChangeKind k, const Record* o, const Record* n) { return window_writes_.tag(k, o, n); });
  if (!o_.metrics_address.empty()) {
    auto addr = parse_listen_address(o_.metrics_address);
    if (!addr) return addr.error();
    auto fd = listen_tcp(addr->first, addr->second);
    if (!fd) return fd.error();
    metricsfd_ = std::move(*fd);
  }

  // Trust first: nothing is reported from a baseline that does not verify.
  FIM_TRY(verify_baseline(true));

  if (!source_) {
    auto fan = FanotifySource::open();
    if (!fan) return fan.error();
    auto events = std::make_unique<FanotifyEvents>(std::move(*fan));
    fan_ = events.get();
    source_ = std::move(events);
  }
  source_->last_read_ns = now_ns();
  FIM_TRY(open_socket());
  FIM_TRY(start_sensors());

  // The time nobody watched: since the last clean stop (or last heartbeat of a daemon that
  // died), else since the baseline was written.
  auto prev = state_->daemon(o_.run.db_path);
  int64_t down_since = reader_->meta().created_ns;
  if (prev && *prev) down_since = (*prev)->stopped_ns ? (*prev)->stopped_ns : (*prev)->heartbeat_ns;
  if (prev && *prev) clock_high_ns_ = std::max((*prev)->heartbeat_ns, (*prev)->stopped_ns);
  const int64_t now = now_ns();
  recorded(state_->daemon_beat(o_.run.db_path, ::getpid(), started_ns_, now, false), "the heartbeat");
  // A previous daemon's coverage ended with it (stopped or killed): this one's begins later.
  if (Status st = CoverageRows(*state_).end(o_.run.db_path, Bytes()); !st) recorded(st, "the end of the last daemon's coverage");

  // Marks before the first rescan, so nothing falls between the two.
  std::vector<Bytes> roots;
  {
    std::lock_guard<std::mutex> lk(mu_);
    roots = roots_;
  }
  locator_.set_roots(roots);
  for (const auto& r : roots) mark_root(r, now);
  {
    json::Writer f = gap_fields(down_since, now, "daemon_down", roots);
    sink_.event("gap", f, "not watched from " + format_time_ns(down_since) + " to " + format_time_ns(now) +
                              " (daemon not running): rescanning every root");
    recorded(state_->add_gap(o_.run.db_path, {down_since, now, "daemon_down"}), "the downtime gap");
    // recorded() takes mu_ when a write fails: called outside it.
    for (const auto& r : roots) recorded(state_->mark_dirty(o_.run.db_path, r, "daemon_down", now), "a dirty root");
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& r : roots) set_dirty(r, "start", now);
  }
  return {};
}

void Watcher::mark_new_roots() {
  std::vector<Bytes> fresh, all;
  {
    std::lock_guard<std::mutex> lk(mu_);
    all = roots_;
    for (const auto& r : roots_)
      if (!marked_roots_.count(r)) fresh.push_back(r);
  }
  if (fresh.empty()) return;
  locator_.set_roots(all);
  const int64_t now = now_ns();
  for (const auto& r : fresh) mark_root(r, now);
  // Compared again now that they are marked: nothing between the two is missed.
  std::lock_guard<std::mutex> lk(mu_);
  for (const auto& r : fresh) set_dirty(r, "new_root", now);
  cv_.notify_one();
}

void Watcher::reload() {
  if (!o_.reload_policy) return;
  auto p = o_.reload_policy();
  if (!p) {
    sink_.alert("reload_failed", "SIGHUP: the policy did not load, the daemon keeps the one it has: " + p.error().describe());
    return;
  }
  sink_.event("reload", json::Writer::fields(), "policy reloaded from " + p->source);
  std::lock_guard<std::mutex> lk(mu_);
  new_policy_ = std::make_unique<Policy>(std::move(*p));
  // A reload ends every root's coverage: it begins again after the compare under the new
  // rules (the full check new_policy_ sets off clears these marks).
  const int64_t now = now_ns();
  for (const auto& r : roots_) set_dirty(r, "reload", now);
  cv_.notify_one();
}

void Watcher::tick() {
  mark_new_roots();
  dpkg_.poll(*state_, [this] { (void)drain_source(*source_); });
  window_writes_.poll(*state_);
  check_mounts(false);
  poll_containers();
  const double now = monotonic_seconds();
  if (now >= next_refresh_) {
    // A root replaced or moved without an event we could place (it is found by identity):
    // what happened in between was not located, so it is a gap.
    next_refresh_ = now + 1;
    if (locator_.refresh()) mark_all_dirty("root_changed", source_->last_read_ns);
    // The baseline file replaced (a writer renames its successor over it): the worker verifies it now.
    if (struct stat sb; ::stat(o_.run.db_path.c_str(), &sb) == 0) {
      std::lock_guard<std::mutex> lk(mu_);
      if (std::pair<dev_t, ino_t>{sb.st_dev, sb.st_ino} != verified_file_ && !reverify_due_) {
        reverify_due_ = true;
        cv_.notify_one();
      }
    }
  }
  if (sensors_.active()) {
    // Kernel-side loss: the same recovery as a fanotify overflow.
    loss_since_ = bpf_->last_read_ns;
    bpf_->poll_losses([this](Event&& ev) { on_event(std::move(ev)); });
    apply_sensor_policy();  // the baseline or the policy changed
    if (now >= next_protect_) {  // a replaced baseline (update) or policy: its new inode
      sensors_.protect(protected_paths());
      sensors_.deny_mounts(mount_guarded());
      // Roots created (or replaced) since they were marked: their inode into the map.
      std::vector<Bytes> roots;
      {
        std::lock_guard<std::mutex> lk(mu_);
        roots = roots_;
      }
      for (const auto& r : roots) (void)sensors_.watch_root(r);
      next_protect_ = now + 5;
    }
  }
  const int64_t wall = now_ns();
  if (now >= next_beat_) {
    recorded(state_->daemon_beat(o_.run.db_path, ::getpid(), started_ns_, wall, false), "the heartbeat");
    next_beat_ = now + 10;
  }
  if (o_.full_check_seconds > 0 && now >= next_full_) {
    next_full_ = now + o_.full_check_seconds;
    std::lock_guard<std::mutex> lk(mu_);
    full_due_ = true;
    cv_.notify_one();
  }
  if (o_.heartbeat_seconds > 0 && now >= next_heartbeat_) {
    next_heartbeat_ = now + o_.heartbeat_seconds;
    json::Writer f = json::Writer::fields();
    f.num("events", events_.load()).num("changes", changes_.load()).num("overflows", overflows_.load());
    size_t depth;
    {
      std::lock_guard<std::mutex> lk(mu_);
      depth = pending_.size();
    }
    f.num("queue_depth", depth);
    sink_.event("heartbeat", f, std::to_string(events_) + " events, " + std::to_string(changes_) + " changes", LOG_INFO);
  }
  // The watchdog is fed by progress: an idle worker, or one whose counter moved.
  bool busy;
  {
    std::lock_guard<std::mutex> lk(mu_);
    busy = busy_;
  }
  if (!busy || progress_ != last_progress_) last_progress_at_ = now;
  last_progress_ = progress_;
  const bool healthy = now - last_progress_at_ < static_cast<double>(notifier_.watchdog_usec()) / 2e6;
  // Ping at a quarter of the interval systemd asked for; a stuck worker stops the pings.
  if (healthy && notifier_.watchdog_usec() && now >= next_watchdog_) {
    notifier_.send("WATCHDOG=1");
    next_watchdog_ = now + static_cast<double>(notifier_.watchdog_usec()) / 4e6;
  }
  if (notifier_.active() && now >= next_status_) {
    next_status_ = now + 5;
    notifier_.send("STATUS=" + std::to_string(events_) + " events, " + std::to_string(changes_) + " changes, " +
                   std::to_string(overflows_) + " overflows, " + std::to_string(rescans_) + " rescans");
  }
  servers_.publish([this] { return snapshot(); });
}

Status Watcher::open_loop(UniqueFd* ep) {
  const sigset_t sigs = daemon_signals();
  if (::pthread_sigmask(SIG_BLOCK, &sigs, nullptr) != 0) return make_error(Errc::Bug, "pthread_sigmask", errno);
  sigfd_.reset(::signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK));
  timerfd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  wakefd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!sigfd_.valid() || !timerfd_.valid() || !wakefd_.valid()) return make_error(Errc::Io, "cannot create the event loop's fds", errno);
  FIM_TRY(setup());
  FIM_TRY(servers_.start(std::move(sockfd_), std::move(metricsfd_), snapshot()));

  ep->reset(::epoll_create1(EPOLL_CLOEXEC));
  const auto add = [&](int fd) {
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.fd = fd;
    return ::epoll_ctl(ep->get(), EPOLL_CTL_ADD, fd, &e) == 0;
  };
  itimerspec its{};
  its.it_interval.tv_nsec = 250'000'000;
  its.it_value.tv_nsec = 250'000'000;
  ::timerfd_settime(timerfd_.get(), 0, &its, nullptr);
  if (!add(source_->fd()) || !add(sigfd_.get()) || !add(timerfd_.get()) || !add(wakefd_.get()) ||
      !add(servers_.refresh_fd()) ||
      (bpf_ && !add(bpf_->fd())))
    return make_error(Errc::Io, "epoll_ctl", errno);
  FIM_TRY(start_mounts(ep->get()));
  next_full_ = monotonic_seconds() + o_.full_check_seconds;
  next_heartbeat_ = monotonic_seconds() + o_.heartbeat_seconds;
  return {};
}

void Watcher::read_queued() {
  if (Status st = drain_source(*source_); !st) {
    sink_.alert("read_error", std::string(source_->name()) + ": " + st.error().describe());
    mark_all_dirty("read_error", source_->last_read_ns);
  }
  if (sensors_.active()) {
    loss_since_ = bpf_->last_read_ns;
    bpf_->poll_losses([this](Event&& ev) { on_event(std::move(ev)); });
  }
}

Status Watcher::drain_source(Source& src) {
  for (;;) {
    loss_since_ = src.last_read_ns;  // a loss it reports happened after this
    auto got = src.drain([this](Event&& ev) { on_event(std::move(ev)); });
    if (!got) return got.error();
    if (!*got) return {};
    src.last_read_ns = now_ns();
  }
}

bool Watcher::on_ready(int fd, Status* result) {
  Source* src = fd == source_->fd() ? source_.get() : bpf_ && fd == bpf_->fd() ? bpf_.get() : nullptr;
  if (src) {
    const uint64_t before = events_;
    if (Status st = drain_source(*src); !st) {
      // A read error loses events: say so, rescan, go on.
      sink_.alert("read_error", std::string(src->name()) + ": " + st.error().describe());
      mark_all_dirty("read_error", src->last_read_ns);
    }
    // Under a stream of events, let them gather for a moment instead of waking for each
    // one: a busy writer pays for every wakeup (measured: -57% cost per event,
    // -33% batched). Bounded latency cost; the kernel queue holds them meanwhile.
    if (src == source_.get() && events_ - before > 0 && o_.batch_seconds > 0)
      std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(o_.batch_seconds * 1e6)));
  } else if (fd == sigfd_.get()) {
    bool stopping = false;
    signalfd_siginfo si;
    while (::read(sigfd_.get(), &si, sizeof si) == sizeof si) {
      if (si.ssi_signo == SIGHUP) reload();
      else stopping = true;
    }
    return stopping;
  } else if (fd == timerfd_.get()) {
    uint64_t expirations;
    (void)::read(timerfd_.get(), &expirations, sizeof expirations);
    tick();
  } else if (fd == wakefd_.get()) {
    uint64_t v;
    (void)::read(wakefd_.get(), &v, sizeof v);
    std::lock_guard<std::mutex> lk(mu_);
    if (fatal_) {
      *result = *fatal_;
      return true;
    }
  } else if (fd == servers_.refresh_fd()) {
    servers_.publish([this] { return snapshot(); });  // a client waits for what is true now
  } else if (fd == mounts_.fd()) {
    check_mounts(true);
  }
  return false;
}

void Watcher::shut_down(std::thread& worker_thread, const Status& result) {
  // SIGTERM: take what the kernel still holds, let the worker compare it, then stop.
  notifier_.send("STOPPING=1");
  writers_.stop();
  if (bpf_) (void)drain_source(*bpf_);
  (void)drain_source(*source_);
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  worker_thread.join();
  {
    std::lock_guard<std::mutex> lk(mu_);
    covered_.clear();
  }
  if (Status st = CoverageRows(*state_).end(o_.run.db_path, Bytes()); !st) recorded(st, "the end of coverage at stop");
  recorded(state_->daemon_beat(o_.run.db_path, ::getpid(), started_ns_, now_ns(), true), "the clean stop");
  const bool bound = servers_.serves_status();
  servers_.stop();  // nothing answers on the name once it is gone
  if (bound) ::unlink(o_.socket_path.c_str());
  if (result) {
    json::Writer f = json::Writer::fields();
    f.num("events", events_.load()).num("changes", changes_.load());
    sink_.event("watch_stop", f, "stopped after " + std::to_string(events_) + " events");
  }
}

Status Watcher::run() {
  UniqueFd ep;
  FIM_TRY(open_loop(&ep));
  {
    json::Writer f = json::Writer::fields();
    roots_field(f, roots_);
    f.num("pid", ::getpid()).boolean("mount_events", mounts_.events());
    sink_.event("watch_start", f, "watching " + std::to_string(roots_.size()) + " root(s)");
  }
  start_containers();
  std::thread worker_thread([this] { worker(); });
  start_open_writers();
  notifier_.send("READY=1\nSTATUS=watching");
  Status result;
  bool stopping = false;
  while (!stopping) {
    epoll_event evs[8];
    const int n = ::epoll_wait(ep.get(), evs, 8, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      result = make_error(Errc::Io, "epoll_wait", errno);
      break;
    }
    // Every ready fd is handled, also after one that asks to stop (as before the split).
    for (int i = 0; i < n; ++i) stopping |= on_ready(evs[i].data.fd, &result);
  }
  shut_down(worker_thread, result);
  return result;
}

}  // namespace fim::watchd

namespace fim {

Status run_watch(const WatchOptions& opts) {
  // The daemon's signals go to its event loop only: block them before any thread starts.
  const sigset_t sigs = watchd::daemon_signals();
  if (::pthread_sigmask(SIG_BLOCK, &sigs, nullptr) != 0) return make_error(Errc::Bug, "pthread_sigmask", errno);
  watchd::Watcher w(opts);
  return w.run();
}

}  // namespace fim
