//! Decodes Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) into the
//! JSON form of the object, driven by the generated field table in `protobuf_schema`.
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` envelope: `typeMeta{apiVersion,
//! kind}`, `raw` (the object's own message), `contentEncoding`, `contentType`. Field names,
//! inlined structs and the special encodings (`Time`, `MicroTime`, `Quantity`, `IntOrString`,
//! `RawExtension`, `FieldsV1`, bytes) follow upstream's JSON form of the same Go object.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::protobuf_schema::{KINDS, MESSAGES};

/// The prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Nesting deeper than this is refused (the served kinds nest about a dozen messages deep).
const MAX_DEPTH: usize = 100;

/// The seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z), which upstream encodes as null.
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("body does not start with the protobuf magic k8s\\0")]
    Magic,
    #[error("protobuf data ends inside a field")]
    Truncated,
    #[error("protobuf varint is longer than 10 bytes")]
    Varint,
    #[error("protobuf field number 0")]
    FieldZero,
    #[error("protobuf wire type {0} (groups) is not supported")]
    Group(u8),
    #[error("protobuf field {tag} has wire type {wire}, which its type does not allow")]
    WireType { tag: u64, wire: u8 },
    #[error("content encoding {0:?} is not supported")]
    ContentEncoding(String),
    #[error("no protobuf schema for apiVersion {api_version:?} kind {kind:?}")]
    UnknownKind { api_version: String, kind: String },
    #[error("protobuf messages nest deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("time {seconds}s {nanos}ns is outside the years 0000 to 9999")]
    Time { seconds: i64, nanos: i32 },
    #[error("IntOrString type {0} is neither 0 (int) nor 1 (string)")]
    IntOrStringType(i64),
    #[error("embedded raw JSON is invalid: {0}")]
    RawJson(#[source] serde_json::Error),
}

/// Decodes a Kubernetes protobuf body (the 4-byte magic `k8s\0` + runtime.Unknown{typeMeta{
/// apiVersion, kind}, raw, contentEncoding, contentType}) into the object's JSON, with
/// `apiVersion` and `kind` set from the envelope.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    envelope(body, 0)
}

/// The type of a field's value, with upstream's special JSON encodings as their own types.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ty {
    String,
    /// Base64 in JSON.
    Bytes,
    Bool,
    Int32,
    Int64,
    /// `meta/v1.Time {seconds, nanos}`: RFC 3339 to the second.
    Time,
    /// `meta/v1.MicroTime {seconds, nanos}`: RFC 3339 with 6 fraction digits.
    MicroTime,
    /// `resource.Quantity {string}`: the string.
    Quantity,
    /// `intstr.IntOrString {type, intVal, strVal}`: a number or a string.
    IntOrString,
    /// `runtime.RawExtension {raw}`: the embedded JSON (or protobuf) object.
    RawExtension,
    /// `FieldsV1`/`JSON {raw}`: the embedded JSON.
    RawJson,
    /// A message of `MESSAGES`, by index.
    Message(usize),
}

/// How a field occurs in its message.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Shape {
    Single,
    List,
    /// `map<string, ty>`: entries with key 1 and value 2.
    Map,
    /// A Go struct embedded with `json:",inline"`: its fields join the parent's object.
    Inline,
}

/// One field of a message.
#[derive(Debug)]
pub(crate) struct Field {
    tag: u64,
    json: &'static str,
    ty: Ty,
    shape: Shape,
    /// Whether a zero value (`""`, `0`, `false`) means absent: the field is optional and Go
    /// writes it even when unset (not a pointer).
    omit_empty: bool,
}

impl Field {
    pub(crate) const fn new(
        tag: u64,
        json: &'static str,
        ty: Ty,
        shape: Shape,
        omit_empty: bool,
    ) -> Field {
        Field {
            tag,
            json,
            ty,
            shape,
            omit_empty,
        }
    }
}

/// One protobuf message: its fields by tag.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) fields: &'static [Field],
}

/// One field as read off the wire.
#[derive(Clone, Copy, Debug)]
enum Wire<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32,
}

