// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl init --image: a per-image baseline built from the image's own layers, never from a
// container of it (which may have drifted already); docs/design.md, Containers.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "fim/base/sys.h"
#include "fim/image.h"
#include "fim/merge.h"
#include "fim/pipeline.h"

namespace fim {

Result<Summary> run_init_image(const RunOptions& opts, const std::string& ref, Sink& sink, Bytes* written) {
  auto image = resolve_image(ref);
  if (!image) return image.error();
  const auto key = image_digest_key(image->manifest_digest);
  if (!key) return make_error(Errc::Usage, ref + ": its manifest digest " + quote(image->manifest_digest) + " is not sha256");
  const Bytes images = images_dir(opts.db_path);
  if (::mkdir(images.c_str(), 0700) != 0 && errno != EEXIST) return make_error(Errc::Io, "cannot create " + quote(images), errno);
  FIM_TRY(check_baseline_dir(images));
  RunOptions r = opts;
  r.db_path = image_baseline_path(opts.db_path, *key);
  r.image_baseline = true;
  r.image = ImageOrigin{"image", image->manifest_digest, image->index_digest, ref};
  // One recorded from a running container gives way to the image's own; another built from
  // the image is replaced only with --force, as init replaces a baseline.
  if (::access(r.db_path.c_str(), F_OK) == 0 && !image_built(r.db_path)) {
    r.force = true;
    if (r.reason.empty()) r.reason = "recorded from a running container; replaced by one built from the image (init --image)";
  }
  auto root = assemble_image(*image, images);
  if (!root) return root.error();
  r.sysroot_fd = root->fd();
  r.package_sources.root.clear();
  *written = r.db_path;
  return run_init(r, sink);
}

namespace {

/// Copies `from` to a new file `to` (0600), fsynced; refuses to follow a symlink at `from`.
Status copy_file(const Bytes& from, const Bytes& to) {
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in.valid()) return make_error(Errc::Usage, "cannot open " + quote(from), errno);
  UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out.valid()) return make_error(Errc::Io, "cannot create " + quote(to), errno);
  FIM_TRY(read_chunks(in.get(), "an image baseline", [&](std::string_view d) { return write_all(out.get(), d, "an image baseline"); }));
  if (::fsync(out.get()) != 0) return make_error(Errc::Io, "cannot write " + quote(to), errno);
  return {};
}

/// The key that verifies an image baseline: an image-signing key in KEYS/images/, or the
/// host's own (an image built and baselined on this host).
Result<VerifyKey> image_verify_key(const RunOptions& opts, const BaselineMeta& meta, const Bytes& shown) {
  if (!meta.is_signed) return make_error(Errc::Trust, quote(shown) + " is not signed: an image baseline is imported only signed");
  auto k = detail::find_image_key(opts.keys_dir, meta.key_id);
  if (!k) return k.error();
  if (*k) return std::move(**k);
  const Bytes host = join_path(opts.keys_dir, "signing.pub");
  if (auto vk = VerifyKey::load(host); vk && vk->key_id() == meta.key_id) return std::move(*vk);
  return make_error(Errc::Trust, quote(shown) + " is signed by key " + escape_terminal(meta.key_id) +
                                     ", which is not a trusted image-signing key (none in " +
                                     quote(join_path(opts.keys_dir, "images")) + " has that id): refused");
}

}  // namespace

