// SPDX-License-Identifier: GPL-2.0-or-later
// --format ecs (docs/design.md, Formats): one Elastic Common Schema 9.4 document per line, made
// by ONE translation from the fimctl.v1 record the ndjson format writes (ecs_document), so
// every record type of every command and of the watch daemon has its ECS form without a second
// set of writers. What ECS names goes to its field (file.*, process.*, container.*,
// orchestrator.*, host.*, event.*); everything else of the record is kept under fimctl.*, so
// nothing is dropped.
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "fim/base/bytes.h"
#include "fim/report.h"
#include "spool.h"

namespace fim {
namespace {

constexpr const char* kEcsVersion = "9.4.0";

/// A JSON string as every writer of the project escapes it (fim/base/bytes.h).
std::string quoted(std::string_view s) {
  std::string o;
  append_json_string(o, s);
  return o;
}

void dump(const json::Value& v, std::string& o) {
  using K = json::Value::Kind;
  switch (v.kind) {
    case K::Null: o += "null"; break;
    case K::Bool: o += v.boolean ? "true" : "false"; break;
    case K::Number: {
      if (v.integral) {
        o += std::to_string(v.integer);
      } else {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%.17g", v.number);
        o += (std::strpbrk(buf, "ni") ? "null" : buf);  // inf/nan are not JSON
      }
      break;
    }
    case K::String: o += quoted(v.string); break;
    case K::Array:
      o += '[';
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i) o += ',';
        dump(v.items[i], o);
      }
      o += ']';
      break;
    case K::Object:
      o += '{';
      for (size_t i = 0; i < v.members.size(); ++i) {
        if (i) o += ',';
        o += quoted(v.members[i].key) + ':';
        dump(v.members[i].value, o);
      }
      o += '}';
      break;
  }
}

std::string dumped(const json::Value& v) {
  std::string o;
  dump(v, o);
  return o;
}

/// The document as dotted field names -> JSON text; written nested (ECS's own layout).
class Doc {
 public:
  void raw(const std::string& field, std::string json) { fields_[field] = std::move(json); }
  void str(const std::string& field, std::string_view v) { raw(field, quoted(v)); }
  void num(const std::string& field, int64_t v) { raw(field, std::to_string(v)); }
  void strs(const std::string& field, std::initializer_list<std::string_view> vs) {
    std::string a = "[";
    for (const auto v : vs) a += (a.size() > 1 ? "," : "") + quoted(v);
    raw(field, a + "]");
  }
  /// A string member of `v` as a keyword (numbers written as text: ECS keeps ids as keywords).
  void keyword(const std::string& field, const json::Value* v) {
    if (!v) return;
    if (v->kind == json::Value::Kind::String) str(field, v->string);
    else if (v->kind == json::Value::Kind::Number && v->integral) str(field, std::to_string(v->integer));
  }
  void number(const std::string& field, const json::Value* v) {
    if (v && v->kind == json::Value::Kind::Number && v->integral) num(field, v->integer);
  }
  bool has(const std::string& field) const { return fields_.count(field) != 0; }

  std::string text() const {
    Node root;
    for (const auto& [k, v] : fields_) {
      Node* n = &root;
      size_t i = 0;
      for (size_t dot; (dot = k.find('.', i)) != std::string::npos; i = dot + 1) n = &n->kids[k.substr(i, dot - i)];
      n->kids[k.substr(i)].leaf = v;
    }
    std::string o;
    write(root, o);
    return o;
  }

 private:
  struct Node {
    std::string leaf;
    std::map<std::string, Node> kids;
  };
  static void write(const Node& n, std::string& o) {
    if (n.kids.empty()) {
      o += n.leaf;
      return;
    }
    o += '{';
    bool first = true;
    for (const auto& [k, kid] : n.kids) {
      if (!first) o += ',';
      first = false;
      o += quoted(k) + ':';
      write(kid, o);
    }
    o += '}';
  }
  std::map<std::string, std::string> fields_;
};

int64_t severity_number(std::string_view s) {
  if (s == "critical") return 99;
  if (s == "high") return 73;
  if (s == "medium") return 47;
  if (s == "low") return 21;
  return 1;  // info
}

/// file.* from one state of the entry (the record's "new", "old", or a change's new values).
void file_state(Doc& d, const json::Value& st) {
  d.keyword("file.mode", st.get("mode"));
  d.keyword("file.uid", st.get("uid"));
  d.keyword("file.gid", st.get("gid"));
  d.number("file.size", st.get("size"));
  d.keyword("file.mtime", st.get("mtime"));
  d.keyword("file.ctime", st.get("ctime"));
  d.keyword("file.inode", st.get("inode"));
  d.keyword("file.target_path", st.get("link"));
  d.keyword("file.hash.sha256", st.get("sha256"));
}

