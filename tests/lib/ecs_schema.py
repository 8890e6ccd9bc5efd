"""The Elastic Common Schema 9.4.0 as tests/data/ecs gives it, and the validity rule for a
--format ecs document: every field it sets is an ECS field (or under fimctl.*, the one custom
namespace), with a JSON value of the field's type (keyword/text: string; long: integer;
float: number; date: RFC 3339 string; object: object; boolean: boolean), array-normalized
fields as arrays, and the categorization fields holding allowed values, each event.type one
that a category of the document expects."""
import os
import re

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "ecs")
STRING_TYPES = {"keyword", "text", "match_only_text", "wildcard", "constant_keyword", "ip", "version"}
INT_TYPES = {"long", "integer", "short", "byte", "unsigned_long"}
FLOAT_TYPES = {"float", "double", "half_float", "scaled_float"}
OBJECT_TYPES = {"object", "flattened", "nested"}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


def _rows(name):
    with open(os.path.join(DATA, name)) as f:
        lines = [line.rstrip("\n") for line in f if not line.startswith("#")]
    return [line.split("\t") for line in lines[1:] if line]


class Schema:
    def __init__(self):
        self.fields = {r[0]: (r[1], len(r) > 3 and "array" in r[3]) for r in _rows("fields-9.4.0.tsv")}
        self.allowed = {}
        self.expected = {}
        for r in _rows("allowed-values-9.4.0.tsv"):
            self.allowed.setdefault(r[0], set()).add(r[1])
            if r[0] == "event.category" and len(r) > 2 and r[2]:
                self.expected[r[1]] = set(r[2].split(","))

    def flatten(self, doc, prefix=""):
        """(dotted field, value) pairs: objects are descended unless the field is an object type."""
        for k, v in doc.items():
            name = prefix + k
            if isinstance(v, dict) and not (name in self.fields and self.fields[name][0] in OBJECT_TYPES) \
                    and not name.startswith("fimctl."):
                yield from self.flatten(v, name + ".")
            else:
                yield name, v

    def _type_ok(self, es_type, v):
        if es_type in STRING_TYPES:
            return isinstance(v, str)
        if es_type in INT_TYPES:
            return isinstance(v, int) and not isinstance(v, bool)
        if es_type in FLOAT_TYPES:
            return isinstance(v, (int, float)) and not isinstance(v, bool)
        if es_type == "boolean":
            return isinstance(v, bool)
        if es_type in OBJECT_TYPES:
            return isinstance(v, dict)
        if es_type == "date":
            return isinstance(v, str) and RFC3339.match(v) is not None
        return True  # geo_point and the like: fimctl writes none

    def problems(self, doc):
        """Every way `doc` is not a valid ECS 9.4 document (empty: valid)."""
        out = []
        for name, v in self.flatten(doc):
            if name == "fimctl" or name.startswith("fimctl."):
                continue
            if name not in self.fields:
                out.append(f"{name}: not an ECS 9.4.0 field")
                continue
            es_type, is_array = self.fields[name]
            values = v if is_array else [v]
            if is_array and not isinstance(v, list):
                out.append(f"{name}: an array field given {v!r}")
                continue
            if not is_array and isinstance(v, list):
                out.append(f"{name}: not an array field, given {v!r}")
                continue
            for x in values:
                if not self._type_ok(es_type, x):
                    out.append(f"{name}: {x!r} is not a {es_type}")
            if name in self.allowed:
                for x in values:
                    if x not in self.allowed[name]:
                        out.append(f"{name}: {x!r} is not an allowed value")
        flat = dict(self.flatten(doc))
        cats = flat.get("event.category", [])
        for t in flat.get("event.type", []):
            if cats and not any(t in self.expected.get(c, set()) for c in cats):
                out.append(f"event.type {t!r} is not one that categories {cats} expect")
        for required in ("@timestamp", "ecs.version", "event.kind"):
            if required not in flat:
                out.append(f"{required} missing")
        return out
