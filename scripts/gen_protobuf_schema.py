#!/usr/bin/env python3
"""Generates crates/api/src/protobuf_schema.rs: the protobuf field table of every kind oxkube
decodes from `application/vnd.kubernetes.protobuf` bodies.

Sources (both read offline from the cargo registry):
  * k8s-pb (prost-generated structs of upstream's generated.proto): messages, field tags, wire
    types, repeated/map shapes and nested message types;
  * k8s-openapi (v1_37): the exact JSON name of every field, and whether it is required (a
    non-`Option` field), which decides whether an empty string on the wire means "absent".

Usage: python3 scripts/gen_protobuf_schema.py [--report] > crates/api/src/protobuf_schema.rs
(then `cargo fmt`). With --report, prints the field gaps between the two sources to stderr.
"""

import glob
import os
import re
import sys

REGISTRY = os.path.expanduser("~/.cargo/registry/src")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def only(pattern):
    found = sorted(glob.glob(os.path.join(REGISTRY, "*", pattern)))
    if not found:
        sys.exit(f"not found in the cargo registry: {pattern}")
    return found[-1]


PB = os.path.join(only("k8s-pb-0.9.*"), "src")
OPENAPI = os.path.join(only("k8s-openapi-0.29.*"), "src", "v1_37")

# Messages with upstream's own JSON encoding, by k8s-pb module path and name. `protobuf::Ty` has a
# variant only for those the served kinds reach: if a regenerated table names another (Duration,
# Unknown, a `double` field), the crate stops compiling until the decoder learns it.
SPECIAL = {
    ("apimachinery.pkg.apis.meta.v1", "Time"): "Time",
    ("apimachinery.pkg.apis.meta.v1", "MicroTime"): "MicroTime",
    ("apimachinery.pkg.apis.meta.v1", "Duration"): "Duration",
    ("apimachinery.pkg.apis.meta.v1", "FieldsV1"): "RawJson",
    ("apimachinery.pkg.api.resource", "Quantity"): "Quantity",
    ("apimachinery.pkg.util.intstr", "IntOrString"): "IntOrString",
    ("apimachinery.pkg.runtime", "RawExtension"): "RawExtension",
    ("apimachinery.pkg.runtime", "Unknown"): "Unknown",
    ("apiextensions_apiserver.pkg.apis.apiextensions.v1", "JSON"): "RawJson",
}

SCALARS = {
    "string": "String",
    "bytes": "Bytes",
    'bytes = "vec"': "Bytes",
    "bool": "Bool",
    "int32": "Int32",
    "int64": "Int64",
    "double": "Double",
}

# Go writes every non-pointer field, so a zero on the wire can mean "unset". Optional strings are
# dropped when empty (upstream's `omitempty`), except these `*string` fields where "" is a value.
POINTER_STRINGS = {("api.core.v1", "PersistentVolumeClaimSpec", "storageClassName")}

# Optional int and bool fields are kept even when zero (most are pointers, where zero is a value),
# except these non-pointer `omitempty` fields Go writes in every object kubectl builds, and the
# counters of `*Status` messages.
GO_VALUE_SCALARS = {
    ("apimachinery.pkg.apis.meta.v1", "ObjectMeta", "generation"),
    ("api.core.v1", "Container", "stdin"),
    ("api.core.v1", "Container", "stdinOnce"),
    ("api.core.v1", "Container", "tty"),
    ("api.core.v1", "EphemeralContainerCommon", "stdin"),
    ("api.core.v1", "EphemeralContainerCommon", "stdinOnce"),
    ("api.core.v1", "EphemeralContainerCommon", "tty"),
    ("api.core.v1", "PodSpec", "hostNetwork"),
    ("api.core.v1", "PodSpec", "hostPID"),
    ("api.core.v1", "PodSpec", "hostIPC"),
    ("api.core.v1", "VolumeMount", "readOnly"),
    ("api.core.v1", "ContainerPort", "hostPort"),
    ("api.core.v1", "Probe", "initialDelaySeconds"),
    ("api.core.v1", "Probe", "timeoutSeconds"),
    ("api.core.v1", "Probe", "periodSeconds"),
    ("api.core.v1", "Probe", "successThreshold"),
    ("api.core.v1", "Probe", "failureThreshold"),
    ("api.core.v1", "ServicePort", "nodePort"),
    ("api.core.v1", "ServiceSpec", "publishNotReadyAddresses"),
    ("api.core.v1", "ServiceSpec", "healthCheckNodePort"),
    ("api.core.v1", "ReplicationControllerSpec", "minReadySeconds"),
    ("api.apps.v1", "DeploymentSpec", "minReadySeconds"),
    ("api.apps.v1", "DeploymentSpec", "paused"),
    ("api.apps.v1", "ReplicaSetSpec", "minReadySeconds"),
    ("api.apps.v1", "StatefulSetSpec", "minReadySeconds"),
    ("api.apps.v1", "DaemonSetSpec", "minReadySeconds"),
    ("api.scheduling.v1", "PriorityClass", "globalDefault"),
}

