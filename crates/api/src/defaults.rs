//! Defaulting (placeholder until the selector branch lands).
use crate::registry::Resource;
use serde_json::Value;
pub fn apply(_res: &Resource, _obj: &mut Value) {}
pub fn job_selector(_obj: &mut Value) {}
