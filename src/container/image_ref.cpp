// SPDX-License-Identifier: GPL-2.0-or-later
// An image reference resolved to its manifest digest and layers (fim/image.h): an OCI image
// layout (image-spec image-layout.md, image-index.md, manifest.md) or podman/CRI-O's
// containers-storage (overlay-images/images.json, overlay-layers/layers.json). What a layout
// or a store holds is untrusted: sizes bounded, digests checked, ids and names validated
// before they become paths.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>

#include "fim/base/digest.h"
#include "fim/base/sys.h"
#include "fim/container.h"
#include "fim/image.h"
#include "fim/json.h"

namespace fim {
namespace {

constexpr size_t kMaxJson = size_t{4} << 20;  // an index, manifest or store index larger than this is refused
constexpr size_t kMaxLayers = 250;             // what one overlay mount can stack here (see assemble_image)

Error bad(const std::string& what) { return Error{Errc::Usage, 0, what}; }

bool is_hex(std::string_view s) { return !s.empty() && s.find_first_not_of("0123456789abcdef") == std::string_view::npos; }

/// This machine's OCI architecture name.
std::string oci_arch() {
  struct utsname u{};
  ::uname(&u);
  const std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  if (m == "i686" || m == "i386") return "386";
  return m;
}

class OciLayout {
 public:
  OciLayout(Bytes dir, std::string ref) : dir_(std::move(dir)), ref_(std::move(ref)) {}

  /// The blob `digest`, checked against it (and against `size` when the descriptor gives one).
  Result<std::string> blob(const std::string& digest, int64_t size) const {
    auto path = blob_path(digest);
    if (!path) return path.error();
    auto text = read_small_file(path->c_str(), kMaxJson);
    if (!text) return text.error();
    if (size >= 0 && static_cast<int64_t>(text->size()) != size)
      return make_error(Errc::Trust, ref_ + ": blob " + digest + " is " + std::to_string(text->size()) +
                                         " bytes, its descriptor says " + std::to_string(size) + " (the layout was altered)");
    if ("sha256:" + hex_encode(sha256_of(*text)) != digest)
      return make_error(Errc::Trust, ref_ + ": blob " + digest + " does not match its digest (the layout was altered)");
    return text;
  }

  Result<Bytes> blob_path(const std::string& digest) const {
    if (!image_digest_key(digest)) return bad(ref_ + ": " + quote(digest) + " is not a sha256 digest");
    return dir_ + "/blobs/sha256/" + digest.substr(7);
  }