impl Wire<'_> {
    fn number(self) -> u8 {
        match self {
            Wire::Varint(_) => 0,
            Wire::Fixed64 => 1,
            Wire::Bytes(_) => 2,
            Wire::Fixed32 => 5,
        }
    }
}

/// Reads the fields of one message in order.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut value = 0u64;
        for (i, &b) in self.buf.iter().enumerate().take(10) {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err(if self.buf.len() < 10 {
            ProtoError::Truncated
        } else {
            ProtoError::Varint
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if n > self.buf.len() {
            return Err(ProtoError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next field's number and value, or `None` at the end.
    fn next(&mut self) -> Result<Option<(u64, Wire<'a>)>, ProtoError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let tag = key >> 3;
        if tag == 0 {
            return Err(ProtoError::FieldZero);
        }
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => self.take(8).map(|_| Wire::Fixed64)?,
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| ProtoError::Truncated)?;
                Wire::Bytes(self.take(len)?)
            }
            5 => self.take(4).map(|_| Wire::Fixed32)?,
            other => return Err(ProtoError::Group(other as u8)),
        };
        Ok(Some((tag, wire)))
    }
}

/// Calls `f` with each field of `buf`.
fn each<'a>(
    buf: &'a [u8],
    mut f: impl FnMut(u64, Wire<'a>) -> Result<(), ProtoError>,
) -> Result<(), ProtoError> {
    let mut reader = Reader { buf };
    while let Some((tag, wire)) = reader.next()? {
        f(tag, wire)?;
    }
    Ok(())
}

fn bytes(tag: u64, wire: Wire<'_>) -> Result<&[u8], ProtoError> {
    match wire {
        Wire::Bytes(b) => Ok(b),
        other => Err(ProtoError::WireType {
            tag,
            wire: other.number(),
        }),
    }
}

fn varint(tag: u64, wire: Wire<'_>) -> Result<u64, ProtoError> {
    match wire {
        Wire::Varint(v) => Ok(v),
        other => Err(ProtoError::WireType {
            tag,
            wire: other.number(),
        }),
    }
}

fn string(b: &[u8]) -> String {
    // Go keeps invalid UTF-8 in strings; its JSON encoder writes U+FFFD for it.
    String::from_utf8_lossy(b).into_owned()
}

fn envelope(body: &[u8], depth: usize) -> Result<Value, ProtoError> {
    let raw_body = body.strip_prefix(MAGIC).ok_or(ProtoError::Magic)?;
    let (mut api_version, mut kind, mut raw, mut encoding) =
        (String::new(), String::new(), &[][..], String::new());
    each(raw_body, |tag, wire| {
        match tag {
            1 => each(bytes(tag, wire)?, |tag, wire| {
                match tag {
                    1 => api_version = string(bytes(tag, wire)?),
                    2 => kind = string(bytes(tag, wire)?),
                    _ => {}
                }
                Ok(())
            })?,
            2 => raw = bytes(tag, wire)?,
            3 => encoding = string(bytes(tag, wire)?),
            _ => {}
        }
        Ok(())
    })?;
    if !encoding.is_empty() {
        return Err(ProtoError::ContentEncoding(encoding));
    }
    let Some(&(_, _, index)) = KINDS
        .iter()
        .find(|(v, k, _)| (*v == api_version || *v == "*") && *k == kind)
    else {
        return Err(ProtoError::UnknownKind { api_version, kind });
    };
    let mut object = Map::new();
    object.insert("apiVersion".into(), Value::String(api_version));
    object.insert("kind".into(), Value::String(kind));
    message(raw, index, depth + 1, &mut object)?;
    Ok(Value::Object(object))
}

/// Decodes message `index` from `buf` into `out` (which inlined messages share with their parent).
fn message(
    buf: &[u8],
    index: usize,
    depth: usize,
    out: &mut Map<String, Value>,
) -> Result<(), ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::TooDeep);
    }
    let Some(msg) = MESSAGES.get(index) else {
        return Ok(());
    };
    each(buf, |tag, wire| {
        let Some(field) = msg.fields.iter().find(|f| f.tag == tag) else {
            // Fields this version does not know are skipped, as upstream's decoder does.
            return Ok(());
        };
        match field.shape {
            Shape::Single => match value(tag, wire, field.ty, depth)? {
                Some(v) if field.omit_empty && is_zero(&v) => {
                    out.remove(field.json);
                }
                Some(v) => {
                    out.insert(field.json.into(), v);
                }
                None => {
                    out.remove(field.json);
                }
            },
            Shape::List => {
                let items = list(tag, wire, field.ty, depth)?;
                match out.get_mut(field.json) {
                    Some(Value::Array(existing)) => existing.extend(items),
                    _ => {
                        out.insert(field.json.into(), Value::Array(items));
                    }
                }
            }
            Shape::Map => {
                let (key, v) = entry(bytes(tag, wire)?, field.ty, depth)?;
                match out.get_mut(field.json) {
                    Some(Value::Object(existing)) => {
                        existing.insert(key, v);
                    }
                    _ => {
                        out.insert(field.json.into(), Value::Object(Map::from_iter([(key, v)])));
                    }
                }
            }
            Shape::Inline => {
                if let Ty::Message(inner) = field.ty {
                    message(bytes(tag, wire)?, inner, depth + 1, out)?;
                }
            }
        }
        Ok(())
    })
}

