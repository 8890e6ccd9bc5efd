// SPDX-License-Identifier: GPL-2.0-or-later
// The fanotify and replay sources (source.h). The BPF source is the Sensors class (bpf.h),
// which the daemon drains through the same Event.
#include "source.h"

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
  ev.loss = (mask & FAN_Q_OVERFLOW) != 0;
  if (!ev.loss) {
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
    ev.loss = fe.overflow();
    ev.infos = std::move(fe.infos);
    on_event(std::move(ev));
  });
}

}  // namespace fim::watchd
