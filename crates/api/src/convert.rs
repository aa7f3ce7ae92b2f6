//! Conversion between a row's version and the stored form of its objects: identity for rows that
//! are their own storage; autoscaling/v1 ⇄ v2 HorizontalPodAutoscaler and events.k8s.io/v1 ⇄
//! core/v1 Event as upstream converts them (`pkg/apis/autoscaling/v1/conversion.go`,
//! `pkg/apis/events/v1/conversion.go`).

use serde_json::{Map, Value, json};

use crate::registry::{Resource, storage_of};

/// Why an object could not be converted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConvertError {
    /// The body is not a JSON object.
    #[error("the object to convert is not a JSON object")]
    NotAnObject,
    /// The two versions have no conversion between them.
    #[error("no conversion from {from} to {to}")]
    Unsupported { from: String, to: String },
}

/// The v1 annotation keeping v2 metrics that v1 cannot express.
pub const METRIC_SPECS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// The v1 annotation keeping the v2 current metrics.
pub const METRIC_STATUSES_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// The v1 annotation keeping the v2 status conditions.
pub const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// The v1 annotation keeping the v2 scaling behavior.
pub const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";
/// The CPU utilization v1 implies when an HPA names no target.
const DEFAULT_CPU_UTILIZATION: i64 = 80;

/// Converts an object of the row's version into the stored form (the row
/// [`storage_of`]`(res)`).
pub fn to_storage(res: &'static Resource, obj: Value) -> Result<Value, ConvertError> {
    if !obj.is_object() {
        return Err(ConvertError::NotAnObject);
    }
    let storage = storage_of(res);
    let converted = match (res.group, res.version, res.kind) {
        // (`is_storage` cannot tell: autoscaling v1 and v2 share their group and plural.)
        _ if std::ptr::eq(res, storage) => obj,
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => hpa_v1_to_v2(obj),
        ("events.k8s.io", "v1", "Event") => event_to_core(obj),
        _ => return Err(unsupported(res, storage)),
    };
    Ok(with_type(converted, storage))
}

/// Converts an object in the stored form into the row's version.
pub fn from_storage(res: &'static Resource, obj: Value) -> Result<Value, ConvertError> {
    if !obj.is_object() {
        return Err(ConvertError::NotAnObject);
    }
    let storage = storage_of(res);
    let converted = match (res.group, res.version, res.kind) {
        // (`is_storage` cannot tell: autoscaling v1 and v2 share their group and plural.)
        _ if std::ptr::eq(res, storage) => obj,
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => hpa_v2_to_v1(obj),
        ("events.k8s.io", "v1", "Event") => event_from_core(obj),
        _ => return Err(unsupported(storage, res)),
    };
    Ok(with_type(converted, res))
}

fn unsupported(from: &Resource, to: &Resource) -> ConvertError {
    ConvertError::Unsupported {
        from: format!("{}, Kind={}", from.api_version(), from.kind),
        to: format!("{}, Kind={}", to.api_version(), to.kind),
    }
}

fn with_type(mut obj: Value, res: &Resource) -> Value {
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), res.api_version().into());
        m.insert("kind".into(), res.kind.into());
    }
    obj
}

/// Moves `from` in `src` to `to` in `dst` when present.
fn carry(src: &mut Map<String, Value>, from: &str, dst: &mut Map<String, Value>, to: &str) {
    if let Some(v) = src.remove(from) {
        dst.insert(to.into(), v);
    }
}

fn take_object(m: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    match m.remove(key) {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    }
}

/// Renames the top-level fields of a core/v1 Event to events.k8s.io/v1 (and back with
/// `reverse`).
const EVENT_RENAMES: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

/// An events.k8s.io/v1 Event in the core/v1 form (other fields keep their names).
pub(crate) fn event_to_core(obj: Value) -> Value {
    rename_fields(obj, true)
}

/// A core/v1 Event in the events.k8s.io/v1 form.
fn event_from_core(obj: Value) -> Value {
    rename_fields(obj, false)
}

