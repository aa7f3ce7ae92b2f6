//! Patches (placeholder until the table branch lands).
use serde_json::Value;
use crate::registry::Resource;
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PatchError(pub String);
fn merge(t: &Value, p: &Value) -> Value {
    match (t, p) {
        (Value::Object(t), Value::Object(p)) => { let mut out = t.clone(); for (k, v) in p { if v.is_null() { out.remove(k); } else { let n = merge(out.get(k).unwrap_or(&Value::Null), v); out.insert(k.clone(), n); } } Value::Object(out) }
        (_, p) => p.clone(),
    }
}
pub fn json_patch(_target: &Value, _patch: &Value) -> Result<Value, PatchError> { Err(PatchError("json patch not yet".into())) }
pub fn merge_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> { Ok(merge(target, patch)) }
pub fn strategic_merge_patch(_res: &Resource, target: &Value, patch: &Value) -> Result<Value, PatchError> { Ok(merge(target, patch)) }
