//! The three patch types of PATCH requests: JSON patch (RFC 6902), JSON merge patch (RFC 7386)
//! and strategic merge patch with upstream's semantics for the built-in kinds
//! (`apimachinery/pkg/util/strategicpatch`), driven by a table of list merge keys.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::registry::Resource;

/// Upstream's cap on the operations of one JSON patch.
const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// Why a patch could not be applied. Messages follow upstream's where it has them.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatchError {
    /// The JSON patch body is not a list of RFC 6902 operations.
    #[error("invalid JSON Patch: {0}")]
    InvalidJsonPatch(String),
    /// The JSON patch has more operations than upstream accepts.
    #[error(
        "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {0}"
    )]
    TooManyOperations(usize),
    /// An operation of the JSON patch failed against the object.
    #[error("{0}")]
    JsonPatchFailed(String),
    /// A merge patch body that is not a JSON object.
    #[error("Invalid JSON Patch")]
    BadMergePatch,
    /// The object or the strategic merge patch is not a JSON object.
    #[error("invalid JSON document")]
    BadJsonDoc,
    /// A `$patch` directive with a value it cannot have there.
    #[error("unknown patch type: {kind} in map: {map}")]
    BadPatchType { kind: String, map: String },
    /// `$patch: merge` inside a list.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// A list element without the list's merge key.
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey { map: String, key: String },
    /// A list of maps merged without a merge key.
    #[error("cannot merge lists without merge key for {0}")]
    NoMergeKeyForList(String),
    /// A list whose elements are lists.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// A list whose elements have different types.
    #[error("list element types are not identical: {0}")]
    MixedListTypes(String),
    /// An ordering directive with nothing to order.
    #[error("no elements in any of the given slices")]
    NoElements,
    /// A value of the wrong JSON type where a map or list is required.
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        expected: &'static str,
        actual: &'static str,
    },
    /// A malformed `$deleteFromPrimitiveList/<field>` directive.
    #[error("invalid patch format of primitive list")]
    BadPrimitiveList,
    /// A malformed `$retainKeys` directive.
    #[error("invalid patch format of retainKeys")]
    BadRetainKeys,
    /// A patched field missing from the `$retainKeys` list.
    #[error("patch content doesn't match retainKeys list")]
    RetainKeysMismatch,
    /// A malformed `$setElementOrder/<field>` directive.
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrder,
    /// A patch list ordered differently from its `$setElementOrder` list.
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    SetElementOrderMismatch { patch: String, order: String },
}

/// Applies an RFC 6902 JSON patch.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::InvalidJsonPatch(e.to_string()))?;
    if ops.0.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations(ops.0.len()));
    }
    let mut doc = target.clone();
    json_patch::patch(&mut doc, &ops).map_err(|e| PatchError::JsonPatchFailed(e.to_string()))?;
    Ok(doc)
}

/// Applies an RFC 7386 JSON merge patch; the patch must be a JSON object.
pub fn merge_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !patch.is_object() {
        return Err(PatchError::BadMergePatch);
    }
    let mut doc = target.clone();
    json_patch::merge(&mut doc, patch);
    Ok(doc)
}

/// Applies an `application/strategic-merge-patch+json` patch with upstream's semantics for the
/// resource's kind: lists with a merge strategy are merged by their merge key, the directives
/// `$patch`, `$retainKeys`, `$deleteFromPrimitiveList/…` and `$setElementOrder/…` are honoured,
/// and `null` deletes a key.
pub fn strategic_merge_patch(
    res: &Resource,
    target: &Value,
    patch: &Value,
) -> Result<Value, PatchError> {
    let (Value::Object(original), Value::Object(patch)) = (target, patch) else {
        return Err(PatchError::BadJsonDoc);
    };
    merge_map(
        original.clone(),
        patch.clone(),
        Ty::Root(res.group, res.kind),
    )
    .map(Value::Object)
}