fn rename_fields(obj: Value, to_core: bool) -> Value {
    let pick = |(core, new): (&'static str, &'static str)| {
        if to_core { (new, core) } else { (core, new) }
    };
    let Value::Object(mut m) = obj else {
        return obj;
    };
    let mut moved = Map::new();
    for &pair in EVENT_RENAMES {
        let (from, to) = pick(pair);
        carry(&mut m, from, &mut moved, to);
    }
    // A name of the target form present in the source has no counterpart: it is dropped, as a
    // typed decode of the source version would.
    for &pair in EVENT_RENAMES {
        let (_, to) = pick(pair);
        m.remove(to);
    }
    m.extend(moved);
    Value::Object(m)
}

fn annotations_mut(m: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    m.get_mut("metadata")?
        .as_object_mut()?
        .get_mut("annotations")?
        .as_object_mut()
}

/// Parses a JSON list kept in an annotation; `None` when absent or unparsable (upstream ignores
/// such annotations).
fn annotation_list(m: &Map<String, Value>, key: &str) -> Option<Vec<Value>> {
    match serde_json::from_str(annotation(m, key)?) {
        Ok(Value::Array(items)) => Some(items),
        _ => None,
    }
}

fn annotation<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get("metadata")?.get("annotations")?.get(key)?.as_str()
}

/// Drops the round-trip annotations; removes the map when it ends up empty.
fn drop_round_trip_annotations(m: &mut Map<String, Value>) {
    if let Some(a) = annotations_mut(m) {
        for key in [
            METRIC_SPECS_ANNOTATION,
            METRIC_STATUSES_ANNOTATION,
            CONDITIONS_ANNOTATION,
            BEHAVIOR_ANNOTATION,
        ] {
            a.remove(key);
        }
        if a.is_empty()
            && let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.remove("annotations");
        }
    }
}

fn set_annotation(m: &mut Map<String, Value>, key: &str, value: &Value) {
    let Some(meta) = m
        .entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()
    else {
        return;
    };
    if let Some(a) = meta
        .entry("annotations")
        .or_insert_with(|| json!({}))
        .as_object_mut()
    {
        a.insert(key.into(), value.to_string().into());
    }
}

/// Whether a v2 metric is the CPU utilization target v1 spells `targetCPUUtilizationPercentage`.
fn is_cpu(metric: &Value, field: &str) -> bool {
    metric.get("type").and_then(Value::as_str) == Some("Resource")
        && metric.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        && metric
            .pointer(&format!("/resource/{field}/averageUtilization"))
            .is_some_and(|v| !v.is_null())
}

/// Copies the keys of `src` listed as `(from, to)` into a new map.
fn pick(src: &Value, pairs: &[(&str, &str)]) -> Map<String, Value> {
    let mut out = Map::new();
    for (from, to) in pairs {
        if let Some(v) = src.pointer(from).filter(|v| !v.is_null()) {
            insert_at(&mut out, to, v.clone());
        }
    }
    out
}

/// Inserts `v` at a `/a/b` pointer inside `m`, creating objects on the way.
fn insert_at(m: &mut Map<String, Value>, pointer: &str, v: Value) {
    let mut parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let Some(last) = parts.pop() else {
        return;
    };
    let mut cur = m;
    for p in parts {
        let next = cur.entry(p).or_insert_with(|| json!({}));
        if !next.is_object() {
            *next = json!({});
        }
        let Some(obj) = next.as_object_mut() else {
            return;
        };
        cur = obj;
    }
    cur.insert(last.into(), v);
}

/// (v2 pointer, v1 pointer) pairs inside one metric source.
type Pairs = &'static [(&'static str, &'static str)];

