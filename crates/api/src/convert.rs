//! Conversion (placeholder until the table branch lands).
use serde_json::Value;
use crate::registry::Resource;
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConvertError(pub String);
pub fn to_storage(_res: &'static Resource, obj: Value) -> Result<Value, ConvertError> { Ok(obj) }
pub fn from_storage(_res: &'static Resource, obj: Value) -> Result<Value, ConvertError> { Ok(obj) }