# Bodies that are not rows of registry::RESOURCES: (apiVersion, kind, k8s-pb module, message).
# `*` accepts any apiVersion: clients send DeleteOptions under the version of the resource.
EXTRA_KINDS = [
    ("*", "DeleteOptions", "apimachinery.pkg.apis.meta.v1", "DeleteOptions"),
    ("policy/v1", "Eviction", "api.policy.v1", "Eviction"),
    ("v1", "Binding", "api.core.v1", "Binding"),
    ("autoscaling/v1", "Scale", "api.autoscaling.v1", "Scale"),
    ("authentication.k8s.io/v1", "TokenRequest", "api.authentication.v1", "TokenRequest"),
]


def norm(name):
    return re.sub(r"[^a-z0-9]", "", name.lower())


def parse_pb():
    """(module, name) -> [(tag, rust field, attr, type)]"""
    messages = {}
    for path in glob.glob(os.path.join(PB, "**", "mod.rs"), recursive=True):
        module = ".".join(os.path.relpath(os.path.dirname(path), PB).split(os.sep))
        with open(path) as f:
            text = f.read()
        text = re.sub(r"^\s*///.*\n", "", text, flags=re.M)
        for m in re.finditer(r"^pub struct (\w+) \{\n(.*?)^\}", text, flags=re.M | re.S):
            fields = []
            for fm in re.finditer(
                r"#\[prost\((.*?)\)\]\s*pub (?:r#)?(\w+):\s*(.*?),\n(?=\s*(?:#\[|\}|$))",
                m.group(2) + "\n",
                flags=re.S,
            ):
                attr, name, ty = fm.groups()
                tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
                fields.append((tag, name, attr, " ".join(ty.split())))
            messages[(module, m.group(1))] = fields
    return messages


def parse_openapi():
    """(module, lowercased name) -> {normalized name: (json name, required)}"""
    defs = {}
    for path in glob.glob(os.path.join(OPENAPI, "**", "*.rs"), recursive=True):
        with open(path) as f:
            text = f.read()
        if not text.startswith("// Generated from definition"):
            continue
        sm = re.search(r"^pub struct (\w+) \{\n(.*?)^\}", text, flags=re.M | re.S)
        if not sm:
            continue
        module = ".".join(os.path.relpath(os.path.dirname(path), OPENAPI).split(os.sep))
        required = {}
        for fm in re.finditer(r"^    pub (?:r#)?(\w+): (.*),$", sm.group(2), flags=re.M):
            required[fm.group(1)] = not fm.group(2).startswith("Option<")
        props = {}
        for jm in re.finditer(r'^\s*"([^"]+)" => Field::Key_(\w+),$', text, flags=re.M):
            json, rust = jm.groups()
            props[norm(json)] = (json, required.get(rust, False))
        defs[(module, sm.group(1).lower())] = props
    return defs


def resolve(module, path):
    parts = module.split(".")
    segs = path.split("::")
    while segs and segs[0] == "super":
        parts.pop()
        segs.pop(0)
    if segs and segs[0] == "crate":
        parts = []
        segs.pop(0)
    return ".".join(parts + segs[:-1]), segs[-1]


def message_type(module, ty):
    """The (module, name) of the message inside a field type like Option<Box<super::X>>."""
    paths = re.findall(r"(?:<|,\s*)(\w[\w:]*)", ty)
    if not paths:
        raise ValueError(f"no message type in {ty!r}")
    return resolve(module, paths[-1])