/// The struct a JSON map is decoded as, for looking up its fields' patch strategies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    /// A field without patch metadata: maps merge, lists are replaced.
    Unknown,
    /// A top-level object of the given group and kind.
    Root(&'static str, &'static str),
    ObjectMeta,
    PodTemplateSpec,
    PodSpec,
    Container,
    /// The spec of a workload with a pod template (`spec.template`).
    WorkloadSpec,
    CronJobSpec,
    JobTemplateSpec,
    ServiceSpec,
    NodeSpec,
    CsiNodeSpec,
    PodStatus,
    NodeStatus,
    /// A status whose `conditions` merge by `type`.
    ConditionsStatus,
}

/// How a list field is patched (the `patchStrategy`/`patchMergeKey` struct tags upstream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListStrategy {
    /// No merge strategy: the patch's list replaces the object's.
    Replace,
    /// `patchStrategy:"merge"` on a list of scalars: a set union.
    MergePrimitives,
    /// `patchStrategy:"merge"` with `patchMergeKey`: elements merged by the key.
    MergeBy(&'static str),
}

use ListStrategy::{MergeBy, MergePrimitives, Replace};

/// The patch metadata of field `name` of `ty`: the type of its value and its list strategy.
fn field(ty: Ty, name: &str) -> (Ty, ListStrategy) {
    match (ty, name) {
        (Ty::Root(..), "metadata") | (Ty::PodTemplateSpec | Ty::JobTemplateSpec, "metadata") => {
            (Ty::ObjectMeta, Replace)
        }
        (Ty::Root(group, kind), "spec") => (root_spec(group, kind), Replace),
        (Ty::Root(group, kind), "status") => (root_status(group, kind), Replace),
        (Ty::Root("", "PodTemplate"), "template") | (Ty::WorkloadSpec, "template") => {
            (Ty::PodTemplateSpec, Replace)
        }
        (Ty::Root("", "ServiceAccount"), "secrets") => (Ty::Unknown, MergeBy("name")),
        (Ty::ObjectMeta, "finalizers") => (Ty::Unknown, MergePrimitives),
        (Ty::ObjectMeta, "ownerReferences") => (Ty::Unknown, MergeBy("uid")),
        (Ty::PodTemplateSpec, "spec") => (Ty::PodSpec, Replace),
        (Ty::CronJobSpec, "jobTemplate") => (Ty::JobTemplateSpec, Replace),
        (Ty::JobTemplateSpec, "spec") => (Ty::WorkloadSpec, Replace),
        (Ty::PodSpec, "containers" | "initContainers" | "ephemeralContainers") => {
            (Ty::Container, MergeBy("name"))
        }
        (Ty::PodSpec, "volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims") => {
            (Ty::Unknown, MergeBy("name"))
        }
        (Ty::PodSpec, "hostAliases") => (Ty::Unknown, MergeBy("ip")),
        (Ty::PodSpec, "topologySpreadConstraints") => (Ty::Unknown, MergeBy("topologyKey")),
        (Ty::Container, "ports") => (Ty::Unknown, MergeBy("containerPort")),
        (Ty::Container, "env") => (Ty::Unknown, MergeBy("name")),
        (Ty::Container, "volumeMounts") => (Ty::Unknown, MergeBy("mountPath")),
        (Ty::Container, "volumeDevices") => (Ty::Unknown, MergeBy("devicePath")),
        (Ty::ServiceSpec, "ports") => (Ty::Unknown, MergeBy("port")),
        (Ty::NodeSpec, "podCIDRs") => (Ty::Unknown, MergePrimitives),
        (Ty::CsiNodeSpec, "drivers") => (Ty::Unknown, MergeBy("name")),
        (Ty::PodStatus | Ty::NodeStatus | Ty::ConditionsStatus, "conditions") => {
            (Ty::Unknown, MergeBy("type"))
        }
        (Ty::PodStatus, "podIPs" | "hostIPs") => (Ty::Unknown, MergeBy("ip")),
        (Ty::PodStatus, "resourceClaimStatuses") => (Ty::Unknown, MergeBy("name")),
        (Ty::NodeStatus, "addresses") => (Ty::Unknown, MergeBy("type")),
        _ => (Ty::Unknown, Replace),
    }
}