 private:
  Bytes dir_;
  std::string ref_;
};

bool is_index_type(std::string_view t) {
  return t == "application/vnd.oci.image.index.v1+json" || t == "application/vnd.docker.distribution.manifest.list.v2+json";
}

Result<json::Value> parse_json(const std::string& text, const std::string& what) {
  auto v = json::parse(text, kMaxJson, 16);
  if (!v || v->kind != json::Value::Kind::Object) return bad(what + " is not a JSON object");
  return v;
}

/// index.json's descriptor for TAG (org.opencontainers.image.ref.name), or its only one.
Result<json::Value> pick_descriptor(const json::Value& index, const std::string& tag, const std::string& ref) {
  const json::Value* m = index.get("manifests");
  if (!m || m->kind != json::Value::Kind::Array || m->items.empty()) return bad(ref + ": index.json lists no manifest");
  std::vector<const json::Value*> hits;
  std::string names;
  for (const auto& d : m->items) {
    const json::Value* ann = d.get("annotations");
    const std::string name = ann ? ann->str("org.opencontainers.image.ref.name") : std::string();
    names += (names.empty() ? "" : ", ") + (name.empty() ? std::string("(untagged)") : escape_terminal(name));
    if (tag.empty() || name == tag) hits.push_back(&d);
  }
  if (hits.size() == 1) return *hits[0];
  if (hits.empty()) return bad(ref + ": no manifest tagged " + quote(tag) + " in the layout (it has: " + names + ")");
  return bad(ref + ": the layout holds several manifests (" + names + "): name one as oci:DIR:TAG");
}

Result<ResolvedImage> resolve_oci(const std::string& ref, std::string_view spec) {
  // oci:DIR[:TAG]: the last ':' after the last '/' starts the tag.
  std::string dir(spec), tag;
  const size_t colon = dir.rfind(':');
  if (colon != std::string::npos && dir.find('/', colon) == std::string::npos) {
    tag = dir.substr(colon + 1);
    dir.resize(colon);
  }
  if (dir.empty()) return bad("oci: needs a directory: oci:DIR[:TAG]");
  if (::access((dir + "/oci-layout").c_str(), F_OK) != 0)
    return make_error(Errc::Usage, quote(dir) + " is not an OCI image layout (no oci-layout file)", errno);
  OciLayout layout(dir, ref);
  auto index_text = read_small_file((dir + "/index.json").c_str(), kMaxJson);
  if (!index_text) return index_text.error();
  auto index = parse_json(*index_text, ref + ": index.json");
  if (!index) return index.error();
  auto desc = pick_descriptor(*index, tag, ref);
  if (!desc) return desc.error();
  ResolvedImage out;
  out.reference = ref;
  std::string digest = desc->str("digest"), type = desc->str("mediaType");
  int64_t size = desc->i64("size", -1);
  if (is_index_type(type)) {  // a multi-platform image: the manifest this machine would run
    auto text = layout.blob(digest, size);
    if (!text) return text.error();
    auto sub = parse_json(*text, ref + ": index " + digest);
    if (!sub) return sub.error();
    out.index_digest = digest;
    const json::Value* ms = sub->get("manifests");
    const std::string arch = oci_arch();
    digest.clear();
    for (const auto& d : ms && ms->kind == json::Value::Kind::Array ? ms->items : std::vector<json::Value>{}) {
      const json::Value* p = d.get("platform");
      if (p && p->str("os") == "linux" && p->str("architecture") == arch && !is_index_type(d.str("mediaType"))) {
        digest = d.str("digest");
        size = d.i64("size", -1);
        break;
      }
    }
    if (digest.empty()) return bad(ref + ": index " + out.index_digest + " has no manifest for linux/" + arch);
  }
  auto text = layout.blob(digest, size);
  if (!text) return text.error();
  auto manifest = parse_json(*text, ref + ": manifest " + digest);
  if (!manifest) return manifest.error();
  out.manifest_digest = digest;
  const json::Value* layers = manifest->get("layers");
  if (!layers || layers->kind != json::Value::Kind::Array) return bad(ref + ": manifest " + digest + " lists no layers");
  if (layers->items.size() > kMaxLayers)
    return bad(ref + ": " + std::to_string(layers->items.size()) + " layers; at most " + std::to_string(kMaxLayers));
  for (const auto& l : layers->items) {
    ImageLayer layer;
    layer.digest = l.str("digest");
    layer.media_type = l.str("mediaType");
    auto path = layout.blob_path(layer.digest);
    if (!path) return path.error();
    layer.path = *path;
    out.layers.push_back(std::move(layer));
  }
  return out;
}

bool valid_id(std::string_view id) { return id.size() == 64 && is_hex(id); }

Result<json::Value> store_index(const Bytes& root, const char* rel) {
  const Bytes path = root + "/" + rel;
  auto text = read_small_file(path.c_str(), size_t{64} << 20);
  if (!text) return text.error();
  auto v = json::parse(*text, size_t{64} << 20, 16);
  if (!v || v->kind != json::Value::Kind::Array) return bad(quote(path) + " is not a JSON array");
  return v;
}

Result<ResolvedImage> resolve_storage(const std::string& ref, std::string_view spec, const Bytes& storage_root) {
  auto img = find_stored_image(storage_root, spec);
  if (!img) return img.error();
  ResolvedImage out;
  out.reference = ref;
  out.manifest_digest = img->digest;
  if (!image_digest_key(out.manifest_digest))
    return bad(ref + ": containers-storage records no sha256 manifest digest for image " + img->id);
  for (auto it = img->layers.rbegin(); it != img->layers.rend(); ++it) {
    ImageLayer layer;
    layer.path = storage_root + "/overlay/" + *it + "/diff";
    layer.digest = *it;
    layer.directory = true;
    out.layers.push_back(std::move(layer));
  }
  return out;
}

}  // namespace

Result<StoredImage> find_stored_image(const Bytes& storage_root, std::string_view ref) {
  auto images = store_index(storage_root, "overlay-images/images.json");
  if (!images) return images.error();
  std::string want(ref);
  const bool tagged = want.find(':', want.rfind('/') == std::string::npos ? 0 : want.rfind('/')) != std::string::npos;
  const std::string with_tag = tagged ? want : want + ":latest";
  std::vector<const json::Value*> hits;
  for (const auto& im : images->items) {
    const std::string id = im.str("id");
    bool hit = want.size() >= 12 && is_hex(want) && id.rfind(want, 0) == 0;
    if (const json::Value* names = im.get("names"); names && names->kind == json::Value::Kind::Array) {
      for (const auto& n : names->items) {
        const std::string& s = n.string;
        if (s == with_tag || (s.size() > with_tag.size() && s.compare(s.size() - with_tag.size(), with_tag.size(), with_tag) == 0 &&
                              s[s.size() - with_tag.size() - 1] == '/'))
          hit = true;
      }
    }
    if (hit) hits.push_back(&im);
  }
  if (hits.empty()) return make_error(Errc::Usage, "no image " + quote(ref) + " in containers-storage at " + quote(storage_root));
  if (hits.size() > 1) return make_error(Errc::Usage, quote(ref) + " names several images in containers-storage: use its full name or id");
  const json::Value& im = *hits[0];
  StoredImage out;
  out.id = im.str("id");
  out.digest = im.str("digest");
  if (const json::Value* names = im.get("names"); names && names->kind == json::Value::Kind::Array)
    for (const auto& n : names->items) out.names.push_back(n.string);
  if (!valid_id(out.id)) return bad("containers-storage: malformed image id " + quote(out.id));
  auto layers = store_index(storage_root, "overlay-layers/layers.json");
  if (!layers) return layers.error();
  std::string next = im.str("layer");
  while (!next.empty()) {
    if (!valid_id(next)) return bad("containers-storage: malformed layer id " + quote(next));
    if (out.layers.size() >= kMaxLayers) return bad("containers-storage: layer chain of image " + out.id + " too long (or a loop)");
    out.layers.push_back(next);
    const json::Value* found = nullptr;
    for (const auto& l : layers->items)
      if (l.str("id") == next) found = &l;
    if (!found) return bad("containers-storage: layer " + next + " of image " + out.id + " is not in layers.json");
    next = found->str("parent");
  }
  if (out.layers.empty()) return bad("containers-storage: image " + out.id + " has no layers");
  return out;
}

Result<ResolvedImage> resolve_image(std::string_view ref, const Bytes& storage_root) {
  const std::string r(ref);
  if (r.rfind("oci:", 0) == 0) return resolve_oci(r, std::string_view(r).substr(4));
  if (r.rfind("containers-storage:", 0) == 0) return resolve_storage(r, std::string_view(r).substr(19), storage_root);
  return make_error(Errc::Usage, "unknown image reference " + quote(ref) +
                                     ": give oci:DIR[:TAG] (an OCI image layout) or containers-storage:NAME[:TAG]|ID");
}

}  // namespace fim