def main():
    report = "--report" in sys.argv
    pb = parse_pb()
    oa = parse_openapi()
    gaps = []

    roots = []
    registry = open(os.path.join(ROOT, "crates/api/src/registry.rs")).read()
    for g, v, k in re.findall(r'row!\(\s*"([^"]*)",\s*"([^"]*)",\s*"([^"]*)"', registry):
        api_version = f"{g}/{v}" if g else v
        if g == "":
            module = f"api.core.{v}"
        elif g == "apiextensions.k8s.io":
            module = f"apiextensions_apiserver.pkg.apis.apiextensions.{v}"
        else:
            module = f"api.{g.split('.')[0]}.{v}"
        roots.append((api_version, k, module, k))
    roots += EXTRA_KINDS

    # Go structs embedded with `json:",inline"` are nested messages in protobuf: a message field
    # with no JSON name in its parent's definition, whose own fields all are the parent's, is
    # inlined, and its fields take their JSON names (and required-ness) from the parent.
    defs = {key: oa.get((key[0], key[1].lower())) for key in pb}
    inline = set()
    changed = True
    while changed:
        changed = False
        for key, fields in pb.items():
            props = defs[key]
            if props is None:
                continue
            for tag, fname, attr, ty in fields:
                if "message" not in attr or norm(fname) in props or (key, tag) in inline:
                    continue
                target = message_type(key[0], ty)
                if target in SPECIAL or not all(norm(f[1]) in props for f in pb[target]):
                    continue
                inline.add((key, tag))
                merged = dict(defs[target] or {})
                merged.update(props)
                defs[target] = merged
                changed = True

    def json_name(key, tag, fname):
        """The field's JSON name, "" when inlined, None when Kubernetes 1.37 has no such field."""
        if (key, tag) in inline:
            return ""
        props = defs[key]
        if props is None:
            parts = fname.split("_")
            return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])
        found = props.get(norm(fname))
        return found[0] if found else None

    order = []
    index = {}

    def visit(key):
        if key in index:
            return index[key]
        if key not in pb:
            sys.exit(f"k8s-pb has no message {key}")
        index[key] = len(order)
        order.append(key)
        for tag, fname, attr, ty in pb[key]:
            if "message" in attr and json_name(key, tag, fname) is not None:
                target = message_type(key[0], ty)
                if target not in SPECIAL:
                    visit(target)
        return index[key]

    kinds = [(av, k, visit((m, n))) for av, k, m, n in roots]

    def ty_of(module, kind, ty):
        if kind == "message":
            target = message_type(module, ty)
            if target in SPECIAL:
                return f"Ty::{SPECIAL[target]}"
            return f"Ty::Message({index[target]})"
        return f"Ty::{SCALARS[kind]}"

    out = []
    out.append(
        "//! The protobuf field table of every kind `protobuf::decode` accepts: message -> fields "
        "(tag,\n"
        "//! JSON name, type, shape). GENERATED by `python3 scripts/gen_protobuf_schema.py > "
        "crates/api/src/protobuf_schema.rs && cargo fmt`\n"
        "//! from k8s-pb 0.9 (tags, types) and k8s-openapi 0.29 v1_37 (JSON names, required "
        "fields); do not edit.\n"
    )
    out.append("use crate::protobuf::{Field, Message, Shape, Ty};\n")
    out.append(
        "/// `(apiVersion, kind, message)` of every accepted body; apiVersion `*` matches any.\n"
        "pub(crate) static KINDS: &[(&str, &str, usize)] = &["
    )
    for av, k, i in kinds:
        out.append(f'    ("{av}", "{k}", {i}),')
    out.append("];\n")
    out.append("/// Every message reachable from `KINDS`, fields sorted by tag.")
    out.append("pub(crate) static MESSAGES: &[Message] = &[")
    for i, key in enumerate(order):
        module, name = key
        props = defs[key] or {}
        if defs[key] is None:
            gaps.append(f"{module}.{name}: no OpenAPI definition, JSON names from field names")
        out.append(f"    // {i}: {module}.{name}")
        out.append("    Message {\n        fields: &[")
        for tag, fname, attr, ty in sorted(pb[key]):
            kind = attr.split(",")[0].strip()
            json = json_name(key, tag, fname)
            if json is None:
                gaps.append(f"{module}.{name}.{fname} (tag {tag}): not in Kubernetes 1.37, skipped")
                continue
            required = props.get(norm(fname), (None, False))[1]
            if kind == "string":
                omit = not required and (module, name, json) not in POINTER_STRINGS
            elif kind in ("bool", "int32", "int64") and "repeated" not in attr:
                omit = not required and (
                    name.endswith("Status") or (module, name, json) in GO_VALUE_SCALARS
                )
            else:
                omit = False
            omit = "true" if omit else "false"
            if json == "":
                shape, t = "Shape::Inline", ty_of(module, kind, ty)
            elif kind.startswith("btree_map"):
                value = re.search(r'btree_map = "string, (\w+)"', attr).group(1)
                shape, t = "Shape::Map", ty_of(module, value, ty)
            else:
                shape = "Shape::List" if "repeated" in attr else "Shape::Single"
                t = ty_of(module, kind, ty)
            out.append(f'        Field::new({tag}, "{json}", {t}, {shape}, {omit}),')
        out.append("        ],\n    },")
        own = oa.get((module, name.lower())) or {}
        seen = {norm(f[1]) for f in pb[key]}
        for tag, _, _, ty in pb[key]:
            if (key, tag) in inline:
                seen |= {norm(f[1]) for f in pb[message_type(module, ty)]}
        # One level of nesting covers upstream's inlined structs (Probe > ProbeHandler).
        for target in [message_type(module, ty) for tag, _, _, ty in pb[key] if (key, tag) in inline]:
            for tag, _, _, ty in pb[target]:
                if (target, tag) in inline:
                    seen |= {norm(f[1]) for f in pb[message_type(target[0], ty)]}
        for n, (json, _) in sorted(own.items()):
            if n not in seen and json not in ("apiVersion", "kind"):
                gaps.append(f"{module}.{name}.{json}: in Kubernetes 1.37, not in k8s-pb")
    out.append("];")
    print("\n".join(out))
    if report:
        for g in gaps:
            print(g, file=sys.stderr)


if __name__ == "__main__":
    main()