fn root_spec(group: &str, kind: &str) -> Ty {
    match (group, kind) {
        ("", "Pod") => Ty::PodSpec,
        ("", "Service") => Ty::ServiceSpec,
        ("", "Node") => Ty::NodeSpec,
        ("", "ReplicationController")
        | ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job") => Ty::WorkloadSpec,
        ("batch", "CronJob") => Ty::CronJobSpec,
        ("storage.k8s.io", "CSINode") => Ty::CsiNodeSpec,
        _ => Ty::Unknown,
    }
}

fn root_status(group: &str, kind: &str) -> Ty {
    match (group, kind) {
        ("", "Pod") => Ty::PodStatus,
        ("", "Node") => Ty::NodeStatus,
        ("", "Namespace" | "PersistentVolumeClaim" | "ReplicationController" | "Service")
        | ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job")
        | ("autoscaling", "HorizontalPodAutoscaler")
        | ("policy", "PodDisruptionBudget") => Ty::ConditionsStatus,
        _ => Ty::Unknown,
    }
}

/// The JSON type name of a value, for errors.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// Whether two values have the same Go type once decoded (`reflect.TypeOf`).
fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// Go's `==` on decoded JSON scalars: numbers compare as float64.
fn go_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Removes `null` values from maps nested anywhere in `v`.
fn discard_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(discard_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

/// Drops maps carrying a `$patch` directive, anywhere in `v`; `None` when `v` itself is one.
fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) if m.contains_key(DIRECTIVE) => None,
        Value::Object(m) => Some(Value::Object(
            m.into_iter()
                .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                .collect(),
        )),
        Value::Array(a) => Some(Value::Array(
            a.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// The field name after a directive prefix (`$setElementOrder/containers` → `containers`).
fn extract_key<'a>(key: &'a str, prefix: &str, err: PatchError) -> Result<&'a str, PatchError> {
    match key.split_once('/') {
        Some((p, rest)) if p == prefix => Ok(rest),
        _ => Err(err),
    }
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    ty: Ty,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.remove(DIRECTIVE);
                Ok(patch)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(PatchError::BadPatchType {
                kind: directive_text(directive),
                map: Value::Object(patch.clone()).to_string(),
            }),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_ordered_lists(&mut original, &mut patch, ty)?;

    for (key, mut value) in patch {
        let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            let field = extract_key(
                &key,
                DELETE_FROM_PRIMITIVE_LIST,
                PatchError::BadPrimitiveList,
            )?;
            (field.to_string(), true)
        } else {
            (key, false)
        };
        if value.is_null() {
            original.remove(&key);
            continue;
        }
        let Some(current) = original.remove(&key) else {
            if !is_delete_list {
                discard_nulls(&mut value);
                if let Some(v) = remove_directives(value) {
                    original.insert(key, v);
                }
            }
            continue;
        };
        if !same_type(&current, &value) {
            if is_delete_list {
                original.insert(key, current);
            } else {
                discard_nulls(&mut value);
                if let Some(v) = remove_directives(value) {
                    original.insert(key, v);
                }
            }
            continue;
        }
        let (sub, strategy) = field(ty, &key);
        let merged = match (current, value) {
            (Value::Object(cur), Value::Object(p)) => Value::Object(merge_map(cur, p, sub)?),
            (Value::Array(cur), Value::Array(p)) => {
                Value::Array(merge_list(cur, p, sub, strategy, is_delete_list)?)
            }
            (_, p) => p,
        };
        original.insert(key, merged);
    }
    Ok(original)
}