void file_fields(Doc& d, const json::Value& r) {
  const json::Value* path = r.get("path");
  if (path && path->kind == json::Value::Kind::String && !r.get("path_b64")) {
    const std::string& p = path->string;
    d.str("file.path", p);
    const size_t slash = p.rfind('/');
    if (slash != std::string::npos) {
      d.str("file.name", p.substr(slash + 1));
      d.str("file.directory", slash == 0 ? "/" : p.substr(0, slash));
    }
  }
  d.keyword("file.type", r.get("file_type"));
  const std::string kind = r.str("kind");
  if (const json::Value* n = r.get("new"); n && n->kind == json::Value::Kind::Object) file_state(d, *n);
  else if (const json::Value* o = r.get("old"); o && o->kind == json::Value::Kind::Object && kind == "removed") file_state(d, *o);
  if (const json::Value* cs = r.get("changes"); cs && cs->kind == json::Value::Kind::Array) {
    json::Value now;  // the new value of each attribute that changed
    now.kind = json::Value::Kind::Object;
    for (const auto& c : cs->items)
      if (const json::Value* v = c.get("new")) now.members.push_back({c.str("attr"), *v});
    file_state(d, now);
  }
}

/// The writer a watch record names (the BPF sensors' "who", or the trigger's pid and comm).
void process_fields(Doc& d, const json::Value& r) {
  if (const json::Value* who = r.get("who"); who && who->kind == json::Value::Kind::Object) {
    d.number("process.pid", who->get("tgid") ? who->get("tgid") : who->get("pid"));
    d.number("process.parent.pid", who->get("ppid"));
    d.keyword("process.name", who->get("comm"));
    d.keyword("process.executable", who->get("exe"));
    d.keyword("user.id", who->get("uid"));
    return;
  }
  if (r.str("source") == "watch" || r.get("comm")) {
    d.number("process.pid", r.get("pid"));
    d.keyword("process.name", r.get("comm"));
  }
}

void container_fields(Doc& d, const json::Value& c) {
  d.keyword("container.id", c.get("id"));
  d.keyword("container.name", c.get("name"));
  d.keyword("container.runtime", c.get("runtime"));
  d.keyword("container.image.name", c.get("image"));
  if (const std::string digest = c.str("image_digest"); !digest.empty()) d.strs("container.image.hash.all", {digest});
  if (const json::Value* pod = c.get("pod"); pod && pod->kind == json::Value::Kind::Object) {
    d.str("orchestrator.type", "kubernetes");
    d.keyword("orchestrator.namespace", pod->get("namespace"));
    d.keyword("orchestrator.resource.name", pod->get("name"));
    d.str("orchestrator.resource.type", "pod");
  }
}

std::string message_of(const json::Value& r, const std::string& type) {
  if (std::string m = r.str("message"); !m.empty()) return m;
  if (type == "change") {
    std::string m = r.str("kind") + " " + r.bytes("path");
    if (const json::Value* cs = r.get("changes"); cs && cs->kind == json::Value::Kind::Array && !cs->items.empty()) {
      m += " (";
      for (size_t i = 0; i < cs->items.size(); ++i) m += (i ? ", " : "") + cs->items[i].str("attr");
      m += ")";
    }
    return m;
  }
  if (type == "summary")
    return r.str("command") + ": " + std::to_string(r.i64("added")) + " added, " + std::to_string(r.i64("removed")) +
           " removed, " + std::to_string(r.i64("changed")) + " changed, " + std::to_string(r.i64("incomplete")) +
           " incomplete";
  if (r.get("path")) return type + " " + r.bytes("path");
  return type;
}

}  // namespace