/// Whether `v` is Go's zero value of a scalar (`""`, `0`, `false`).
fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Bool(b) => !b,
        _ => false,
    }
}

/// The items of one occurrence of a repeated field: one value, or a packed run of numbers.
fn list(tag: u64, wire: Wire<'_>, ty: Ty, depth: usize) -> Result<Vec<Value>, ProtoError> {
    match (ty, wire) {
        (Ty::Bool | Ty::Int32 | Ty::Int64, Wire::Bytes(packed)) => {
            let mut reader = Reader { buf: packed };
            let mut items = Vec::new();
            while !reader.buf.is_empty() {
                items.push(scalar(ty, reader.varint()?));
            }
            Ok(items)
        }
        _ => Ok(value(tag, wire, ty, depth)?.into_iter().collect()),
    }
}

/// One map entry: key 1 (a string), value 2 (a zero value when absent).
fn entry(buf: &[u8], ty: Ty, depth: usize) -> Result<(String, Value), ProtoError> {
    let (mut key, mut v) = (String::new(), None);
    each(buf, |tag, wire| {
        match tag {
            1 => key = string(bytes(tag, wire)?),
            2 => v = value(tag, wire, ty, depth)?,
            _ => {}
        }
        Ok(())
    })?;
    let v = match v {
        Some(v) => v,
        None => value(2, Wire::Bytes(&[]), ty, depth)?.unwrap_or(Value::Null),
    };
    Ok((key, v))
}

fn scalar(ty: Ty, v: u64) -> Value {
    match ty {
        Ty::Bool => Value::Bool(v != 0),
        // Protobuf truncates int32 varints to their low 32 bits.
        Ty::Int32 => Value::from(v as i32),
        _ => Value::from(v as i64),
    }
}

/// One value of type `ty`; `None` when upstream's JSON would omit it (a zero `Time`).
fn value(tag: u64, wire: Wire<'_>, ty: Ty, depth: usize) -> Result<Option<Value>, ProtoError> {
    Ok(Some(match ty {
        Ty::Bool | Ty::Int32 | Ty::Int64 => scalar(ty, varint(tag, wire)?),
        Ty::String => Value::String(string(bytes(tag, wire)?)),
        Ty::Bytes => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes(tag, wire)?))
        }
        Ty::Message(index) => {
            let mut object = Map::new();
            message(bytes(tag, wire)?, index, depth + 1, &mut object)?;
            Value::Object(object)
        }
        Ty::Time | Ty::MicroTime => return time(bytes(tag, wire)?, ty),
        Ty::Quantity => {
            let mut s = "0".to_string();
            each(bytes(tag, wire)?, |tag, wire| {
                if tag == 1 {
                    s = string(bytes(tag, wire)?);
                }
                Ok(())
            })?;
            Value::String(s)
        }
        Ty::IntOrString => int_or_string(bytes(tag, wire)?)?,
        Ty::RawExtension | Ty::RawJson => {
            let mut raw = &[][..];
            each(bytes(tag, wire)?, |tag, wire| {
                if tag == 1 {
                    raw = bytes(tag, wire)?;
                }
                Ok(())
            })?;
            if raw.is_empty() {
                Value::Null
            } else if matches!(ty, Ty::RawExtension) && raw.starts_with(MAGIC) {
                envelope(raw, depth + 1)?
            } else {
                serde_json::from_slice(raw).map_err(ProtoError::RawJson)?
            }
        }
    }))
}