fn directive_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `$retainKeys`: drops the object's keys missing from the list, after checking the patch only
/// sets listed keys.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadRetainKeys);
    };
    let listed = |k: &str| retain.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !listed(k) {
            return Err(PatchError::RetainKeysMismatch);
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// `$setElementOrder/<field>`: merges the field's list and orders it by the directive's list.
fn merge_ordered_lists(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    ty: Ty,
) -> Result<(), PatchError> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in keys {
        let Some(order) = patch.remove(&key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(PatchError::BadArgType {
                expected: "list",
                actual: type_name(&order),
            });
        };
        let field_name = extract_key(&key, SET_ELEMENT_ORDER, PatchError::BadSetElementOrder)?;
        let current = match original.get(field_name) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => {
                return Err(PatchError::BadArgType {
                    expected: "list",
                    actual: type_name(other),
                });
            }
        };
        let patched = match patch.remove(field_name) {
            None => None,
            Some(Value::Array(a)) => Some(a),
            Some(other) => {
                return Err(PatchError::BadArgType {
                    expected: "list",
                    actual: type_name(&other),
                });
            }
        };
        let (sub, strategy) = field(ty, field_name);
        let merge_key = match strategy {
            MergeBy(k) => Some(k),
            _ => None,
        };
        if let Some(p) = &patched {
            validate_against_order(p, &order, merge_key)?;
        }
        let (server_order, patch_list) = (
            current.clone().unwrap_or_default(),
            patched.clone().unwrap_or_default(),
        );
        let merged = match (current, patched) {
            (Some(cur), None) => cur,
            (None, Some(p)) => match remove_directives(Value::Array(p)) {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            },
            (Some(cur), Some(p)) => merge_list(cur, p, sub, strategy, false)?,
            (None, None) => continue,
        };
        let is_map = element_is_map(&server_order, &patch_list)?;
        let (in_order, server_only) = partition(merged, &order, merge_key)?;
        let both = normalize_element_order(
            in_order,
            server_only,
            &order,
            &server_order,
            merge_key,
            is_map,
        )?;
        original.insert(field_name.to_string(), Value::Array(both));
    }
    Ok(())
}

/// Checks the patch list's elements appear in the `$setElementOrder` list, in its order.
fn validate_against_order(
    patch: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<(), PatchError> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let kept: Vec<&Value> = match merge_key {
        Some(_) => patch.iter().filter(|v| !is_delete_directive(v)).collect(),
        None => patch.iter().collect(),
    };
    let (mut p, mut o) = (0, 0);
    while p < kept.len() && o < order.len() {
        if kept[p].get(DIRECTIVE).is_some() {
            p += 1;
            continue;
        }
        if merge_key_equal(kept[p], &order[o], merge_key)? {
            p += 1;
        }
        o += 1;
    }
    if p < kept.len() {
        return Err(PatchError::SetElementOrderMismatch {
            patch: Value::Array(patch.to_vec()).to_string(),
            order: Value::Array(order.to_vec()).to_string(),
        });
    }
    Ok(())
}

fn is_delete_directive(v: &Value) -> bool {
    v.get(DIRECTIVE).and_then(Value::as_str) == Some("delete")
}

fn merge_key_value<'a>(v: &'a Value, key: &str) -> Result<&'a Value, PatchError> {
    match v {
        Value::Object(m) => m.get(key).ok_or_else(|| PatchError::NoMergeKey {
            map: v.to_string(),
            key: key.to_string(),
        }),
        other => Err(PatchError::BadArgType {
            expected: "map",
            actual: type_name(other),
        }),
    }
}

fn merge_key_equal(a: &Value, b: &Value, key: Option<&str>) -> Result<bool, PatchError> {
    match key {
        None => Ok(go_eq(a, b)),
        Some(k) => Ok(go_eq(merge_key_value(a, k)?, merge_key_value(b, k)?)),
    }
}

/// Whether the lists' elements are maps; errors as upstream when they are lists, mixed, or
/// there are none.
fn element_is_map(a: &[Value], b: &[Value]) -> Result<bool, PatchError> {
    let mut first: Option<&Value> = None;
    for v in a.iter().chain(b) {
        match first {
            None if v.is_array() => return Err(PatchError::ListOfLists),
            None => first = Some(v),
            Some(f) if !same_type(f, v) => {
                return Err(PatchError::MixedListTypes(format!(
                    "{} {}",
                    Value::Array(a.to_vec()),
                    Value::Array(b.to_vec())
                )));
            }
            Some(_) => {}
        }
    }
    first.map(Value::is_object).ok_or(PatchError::NoElements)
}

fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    elem: Ty,
    strategy: ListStrategy,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    let merge_key = match strategy {
        Replace => return Ok(patch),
        MergePrimitives => None,
        MergeBy(k) => Some(k),
    };
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let is_map = element_is_map(&original, &patch)?;
    let (original, patch, merged) = if is_map {
        let Some(key) = merge_key else {
            return Err(PatchError::NoMergeKeyForList(format!("{elem:?}")));
        };
        let (original, patch) = apply_list_directives(original, patch, key)?;
        let merged = merge_by_key(original.clone(), &patch, key, elem)?;
        (original, patch, merged)
    } else {
        if is_delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.iter().any(|d| go_eq(d, v)))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::new();
        for v in original.iter().chain(&patch) {
            if !merged.iter().any(|m| go_eq(m, v)) {
                merged.push(v.clone());
            }
        }
        (original, patch, merged)
    };
    let (in_patch, server_only) = partition(merged, &patch, merge_key)?;
    normalize_element_order(in_patch, server_only, &patch, &original, merge_key, is_map)
}

/// Handles the `$patch` elements of a list of maps: `delete` removes the matching elements,
/// `replace` makes the rest of the patch the whole list. Returns the original and the patch
/// without those elements.
fn apply_list_directives(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::new();
    let mut replace = false;
    for v in patch {
        let Some(directive) = v.get(DIRECTIVE) else {
            plain.push(v);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let value = merge_key_value(&v, key)?;
                let mut kept = Vec::with_capacity(original.len());
                for o in original {
                    let matches = match &o {
                        Value::Object(m) => m.get(key).is_some_and(|x| go_eq(x, value)),
                        other => {
                            return Err(PatchError::BadArgType {
                                expected: "map",
                                actual: type_name(other),
                            });
                        }
                    };
                    if !matches {
                        kept.push(o);
                    }
                }
                original = kept;
            }
            Some("replace") => replace = true,
            Some("merge") => return Err(PatchError::MergeDirectiveInList),
            _ => {
                return Err(PatchError::BadPatchType {
                    kind: directive_text(directive),
                    map: v.to_string(),
                });
            }
        }
    }
    if replace {
        Ok((plain, Vec::new()))
    } else {
        Ok((original, plain))
    }
}

