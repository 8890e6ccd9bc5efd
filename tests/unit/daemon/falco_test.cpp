// SPDX-License-Identifier: GPL-2.0-or-later
// daemon: Falco's output_fields flat, named as Falco names its own fields (the writer the BPF
// sensors saw, the container and its pod), and fimctl.* for the rest.
#include "daemon/sink.h"
#include "doctest/doctest.h"

using namespace fim;

TEST_CASE("falco: who and container flattened to Falco's own field names") {
  json::Writer f = json::Writer::fields();
  watchd::falco_flatten(f, "who", R"({"pid":42,"tgid":40,"ppid":1,"uid":1000,"loginuid":1001,"comm":"cp","exe":"/usr/bin/cp"})");
  watchd::falco_flatten(f, "container",
                        R"({"runtime":"cri-o","id":"c1","name":"web","image":"registry:5000/shop/app:1.2","image_digest":"sha256:ab",)"
                        R"("pid":7,"pod":{"namespace":"shop","name":"web-1","container":"nginx"},"baseline_key":"sha256-ab"})");
  watchd::falco_flatten(f, "trigger", R"({"events":["modify"],"nested":{"deep":3}})");
  auto v = json::parse("{" + f.take() + "}");
  REQUIRE(v);
  CHECK(v->i64("proc.pid") == 40);
  CHECK(v->i64("proc.ppid") == 1);
  CHECK(v->str("proc.exepath") == "/usr/bin/cp");
  CHECK(v->i64("user.uid") == 1000);
  CHECK(v->i64("user.loginuid") == 1001);
  CHECK(v->str("container.id") == "c1");
  CHECK(v->str("container.image.repository") == "registry:5000/shop/app");
  CHECK(v->str("container.image.tag") == "1.2");
  CHECK(v->str("container.image.digest") == "sha256:ab");
  CHECK(v->str("k8s.ns.name") == "shop");
  CHECK(v->str("k8s.pod.name") == "web-1");
  CHECK(v->str("fimctl.container.runtime") == "cri-o");
  CHECK(v->i64("fimctl.trigger.nested.deep") == 3);
  for (const auto& m : v->members) CHECK_MESSAGE(m.value.kind != json::Value::Kind::Object, m.key);
}
