//! OpenAPI documents (placeholder until the openapi branch lands).
use serde_json::{Value, json};
pub fn v3_document(_group: &str, _version: &str) -> Option<Value> { Some(json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.37.0"}, "paths": {}, "components": {"schemas": {}}})) }
pub fn v2_document() -> Value { json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.37.0"}, "paths": {}, "definitions": {}}) }
