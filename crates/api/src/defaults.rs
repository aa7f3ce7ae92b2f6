//! Defaulting (placeholder until the selector branch lands).
use serde_json::Value;
use crate::registry::Resource;
pub fn apply(_res: &Resource, _obj: &mut Value) {}
pub fn job_selector(_obj: &mut Value) {}
