// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl init --image, export-image-baseline, import-image-baseline: per-image baselines
// built from the image itself and shipped with it (docs/design.md, Containers).
#include <unistd.h>

#include <cstdio>

#include "commands.h"
#include "fim/base/sys.h"
#include "fim/image.h"
#include "fim/pipeline.h"

namespace fim::cli {

int run_init_image_cli(const Options& o, const RunOptions& ro) {
  if (!o.sysroot.empty()) return report_error(make_error(Errc::Usage, "--image and --sysroot exclude each other"));
  if (::geteuid() != 0)
    return needs_root("init --image unpacks the image's layers with their owners, devices and capabilities and mounts them");
  Bytes dir, name;
  split_path(ro.db_path, &dir, &name);
  auto sink = make_sink(o.format, stdout, !o.no_color && ::isatty(STDOUT_FILENO), nullptr, dir, o.verbose > 0);
  Bytes written;
  auto summary = run_init_image(ro, o.image, *sink, &written);
  if (ro.progress) std::fputs("\r\x1b[K", stderr);
  if (!summary) return report_error(summary.error());
  if (auto st = sink->finish(*summary); !st) return report_error(st.error());
  if (!o.quiet) std::fprintf(stderr, "fimctl: baseline of image %s written to %s\n", escape_terminal(o.image).c_str(),
                             escape_terminal(written).c_str());
  return summary->exit_code;
}

int cmd_export_image(const Options& o) {
  auto ro = run_options(o);
  if (!ro) return report_error(ro.error());
  std::string digest = o.image;
  if (digest.rfind("sha256:", 0) != 0) {
    auto image = resolve_image(o.image);
    if (!image) return report_error(image.error());
    digest = image->manifest_digest;
  }
  auto to = absolute_path(o.output);
  if (!to) return report_error(to.error());
  auto meta = run_export_image(*ro, digest, *to);
  if (!meta) return report_error(meta.error());
  std::printf("exported the baseline of image %s (%llu entries, sequence %llu, %s) to %s\n", digest.c_str(),
              static_cast<unsigned long long>(meta->entry_count), static_cast<unsigned long long>(meta->sequence),
              meta->is_signed ? ("signed by key " + meta->key_id).c_str() : "unsigned", escape_terminal(*to).c_str());
  return 0;
}

int cmd_import_image(const Options& o) {
  if (::geteuid() != 0) return needs_root("import-image-baseline installs into the baseline directory and pins it in state.db");
  auto ro = run_options(o);
  if (!ro) return report_error(ro.error());
  auto file = absolute_path(o.paths.at(0));
  if (!file) return report_error(file.error());
  auto done = run_import_image(*ro, *file);
  if (!done) return report_error(done.error());
  const BaselineMeta& m = done->meta;
  if (done->already) {
    std::printf("the baseline of image %s is installed already (%s)\n", m.image_digest.c_str(), escape_terminal(done->path).c_str());
    return 0;
  }
  std::printf("imported the baseline of image %s (%llu entries, sequence %llu, signed by key %s%s) as %s\n",
              m.image_digest.c_str(), static_cast<unsigned long long>(m.entry_count),
              static_cast<unsigned long long>(m.sequence), m.key_id.c_str(),
              done->replaced_key ? ", now pinned for this image in place of the key pinned before (--force)" : "",
              escape_terminal(done->path).c_str());
  return 0;
}

}  // namespace fim::cli
