// SPDX-License-Identifier: GPL-2.0-or-later
// The fanotify and replay sources (source.h). The BPF source is the Sensors class (bpf.h),
// which the daemon drains through the same Event.
#include "source.h"

#include "bpf.h"

#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include <cerrno>

namespace fim::watchd {

ReplaySource::ReplaySource() : efd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

void ReplaySource::push(Event ev) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    queue_.push_back(std::move(ev));
  }
  const uint64_t one = 1;
  (void)::write(efd_.get(), &one, sizeof one);
}

Result<bool> ReplaySource::drain(const std::function<void(Event&&)>& on_event) {
  uint64_t v;
  (void)::read(efd_.get(), &v, sizeof v);
  std::deque<Event> got;
  {
    std::lock_guard<std::mutex> lk(mu_);
    got.swap(queue_);
  }
  for (auto& ev : got) on_event(std::move(ev));
  return !got.empty();
}

Event ReplaySource::named(uint64_t mask, const Bytes& dir, const Bytes& name, int32_t pid) {
  Event ev;
  ev.mask = mask;
  ev.pid = pid;
  if (mask & FAN_Q_OVERFLOW) ev.loss = "overflow";
  if (ev.loss.empty()) {
    FanInfo i;
    i.kind = FanInfo::Kind::DfidName;
    i.path = dir;
    i.name = name;
    ev.infos.push_back(std::move(i));
  }
  return ev;
}

Event& ReplaySource::with_object(Event& ev, const Bytes& path) {
  FanInfo i;
  i.kind = FanInfo::Kind::Fid;
  i.path = path;
  ev.infos.push_back(std::move(i));
  return ev;
}

Result<bool> FanotifyEvents::drain(const std::function<void(Event&&)>& on_event) {
  return fan_.read([&](FanEvent&& fe) {
    Event ev;
    ev.mask = fe.mask;
    ev.pid = fe.pid;
    if (fe.overflow()) ev.loss = "overflow";
    ev.infos = std::move(fe.infos);
    on_event(std::move(ev));
  });
}

int BpfEvents::fd() const { return s_.fd(); }

Result<bool> BpfEvents::drain(const std::function<void(Event&&)>& on_event) {
  bool any = false;
  FIM_TRY(s_.drain([&](BpfEvent&& b) {
    any = true;
    Event ev;
    ev.pid = static_cast<int32_t>(b.who.tgid);
    ev.bpf = std::move(b);
    on_event(std::move(ev));
  }));
  return any;
}

void BpfEvents::poll_losses(const std::function<void(Event&&)>& on_event) {
  if (s_.new_losses() == 0) return;
  Event ev;
  ev.loss = "bpf_loss";
  on_event(std::move(ev));
}

}  // namespace fim::watchd