std::string ecs_document(std::string_view line) {
  auto parsed = json::parse(line);
  if (!parsed || parsed->kind != json::Value::Kind::Object) return {};
  const json::Value& r = *parsed;
  const std::string type = r.str("type");
  Doc d;
  d.str("ecs.version", kEcsVersion);
  if (const std::string t = r.str("time"); !t.empty()) d.str("@timestamp", t);
  if (const json::Value* h = r.get("host"); h && h->kind == json::Value::Kind::Object) {
    d.keyword("host.name", h->get("name"));
    d.keyword("host.id", h->get("id"));
  }
  d.str("event.module", "fimctl");
  d.str("event.dataset", "fimctl." + type);
  const bool about_file = r.get("path") || r.get("path_b64");
  if (type == "change") {
    const std::string kind = r.str("kind");
    d.str("event.kind", "event");
    d.strs("event.category", {"file"});
    if (kind == "added") d.strs("event.type", {"creation"});
    else if (kind == "removed") d.strs("event.type", {"deletion"});
    else if (kind == "transient") d.strs("event.type", {"creation", "deletion"});
    else d.strs("event.type", {"change"});
    d.str("event.action", "file-" + kind);
  } else if (type == "alert") {
    d.str("event.kind", "alert");
    d.strs("event.category", {about_file ? "file" : "host"});
    d.strs("event.type", {"info"});
    d.str("event.action", r.str("code"));
  } else if (type == "response") {
    d.str("event.kind", "event");
    d.strs("event.category", {"process"});
    d.strs("event.type", {"end"});
    d.str("event.action", r.str("action"));
  } else {
    d.str("event.kind", "event");
    d.strs("event.category", {about_file ? "file" : "host"});
    d.strs("event.type", {"info"});
    d.str("event.action", type);
  }
  if (const std::string sev = r.str("severity"); !sev.empty()) d.num("event.severity", severity_number(sev));
  d.str("message", message_of(r, type));
  if (about_file) file_fields(d, r);
  process_fields(d, r);
  if (const json::Value* c = r.get("container"); c && c->kind == json::Value::Kind::Object) container_fields(d, *c);
  if (type == "container") container_fields(d, r);
  d.keyword("rule.name", r.get("rule"));
  if (const json::Value* tags = r.get("tags"); tags && tags->kind == json::Value::Kind::Array && !tags->items.empty())
    d.raw("tags", dumped(*tags));
  // The rest, as fimctl wrote it: under fimctl.*, member by member.
  for (const auto& m : r.members) {
    if (m.key == "schema" || m.key == "time" || m.key == "host" || m.key == "tags" || m.key == "rule") continue;
    if (m.key == "path" && d.has("file.path")) continue;
    d.raw("fimctl." + m.key, dumped(m.value));
  }
  return d.text();
}

namespace {

/// A stream that takes the ndjson records a JSON sink writes and passes each on as its ECS
/// document: the report's memory bound and spooling stay the JSON sink's own.
struct EcsCookie {
  FILE* out;
  std::string pending;
};

ssize_t ecs_write(void* cookie, const char* buf, size_t n) {
  auto* c = static_cast<EcsCookie*>(cookie);
  c->pending.append(buf, n);
  size_t start = 0;
  for (size_t nl; (nl = c->pending.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string doc = ecs_document(std::string_view(c->pending).substr(start, nl - start));
    if (doc.empty()) continue;
    doc += '\n';
    if (std::fwrite(doc.data(), 1, doc.size(), c->out) != doc.size()) return -1;
  }
  c->pending.erase(0, start);
  return static_cast<ssize_t>(n);
}

int ecs_close(void* cookie) {
  delete static_cast<EcsCookie*>(cookie);
  return 0;
}

class EcsSink final : public Sink {
 public:
  EcsSink(FILE* out, const json::Writer* extra, const Bytes& spill_dir) : out_(out) {
    cookie_io_functions_t io{nullptr, ecs_write, nullptr, ecs_close};
    stream_ = ::fopencookie(new EcsCookie{out, {}}, "w", io);
    inner_ = report::make_json_sink(stream_ ? stream_ : out, true, extra, spill_dir);
  }
  ~EcsSink() override {
    inner_.reset();
    if (stream_) std::fclose(stream_);
  }
  void change(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule) override {
    inner_->change(kind, o, n, changed, rule);
  }
  void noted_change(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule,
                    const ChangeNotes& notes) override {
    inner_->noted_change(kind, o, n, changed, rule, notes);
  }
  void entry_status(const Record& r, bool subtree, const Rule* rule) override { inner_->entry_status(r, subtree, rule); }
  void alternative(const Record& r, unsigned n, const Rule* rule) override { inner_->alternative(r, n, rule); }
  void alert(std::string_view code, std::string_view message) override { inner_->alert(code, message); }
  Status finish(const Summary& s) override {
    if (!stream_) return make_error(Errc::Io, "cannot set up the ECS output");
    FIM_TRY(inner_->finish(s));
    if (std::fflush(stream_) != 0 || std::ferror(stream_) || std::fflush(out_) != 0)
      return make_error(Errc::Io, "cannot write the report", errno);
    return {};
  }

 private:
  FILE* out_;
  FILE* stream_ = nullptr;
  std::unique_ptr<Sink> inner_;
};

}  // namespace

std::unique_ptr<Sink> make_ecs_sink(FILE* out, const json::Writer* extra, const Bytes& spill_dir) {
  return std::make_unique<EcsSink>(out, extra, spill_dir);
}

}  // namespace fim
