//! Object validation (placeholder until the selector branch lands).
use crate::registry::Resource;
use serde_json::Value;
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorType {
    Required,
    Invalid,
}
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub kind: ErrorType,
    pub field: String,
    pub value: Option<Value>,
    pub detail: String,
}
impl FieldError {
    pub fn reason(&self) -> &'static str {
        match self.kind {
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Invalid => "FieldValueInvalid",
        }
    }
    pub fn message(&self) -> String {
        match self.kind {
            ErrorType::Required => "Required value".into(),
            ErrorType::Invalid => format!(
                "Invalid value: {}: {}",
                self.value.clone().unwrap_or(Value::Null),
                self.detail
            ),
        }
    }
}
pub fn validate(_res: &Resource, obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    if obj["metadata"]["name"].as_str().is_none_or(str::is_empty) {
        vec![FieldError {
            kind: ErrorType::Required,
            field: "metadata.name".into(),
            value: None,
            detail: String::new(),
        }]
    } else {
        Vec::new()
    }
}