/// `Time` and `MicroTime`: `{seconds, nanos}`. Upstream drops the nanoseconds of a `Time` when
/// decoding it, and writes a `MicroTime` to the microsecond (truncated).
fn time(buf: &[u8], ty: Ty) -> Result<Option<Value>, ProtoError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let (mut seconds, mut nanos) = (0i64, 0i32);
    each(buf, |tag, wire| {
        match tag {
            1 => seconds = varint(tag, wire)? as i64,
            2 => nanos = varint(tag, wire)? as i32,
            _ => {}
        }
        Ok(())
    })?;
    let micro = matches!(ty, Ty::MicroTime);
    if !micro {
        nanos = 0;
    }
    if seconds == GO_ZERO_TIME && nanos == 0 {
        return Ok(None);
    }
    let out_of_range = || ProtoError::Time { seconds, nanos };
    let ts = jiff::Timestamp::new(seconds, nanos).map_err(|_| out_of_range())?;
    // Go normalises the nanoseconds into [0, 1e9) below the second.
    let whole = ts.as_second() - i64::from(ts.subsec_nanosecond() < 0);
    let frac = ts.subsec_nanosecond().rem_euclid(1_000_000_000);
    let ts = jiff::Timestamp::from_second(whole).map_err(|_| out_of_range())?;
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    if dt.year() < 0 {
        return Err(out_of_range());
    }
    let base = dt.strftime("%Y-%m-%dT%H:%M:%S");
    Ok(Some(Value::String(if micro {
        format!("{base}.{:06}Z", frac / 1000)
    } else {
        format!("{base}Z")
    })))
}

