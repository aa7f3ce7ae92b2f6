//! Table columns (placeholder until the table branch lands).
use serde_json::{Value, json};
use crate::registry::Resource;
pub fn column_definitions(_res: &Resource) -> Vec<Value> {
    vec![json!({"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}),
         json!({"name": "Age", "type": "string", "format": "", "description": "Age", "priority": 0})]
}
pub fn cells(_res: &Resource, obj: &Value, _now: i64) -> Vec<Value> { vec![obj["metadata"]["name"].clone(), json!("?")] }
