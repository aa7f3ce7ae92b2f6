//! Strict field validation (placeholder until the openapi branch lands).
use serde_json::Value;
use crate::registry::Resource;
pub fn unknown_fields(_res: &Resource, _obj: &Value) -> Vec<String> { Vec::new() }
pub fn duplicate_fields(_body: &[u8]) -> Vec<String> { Vec::new() }
