//! Objects as JSON values: reading and setting their metadata, and turning them into the bytes the
//! store keeps and back (the store never holds `resourceVersion`; it is the key's mod revision).

use bytes::Bytes;
use serde_json::{Map, Value};

use oxkube_api::registry::Resource;
use oxkube_store::KeyValue;

use crate::status::ApiError;

/// `metadata` of an object (an empty map when absent or not an object).
pub fn meta(obj: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    obj.get("metadata")
        .and_then(Value::as_object)
        .unwrap_or(&EMPTY)
}

/// `metadata`, made an object if it is not one.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let map = match obj {
        Value::Object(map) => map,
        _ => unreachable_object(),
    };
    let metadata = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    match metadata {
        Value::Object(m) => m,
        _ => unreachable_object(),
    }
}

#[cold]
fn unreachable_object() -> ! {
    // Both branches above make the value an object just before matching on it.
    unreachable!("made an object just above")
}

pub fn str_field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

pub fn name(obj: &Value) -> Option<&str> {
    str_field(meta(obj), "name").filter(|n| !n.is_empty())
}

pub fn namespace(obj: &Value) -> Option<&str> {
    str_field(meta(obj), "namespace").filter(|n| !n.is_empty())
}

pub fn uid(obj: &Value) -> Option<&str> {
    str_field(meta(obj), "uid").filter(|n| !n.is_empty())
}

/// `metadata.resourceVersion` as a number; `Err` if it is set but not one (a 400).
pub fn resource_version(obj: &Value) -> Result<Option<i64>, ApiError> {
    match str_field(meta(obj), "resourceVersion") {
        None | Some("") => Ok(None),
        Some(rv) => rv.parse().map(Some).map_err(|_| {
            ApiError::BadRequest(format!("invalid resourceVersion {rv:?}: not a number"))
        }),
    }
}

pub fn set_resource_version(obj: &mut Value, revision: i64) {
    meta_mut(obj).insert("resourceVersion".into(), Value::from(revision.to_string()));
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .get("finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

pub fn is_deleting(obj: &Value) -> bool {
    meta(obj)
        .get("deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// The object's `spec`-side content: everything but metadata and status (for generation bumps).
pub fn spec_side(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(map) = v.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
        map.remove("kind");
        map.remove("apiVersion");
    }
    v
}

/// Stores without `resourceVersion` (it is the store's revision).
pub fn encode(obj: &Value) -> Result<Bytes, ApiError> {
    let mut v = obj.clone();
    meta_mut(&mut v).remove("resourceVersion");
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(format!("encoding object: {e}")))
}

/// An object read back from the store, with its `resourceVersion`.
pub fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    decode_at(&kv.value, kv.mod_revision)
}

pub fn decode_at(bytes: &[u8], revision: i64) -> Result<Value, ApiError> {
    let mut v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Internal(format!("stored object is not JSON: {e}")))?;
    set_resource_version(&mut v, revision);
    Ok(v)
}

/// RFC 3339 time with seconds, as metav1.Time.
pub fn format_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The list kind of a resource (`PodList`).
pub fn list_kind(res: &Resource) -> String {
    format!("{}List", res.kind)
}

/// Sets `kind` and `apiVersion` to the row's.
pub fn set_type(obj: &mut Value, res: &Resource) {
    if let Some(map) = obj.as_object_mut() {
        map.insert("kind".into(), Value::from(res.kind));
        map.insert("apiVersion".into(), Value::from(res.api_version()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_store_never_holds_the_resource_version() {
        let obj = json!({"metadata": {"name": "a", "resourceVersion": "7"}});
        let bytes = encode(&obj).expect("encode");
        assert!(!String::from_utf8_lossy(&bytes).contains("resourceVersion"));
        let back = decode_at(&bytes, 9).expect("decode");
        assert_eq!(back["metadata"]["resourceVersion"], "9");
        assert_eq!(resource_version(&back), Ok(Some(9)));
    }

    #[test]
    fn metadata_of_odd_values() {
        let mut v = json!("x");
        meta_mut(&mut v).insert("name".into(), json!("n"));
        assert_eq!(name(&v), Some("n"));
        assert_eq!(name(&json!({"metadata": 3})), None);
        assert!(resource_version(&json!({"metadata": {"resourceVersion": "x"}})).is_err());
    }
}