/// The position of the element of `list` with `value` as its merge key.
fn position_by_key(list: &[Value], key: &str, value: &Value) -> Result<Option<usize>, PatchError> {
    for (i, v) in list.iter().enumerate() {
        let Value::Object(m) = v else {
            return Err(PatchError::BadArgType {
                expected: "map",
                actual: type_name(v),
            });
        };
        if m.get(key).is_some_and(|x| go_eq(x, value)) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Merges each patch element into the original element with the same merge key, or appends it.
fn merge_by_key(
    mut original: Vec<Value>,
    patch: &[Value],
    key: &str,
    elem: Ty,
) -> Result<Vec<Value>, PatchError> {
    for p in patch {
        let value = merge_key_value(p, key)?;
        match position_by_key(&original, key, value)? {
            Some(i) => {
                let current = std::mem::take(&mut original[i]);
                if let (Value::Object(cur), Value::Object(pm)) = (current, p.clone()) {
                    original[i] = Value::Object(merge_map(cur, pm, elem)?);
                }
            }
            None => original.push(p.clone()),
        }
    }
    Ok(original)
}

/// Splits `merged` into the elements present in `by` (by merge key or value) and the rest.
fn partition(
    merged: Vec<Value>,
    by: &[Value],
    key: Option<&str>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut present = Vec::new();
    let mut rest = Vec::new();
    for v in merged {
        let found = match key {
            None => by.iter().any(|b| go_eq(b, &v)),
            Some(k) => position_by_key(by, k, merge_key_value(&v, k)?)?.is_some(),
        };
        if found {
            present.push(v);
        } else {
            rest.push(v);
        }
    }
    Ok((present, rest))
}

/// The index of `item` in `list`, by merge key for maps.
fn index_of(list: &[Value], item: &Value, key: Option<&str>, is_map: bool) -> Option<usize> {
    match key.filter(|_| is_map) {
        Some(k) => {
            let value = item.get(k)?;
            list.iter()
                .position(|v| v.get(k).is_some_and(|x| go_eq(x, value)))
        }
        None => list.iter().position(|v| go_eq(v, item)),
    }
}

/// Sorts `to_sort` by the positions of its elements in `order`; `$patch: delete` elements go
/// last.
fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    key: Option<&str>,
    is_map: bool,
) -> Result<Vec<Value>, PatchError> {
    let (mut keep, deletes): (Vec<Value>, Vec<Value>) = if is_map {
        if let Some(k) = key {
            for v in to_sort.iter().chain(order) {
                merge_key_value(v, k)?;
            }
        }
        to_sort.into_iter().partition(|v| !is_delete_directive(v))
    } else {
        (to_sort, Vec::new())
    };
    keep.sort_by_key(|v| index_of(order, v, key, is_map).unwrap_or(usize::MAX));
    keep.extend(deletes);
    Ok(keep)
}

/// Orders a merged list: patch elements in patch order, server-only elements in the server's
/// order, interleaved by their positions in the server's list.
fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
    is_map: bool,
) -> Result<Vec<Value>, PatchError> {
    let right = normalize_slice_order(patch, patch_order, key, is_map)?;
    let left = normalize_slice_order(server_only, server_order, key, is_map)?;
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    index_of(server_order, l, key, is_map),
                    index_of(server_order, r, key, is_map),
                ) {
                    (Some(li), Some(ri)) => li.cmp(&ri) == Ordering::Less,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{RESOURCES, find};
    use proptest::prelude::*;
    use serde_json::json;

    fn pods() -> &'static Resource {
        find("", "v1", "pods").expect("pods")
    }

    fn smp(res: &Resource, target: Value, patch: Value) -> Value {
        strategic_merge_patch(res, &target, &patch).expect("patch applies")
    }

    #[test]
    fn json_patch_applies_and_reports_failures() {
        let doc = json!({"metadata": {"labels": {"a": "1"}}});
        let patched = json_patch(
            &doc,
            &json!([{"op": "add", "path": "/metadata/labels/b", "value": "2"},
                    {"op": "remove", "path": "/metadata/labels/a"}]),
        )
        .expect("applies");
        assert_eq!(patched, json!({"metadata": {"labels": {"b": "2"}}}));
        assert!(matches!(
            json_patch(&doc, &json!([{"op": "remove", "path": "/spec"}])),
            Err(PatchError::JsonPatchFailed(_))
        ));
        assert!(matches!(
            json_patch(&doc, &json!({"op": "add"})),
            Err(PatchError::InvalidJsonPatch(_))
        ));
        let many = Value::Array(vec![json!({"op": "test", "path": "", "value": 1}); 10_001]);
        assert_eq!(
            json_patch(&doc, &many),
            Err(PatchError::TooManyOperations(10_001))
        );
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        let patched =
            merge_patch(&doc, &json!({"a": "z", "c": {"f": null}, "l": [3]})).expect("applies");
        assert_eq!(patched, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
        assert_eq!(
            merge_patch(&doc, &json!([1])),
            Err(PatchError::BadMergePatch)
        );
    }

    #[test]
    fn containers_merge_by_name_and_env_by_name() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
            {"name": "b", "image": "b:1"}
        ]}});
        let patch = json!({"spec": {"containers": [
            {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "3"}]}
        ]}});
        assert_eq!(
            smp(pods(), pod, patch),
            json!({"spec": {"containers": [
                {"name": "a", "image": "a:2", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}]},
                {"name": "b", "image": "b:1"}
            ]}})
        );
    }

    #[test]
    fn lists_without_a_strategy_are_replaced() {
        let pod = json!({"spec": {"tolerations": [{"key": "a"}], "containers": [
            {"name": "c", "args": ["x", "y"]}]}});
        let patch = json!({"spec": {"tolerations": [{"key": "b"}], "containers": [
            {"name": "c", "args": ["z"]}]}});
        assert_eq!(
            smp(pods(), pod, patch),
            json!({"spec": {"tolerations": [{"key": "b"}], "containers": [{"name": "c", "args": ["z"]}]}})
        );
    }

    #[test]
    fn templates_reuse_the_pod_spec_table() {
        let deploy = find("apps", "v1", "deployments").expect("deployments");
        let d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "ports": [{"containerPort": 80, "name": "http"}]}]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "ports": [{"containerPort": 443, "name": "https"}]}]}}}});
        assert_eq!(
            smp(deploy, d, patch)["spec"]["template"]["spec"]["containers"][0]["ports"],
            // As upstream: elements new to the list come before the server-only ones.
            json!([{"containerPort": 443, "name": "https"}, {"containerPort": 80, "name": "http"}])
        );
        let cronjobs = find("batch", "v1", "cronjobs").expect("cronjobs");
        let cj = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"volumes": [
            {"name": "a", "emptyDir": {}}]}}}}}});
        let patch = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"volumes": [
            {"name": "b", "emptyDir": {}}]}}}}}});
        assert_eq!(
            smp(cronjobs, cj, patch)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn service_ports_merge_by_port_and_finalizers_are_a_set() {
        let svc = find("", "v1", "services").expect("services");
        let s = json!({"metadata": {"finalizers": ["a", "b"]},
            "spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
        let patch = json!({"metadata": {"finalizers": ["b", "c"]},
            "spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}});
        assert_eq!(
            smp(svc, s, patch),
            json!({"metadata": {"finalizers": ["a", "b", "c"]},
                "spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}})
        );
    }

    #[test]
    fn directives() {
        let pod = json!({"metadata": {"finalizers": ["a", "b", "c"], "labels": {"x": "1", "y": "2"}},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}],
                     "volumes": [{"name": "v", "emptyDir": {}}]}});
        // $patch: delete on a list element; null deletes a map key.
        let p = smp(
            pods(),
            pod.clone(),
            json!({"metadata": {"labels": {"x": null}},
                   "spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
        );
        assert_eq!(p["spec"]["containers"], json!([{"name": "b"}]));
        assert_eq!(p["metadata"]["labels"], json!({"y": "2"}));
        // $patch: replace on a list and on a map.
        let p = smp(
            pods(),
            pod.clone(),
            json!({"spec": {"containers": [{"name": "z"}, {"$patch": "replace"}]},
                   "metadata": {"labels": {"$patch": "replace", "k": "v"}}}),
        );
        assert_eq!(p["spec"]["containers"], json!([{"name": "z"}]));
        assert_eq!(p["metadata"]["labels"], json!({"k": "v"}));
        // $patch: delete on a map.
        let p = smp(
            pods(),
            pod.clone(),
            json!({"metadata": {"labels": {"$patch": "delete"}}}),
        );
        assert_eq!(p["metadata"]["labels"], json!({}));
        // $deleteFromPrimitiveList.
        let p = smp(
            pods(),
            pod.clone(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
        );
        assert_eq!(p["metadata"]["finalizers"], json!(["a", "c"]));
        // $setElementOrder.
        let p = smp(
            pods(),
            pod.clone(),
            json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "c"}, {"name": "a"}],
                            "containers": [{"name": "c"}]}}),
        );
        assert_eq!(
            p["spec"]["containers"],
            json!([{"name": "b"}, {"name": "c"}, {"name": "a"}])
        );
        // $retainKeys.
        let p = smp(
            pods(),
            pod.clone(),
            json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "hostPath"],
                                         "hostPath": {"path": "/x"}}]}}),
        );
        assert_eq!(
            p["spec"]["volumes"],
            json!([{"name": "v", "hostPath": {"path": "/x"}}])
        );
        // Errors.
        assert!(matches!(
            strategic_merge_patch(pods(), &pod, &json!({"metadata": {"$patch": "bogus"}})),
            Err(PatchError::BadPatchType { .. })
        ));
        assert!(matches!(
            strategic_merge_patch(
                pods(),
                &pod,
                &json!({"spec": {"containers": [{"image": "x"}]}})
            ),
            Err(PatchError::NoMergeKey { .. })
        ));
        assert_eq!(
            strategic_merge_patch(
                pods(),
                &pod,
                &json!({"spec": {"containers": [{"name": "a", "$patch": "merge"}]}})
            ),
            Err(PatchError::MergeDirectiveInList)
        );
        assert_eq!(
            strategic_merge_patch(
                pods(),
                &pod,
                &json!({"spec": {"$retainKeys": ["x"], "nodeName": "n"}})
            ),
            Err(PatchError::RetainKeysMismatch)
        );
        assert_eq!(
            strategic_merge_patch(pods(), &pod, &json!([1])),
            Err(PatchError::BadJsonDoc)
        );
    }

    #[test]
    fn new_values_lose_their_nulls_and_statuses_merge_conditions() {
        let p = smp(
            pods(),
            json!({"spec": {"nodeName": "n"}}),
            json!({"metadata": {"labels": {"a": null, "b": "1"}, "annotations": {"$patch": "delete"}},
                   "spec": {"nodeName": {"x": null}}}),
        );
        assert_eq!(
            p,
            json!({"metadata": {"labels": {"b": "1"}}, "spec": {"nodeName": {}}})
        );
        let nodes = find("", "v1", "nodes").expect("nodes");
        let n = json!({"status": {"conditions": [{"type": "Ready", "status": "False"},
                                                 {"type": "DiskPressure", "status": "False"}]}});
        let patched = smp(
            nodes,
            n,
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert_eq!(
            patched["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "False"}])
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-5i64..5).prop_map(Value::from),
            "[a-c$/]{0,4}".prop_map(Value::from),
            Just(json!("delete")),
            Just(json!("replace")),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            let keys = prop_oneof![
                Just("name".to_string()),
                Just("spec".to_string()),
                Just("containers".to_string()),
                Just("metadata".to_string()),
                Just("finalizers".to_string()),
                Just("$patch".to_string()),
                Just("$retainKeys".to_string()),
                Just("$setElementOrder/containers".to_string()),
                Just("$deleteFromPrimitiveList/finalizers".to_string()),
                "[a-c]{1,2}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(keys, inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// An object without directive keys, nulls or list-valued merge fields.
    fn arb_plain_map() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Value::from),
            (-5i64..5).prop_map(Value::from),
            "[a-z]{0,4}".prop_map(Value::from),
        ];
        let value = leaf.prop_recursive(3, 24, 4, |inner| {
            proptest::collection::btree_map("[a-d]{1,2}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
        });
        proptest::collection::btree_map("[a-d]{1,2}", value, 0..5)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    proptest! {
        #[test]
        fn empty_patch_is_identity(doc in arb_json(), i in 0..RESOURCES.len()) {
            if doc.is_object() {
                let res = &RESOURCES[i];
                prop_assert_eq!(strategic_merge_patch(res, &doc, &json!({})), Ok(doc));
            }
        }

        #[test]
        fn map_only_patch_equals_merge_patch(doc in arb_plain_map(), patch in arb_plain_map()) {
            let res = pods();
            prop_assert_eq!(
                strategic_merge_patch(res, &doc, &patch),
                merge_patch(&doc, &patch)
            );
        }

        #[test]
        fn never_panics(doc in arb_json(), patch in arb_json(), i in 0..RESOURCES.len()) {
            let res = &RESOURCES[i];
            let _ = strategic_merge_patch(res, &doc, &patch);
            let _ = merge_patch(&doc, &patch);
            let _ = json_patch(&doc, &patch);
            let wrapped = json!({"spec": {"containers": doc.clone()}, "metadata": patch.clone()});
            let _ = strategic_merge_patch(res, &wrapped, &json!({"spec": {"containers": patch}}));
        }
    }
}
