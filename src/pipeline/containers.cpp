// SPDX-License-Identifier: GPL-2.0-or-later
// One container's init or check (docs/design.md, Containers): the host's run, inside the
// container's root and against the baseline of its image; and the opt-in response.
#include <fcntl.h>

#include <cerrno>

#include "fim/base/sys.h"
#include "fim/pipeline.h"

namespace fim {
namespace {

/// Passes everything on, noting the first change a rule with a response reports (where the
/// rule is and what it asks: the Rule itself lives only as long as the run).
class ResponseSink final : public Sink {
 public:
  explicit ResponseSink(Sink& inner) : inner_(inner) {}
  std::string kill_rule;
  Rule::Response response = Rule::Response::None;
  void change(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule) override {
    note(rule);
    inner_.change(kind, o, n, changed, rule);
  }
  void noted_change(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule,
                    const ChangeNotes& notes) override {
    note(rule);
    inner_.noted_change(kind, o, n, changed, rule, notes);
  }
  void entry_status(const Record& r, bool subtree, const Rule* rule) override { inner_.entry_status(r, subtree, rule); }
  void alternative(const Record& r, unsigned n, const Rule* rule) override { inner_.alternative(r, n, rule); }
  void alert(std::string_view code, std::string_view message) override { inner_.alert(code, message); }
  Status finish(const Summary& s) override { return inner_.finish(s); }

 private:
  void note(const Rule* rule) {
    if (rule && rule->response != Rule::Response::None && kill_rule.empty()) {
      kill_rule = rule->where.text();
      response = rule->response;
    }
  }
  Sink& inner_;
};

}  // namespace

std::string response_record(const ContainerRun& run, int pid, const json::Writer* fields) {
  json::Writer w;
  w.schema("response").str("action", run.action).num("pid", pid).num("killed", run.killed < 0 ? 0 : run.killed);
  w.str("reason", "drift under the rule at " + run.kill_rule + " (response = \"" + run.action + "\")");
  if (!run.kill_error.empty()) w.str("error", run.kill_error);
  if (fields) w.members(*fields);
  return w.take();
}

Bytes images_dir(const Bytes& db_path) {
  Bytes dir, name;
  split_path(db_path, &dir, &name);
  return join_path(dir, "images");
}

Bytes image_baseline_path(const Bytes& db_path, const std::string& key) {
  return join_path(images_dir(db_path), key + ".db");
}

std::string baseline_source(const Bytes& baseline) {
  if (::access(baseline.c_str(), F_OK) != 0) return {};
  auto b = BaselineReader::open(baseline);
  if (!b) return {};
  // Written before sources were recorded: by init --containers, the only way there was.
  return (*b)->meta().source.empty() ? "container" : (*b)->meta().source;
}

bool image_built(const Bytes& baseline) { return baseline_source(baseline) == "image"; }

Result<Summary> run_in_container(const RunOptions& opts, const Container& c, bool init, Sink& sink, ContainerRun* run) {
  if (run->image.empty()) run->image = image_key(c);
  run->baseline = image_baseline_path(opts.db_path, run->image);
  RunOptions r = opts;
  r.db_path = run->baseline;
  r.image_baseline = true;
  if (run->image.rfind("sha256-", 0) == 0) r.image.digest = "sha256:" + run->image.substr(7);
  if (init) {
    // One built from the image itself is the better record of it: never replaced by what a
    // running container, which may have drifted already, holds.
    if (image_built(run->baseline))
      return make_error(Errc::Usage, "the baseline of this image was built from the image itself (init --image): "
                                     "init --containers leaves it as it is");
    r.image.source = "container";
    r.force = true;  // init --containers re-baselines each image it meets (--new-images-only: not)
  }
  const Bytes root = "/proc/" + std::to_string(c.pid) + "/root";
  UniqueFd rfd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!rfd.valid()) return make_error(Errc::Io, "container pid " + std::to_string(c.pid) + " is gone", errno);
  r.sysroot_fd = rfd.get();
  r.package_sources.root = root;
  ResponseSink rs(sink);
  auto s = init ? run_init(r, rs) : run_check(r, rs);
  if (s && !init && !rs.kill_rule.empty()) {
    run->kill_rule = rs.kill_rule;
    if (rs.response == Rule::Response::Kill) {
      run->action = "kill";
      auto k = kill_container(c);
      if (k) run->killed = *k;
      else run->kill_error = k.error().describe();
    } else {
      run->action = "kill_process";
      run->killed = 0;
      if (run->offender <= 0) {
        run->kill_error = "which process made the change is not known (only watch --containers knows it): nothing killed";
      } else if (auto k = kill_container_process(c, run->offender); k) {
        run->killed = 1;
      } else {
        run->kill_error = k.error().describe();
      }
    }
  }
  return s;
}

}  // namespace fim