/// The field and pointer pairs of each metric source, spec side.
fn spec_fields(ty: &str) -> Option<(&'static str, Pairs)> {
    Some(match ty {
        "Object" => (
            "object",
            &[
                ("/describedObject", "/target"),
                ("/metric/name", "/metricName"),
                ("/metric/selector", "/selector"),
                ("/target/value", "/targetValue"),
                ("/target/averageValue", "/averageValue"),
            ],
        ),
        "Pods" => (
            "pods",
            &[
                ("/metric/name", "/metricName"),
                ("/metric/selector", "/selector"),
                ("/target/averageValue", "/targetAverageValue"),
            ],
        ),
        "Resource" => (
            "resource",
            &[
                ("/name", "/name"),
                ("/target/averageUtilization", "/targetAverageUtilization"),
                ("/target/averageValue", "/targetAverageValue"),
            ],
        ),
        "ContainerResource" => (
            "containerResource",
            &[
                ("/name", "/name"),
                ("/container", "/container"),
                ("/target/averageUtilization", "/targetAverageUtilization"),
                ("/target/averageValue", "/targetAverageValue"),
            ],
        ),
        "External" => (
            "external",
            &[
                ("/metric/name", "/metricName"),
                ("/metric/selector", "/metricSelector"),
                ("/target/value", "/targetValue"),
                ("/target/averageValue", "/targetAverageValue"),
            ],
        ),
        _ => return None,
    })
}

/// The (v2 pointer, v1 pointer) pairs of each metric source, status side.
fn status_fields(ty: &str) -> Option<(&'static str, Pairs)> {
    Some(match ty {
        "Object" => (
            "object",
            &[
                ("/describedObject", "/target"),
                ("/metric/name", "/metricName"),
                ("/metric/selector", "/selector"),
                ("/current/value", "/currentValue"),
                ("/current/averageValue", "/averageValue"),
            ],
        ),
        "Pods" => (
            "pods",
            &[
                ("/metric/name", "/metricName"),
                ("/metric/selector", "/selector"),
                ("/current/averageValue", "/currentAverageValue"),
            ],
        ),
        "Resource" => (
            "resource",
            &[
                ("/name", "/name"),
                ("/current/averageUtilization", "/currentAverageUtilization"),
                ("/current/averageValue", "/currentAverageValue"),
            ],
        ),
        "ContainerResource" => (
            "containerResource",
            &[
                ("/name", "/name"),
                ("/container", "/container"),
                ("/current/averageUtilization", "/currentAverageUtilization"),
                ("/current/averageValue", "/currentAverageValue"),
            ],
        ),
        "External" => (
            "external",
            &[
                ("/metric/name", "/metricName"),
                ("/metric/selector", "/metricSelector"),
                ("/current/value", "/currentValue"),
                ("/current/averageValue", "/currentAverageValue"),
            ],
        ),
        _ => return None,
    })
}

/// Converts one metric (spec or status) between the v2 and v1 shapes.
fn convert_metric(metric: &Value, to_v1: bool, spec: bool) -> Value {
    let ty = metric.get("type").and_then(Value::as_str).unwrap_or("");
    let fields = if spec {
        spec_fields(ty)
    } else {
        status_fields(ty)
    };
    let mut out = Map::new();
    out.insert("type".into(), ty.into());
    let Some((field, pairs)) = fields else {
        return Value::Object(out);
    };
    let Some(source) = metric.get(field) else {
        return Value::Object(out);
    };
    let mut converted = if to_v1 {
        pick(source, pairs)
    } else {
        let swapped: Vec<(&str, &str)> = pairs.iter().map(|(a, b)| (*b, *a)).collect();
        pick(source, &swapped)
    };
    if spec && !to_v1 {
        // v1 has no target type: upstream infers it from which target is set.
        let has = |k: &str| source.get(k).is_some_and(|v| !v.is_null());
        let target_type = match ty {
            "Resource" | "ContainerResource" if has("targetAverageUtilization") => "Utilization",
            "Resource" | "ContainerResource" => "AverageValue",
            "External" if has("targetValue") => "Value",
            "External" => "AverageValue",
            "Object" if has("averageValue") => "AverageValue",
            "Object" => "Value",
            _ => "AverageValue",
        };
        insert_at(&mut converted, "/target/type", target_type.into());
    }
    out.insert(field.into(), Value::Object(converted));
    Value::Object(out)
}

/// Renames the keys of a JSON value to lower camel case (`ScaleUp` → `scaleUp`), as Go's
/// case-insensitive decoding of the behavior annotation accepts either spelling.
fn lower_camel(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let mut chars = k.chars();
                    let key = match chars.next() {
                        Some(c) => c.to_lowercase().chain(chars).collect(),
                        None => k,
                    };
                    (key, lower_camel(v))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(lower_camel).collect()),
        other => other,
    }
}