/// `IntOrString {type, intVal, strVal}`: type 0 is the number, 1 the string.
fn int_or_string(buf: &[u8]) -> Result<Value, ProtoError> {
    let (mut kind, mut int, mut s) = (0i64, 0i32, String::new());
    each(buf, |tag, wire| {
        match tag {
            1 => kind = varint(tag, wire)? as i64,
            2 => int = varint(tag, wire)? as i32,
            3 => s = string(bytes(tag, wire)?),
            _ => {}
        }
        Ok(())
    })?;
    match kind {
        0 => Ok(Value::from(int)),
        1 => Ok(Value::String(s)),
        other => Err(ProtoError::IntOrStringType(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::api::apps::v1 as apps;
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apimachinery::pkg::api::resource::Quantity;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
    use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
    use proptest::prelude::*;
    use prost::Message as _;
    use serde::Deserialize;
    use serde_json::json;
    use std::collections::BTreeMap;

    /// The body a Go client sends: magic + Unknown{typeMeta, raw, "", ""}.
    fn body(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        [MAGIC.as_slice(), &unknown.encode_to_vec()].concat()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.into())
    }

    /// Metadata as Go writes it: every non-pointer field, empty or not.
    fn go_meta(name: &str, namespace: &str) -> meta::ObjectMeta {
        meta::ObjectMeta {
            name: s(name),
            generate_name: s(""),
            namespace: s(namespace),
            self_link: s(""),
            uid: s(""),
            resource_version: s(""),
            generation: Some(0),
            creation_timestamp: Some(meta::Time::default()),
            ..Default::default()
        }
    }

    fn int(v: i32) -> IntOrString {
        IntOrString {
            r#type: Some(0),
            int_val: Some(v),
            str_val: s(""),
        }
    }

    fn string_val(v: &str) -> IntOrString {
        IntOrString {
            r#type: Some(1),
            int_val: Some(0),
            str_val: s(v),
        }
    }

    fn quantity(v: &str) -> Quantity {
        Quantity { string: s(v) }
    }

    #[test]
    fn config_map() {
        let cm = core::ConfigMap {
            metadata: Some(go_meta("x", "")),
            data: BTreeMap::from([("a".into(), "b".into()), ("empty".into(), String::new())]),
            binary_data: BTreeMap::new(),
            immutable: None,
        };
        let got = decode(&body("v1", "ConfigMap", cm.encode_to_vec())).expect("decodes");
        assert_eq!(
            got,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "x"},
                "data": {"a": "b", "empty": ""},
            })
        );
        k8s_openapi::api::core::v1::ConfigMap::deserialize(&got).expect("typed form");
    }

    #[test]
    fn secret_bytes_are_base64() {
        let secret = core::Secret {
            metadata: Some(go_meta("s", "ns")),
            data: BTreeMap::from([("k".into(), vec![0, 159, 146, 150, 255])]),
            string_data: BTreeMap::new(),
            r#type: s("Opaque"),
            immutable: Some(false),
        };
        let got = decode(&body("v1", "Secret", secret.encode_to_vec())).expect("decodes");
        assert_eq!(
            got,
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "s", "namespace": "ns"},
                "data": {"k": "AJ+Slv8="},
                "type": "Opaque",
                "immutable": false,
            })
        );
        let typed = k8s_openapi::api::core::v1::Secret::deserialize(&got).expect("typed form");
        assert_eq!(
            typed.data.expect("data")["k"].0,
            vec![0, 159, 146, 150, 255]
        );
    }

    fn container(name: &str, image: &str) -> core::Container {
        core::Container {
            name: s(name),
            image: s(image),
            termination_message_path: s(""),
            image_pull_policy: s(""),
            stdin: Some(false),
            tty: Some(false),
            resources: Some(core::ResourceRequirements {
                limits: BTreeMap::from([("cpu".into(), quantity("500m"))]),
                requests: BTreeMap::from([("memory".into(), quantity("64Mi"))]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn deployment() {
        let mut metadata = go_meta("web", "default");
        metadata.creation_timestamp = Some(meta::Time {
            seconds: Some(1_767_323_045),
            nanos: Some(123),
        });
        metadata.labels = BTreeMap::from([("app".into(), "web".into())]);
        let deployment = apps::Deployment {
            metadata: Some(metadata),
            spec: Some(apps::DeploymentSpec {
                replicas: Some(0),
                selector: Some(meta::LabelSelector {
                    match_labels: BTreeMap::from([("app".into(), "web".into())]),
                    match_expressions: vec![],
                }),
                template: Some(core::PodTemplateSpec {
                    metadata: Some(go_meta("", "")),
                    spec: Some(core::PodSpec {
                        containers: vec![container("nginx", "nginx:1")],
                        restart_policy: s(""),
                        host_network: Some(false),
                        ..Default::default()
                    }),
                }),
                strategy: Some(apps::DeploymentStrategy {
                    r#type: s("RollingUpdate"),
                    rolling_update: Some(apps::RollingUpdateDeployment {
                        max_unavailable: Some(string_val("25%")),
                        max_surge: Some(int(2)),
                    }),
                }),
                min_ready_seconds: Some(0),
                ..Default::default()
            }),
            status: Some(apps::DeploymentStatus {
                observed_generation: Some(0),
                replicas: Some(0),
                ready_replicas: Some(0),
                ..Default::default()
            }),
        };
        let got =
            decode(&body("apps/v1", "Deployment", deployment.encode_to_vec())).expect("decodes");
        assert_eq!(
            got,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {
                    "name": "web", "namespace": "default",
                    "creationTimestamp": "2026-01-02T03:04:05Z",
                    "labels": {"app": "web"},
                },
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {},
                        "spec": {
                            "containers": [{
                                "name": "nginx", "image": "nginx:1",
                                "resources": {
                                    "limits": {"cpu": "500m"},
                                    "requests": {"memory": "64Mi"},
                                },
                            }],
                        },
                    },
                    "strategy": {
                        "type": "RollingUpdate",
                        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 2},
                    },
                },
                "status": {},
            }),
            "pointer zeros (replicas) stay, Go's unset values (generation, minReadySeconds, \
             stdin, hostNetwork, empty strings) go"
        );
        k8s_openapi::api::apps::v1::Deployment::deserialize(&got).expect("typed form");
    }

    #[test]
    fn service_target_ports() {
        let port = |name: &str, port: i32, target: IntOrString| core::ServicePort {
            name: s(name),
            protocol: s("TCP"),
            port: Some(port),
            target_port: Some(target),
            node_port: Some(0),
            app_protocol: None,
        };
        let svc = core::Service {
            metadata: Some(go_meta("svc", "default")),
            spec: Some(core::ServiceSpec {
                ports: vec![
                    port("http", 80, int(8080)),
                    port("web", 443, string_val("https")),
                ],
                selector: BTreeMap::from([("app".into(), "web".into())]),
                cluster_ip: s(""),
                r#type: s("ClusterIP"),
                ..Default::default()
            }),
            status: Some(core::ServiceStatus::default()),
        };
        let got = decode(&body("v1", "Service", svc.encode_to_vec())).expect("decodes");
        assert_eq!(
            got["spec"],
            json!({
                "ports": [
                    {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                    {"name": "web", "protocol": "TCP", "port": 443, "targetPort": "https"},
                ],
                "selector": {"app": "web"},
                "type": "ClusterIP",
            })
        );
        k8s_openapi::api::core::v1::Service::deserialize(&got).expect("typed form");
    }

    #[test]
    fn pod_with_probes_and_inlined_structs() {
        let mut c = container("app", "busybox");
        c.liveness_probe = Some(core::Probe {
            handler: Some(core::ProbeHandler {
                http_get: Some(core::HttpGetAction {
                    path: s("/healthz"),
                    port: Some(int(8080)),
                    host: s(""),
                    scheme: s("HTTP"),
                    http_headers: vec![],
                }),
                ..Default::default()
            }),
            initial_delay_seconds: Some(3),
            period_seconds: Some(10),
            ..Default::default()
        });
        c.readiness_probe = Some(core::Probe {
            handler: Some(core::ProbeHandler {
                exec: Some(core::ExecAction {
                    command: vec!["cat".into(), "/tmp/ready".into()],
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        c.env = vec![core::EnvVar {
            name: s("FROM_CM"),
            value: s(""),
            value_from: Some(core::EnvVarSource {
                config_map_key_ref: Some(core::ConfigMapKeySelector {
                    local_object_reference: Some(core::LocalObjectReference { name: s("cm") }),
                    key: s("k"),
                    optional: None,
                }),
                ..Default::default()
            }),
        }];
        let pod = core::Pod {
            metadata: Some(go_meta("p", "default")),
            spec: Some(core::PodSpec {
                containers: vec![c],
                volumes: vec![core::Volume {
                    name: s("data"),
                    volume_source: Some(core::VolumeSource {
                        empty_dir: Some(core::EmptyDirVolumeSource {
                            medium: s(""),
                            size_limit: Some(quantity("1Gi")),
                        }),
                        ..Default::default()
                    }),
                }],
                host_ipc: Some(true),
                ..Default::default()
            }),
            status: Some(core::PodStatus {
                pod_ip: s("10.0.0.7"),
                start_time: Some(meta::Time {
                    seconds: Some(1_767_323_045),
                    nanos: None,
                }),
                ..Default::default()
            }),
        };
        let got = decode(&body("v1", "Pod", pod.encode_to_vec())).expect("decodes");
        let spec = &got["spec"];
        assert_eq!(
            spec["containers"][0]["livenessProbe"],
            json!({
                "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                "initialDelaySeconds": 3, "periodSeconds": 10,
            })
        );
        assert_eq!(
            spec["containers"][0]["readinessProbe"],
            json!({"exec": {"command": ["cat", "/tmp/ready"]}})
        );
        assert_eq!(
            spec["containers"][0]["env"],
            json!([{"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}])
        );
        assert_eq!(
            spec["volumes"],
            json!([{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}])
        );
        assert_eq!(spec["hostIPC"], json!(true));
        assert_eq!(
            got["status"],
            json!({"podIP": "10.0.0.7", "startTime": "2026-01-02T03:04:05Z"})
        );
        k8s_openapi::api::core::v1::Pod::deserialize(&got).expect("typed form");
    }

    #[test]
    fn delete_options_under_any_version() {
        let opts = meta::DeleteOptions {
            grace_period_seconds: Some(0),
            preconditions: Some(meta::Preconditions {
                uid: s("u-1"),
                resource_version: None,
            }),
            propagation_policy: s("Foreground"),
            dry_run: vec!["All".into()],
            ..Default::default()
        };
        for api_version in ["v1", "apps/v1", "meta.k8s.io/v1"] {
            let got =
                decode(&body(api_version, "DeleteOptions", opts.encode_to_vec())).expect("decodes");
            assert_eq!(
                got,
                json!({
                    "apiVersion": api_version, "kind": "DeleteOptions",
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": "u-1"},
                    "propagationPolicy": "Foreground",
                    "dryRun": ["All"],
                })
            );
            k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions::deserialize(&got)
                .expect("typed form");
        }
    }

    #[test]
    fn empty_storage_class_name_is_kept() {
        let pvc = core::PersistentVolumeClaim {
            metadata: Some(go_meta("c", "default")),
            spec: Some(core::PersistentVolumeClaimSpec {
                storage_class_name: s(""),
                volume_mode: s(""),
                access_modes: vec!["ReadWriteOnce".into()],
                ..Default::default()
            }),
            status: None,
        };
        let got =
            decode(&body("v1", "PersistentVolumeClaim", pvc.encode_to_vec())).expect("decodes");
        assert_eq!(
            got["spec"],
            json!({"storageClassName": "", "accessModes": ["ReadWriteOnce"]})
        );
    }

    #[test]
    fn micro_time_keeps_microseconds() {
        let lease = k8s_pb::api::coordination::v1::Lease {
            metadata: Some(go_meta("l", "kube-node-lease")),
            spec: Some(k8s_pb::api::coordination::v1::LeaseSpec {
                holder_identity: s("node-1"),
                renew_time: Some(meta::MicroTime {
                    seconds: Some(1_767_323_045),
                    nanos: Some(123_456_789),
                }),
                ..Default::default()
            }),
        };
        let got = decode(&body(
            "coordination.k8s.io/v1",
            "Lease",
            lease.encode_to_vec(),
        ))
        .expect("decodes");
        assert_eq!(
            got["spec"],
            json!({"holderIdentity": "node-1", "renewTime": "2026-01-02T03:04:05.123456Z"})
        );
        k8s_openapi::api::coordination::v1::Lease::deserialize(&got).expect("typed form");
    }

    #[test]
    fn raw_extension_holds_json() {
        let rev = apps::ControllerRevision {
            metadata: Some(go_meta("r", "default")),
            data: Some(k8s_pb::apimachinery::pkg::runtime::RawExtension {
                raw: Some(br#"{"spec":{"template":{}}}"#.to_vec()),
            }),
            revision: Some(2),
        };
        let got =
            decode(&body("apps/v1", "ControllerRevision", rev.encode_to_vec())).expect("decodes");
        assert_eq!(got["data"], json!({"spec": {"template": {}}}));
        assert_eq!(got["revision"], json!(2));
        k8s_openapi::api::apps::v1::ControllerRevision::deserialize(&got).expect("typed form");
    }

    #[test]
    fn every_served_kind_and_body_kind_decodes() {
        let mut kinds: Vec<(String, &str)> = crate::registry::RESOURCES
            .iter()
            .map(|r| (r.api_version(), r.kind))
            .collect();
        kinds.extend(
            [
                ("policy/v1", "Eviction"),
                ("v1", "Binding"),
                ("autoscaling/v1", "Scale"),
                ("v1", "DeleteOptions"),
            ]
            .map(|(v, k)| (v.to_string(), k)),
        );
        let meta = go_meta("o", "ns").encode_to_vec();
        // Field 1 is metadata in every kind but DeleteOptions.
        let raw = [&[0x0a, meta.len() as u8][..], &meta].concat();
        for (api_version, kind) in kinds {
            let raw = if kind == "DeleteOptions" {
                vec![]
            } else {
                raw.clone()
            };
            let got = decode(&body(&api_version, kind, raw)).expect("decodes");
            assert_eq!(got["kind"], json!(kind));
            if kind != "DeleteOptions" {
                assert_eq!(got["metadata"]["name"], json!("o"), "{kind}");
            }
        }
    }

    #[test]
    fn refuses_bad_bodies() {
        assert!(matches!(decode(b"{}"), Err(ProtoError::Magic)));
        assert!(matches!(
            decode(&body("v1", "Nope", vec![])),
            Err(ProtoError::UnknownKind { .. })
        ));
        // metadata (field 1) claims 5 bytes but has 1.
        assert!(matches!(
            decode(&body("v1", "ConfigMap", vec![0x0a, 5, 0])),
            Err(ProtoError::Truncated)
        ));
        // metadata sent as a varint.
        assert!(matches!(
            decode(&body("v1", "ConfigMap", vec![0x08, 1])),
            Err(ProtoError::WireType { tag: 1, wire: 0 })
        ));
        let bad = IntOrString {
            r#type: Some(7),
            ..Default::default()
        };
        let pdb = k8s_pb::api::policy::v1::PodDisruptionBudget {
            spec: Some(k8s_pb::api::policy::v1::PodDisruptionBudgetSpec {
                min_available: Some(bad),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(matches!(
            decode(&body(
                "policy/v1",
                "PodDisruptionBudget",
                pdb.encode_to_vec()
            )),
            Err(ProtoError::IntOrStringType(7))
        ));
        // A self-nesting RawExtension stops at the depth limit instead of overflowing the stack.
        let mut nested = body("apps/v1", "ControllerRevision", vec![]);
        for _ in 0..200 {
            let rev = apps::ControllerRevision {
                data: Some(k8s_pb::apimachinery::pkg::runtime::RawExtension { raw: Some(nested) }),
                ..Default::default()
            };
            nested = body("apps/v1", "ControllerRevision", rev.encode_to_vec());
        }
        assert!(matches!(decode(&nested), Err(ProtoError::TooDeep)));
    }

    /// Bodies kubectl 1.37.1 sent (`kubectl create deployment web --image=nginx --replicas=0
    /// --port=80`, `kubectl create secret generic s --from-literal=k=v`), as hex.
    const KUBECTL_DEPLOYMENT: &str = "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412b8010a1f0a0377656212001a0022002a003200380042005a0a0a0361707012037765621286010800120c0a0a0a0361707012037765621a6c0a1c0a0012001a0022002a003200380042005a0a0a036170701203776562124c122e0a056e67696e7812056e67696e782a00320a0a001000185022002a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200";
    const KUBECTL_SECRET: &str = "6b3873000a0c0a0276311206536563726574121d0a110a017312001a0022002a0032003800420012060a016b1201761a001a002200";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn real_kubectl_bodies() {
        let got = decode(&unhex(KUBECTL_DEPLOYMENT)).expect("decodes");
        assert_eq!(
            got,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"labels": {"app": "web"}, "name": "web"},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": "web"}},
                    "strategy": {},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{
                            "image": "nginx", "name": "nginx",
                            "ports": [{"containerPort": 80}], "resources": {},
                        }]},
                    },
                },
                "status": {},
            })
        );
        k8s_openapi::api::apps::v1::Deployment::deserialize(&got).expect("typed form");
        let got = decode(&unhex(KUBECTL_SECRET)).expect("decodes");
        assert_eq!(
            got,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg=="}})
        );
    }

    proptest! {
        #[test]
        fn never_panics(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&[MAGIC.as_slice(), &tail].concat());
        }

        #[test]
        fn never_panics_inside_a_kind(pick in any::<usize>(), raw in proptest::collection::vec(any::<u8>(), 0..512)) {
            let (api_version, kind, _) = KINDS[pick % KINDS.len()];
            let api_version = if api_version == "*" { "v1" } else { api_version };
            let _ = decode(&body(api_version, kind, raw));
        }
    }
}
