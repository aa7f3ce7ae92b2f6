//! Server-side apply (placeholder until the openapi branch lands).
use serde_json::Value;
use crate::registry::Resource;
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict { pub manager: String, pub field: String }
#[derive(Debug, thiserror::Error)]
pub enum ApplyError { #[error("conflicts")] Conflicts(Vec<Conflict>), #[error("{0}")] Invalid(String) }
pub fn apply(res: &Resource, live: Option<&Value>, applied: &Value, _manager: &str, _force: bool, _now: &str) -> Result<Value, ApplyError> {
    Ok(match live { Some(l) => crate::patch::strategic_merge_patch(res, l, applied).map_err(|e| ApplyError::Invalid(e.to_string()))?, None => applied.clone() })
}
pub fn track_update(_res: &Resource, _old: Option<&Value>, _new: &mut Value, _manager: &str, _now: &str) {}