/// An autoscaling/v1 HorizontalPodAutoscaler in the autoscaling/v2 form.
pub(crate) fn hpa_v1_to_v2(obj: Value) -> Value {
    let Value::Object(mut m) = obj else {
        return obj;
    };
    let other_metrics = annotation_list(&m, METRIC_SPECS_ANNOTATION);
    let current_metrics = annotation_list(&m, METRIC_STATUSES_ANNOTATION);
    let conditions = annotation_list(&m, CONDITIONS_ANNOTATION);
    let behavior = annotation(&m, BEHAVIOR_ANNOTATION)
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .filter(|b| b.as_object().is_some_and(|o| !o.is_empty()));

    let mut spec = take_object(&mut m, "spec");
    let mut metrics: Vec<Value> = other_metrics
        .unwrap_or_default()
        .iter()
        .map(|metric| convert_metric(metric, false, true))
        .collect();
    if let Some(cpu) = spec
        .remove("targetCPUUtilizationPercentage")
        .filter(|v| !v.is_null())
    {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": cpu}}}));
    }
    if metrics.is_empty() {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}));
    }
    spec.insert("metrics".into(), metrics.into());
    if let Some(b) = behavior {
        spec.insert("behavior".into(), lower_camel(b));
    }
    m.insert("spec".into(), Value::Object(spec));

    let had_status = m.contains_key("status");
    let mut status = take_object(&mut m, "status");
    let mut current = Vec::new();
    if let Some(cpu) = status
        .remove("currentCPUUtilizationPercentage")
        .filter(|v| !v.is_null())
    {
        current.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "current": {"averageUtilization": cpu}}}));
    }
    if let Some(list) = current_metrics {
        current = list
            .iter()
            .map(|metric| convert_metric(metric, false, false))
            .collect();
    }
    if !current.is_empty() {
        status.insert("currentMetrics".into(), current.into());
    }
    if let Some(c) = conditions {
        status.insert("conditions".into(), c.into());
    }
    if had_status || !status.is_empty() {
        m.insert("status".into(), Value::Object(status));
    }
    drop_round_trip_annotations(&mut m);
    Value::Object(m)
}

