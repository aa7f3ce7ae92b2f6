//! Label and field selectors (placeholder until the selector branch lands).
use crate::registry::Resource;
use serde_json::Value;
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);
pub trait Labels {
    fn label(&self, key: &str) -> Option<&str>;
}
impl Labels for Value {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
}
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSelector(Vec<(String, String)>);
impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        Ok(Self(
            s.split(',')
                .filter(|p| !p.is_empty())
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ))
    }
    pub fn everything() -> Self {
        Self(Vec::new())
    }
    pub fn is_everything(&self) -> bool {
        self.0.is_empty()
    }
    pub fn matches(&self, labels: &impl Labels) -> bool {
        self.0.iter().all(|(k, v)| labels.label(k) == Some(v))
    }
}
#[derive(Debug, Clone)]
pub struct FieldSelector(Vec<(String, String)>);
impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        Ok(Self(
            s.split(',')
                .filter(|p| !p.is_empty())
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ))
    }
    pub fn everything() -> Self {
        Self(Vec::new())
    }
    pub fn check_supported(&self, _res: &Resource) -> Result<(), SelectorError> {
        Ok(())
    }
    pub fn matches(&self, res: &Resource, obj: &Value) -> bool {
        self.0
            .iter()
            .all(|(k, v)| field_value(res, obj, k).as_deref() == Some(v))
    }
}
pub fn field_value(_res: &Resource, obj: &Value, field: &str) -> Option<String> {
    match field {
        "metadata.name" => obj["metadata"]["name"].as_str().map(str::to_string),
        "metadata.namespace" => obj["metadata"]["namespace"].as_str().map(str::to_string),
        _ => None,
    }
}