Result<ImportedImage> run_import_image(const RunOptions& opts, const Bytes& file) {
  const Bytes images = images_dir(opts.db_path);
  if (::mkdir(images.c_str(), 0700) != 0 && errno != EEXIST) return make_error(Errc::Io, "cannot create " + quote(images), errno);
  FIM_TRY(check_baseline_dir(images));
  // What is verified is the copy that will be installed: the file given could change after.
  Bytes tmp = join_path(images, ".import-XXXXXX");
  UniqueFd tfd(::mkstemp(tmp.data()));
  if (!tfd.valid()) return make_error(Errc::Io, "cannot create a file in " + quote(images), errno);
  tfd.reset();
  ::unlink(tmp.c_str());
  track_temp_file(tmp);
  struct Cleanup {
    Bytes path;
    ~Cleanup() {
      if (!path.empty()) ::unlink(path.c_str());
      untrack_temp_file(path);
    }
  } cleanup{tmp};
  FIM_TRY(copy_file(file, tmp));
  auto reader = BaselineReader::open(tmp);
  if (!reader) return reader.error();
  const BaselineMeta meta = (*reader)->meta();
  if (meta.source != "image")
    return make_error(Errc::Trust, quote(file) + " is not a baseline built from an image (init --image): refused");
  const auto key = image_digest_key(meta.image_digest);
  if (!key) return make_error(Errc::Trust, quote(file) + " names no well-formed image manifest digest: refused");
  auto vk = image_verify_key(opts, meta, file);
  if (!vk) return vk.error();
  if (!vk->verify(manifest_text(meta), meta.signature))
    return make_error(Errc::Trust, quote(file) + " failed verification: its signature does not match its manifest (edited or forged)");
  FIM_TRY(detail::read_verified(**reader, nullptr));
  reader->reset();

  ImportedImage out;
  out.path = image_baseline_path(opts.db_path, *key);
  out.meta = meta;
  auto lock = BaselineLock::acquire(out.path);
  if (!lock) return lock.error();
  auto state = detail::open_state(opts.db_path);
  if (!state) return state.error();
  auto pinned = (*state)->identity(out.path);
  if (!pinned) return pinned.error();
  auto last = (*state)->last_sequence(out.path);
  if (!last) return last.error();
  const BaselineIdentity mine = identity_of(meta);
  if (*pinned) {
    const BaselineIdentity& p = **pinned;
    if (p == mine && ::access(out.path.c_str(), F_OK) == 0) {
      out.already = true;
      return out;
    }
    if (p.key_id != mine.key_id && !opts.force)
      return make_error(Errc::Trust, "the baseline of image " + meta.image_digest + " is pinned to key " + escape_terminal(p.key_id) +
                                         "; " + quote(file) + " is signed by key " + escape_terminal(mine.key_id) +
                                         ": refused (import-image-baseline --force trusts the new key for this image)");
  }
  // Older than one this host has used for the image: a rollback to a weaker baseline.
  if (meta.sequence < *last || (*pinned && (**pinned).id != mine.id && meta.sequence <= *last && !opts.force))
    return make_error(Errc::Trust, quote(file) + " (sequence " + std::to_string(meta.sequence) + ") is not newer than the baseline "
                                       "of image " + meta.image_digest + " already used here (sequence " + std::to_string(*last) +
                                       "): a rolled-back or replayed image baseline is refused");
  if (::rename(tmp.c_str(), out.path.c_str()) != 0) return make_error(Errc::Io, "cannot install " + quote(out.path), errno);
  cleanup.path.clear();
  untrack_temp_file(tmp);
  UniqueFd dir(::open(images.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.valid()) (void)::fsync(dir.get());
  UniqueFd fd(::open(out.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.valid()) (void)write_identity_xattr(fd.get(), mine, out.path);
  FIM_TRY((*state)->note_sequence(out.path, meta.sequence, meta.content_sha256));
  FIM_TRY((*state)->pin_identity(out.path, identity_as_installed(out.path, meta)));
  out.replaced_key = *pinned && (**pinned).key_id != mine.key_id;
  return out;
}

Result<BaselineMeta> run_export_image(const RunOptions& opts, const std::string& digest, const Bytes& to) {
  const auto key = image_digest_key(digest);
  if (!key) return make_error(Errc::Usage, quote(digest) + " is not an image manifest digest (sha256:<64 hex digits>)");
  RunOptions r = opts;
  r.db_path = image_baseline_path(opts.db_path, *key);
  r.image_baseline = true;
  r.image.digest = digest;
  if (::access(r.db_path.c_str(), F_OK) != 0)
    return make_error(Errc::Usage, "no baseline of image " + digest + " at " + quote(r.db_path) + ": build it with 'fimctl init --image REF'", errno);
  auto reader = BaselineReader::open(r.db_path);
  if (!reader) return reader.error();
  const BaselineMeta meta = (*reader)->meta();
  if (meta.source != "image")
    return make_error(Errc::Usage, quote(r.db_path) + " was recorded from a running container, not built from the image: "
                                   "only a baseline built by 'fimctl init --image' is exported");
  std::unique_ptr<FILE, CDeleter<std::fclose>> null(std::fopen("/dev/null", "w"));
  if (!null) return make_error(Errc::Io, "cannot open /dev/null", errno);
  std::unique_ptr<Sink> none = make_sink(Format::Json, null.get(), false);
  FIM_TRY(detail::check_signature(r, meta, *none));
  FIM_TRY(detail::check_image_origin(r, meta));
  FIM_TRY(detail::read_verified(**reader, nullptr));
  reader->reset();
  const Bytes tmp = to + ".tmp";
  ::unlink(tmp.c_str());
  track_temp_file(tmp);
  const Status copied = copy_file(r.db_path, tmp);
  if (copied && ::rename(tmp.c_str(), to.c_str()) != 0) {
    ::unlink(tmp.c_str());
    untrack_temp_file(tmp);
    return make_error(Errc::Io, "cannot write " + quote(to), errno);
  }
  untrack_temp_file(tmp);
  if (!copied) {
    ::unlink(tmp.c_str());
    return copied.error();
  }
  return meta;
}

}  // namespace fim