/// An autoscaling/v2 HorizontalPodAutoscaler in the autoscaling/v1 form; what v1 cannot say is
/// kept in the round-trip annotations.
fn hpa_v2_to_v1(obj: Value) -> Value {
    let Value::Object(mut m) = obj else {
        return obj;
    };
    drop_round_trip_annotations(&mut m);

    let mut spec = take_object(&mut m, "spec");
    let metrics = match spec.remove("metrics") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    if let Some(cpu) = metrics.iter().find(|metric| {
        metric.get("type").and_then(Value::as_str) == Some("Resource")
            && metric.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
    }) && let Some(u) = cpu
        .pointer("/resource/target/averageUtilization")
        .filter(|v| !v.is_null())
    {
        spec.insert("targetCPUUtilizationPercentage".into(), u.clone());
    }
    let other: Vec<Value> = metrics
        .iter()
        .filter(|metric| !is_cpu(metric, "target"))
        .map(|metric| convert_metric(metric, true, true))
        .collect();
    let behavior = spec.remove("behavior").filter(|v| !v.is_null());
    m.insert("spec".into(), Value::Object(spec));

    let had_status = m.contains_key("status");
    let mut status = take_object(&mut m, "status");
    let current = match status.remove("currentMetrics") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    for metric in &current {
        if metric.get("type").and_then(Value::as_str) == Some("Resource")
            && metric.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
            && let Some(u) = metric
                .pointer("/resource/current/averageUtilization")
                .filter(|v| !v.is_null())
        {
            status.insert("currentCPUUtilizationPercentage".into(), u.clone());
        }
    }
    let conditions = match status.remove("conditions") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    if had_status || !status.is_empty() {
        m.insert("status".into(), Value::Object(status));
    }

    if !other.is_empty() {
        set_annotation(&mut m, METRIC_SPECS_ANNOTATION, &Value::Array(other));
    }
    if !current.is_empty() {
        let converted: Vec<Value> = current
            .iter()
            .map(|metric| convert_metric(metric, true, false))
            .collect();
        set_annotation(&mut m, METRIC_STATUSES_ANNOTATION, &Value::Array(converted));
    }
    if let Some(b) = behavior {
        set_annotation(&mut m, BEHAVIOR_ANNOTATION, &b);
    }
    if !conditions.is_empty() {
        set_annotation(&mut m, CONDITIONS_ANNOTATION, &Value::Array(conditions));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find;
    use proptest::prelude::*;

    fn hpa_v1() -> &'static Resource {
        find("autoscaling", "v1", "horizontalpodautoscalers").expect("v1")
    }
    fn hpa_v2() -> &'static Resource {
        find("autoscaling", "v2", "horizontalpodautoscalers").expect("v2")
    }
    fn events_new() -> &'static Resource {
        find("events.k8s.io", "v1", "events").expect("events.k8s.io")
    }

    #[test]
    fn identity_rows_only_rewrite_the_type() {
        let pods = find("", "v1", "pods").expect("pods");
        let pod = json!({"apiVersion": "x", "kind": "y", "metadata": {"name": "p"}});
        let want = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        assert_eq!(to_storage(pods, pod.clone()), Ok(want.clone()));
        assert_eq!(from_storage(pods, pod), Ok(want));
        assert_eq!(to_storage(pods, json!([1])), Err(ConvertError::NotAnObject));
        let v2 = to_storage(hpa_v2(), json!({"spec": {"maxReplicas": 3}})).expect("v2");
        assert_eq!(v2["apiVersion"], "autoscaling/v2");
    }

    #[test]
    fn hpa_v1_cpu_target_becomes_a_v2_metric_and_back() {
        let v1 = json!({
            "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "namespace": "d"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50},
            "status": {"currentReplicas": 2, "desiredReplicas": 2}
        });
        let stored = to_storage(hpa_v1(), v1.clone()).expect("to v2");
        assert_eq!(stored["apiVersion"], "autoscaling/v2");
        assert_eq!(
            stored["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}])
        );
        assert!(
            stored["spec"]
                .get("targetCPUUtilizationPercentage")
                .is_none()
        );
        assert_eq!(from_storage(hpa_v1(), stored), Ok(v1));
    }

    #[test]
    fn hpa_v1_without_target_defaults_to_80_percent() {
        let v1 = json!({"metadata": {"name": "h"}, "spec": {"maxReplicas": 2}});
        let stored = to_storage(hpa_v1(), v1).expect("to v2");
        assert_eq!(
            stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
    }

    #[test]
    fn hpa_v2_extra_metrics_survive_a_trip_through_v1() {
        let v2 = json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "annotations": {"keep": "me"}},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 10,
                "metrics": [
                    {"type": "Pods", "pods": {"metric": {"name": "qps"},
                        "target": {"type": "AverageValue", "averageValue": "1k"}}},
                    {"type": "Resource", "resource": {"name": "memory",
                        "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
                    {"type": "External", "external": {"metric": {"name": "queue"},
                        "target": {"type": "Value", "value": "30"}}},
                    {"type": "Object", "object": {
                        "describedObject": {"kind": "Service", "name": "s"},
                        "metric": {"name": "hits"},
                        "target": {"type": "Value", "value": "10"}}},
                    {"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 60}}}
                ],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}}
            },
            "status": {
                "currentReplicas": 3, "desiredReplicas": 3,
                "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu",
                    "current": {"averageUtilization": 40, "averageValue": "200m"}}}],
                "conditions": [{"type": "AbleToScale", "status": "True", "reason": "Ready"}]
            }
        });
        let v1 = from_storage(hpa_v1(), v2.clone()).expect("to v1");
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 40);
        let notes = &v1["metadata"]["annotations"];
        assert_eq!(notes["keep"], "me");
        let specs: Value =
            serde_json::from_str(notes[METRIC_SPECS_ANNOTATION].as_str().expect("metrics"))
                .expect("json");
        assert_eq!(
            specs[0],
            json!({"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "1k"}})
        );
        assert_eq!(
            specs[1],
            json!({"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}})
        );
        assert_eq!(to_storage(hpa_v1(), v1), Ok(v2));
    }

    #[test]
    fn events_rename_their_fields_both_ways() {
        let core = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "p.1", "namespace": "d"},
            "involvedObject": {"kind": "Pod", "name": "p"},
            "message": "hello", "reason": "Started", "type": "Normal",
            "source": {"component": "kubelet"},
            "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:01:00Z",
            "count": 2, "reportingComponent": "kubelet", "reportingInstance": "node-a",
            "action": "Start", "eventTime": null,
            "related": {"kind": "Node", "name": "node-a"},
            "series": {"count": 2, "lastObservedTime": "2024-01-01T00:01:00.000000Z"}
        });
        let new = from_storage(events_new(), core.clone()).expect("to events.k8s.io");
        assert_eq!(new["apiVersion"], "events.k8s.io/v1");
        assert_eq!(new["regarding"]["name"], "p");
        assert_eq!(new["note"], "hello");
        assert_eq!(new["deprecatedSource"]["component"], "kubelet");
        assert_eq!(new["deprecatedCount"], 2);
        assert_eq!(new["reportingController"], "kubelet");
        assert_eq!(new["reportingInstance"], "node-a");
        assert!(new.get("message").is_none() && new.get("involvedObject").is_none());
        assert_eq!(to_storage(events_new(), new), Ok(core));
    }

    fn arb_event() -> impl Strategy<Value = Value> {
        let text = "[a-z]{0,8}";
        (
            text,
            text,
            proptest::option::of(0i64..100),
            proptest::option::of(text),
            proptest::option::of(text),
        )
            .prop_map(|(name, note, count, reason, controller)| {
                let mut e = json!({"apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": name}, "message": note,
                    "involvedObject": {"kind": "Pod", "name": "p"}});
                if let Some(c) = count {
                    e["count"] = c.into();
                }
                if let Some(r) = reason {
                    e["reason"] = r.into();
                }
                if let Some(c) = controller {
                    e["reportingComponent"] = c.into();
                }
                e
            })
    }

    fn arb_hpa_v2() -> impl Strategy<Value = Value> {
        (
            1i64..100,
            proptest::option::of(1i64..10),
            proptest::option::of(0i64..100),
            proptest::option::of("[1-9][0-9]{0,2}(Mi|m)?"),
        )
            .prop_map(|(cpu, min, current, memory)| {
                let mut metrics = Vec::new();
                if let Some(q) = memory {
                    metrics.push(json!({"type": "Resource", "resource": {"name": "memory",
                        "target": {"type": "AverageValue", "averageValue": q}}}));
                }
                metrics.push(json!({"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": cpu}}}));
                let mut h = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": "h"},
                    "spec": {"maxReplicas": 10, "metrics": metrics,
                             "scaleTargetRef": {"kind": "Deployment", "name": "d"}},
                    "status": {"currentReplicas": 1}});
                if let Some(m) = min {
                    h["spec"]["minReplicas"] = m.into();
                }
                if let Some(c) = current {
                    h["status"]["currentMetrics"] = json!([{"type": "Resource",
                        "resource": {"name": "cpu", "current": {"averageUtilization": c}}}]);
                }
                h
            })
    }

    proptest! {
        #[test]
        fn events_round_trip(core in arb_event()) {
            let new = from_storage(events_new(), core.clone()).expect("from");
            prop_assert_eq!(to_storage(events_new(), new).expect("to"), core);
        }

        #[test]
        fn hpa_v2_round_trips_through_v1(v2 in arb_hpa_v2()) {
            let v1 = from_storage(hpa_v1(), v2.clone()).expect("from");
            prop_assert_eq!(to_storage(hpa_v1(), v1).expect("to"), v2);
        }

        #[test]
        fn hpa_v1_cpu_only_round_trips_through_v2(cpu in 1i64..100, max in 1i64..50) {
            let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "h"},
                "spec": {"maxReplicas": max, "targetCPUUtilizationPercentage": cpu,
                         "scaleTargetRef": {"kind": "Deployment", "name": "d"}}});
            let v2 = to_storage(hpa_v1(), v1.clone()).expect("to");
            prop_assert_eq!(from_storage(hpa_v1(), v2).expect("from"), v1);
        }
    }
}
