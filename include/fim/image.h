// SPDX-License-Identifier: GPL-2.0-or-later
// Container images as fimctl reads them to build a baseline from the image itself, without
// running it (docs/design.md, Containers: image baselines): where an image's layers are, and
// its root assembled from them read-only, whiteouts applied as the runtime's overlay applies
// them. Everything an image holds is untrusted input.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "fim/base/bytes.h"
#include "fim/base/fd.h"
#include "fim/base/result.h"

namespace fim {

/// Where podman and CRI-O keep their images (storage.conf's graphroot default).
inline constexpr const char* kContainersStorage = "/var/lib/containers/storage";

struct ImageLayer {
  Bytes path;              ///< OCI: the blob file; containers-storage: the layer's diff directory
  std::string digest;      ///< OCI: the blob's digest (checked as it is read); storage: the layer id
  std::string media_type;  ///< OCI: the layer's media type; storage: empty
  bool directory = false;  ///< an unpacked layer (containers-storage), not an archive
};

/// An image reference resolved to the manifest the runtime runs and its layers.
struct ResolvedImage {
  std::string reference;        ///< as given ("oci:/srv/app:1", "containers-storage:localhost/app:1")
  std::string manifest_digest;  ///< "sha256:<hex>": the key of its baseline (image_digest_key)
  std::string index_digest;     ///< the OCI index it was chosen from, when there was one
  std::vector<ImageLayer> layers;  ///< lowest first
};

/// Resolves `ref`:
///  - `oci:DIR[:TAG]`: an OCI image layout (`skopeo copy`, `podman save --format oci-dir`).
///    TAG selects by org.opencontainers.image.ref.name; without one, the layout must hold one
///    manifest. An index is followed to this machine's platform (linux/amd64...). Every blob
///    read is checked against its digest; layers are checked as they are unpacked.
///  - `containers-storage:NAME[:TAG]|ID` (podman, CRI-O): the store at `storage_root`.
Result<ResolvedImage> resolve_image(std::string_view ref, const Bytes& storage_root = kContainersStorage);

/// A stored image found in containers-storage: its id, names, manifest digest and layer ids
/// from the top layer down to the base. Lookup by id (or a unique id prefix of 12 or more hex
/// digits), by name ("localhost/app:1"), or by a short name that is unique ("app:1").
struct StoredImage {
  std::string id;
  std::vector<std::string> names;
  std::string digest;
  std::vector<std::string> layers;  ///< top first
};
Result<StoredImage> find_stored_image(const Bytes& storage_root, std::string_view ref);

/// An image's root, assembled read-only for a scan: its fd (a detached read-only overlay
/// mount that nothing else can reach) and the scratch directory unpacked archives went to,
/// removed when it is destroyed.
class ImageRoot {
 public:
  ImageRoot() = default;
  ImageRoot(ImageRoot&&) noexcept;
  ImageRoot& operator=(ImageRoot&&) = delete;
  ~ImageRoot();
  int fd() const { return fd_.get(); }

 private:
  friend Result<ImageRoot> assemble_image(const ResolvedImage&, const Bytes&);
  UniqueFd fd_;
  Bytes scratch_;
};

/// Unpacks the archives of `image` below `scratch_parent` (a root-only directory on a
/// filesystem overlayfs can stack on: the images directory), each layer into its own
/// directory with its whiteouts in overlayfs' form (".wh.NAME" a 0:0 character device, an
/// opaque directory trusted.overlay.opaque=y), then mounts them as one read-only overlay.
/// Needs root (owners, devices, capabilities, trusted.* attributes). Paths that would leave a
/// layer (.., absolute or escaping symlinks followed by later members) are refused, and a
/// malformed layer fails the whole build: never a partial root.
Result<ImageRoot> assemble_image(const ResolvedImage& image, const Bytes& scratch_parent);

}  // namespace fim
