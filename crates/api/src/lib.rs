//! Kubernetes API objects as oxkube serves them: the resource registry and, per kind, selectors,
//! validation, defaulting, table columns, conversion and patches. Pure: no I/O, no clock (callers
//! pass the time in).
//!
//! Objects travel as `serde_json::Value` (upstream's "unstructured"), checked against the typed
//! `k8s-openapi` form where the shape matters.

pub mod apply;
pub mod convert;
pub mod defaults;
pub mod fields;
pub mod openapi;
pub mod openapi_proto;
pub mod patch;
pub mod protobuf;
mod protobuf_schema;
pub mod registry;
pub mod selector;
pub mod table;
pub mod validation;
