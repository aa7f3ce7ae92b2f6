//! Object validation as upstream's `pkg/apis/*/validation` and apimachinery's validation
//! packages: field errors with upstream's messages, name and label syntax, and per-kind checks.

use std::fmt;

use serde_json::{Map, Value, json};

use crate::registry::Resource;
use crate::selector::LabelSelector;

/// The kind of a field error (upstream `field.ErrorType`).
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorType {
    Required,
    Invalid,
    NotSupported,
    Duplicate,
    Forbidden,
    TooLong,
    TooMany,
    NotFound,
}

impl ErrorType {
    /// The words upstream's `ErrorType.String()` prints.
    fn words(&self) -> &'static str {
        match self {
            ErrorType::Required => "Required value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::NotFound => "Not found",
        }
    }
}

/// One failed check on one field (upstream `field.Error`).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub kind: ErrorType,
    /// The field path as upstream prints it: `spec.containers[0].image`, `metadata.labels`.
    pub field: String,
    /// The bad value; `None` when upstream omits it from the message. Where upstream prints a Go
    /// struct (`%#v`), the value is `{"$go": "<the Go literal>"}` and is printed as is.
    pub value: Option<Value>,
    pub detail: String,
}

impl FieldError {
    fn new(kind: ErrorType, field: &str, value: Option<Value>, detail: impl Into<String>) -> Self {
        FieldError {
            kind,
            field: field.to_string(),
            value,
            detail: detail.into(),
        }
    }

    /// `field.Required`.
    pub fn required(field: &str, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, field, None, detail)
    }

    /// `field.Invalid`.
    pub fn invalid(field: &str, value: impl Into<Value>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, field, Some(value.into()), detail)
    }

    /// `field.NotSupported`: the detail lists the supported values quoted.
    pub fn not_supported(field: &str, value: impl Into<Value>, supported: &[&str]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(ErrorType::NotSupported, field, Some(value.into()), detail)
    }

    /// `field.Duplicate`.
    pub fn duplicate(field: &str, value: impl Into<Value>) -> Self {
        Self::new(ErrorType::Duplicate, field, Some(value.into()), "")
    }

    /// `field.Forbidden`.
    pub fn forbidden(field: &str, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Forbidden, field, None, detail)
    }

    /// `field.TooLong` with a byte limit.
    pub fn too_long(field: &str, max_bytes: usize) -> Self {
        let unit = if max_bytes == 1 { "byte" } else { "bytes" };
        Self::new(
            ErrorType::TooLong,
            field,
            None,
            format!("may not be more than {max_bytes} {unit}"),
        )
    }

    /// `field.TooMany`.
    pub fn too_many(field: &str, actual: usize, max: usize) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        Self::new(
            ErrorType::TooMany,
            field,
            Some(Value::from(actual)),
            format!("must have at most {max} {unit}"),
        )
    }

    /// `field.NotFound`.
    pub fn not_found(field: &str, value: impl Into<Value>) -> Self {
        Self::new(ErrorType::NotFound, field, Some(value.into()), "")
    }

    /// The `reason` of the StatusCause upstream reports for this error.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::NotFound => "FieldValueNotFound",
        }
    }

    /// The message without the field, as upstream's `ErrorBody()`.
    pub fn message(&self) -> String {
        let mut s = match (&self.kind, &self.value) {
            (ErrorType::Required | ErrorType::Forbidden | ErrorType::TooLong, _) | (_, None) => {
                self.kind.words().to_string()
            }
            (_, Some(v)) => format!("{}: {}", self.kind.words(), go_value(v)),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

/// Prints a bad value as upstream's `ErrorBody` does: strings quoted, numbers and bools plain,
/// lists of strings as Go prints a `[]string`.
fn go_value(v: &Value) -> String {
    if let Some(literal) = v
        .as_object()
        .filter(|m| m.len() == 1)
        .and_then(|m| m.get("$go"))
        .and_then(Value::as_str)
    {
        return literal.to_string();
    }
    match v {
        Value::String(s) => go_quote(s),
        Value::Null => "null".to_string(),
        Value::Bool(_) | Value::Number(_) => v.to_string(),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let quoted: Vec<String> = items
                .iter()
                .filter_map(Value::as_str)
                .map(go_quote)
                .collect();
            format!("[]string{{{}}}", quoted.join(", "))
        }
        other => other.to_string(),
    }
}

/// A string quoted as Go's `%q` / `strconv.Quote` does.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() || (c.is_whitespace() && c != ' ') => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------------
// Name and label syntax (apimachinery `util/validation`)
// ---------------------------------------------------------------------------------------------

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";

/// Upstream `RegexError`: the message, examples and the regex.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let quoted: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{fmt}')",
        quoted.join(" or ")
    )
}

/// Upstream `MaxLenError`.
fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

const EMPTY_ERROR: &str = "must be non-empty";

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn matches_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            is_alnum(f)
                && is_alnum(l)
                && b.iter()
                    .all(|&c| is_alnum(c) || c == b'-' || c == b'_' || c == b'.')
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let lower_alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            lower_alnum(f) && lower_alnum(l) && b.iter().all(|&c| lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

/// Upstream `IsQualifiedName`: an optional DNS subdomain prefix and `/`, and a name part.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {EMPTY_ERROR}"));
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {EMPTY_ERROR}"));
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !matches_qualified_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Upstream `IsValidLabelValue`.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !value.is_empty() && !matches_qualified_name(value) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            &format!("({QUALIFIED_NAME_FMT})?"),
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Upstream `IsDNS1123Label`.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !matches_dns1123_label(value) {
        errs.push(regex_error(
            DNS1123_LABEL_MSG,
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

/// Upstream `IsDNS1123Subdomain`.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !value.split('.').all(matches_dns1123_label) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            &format!("{DNS1123_LABEL_FMT}(\\.{DNS1123_LABEL_FMT})*"),
            &["example.com"],
        ));
    }
    errs
}

/// Upstream `IsDNS1035Label`.
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    let starts_alpha = value
        .as_bytes()
        .first()
        .is_some_and(|c| c.is_ascii_lowercase());
    if !(starts_alpha && matches_dns1123_label(value)) {
        errs.push(regex_error(
            DNS1035_LABEL_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Upstream `IsValidPathSegmentName`: names that are safe as one URL path segment.
pub fn is_valid_path_segment_name(value: &str) -> Vec<String> {
    if value == "." || value == ".." {
        return vec![format!("may not be '{value}'")];
    }
    path_segment_prefix(value)
}

/// Upstream `IsValidPathSegmentPrefix`.
fn path_segment_prefix(value: &str) -> Vec<String> {
    ["/", "%"]
        .iter()
        .filter(|bad| value.contains(**bad))
        .map(|bad| format!("may not contain '{bad}'"))
        .collect()
}

/// Upstream `IsValidPortNum`.
fn is_valid_port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![inclusive_range_error(1, 65535)]
    }
}

/// Upstream `IsValidPortName` (an IANA service name).
fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_error(15));
    }
    let charset = !port.is_empty()
        && port
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    if !charset {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    } else if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    } else if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

/// Upstream `IsConfigMapKey` (also used for Secret keys).
fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_error(253));
    }
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'));
    if !ok {
        errs.push(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            "[-._a-zA-Z0-9]+",
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if value == "." {
        errs.push("must not be '.'".into());
    } else if value == ".." {
        errs.push("must not be '..'".into());
    } else if value.starts_with("..") {
        errs.push("must not start with '..'".into());
    }
    errs
}

/// Upstream `IsValidPercent`.
fn is_valid_percent(value: &str) -> Vec<String> {
    let ok = value
        .strip_suffix('%')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()));
    if ok {
        Vec::new()
    } else {
        vec![regex_error(
            "a valid percent string must be a numeric string followed by an ending '%'",
            "[0-9]+%",
            &["1%", "93%"],
        )]
    }
}

/// Upstream `InclusiveRangeError`.
fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

const IMMUTABLE: &str = "field is immutable";
const NEGATIVE: &str = "must be greater than or equal to 0";

// ---------------------------------------------------------------------------------------------
// Go value literals for messages that print structs
// ---------------------------------------------------------------------------------------------

fn go_literal(s: String) -> Value {
    json!({ "$go": s })
}

/// `map[string]string{"a":"b"}` (keys sorted, as Go prints maps) or `map[string]string(nil)`.
fn go_string_map(v: Option<&Value>) -> String {
    match v.and_then(Value::as_object) {
        None => "map[string]string(nil)".to_string(),
        Some(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| {
                    let val = m.get(*k).and_then(Value::as_str).unwrap_or("");
                    format!("{}:{}", go_quote(k), go_quote(val))
                })
                .collect();
            format!("map[string]string{{{}}}", parts.join(", "))
        }
    }
}

fn go_string_slice(v: Option<&Value>) -> String {
    match v.and_then(Value::as_array) {
        None => "[]string(nil)".to_string(),
        Some(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| go_quote(i.as_str().unwrap_or("")))
                .collect();
            format!("[]string{{{}}}", parts.join(", "))
        }
    }
}

/// A `metav1.LabelSelector` as Go's `%#v` prints it.
fn go_label_selector(sel: &Value) -> Value {
    let exprs = match sel.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|e| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_quote(text(e, "key")),
                        go_quote(text(e, "operator")),
                        go_string_slice(e.get("values"))
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", parts.join(", "))
        }
    };
    go_literal(format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}",
        go_string_map(sel.get("matchLabels")),
        exprs
    ))
}

/// An `intstr.IntOrString` as Go's `%#v` prints it.
fn go_int_or_string(v: &Value) -> Value {
    match v {
        Value::String(s) => go_literal(format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            go_quote(s)
        )),
        other => go_literal(format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            other.as_i64().unwrap_or(0)
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON access
// ---------------------------------------------------------------------------------------------

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

fn present(v: &Value, key: &str) -> bool {
    v.get(key).is_some_and(|x| !x.is_null())
}

fn map_len(v: &Value, key: &str) -> usize {
    v.get(key).and_then(Value::as_object).map_or(0, Map::len)
}

static NULL: Value = Value::Null;

fn get<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or(&NULL)
}

/// Semantic equality as upstream's `apiequality.Semantic.DeepEqual` on JSON: null, empty lists
/// and empty maps equal absence.
fn semantic_eq(a: &Value, b: &Value) -> bool {
    normalize(a) == normalize(b)
}

fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), normalize(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

fn nonnegative(errs: &mut Vec<FieldError>, v: &Value, key: &str, path: &str) {
    if let Some(n) = int(v, key).filter(|n| *n < 0) {
        errs.push(FieldError::invalid(&format!("{path}.{key}"), n, NEGATIVE));
    }
}

fn immutable(errs: &mut Vec<FieldError>, new: &Value, old: &Value, path: &str) {
    if !semantic_eq(new, old) {
        errs.push(FieldError::invalid(path, new.clone(), IMMUTABLE));
    }
}

// ---------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------

/// How a kind's object names are checked.
#[derive(Clone, Copy)]
enum NameRule {
    Subdomain,
    Label,
    Dns1035,
    PathSegment,
}

impl NameRule {
    fn of(res: &Resource) -> Self {
        match (res.group, res.kind) {
            ("", "Namespace") => NameRule::Label,
            ("", "Service") => NameRule::Dns1035,
            ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
            _ => NameRule::Subdomain,
        }
    }

    /// Upstream's `ValidateNameFunc`: `prefix` is true for generateName (a trailing dash is fine).
    fn check(self, name: &str, prefix: bool) -> Vec<String> {
        let masked;
        let name = if prefix && name.len() > 1 && name.ends_with('-') {
            masked = format!("{}a", &name[..name.len() - 1]);
            masked.as_str()
        } else {
            name
        };
        match self {
            NameRule::Subdomain => is_dns1123_subdomain(name),
            NameRule::Label => is_dns1123_label(name),
            NameRule::Dns1035 => is_dns1035_label(name),
            NameRule::PathSegment if prefix => path_segment_prefix(name),
            NameRule::PathSegment => is_valid_path_segment_name(name),
        }
    }
}

/// All errors for creating `obj` (`old` is `None`) or updating `old` to `obj`, as upstream's
/// strategy `Validate` / `ValidateUpdate`. The object is already defaulted (and, for Jobs, has
/// its generated selector: see `defaults::job_selector`). Kinds without rules of their own get
/// the metadata checks only.
pub fn validate(res: &Resource, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let meta = get(obj, "metadata");
    match old {
        None => object_meta(&mut errs, meta, res.namespaced, NameRule::of(res)),
        Some(old) => object_meta_update(&mut errs, meta, get(old, "metadata")),
    }
    let spec = get(obj, "spec");
    let old_spec = old.map(|o| get(o, "spec"));
    match (res.group, res.kind) {
        ("", "Pod") => {
            pod_spec(&mut errs, spec, "spec", &[]);
            match old {
                None => {
                    if !list(spec, "ephemeralContainers").is_empty() {
                        errs.push(FieldError::forbidden(
                            "spec.ephemeralContainers",
                            "cannot be set on create",
                        ));
                    }
                }
                Some(old) => pod_update(&mut errs, spec, get(old, "spec")),
            }
        }
        ("", "PodTemplate") => pod_template(&mut errs, get(obj, "template"), "template"),
        ("", "ReplicationController") => replication_controller(&mut errs, spec),
        ("apps", "Deployment") => {
            deployment(&mut errs, spec);
            selector_immutable(&mut errs, spec, old_spec);
        }
        ("apps", "ReplicaSet") => {
            replica_set(&mut errs, spec);
            selector_immutable(&mut errs, spec, old_spec);
        }
        ("apps", "StatefulSet") => {
            stateful_set(&mut errs, spec);
            if let Some(old_spec) = old_spec {
                stateful_set_update(&mut errs, spec, old_spec);
            }
        }
        ("apps", "DaemonSet") => {
            daemon_set(&mut errs, spec);
            selector_immutable(&mut errs, spec, old_spec);
        }
        ("batch", "Job") => {
            job(&mut errs, obj);
            if let Some(old_spec) = old_spec {
                job_update(&mut errs, spec, old_spec);
            }
        }
        ("batch", "CronJob") => cron_job(&mut errs, obj, old_spec),
        ("", "Service") => {
            if let Some(old) = old {
                service_update(&mut errs, obj, old);
            }
            service(&mut errs, obj);
        }
        ("", "ConfigMap") => config_map(&mut errs, obj, old),
        ("", "Secret") => secret(&mut errs, obj, old),
        ("", "Namespace") => {
            for f in list(spec, "finalizers") {
                kube_finalizer_name(&mut errs, f.as_str().unwrap_or(""), "spec.finalizers");
            }
        }
        ("", "Node") => node(&mut errs, spec, old_spec),
        ("rbac.authorization.k8s.io", "Role") => rules(&mut errs, obj, true),
        ("rbac.authorization.k8s.io", "ClusterRole") => cluster_role(&mut errs, obj),
        ("rbac.authorization.k8s.io", kind @ ("RoleBinding" | "ClusterRoleBinding")) => {
            role_binding(&mut errs, obj, kind == "RoleBinding");
            if let Some(old) = old
                && !semantic_eq(get(obj, "roleRef"), get(old, "roleRef"))
            {
                let r = get(obj, "roleRef");
                errs.push(FieldError::invalid(
                    "roleRef",
                    go_literal(format!(
                        "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
                        go_quote(text(r, "apiGroup")),
                        go_quote(text(r, "kind")),
                        go_quote(text(r, "name"))
                    )),
                    "cannot change roleRef",
                ));
            }
        }
        _ => {}
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------------------------

fn object_meta(errs: &mut Vec<FieldError>, meta: &Value, namespaced: bool, rule: NameRule) {
    let generate_name = text(meta, "generateName");
    if !generate_name.is_empty() {
        for msg in rule.check(generate_name, true) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                generate_name,
                msg,
            ));
        }
    }
    let name = text(meta, "name");
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for msg in rule.check(name, false) {
            errs.push(FieldError::invalid("metadata.name", name, msg));
        }
    }
    let namespace = text(meta, "namespace");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for msg in is_dns1123_label(namespace) {
                errs.push(FieldError::invalid("metadata.namespace", namespace, msg));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    nonnegative(errs, meta, "generation", "metadata");
    meta_common(errs, meta);
    let finalizers = list(meta, "finalizers");
    for f in finalizers {
        let f = f.as_str().unwrap_or("");
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid("metadata.finalizers", f, msg));
        }
    }
    let has = |name: &str| finalizers.iter().any(|f| f == name);
    if has("orphan") && has("foregroundDeletion") {
        errs.push(FieldError::invalid(
            "metadata.finalizers",
            go_literal(go_string_slice(meta.get("finalizers"))),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
}

/// Labels, annotations and owner references: checked on create and update alike.
fn meta_common(errs: &mut Vec<FieldError>, meta: &Value) {
    labels(errs, meta.get("labels"), "metadata.labels");
    annotations(errs, meta.get("annotations"), "metadata.annotations");
    owner_references(errs, list(meta, "ownerReferences"));
}

/// Upstream `ValidateLabels`: every key a qualified name, every value a label value.
fn labels(errs: &mut Vec<FieldError>, labels: Option<&Value>, path: &str) {
    let Some(m) = labels.and_then(Value::as_object) else {
        return;
    };
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    for k in keys {
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
        let v = m.get(k).and_then(Value::as_str).unwrap_or("");
        for msg in is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v, msg));
        }
    }
}

/// Upstream `ValidateAnnotations`: keys are qualified names (case-insensitive), total size at
/// most 256 KiB.
fn annotations(errs: &mut Vec<FieldError>, annotations: Option<&Value>, path: &str) {
    let Some(m) = annotations.and_then(Value::as_object) else {
        return;
    };
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    let mut total = 0;
    for k in keys {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
        total += k.len() + m.get(k).and_then(Value::as_str).map_or(0, str::len);
    }
    if total > 256 * 1024 {
        errs.push(FieldError::too_long(path, 256 * 1024));
    }
}

fn owner_references(errs: &mut Vec<FieldError>, refs: &[Value]) {
    let path = "metadata.ownerReferences";
    let mut first_controller: Option<String> = None;
    for r in refs {
        let api_version = text(r, "apiVersion");
        let version = match api_version.split('/').collect::<Vec<_>>().as_slice() {
            [v] => *v,
            [_, v] => *v,
            _ => "",
        };
        if version.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{path}.apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        for key in ["kind", "name", "uid"] {
            if text(r, key).is_empty() {
                errs.push(FieldError::invalid(
                    &format!("{path}.{key}"),
                    "",
                    "must not be empty",
                ));
            }
        }
        if r.get("controller") == Some(&Value::Bool(true)) {
            let current = format!("{}/{}", text(r, "kind"), text(r, "name"));
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    go_literal("[]v1.OwnerReference{...}".to_string()),
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => first_controller = Some(current),
            }
        }
    }
}

/// Upstream `ValidateObjectMetaUpdate`: identity fields are immutable; the server fills in the
/// uid and creation time from the stored object when the request leaves them out.
fn object_meta_update(errs: &mut Vec<FieldError>, meta: &Value, old: &Value) {
    if present(old, "deletionTimestamp") {
        let old_finalizers = list(old, "finalizers");
        let extra: Vec<&str> = list(meta, "finalizers")
            .iter()
            .filter(|f| !old_finalizers.contains(f))
            .filter_map(Value::as_str)
            .collect();
        if !extra.is_empty() {
            let mut sorted = extra.clone();
            sorted.sort();
            let quoted: Vec<String> = sorted.iter().map(|f| go_quote(f)).collect();
            errs.push(FieldError::forbidden(
                "metadata.finalizers",
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    quoted.join(", ")
                ),
            ));
        }
    }
    for key in ["name", "namespace"] {
        let new = text(meta, key);
        if new != text(old, key) {
            errs.push(FieldError::invalid(
                &format!("metadata.{key}"),
                new,
                IMMUTABLE,
            ));
        }
    }
    for key in ["uid", "creationTimestamp"] {
        if let Some(new) = meta.get(key).filter(|v| !v.is_null())
            && Some(new) != old.get(key)
        {
            errs.push(FieldError::invalid(
                &format!("metadata.{key}"),
                new.clone(),
                IMMUTABLE,
            ));
        }
    }
    meta_common(errs, meta);
}

/// A namespace's `spec.finalizers` entry: a qualified name, and either standard or prefixed.
fn kube_finalizer_name(errs: &mut Vec<FieldError>, name: &str, path: &str) {
    for msg in is_qualified_name(name) {
        errs.push(FieldError::invalid(path, name, msg));
    }
    if !name.contains('/') && !["kubernetes", "orphan", "foregroundDeletion"].contains(&name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "name is neither a standard finalizer name nor is it fully qualified",
        ));
    }
}

/// Upstream `ValidateLabelSelector` (strict values).
fn label_selector(errs: &mut Vec<FieldError>, sel: &Value, path: &str) {
    labels(errs, sel.get("matchLabels"), &format!("{path}.matchLabels"));
    for (i, expr) in list(sel, "matchExpressions").iter().enumerate() {
        let p = format!("{path}.matchExpressions[{i}]");
        let values = list(expr, "values");
        match text(expr, "operator") {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                &format!("{p}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
                &format!("{p}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errs.push(FieldError::invalid(
                &format!("{p}.operator"),
                other,
                "not a valid selector operator",
            )),
        }
        let key = text(expr, "key");
        for msg in is_qualified_name(key) {
            errs.push(FieldError::invalid(&format!("{p}.key"), key, msg));
        }
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            for msg in is_valid_label_value(v) {
                errs.push(FieldError::invalid(&format!("{p}.values[{j}]"), v, msg));
            }
        }
    }
}

/// A selector object as upstream's `LabelSelectorAsSelector`: `None` when it does not convert.
/// A missing selector selects nothing.
fn as_selector(sel: &Value) -> Option<Option<LabelSelector>> {
    if sel.is_null() {
        return Some(None);
    }
    let typed: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
        serde_json::from_value(sel.clone()).ok()?;
    LabelSelector::from_meta(&typed).ok().map(Some)
}

// ---------------------------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------------------------

const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
];

/// Upstream `ValidatePodSpec` (the checks users hit most). `extra_volumes` are names that
/// volume mounts may refer to besides `spec.volumes` (a StatefulSet's claim templates).
fn pod_spec(errs: &mut Vec<FieldError>, spec: &Value, path: &str, extra_volumes: &[String]) {
    let mut volumes: Vec<String> = extra_volumes.to_vec();
    volumes.extend(pod_volumes(
        errs,
        list(spec, "volumes"),
        &format!("{path}.volumes"),
    ));
    let containers = list(spec, "containers");
    let cpath = format!("{path}.containers");
    if containers.is_empty() {
        errs.push(FieldError::required(&cpath, ""));
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let p = format!("{cpath}[{i}]");
        container(errs, c, &volumes, &p);
        let name = text(c, "name");
        if names.contains(&name) {
            errs.push(FieldError::duplicate(&format!("{p}.name"), name));
        } else {
            names.push(name);
        }
        if let Some(lifecycle) = c.get("lifecycle").filter(|l| l.is_object()) {
            for hook in ["postStart", "preStop"] {
                if let Some(h) = lifecycle.get(hook).filter(|h| !h.is_null()) {
                    handler(errs, h, &format!("{p}.lifecycle.{hook}"));
                }
            }
        }
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if let Some(pr) = c.get(probe).filter(|v| !v.is_null()) {
                probe_checks(errs, pr, probe, &format!("{p}.{probe}"));
            }
        }
    }
    let ipath = format!("{path}.initContainers");
    for (i, c) in list(spec, "initContainers").iter().enumerate() {
        let p = format!("{ipath}[{i}]");
        container(errs, c, &volumes, &p);
        let name = text(c, "name");
        if names.contains(&name) {
            errs.push(FieldError::duplicate(&format!("{p}.name"), name));
        } else {
            names.push(name);
        }
    }
    enum_field(
        errs,
        text(spec, "restartPolicy"),
        &format!("{path}.restartPolicy"),
        &["Always", "OnFailure", "Never"],
    );
    enum_field(
        errs,
        text(spec, "dnsPolicy"),
        &format!("{path}.dnsPolicy"),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    );
    labels(
        errs,
        spec.get("nodeSelector"),
        &format!("{path}.nodeSelector"),
    );
    for key in ["serviceAccountName", "nodeName"] {
        let v = text(spec, key);
        if !v.is_empty() {
            for msg in is_dns1123_subdomain(v) {
                errs.push(FieldError::invalid(&format!("{path}.{key}"), v, msg));
            }
        }
    }
    if let Some(n) = int(spec, "activeDeadlineSeconds")
        && !(1..=i64::from(i32::MAX)).contains(&n)
    {
        errs.push(FieldError::invalid(
            &format!("{path}.activeDeadlineSeconds"),
            n,
            inclusive_range_error(1, i64::from(i32::MAX)),
        ));
    }
    for key in ["hostname", "subdomain"] {
        let v = text(spec, key);
        if !v.is_empty() {
            for msg in is_dns1123_label(v) {
                errs.push(FieldError::invalid(&format!("{path}.{key}"), v, msg));
            }
        }
    }
    tolerations(
        errs,
        list(spec, "tolerations"),
        &format!("{path}.tolerations"),
    );
    let class = text(spec, "priorityClassName");
    if !class.is_empty() {
        for msg in is_dns1123_subdomain(class) {
            errs.push(FieldError::invalid(
                &format!("{path}.priorityClassName"),
                class,
                msg,
            ));
        }
    }
}

/// A string enum: `""` is Required, anything else not listed is NotSupported.
fn enum_field(errs: &mut Vec<FieldError>, value: &str, path: &str, supported: &[&str]) {
    if value.is_empty() {
        errs.push(FieldError::required(path, ""));
    } else if !supported.contains(&value) {
        errs.push(FieldError::not_supported(path, value, supported));
    }
}

/// Upstream `ValidateVolumes`: returns the names of the valid volumes.
fn pod_volumes(errs: &mut Vec<FieldError>, volumes: &[Value], path: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (i, v) in volumes.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let mut el = Vec::new();
        let mut sources = 0;
        for source in VOLUME_SOURCES {
            let Some(s) = v.get(*source).filter(|s| !s.is_null()) else {
                continue;
            };
            if sources > 0 {
                el.push(FieldError::forbidden(
                    &format!("{p}.{source}"),
                    "may not specify more than 1 volume type",
                ));
                continue;
            }
            sources += 1;
            let required = match *source {
                "secret" => Some("secretName"),
                "configMap" => Some("name"),
                "persistentVolumeClaim" => Some("claimName"),
                "hostPath" => Some("path"),
                _ => None,
            };
            if let Some(key) = required.filter(|k| text(s, k).is_empty()) {
                el.push(FieldError::required(&format!("{p}.{source}.{key}"), ""));
            }
        }
        if sources == 0 {
            el.push(FieldError::required(&p, "must specify a volume type"));
        }
        let name = text(v, "name");
        if name.is_empty() {
            el.push(FieldError::required(&format!("{p}.name"), ""));
        } else {
            for msg in is_dns1123_label(name) {
                el.push(FieldError::invalid(&format!("{p}.name"), name, msg));
            }
        }
        if names.iter().any(|n| n == name) {
            el.push(FieldError::duplicate(&format!("{p}.name"), name));
        }
        if el.is_empty() {
            names.push(name.to_string());
        } else {
            errs.extend(el);
        }
    }
    names
}

/// Upstream `validateContainerCommon`.
fn container(errs: &mut Vec<FieldError>, c: &Value, volumes: &[String], path: &str) {
    let name = text(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(&format!("{path}.name"), ""));
    } else {
        for msg in is_dns1123_label(name) {
            errs.push(FieldError::invalid(&format!("{path}.name"), name, msg));
        }
    }
    if text(c, "image").is_empty() {
        errs.push(FieldError::required(&format!("{path}.image"), ""));
    }
    enum_field(
        errs,
        text(c, "terminationMessagePolicy"),
        &format!("{path}.terminationMessagePolicy"),
        &["File", "FallbackToLogsOnError"],
    );
    container_ports(errs, list(c, "ports"), &format!("{path}.ports"));
    for (i, e) in list(c, "env").iter().enumerate() {
        let name = text(e, "name");
        let p = format!("{path}.env[{i}].name");
        if name.is_empty() {
            errs.push(FieldError::required(&p, ""));
        } else if name
            .chars()
            .any(|ch| !(' '..='~').contains(&ch) || ch == '=')
        {
            errs.push(FieldError::invalid(
                &p,
                name,
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
    }
    let mut mount_paths: Vec<&str> = Vec::new();
    for (i, m) in list(c, "volumeMounts").iter().enumerate() {
        let p = format!("{path}.volumeMounts[{i}]");
        let name = text(m, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&format!("{p}.name"), ""));
        }
        if !volumes.iter().any(|v| v == name) {
            errs.push(FieldError::not_found(&format!("{p}.name"), name));
        }
        let mount_path = text(m, "mountPath");
        if mount_path.is_empty() {
            errs.push(FieldError::required(&format!("{p}.mountPath"), ""));
        }
        if mount_paths.contains(&mount_path) {
            errs.push(FieldError::invalid(
                &format!("{p}.mountPath"),
                mount_path,
                "must be unique",
            ));
        }
        mount_paths.push(mount_path);
    }
    enum_field(
        errs,
        text(c, "imagePullPolicy"),
        &format!("{path}.imagePullPolicy"),
        &["Always", "IfNotPresent", "Never"],
    );
    resources(errs, get(c, "resources"), &format!("{path}.resources"));
}

/// Upstream `ValidateResourceRequirements`: quantities not negative, requests at most the
/// limits (equal to them for resources that cannot be overcommitted).
fn resources(errs: &mut Vec<FieldError>, r: &Value, path: &str) {
    let limits = get(r, "limits");
    for (kind, list_path) in [
        ("limits", format!("{path}.limits")),
        ("requests", format!("{path}.requests")),
    ] {
        for name in sorted_keys(r, kind) {
            let quantity = get(get(r, kind), &name).as_str().unwrap_or("");
            if parse_quantity(quantity).is_some_and(|q| q < 0.0) {
                errs.push(FieldError::invalid(
                    &format!("{list_path}[{name}]"),
                    quantity,
                    NEGATIVE,
                ));
            }
            if kind != "requests" {
                continue;
            }
            let overcommit = (!name.contains('/') || name.starts_with("kubernetes.io/"))
                && !name.starts_with("hugepages-");
            match limits.get(&name).and_then(Value::as_str) {
                Some(limit) => {
                    let (Some(req), Some(lim)) = (parse_quantity(quantity), parse_quantity(limit))
                    else {
                        continue;
                    };
                    if !overcommit && req != lim {
                        errs.push(FieldError::invalid(
                            &list_path,
                            quantity,
                            format!("must be equal to {name} limit of {limit}"),
                        ));
                    } else if req > lim {
                        errs.push(FieldError::invalid(
                            &list_path,
                            quantity,
                            format!("must be less than or equal to {name} limit of {limit}"),
                        ));
                    }
                }
                None if !overcommit => errs.push(FieldError::required(
                    &format!("{path}.limits"),
                    "Limit must be set for non overcommitable resources",
                )),
                None => {}
            }
        }
    }
}

/// A resource quantity's value (`500m` → 0.5, `1Gi` → 2^30, `1e3` → 1000); `None` when it is
/// not a quantity.
pub fn parse_quantity(q: &str) -> Option<f64> {
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let sign_free = number.strip_prefix(['+', '-']).unwrap_or(number);
    if sign_free.is_empty() || sign_free.contains(['+', '-']) {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp => {
            let e: i32 = exp.strip_prefix(['e', 'E'])?.parse().ok()?;
            10f64.powi(e)
        }
    };
    Some(value * factor)
}

/// Upstream `validateContainerPorts`.
fn container_ports(errs: &mut Vec<FieldError>, ports: &[Value], path: &str) {
    let mut names: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let name = text(port, "name");
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for msg in msgs {
                    errs.push(FieldError::invalid(&format!("{p}.name"), name, msg));
                }
            } else if names.contains(&name) {
                errs.push(FieldError::duplicate(&format!("{p}.name"), name));
            } else {
                names.push(name);
            }
        }
        match int(port, "containerPort").unwrap_or(0) {
            0 => errs.push(FieldError::required(&format!("{p}.containerPort"), "")),
            n => {
                for msg in is_valid_port_num(n) {
                    errs.push(FieldError::invalid(&format!("{p}.containerPort"), n, msg));
                }
            }
        }
        if let Some(n) = int(port, "hostPort").filter(|n| *n != 0) {
            for msg in is_valid_port_num(n) {
                errs.push(FieldError::invalid(&format!("{p}.hostPort"), n, msg));
            }
        }
        enum_field(
            errs,
            text(port, "protocol"),
            &format!("{p}.protocol"),
            &["SCTP", "TCP", "UDP"],
        );
    }
}

/// Upstream `validateProbe` plus the per-probe rules.
fn probe_checks(errs: &mut Vec<FieldError>, probe: &Value, kind: &str, path: &str) {
    handler(errs, probe, path);
    for key in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        nonnegative(errs, probe, key, path);
    }
    if let Some(n) = int(probe, "terminationGracePeriodSeconds") {
        if kind == "readinessProbe" {
            errs.push(FieldError::invalid(
                &format!("{path}.terminationGracePeriodSeconds"),
                n,
                "must not be set for readinessProbes",
            ));
        } else if n <= 0 {
            errs.push(FieldError::invalid(
                &format!("{path}.terminationGracePeriodSeconds"),
                n,
                "must be greater than 0",
            ));
        }
    }
    if kind != "readinessProbe"
        && let Some(n) = int(probe, "successThreshold").filter(|n| *n != 1)
    {
        errs.push(FieldError::invalid(
            &format!("{path}.successThreshold"),
            n,
            "must be 1",
        ));
    }
}

/// Upstream `validateHandler`: exactly one handler type.
fn handler(errs: &mut Vec<FieldError>, h: &Value, path: &str) {
    let mut count = 0;
    for kind in ["exec", "httpGet", "tcpSocket", "grpc", "sleep"] {
        let Some(action) = h.get(kind).filter(|v| !v.is_null()) else {
            continue;
        };
        let p = format!("{path}.{kind}");
        if count > 0 {
            errs.push(FieldError::forbidden(
                &p,
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        count += 1;
        match kind {
            "exec" if list(action, "command").is_empty() => {
                errs.push(FieldError::required(&format!("{p}.command"), ""));
            }
            "httpGet" => {
                if text(action, "path").is_empty() {
                    errs.push(FieldError::required(&format!("{p}.path"), ""));
                }
                port_num_or_name(errs, get(action, "port"), &format!("{p}.port"));
                let scheme = text(action, "scheme");
                if !["HTTP", "HTTPS"].contains(&scheme) {
                    errs.push(FieldError::not_supported(
                        &format!("{p}.scheme"),
                        scheme,
                        &["HTTP", "HTTPS"],
                    ));
                }
            }
            "tcpSocket" => port_num_or_name(errs, get(action, "port"), &format!("{p}.port")),
            "grpc" => {
                let n = int(action, "port").unwrap_or(0);
                for msg in is_valid_port_num(n) {
                    errs.push(FieldError::invalid(&format!("{p}.port"), n, msg));
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
}

/// Upstream `ValidatePortNumOrName`.
fn port_num_or_name(errs: &mut Vec<FieldError>, port: &Value, path: &str) {
    match port {
        Value::String(name) => {
            for msg in is_valid_port_name(name) {
                errs.push(FieldError::invalid(path, name.as_str(), msg));
            }
        }
        other => {
            let n = other.as_i64().unwrap_or(0);
            for msg in is_valid_port_num(n) {
                errs.push(FieldError::invalid(path, n, msg));
            }
        }
    }
}

/// Upstream `ValidateTolerations`.
fn tolerations(errs: &mut Vec<FieldError>, tolerations: &[Value], path: &str) {
    for (i, t) in tolerations.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let key = text(t, "key");
        let operator = text(t, "operator");
        let effect = text(t, "effect");
        if !key.is_empty() {
            for msg in is_qualified_name(key) {
                errs.push(FieldError::invalid(&format!("{p}.key"), key, msg));
            }
        }
        if key.is_empty() && operator != "Exists" {
            errs.push(FieldError::invalid(
                &format!("{p}.operator"),
                operator,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if present(t, "tolerationSeconds") && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &format!("{p}.effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match operator {
            "Equal" | "" => {
                let value = text(t, "value");
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        &format!("{p}.operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !text(t, "value").is_empty() {
                    errs.push(FieldError::invalid(
                        &format!("{p}.operator"),
                        go_literal(format!(
                            "core.Toleration{{Key:{}, Operator:\"Exists\", Value:{}, Effect:{}, TolerationSeconds:(*int64)(nil)}}",
                            go_quote(key),
                            go_quote(text(t, "value")),
                            go_quote(effect)
                        )),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                &format!("{p}.operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() {
            taint_effect(errs, effect, &format!("{p}.effect"));
        }
    }
}

fn taint_effect(errs: &mut Vec<FieldError>, effect: &str, path: &str) {
    let supported = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
    if !supported.contains(&effect) {
        errs.push(FieldError::not_supported(path, effect, &supported));
    }
}

const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Upstream `ValidatePodUpdate`: only images, activeDeadlineSeconds (down), tolerations
/// (additions) and a few more may change.
fn pod_update(errs: &mut Vec<FieldError>, spec: &Value, old: &Value) {
    for key in ["containers", "initContainers"] {
        let new_list = list(spec, key);
        if new_list.len() != list(old, key).len() {
            errs.push(FieldError::forbidden(
                &format!("spec.{key}"),
                "pod updates may not add or remove containers",
            ));
            return;
        }
        for (i, c) in new_list.iter().enumerate() {
            let image = text(c, "image");
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    &format!("spec.{key}[{i}].image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    match (
        int(spec, "activeDeadlineSeconds"),
        int(old, "activeDeadlineSeconds"),
    ) {
        (Some(new), _) if !(0..=i64::from(i32::MAX)).contains(&new) => {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                new,
                inclusive_range_error(0, i64::from(i32::MAX)),
            ));
            return;
        }
        (Some(new), Some(old)) if old < new => {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                new,
                "must be less than or equal to previous value",
            ));
            return;
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    let new_tolerations = list(spec, "tolerations");
    for t in list(old, "tolerations") {
        let found = new_tolerations.iter().any(|n| {
            let mut a = t.clone();
            let mut b = n.clone();
            if let (Some(a), Some(b)) = (a.as_object_mut(), b.as_object_mut()) {
                a.remove("tolerationSeconds");
                b.remove("tolerationSeconds");
            }
            semantic_eq(&a, &b)
        });
        if !found {
            errs.push(FieldError::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    if semantic_eq(spec, old) {
        return;
    }
    let mut munged = spec.clone();
    if let Some(m) = munged.as_object_mut() {
        for key in ["containers", "initContainers"] {
            if let Some(Value::Array(cs)) = m.get_mut(key) {
                for (c, o) in cs.iter_mut().zip(list(old, key)) {
                    if let Some(c) = c.as_object_mut() {
                        c.insert("image".into(), get(o, "image").clone());
                    }
                }
            }
        }
        for key in ["activeDeadlineSeconds", "tolerations", "schedulingGates"] {
            m.insert(key.into(), get(old, key).clone());
        }
        let old_grace = int(old, "terminationGracePeriodSeconds");
        if old_grace.is_some_and(|g| g < 0) && int(spec, "terminationGracePeriodSeconds") == Some(1)
        {
            m.insert(
                "terminationGracePeriodSeconds".into(),
                get(old, "terminationGracePeriodSeconds").clone(),
            );
        }
    }
    if !semantic_eq(&munged, old) {
        let changed = changed_fields(old, &munged);
        errs.push(FieldError::forbidden(
            "spec",
            format!("{POD_UPDATE_FORBIDDEN}\n{}", changed.join("\n")),
        ));
    }
}

/// A short account of what differs between two pod specs (upstream prints a `cmp.Diff`).
fn changed_fields(old: &Value, new: &Value) -> Vec<String> {
    let (old, new) = (normalize(old), normalize(new));
    let mut keys: Vec<&String> = old
        .as_object()
        .into_iter()
        .chain(new.as_object())
        .flat_map(Map::keys)
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| old.get(k.as_str()) != new.get(k.as_str()))
        .map(|k| {
            format!(
                "  spec.{k}: {} -> {}",
                old.get(k.as_str()).unwrap_or(&NULL),
                new.get(k.as_str()).unwrap_or(&NULL)
            )
        })
        .collect()
}

/// Upstream `ValidatePodTemplateSpec`.
fn pod_template(errs: &mut Vec<FieldError>, template: &Value, path: &str) {
    let meta = get(template, "metadata");
    labels(errs, meta.get("labels"), &format!("{path}.labels"));
    annotations(
        errs,
        meta.get("annotations"),
        &format!("{path}.annotations"),
    );
    let spec = get(template, "spec");
    pod_spec(errs, spec, &format!("{path}.spec"), &[]);
    if !list(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            &format!("{path}.spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------------------------

const SELECTOR_MISMATCH: &str = "`selector` does not match template `labels`";

/// The selector checks shared by Deployments and ReplicaSets: required, valid, non-empty, and
/// matching the template's labels. Returns whether the template's labels were checked.
fn workload_selector(errs: &mut Vec<FieldError>, spec: &Value, kind: &str) {
    let sel = get(spec, "selector");
    if sel.is_null() {
        errs.push(FieldError::required("spec.selector", ""));
    } else {
        label_selector(errs, sel, "spec.selector");
        if map_len(sel, "matchLabels") + list(sel, "matchExpressions").len() == 0 {
            errs.push(FieldError::invalid(
                "spec.selector",
                go_label_selector(sel),
                format!("empty selector is invalid for {kind}"),
            ));
        }
    }
    match as_selector(sel) {
        None => errs.push(FieldError::invalid(
            "spec.selector",
            go_label_selector(sel),
            if kind == "statefulset" {
                ""
            } else {
                "invalid label selector"
            },
        )),
        Some(selector) => template_matches(errs, spec, selector.as_ref()),
    }
}

/// `spec.template.metadata.labels` must satisfy the selector (a missing one matches nothing, an
/// empty one is not checked).
fn template_matches(errs: &mut Vec<FieldError>, spec: &Value, selector: Option<&LabelSelector>) {
    let template_labels = get(spec, "template")
        .get("metadata")
        .and_then(|m| m.get("labels"));
    let matches = match selector {
        None => false,
        Some(s) if s.is_everything() => true,
        Some(s) => s.matches(template_labels.unwrap_or(&NULL)),
    };
    if !matches {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            go_literal(go_string_map(template_labels)),
            SELECTOR_MISMATCH,
        ));
    }
}

/// Upstream `ValidatePodTemplateSpecForReplicaSet` past the selector match: the pod template,
/// restartPolicy Always, no activeDeadlineSeconds.
fn replicated_template(errs: &mut Vec<FieldError>, spec: &Value, owner: &str) {
    let template = get(spec, "template");
    pod_template(errs, template, "spec.template");
    let tspec = get(template, "spec");
    let policy = text(tspec, "restartPolicy");
    if policy != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            policy,
            &["Always"],
        ));
    }
    if present(tspec, "activeDeadlineSeconds") {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            format!("activeDeadlineSeconds in {owner} is not Supported"),
        ));
    }
}

fn deployment(errs: &mut Vec<FieldError>, spec: &Value) {
    nonnegative(errs, spec, "replicas", "spec");
    workload_selector(errs, spec, "deployment");
    if as_selector(get(spec, "selector")).is_some() {
        replicated_template(errs, spec, "ReplicaSet");
    }
    let strategy = get(spec, "strategy");
    match text(strategy, "type") {
        "Recreate" => {
            if present(strategy, "rollingUpdate") {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match strategy.get("rollingUpdate").filter(|v| !v.is_null()) {
            None => errs.push(FieldError::required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let p = "spec.strategy.rollingUpdate";
                let unavailable = get(ru, "maxUnavailable");
                let surge = get(ru, "maxSurge");
                positive_int_or_percent(errs, unavailable, &format!("{p}.maxUnavailable"));
                positive_int_or_percent(errs, surge, &format!("{p}.maxSurge"));
                if int_or_percent(unavailable) == 0 && int_or_percent(surge) == 0 {
                    errs.push(FieldError::invalid(
                        &format!("{p}.maxUnavailable"),
                        go_int_or_string(unavailable),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                not_more_than_100_percent(errs, unavailable, &format!("{p}.maxUnavailable"));
            }
        },
        other => errs.push(FieldError::not_supported(
            "spec.strategy",
            go_literal(format!(
                "apps.DeploymentStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}}",
                go_quote(other)
            )),
            &["Recreate", "RollingUpdate"],
        )),
    }
    nonnegative(errs, spec, "minReadySeconds", "spec");
    nonnegative(errs, spec, "revisionHistoryLimit", "spec");
    if let Some(deadline) = int(spec, "progressDeadlineSeconds") {
        nonnegative(errs, spec, "progressDeadlineSeconds", "spec");
        if deadline <= int(spec, "minReadySeconds").unwrap_or(0) {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                deadline,
                "must be greater than minReadySeconds",
            ));
        }
    }
}

fn replica_set(errs: &mut Vec<FieldError>, spec: &Value) {
    nonnegative(errs, spec, "replicas", "spec");
    nonnegative(errs, spec, "minReadySeconds", "spec");
    // Upstream's ReplicaSet message names deployments too.
    workload_selector(errs, spec, "deployment");
    if as_selector(get(spec, "selector")).is_some() {
        replicated_template(errs, spec, "ReplicaSet");
    }
}

fn replication_controller(errs: &mut Vec<FieldError>, spec: &Value) {
    nonnegative(errs, spec, "minReadySeconds", "spec");
    let selector = get(spec, "selector");
    if map_len(spec, "selector") == 0 {
        errs.push(FieldError::required("spec.selector", ""));
    }
    nonnegative(errs, spec, "replicas", "spec");
    if !present(spec, "template") {
        errs.push(FieldError::required("spec.template", ""));
        return;
    }
    if map_len(spec, "selector") > 0 {
        let matches = selector.as_object().into_iter().flatten().all(|(k, v)| {
            get(spec, "template").pointer(&format!(
                "/metadata/labels/{}",
                k.replace('~', "~0").replace('/', "~1")
            )) == Some(v)
        });
        if !matches {
            let template_labels = spec.pointer("/template/metadata/labels");
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                go_literal(go_string_map(template_labels)),
                SELECTOR_MISMATCH,
            ));
        }
    }
    replicated_template(errs, spec, "ReplicationController");
}

/// apps/v1 selectors may not change.
fn selector_immutable(errs: &mut Vec<FieldError>, spec: &Value, old: Option<&Value>) {
    let Some(old) = old else {
        return;
    };
    let sel = get(spec, "selector");
    if !semantic_eq(sel, get(old, "selector")) {
        errs.push(FieldError::invalid(
            "spec.selector",
            go_label_selector(sel),
            IMMUTABLE,
        ));
    }
}

/// The value of an int-or-percent (`"25%"` → 25).
fn int_or_percent(v: &Value) -> i64 {
    match v {
        Value::String(s) => s
            .strip_suffix('%')
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        other => other.as_i64().unwrap_or(0),
    }
}

fn positive_int_or_percent(errs: &mut Vec<FieldError>, v: &Value, path: &str) {
    match v {
        Value::String(s) => {
            for msg in is_valid_percent(s) {
                errs.push(FieldError::invalid(path, go_int_or_string(v), msg));
            }
        }
        Value::Number(n) => {
            if let Some(n) = n.as_i64().filter(|n| *n < 0) {
                errs.push(FieldError::invalid(path, n, NEGATIVE));
            }
        }
        _ => {}
    }
}

fn not_more_than_100_percent(errs: &mut Vec<FieldError>, v: &Value, path: &str) {
    if v.is_string() && int_or_percent(v) > 100 {
        errs.push(FieldError::invalid(
            path,
            go_int_or_string(v),
            "must not be greater than 100%",
        ));
    }
}

fn stateful_set(errs: &mut Vec<FieldError>, spec: &Value) {
    match text(spec, "podManagementPolicy") {
        "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            "spec.podManagementPolicy",
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = get(spec, "updateStrategy");
    match text(strategy, "type") {
        "" => errs.push(FieldError::required("spec.updateStrategy", "")),
        "OnDelete" => {
            if present(strategy, "rollingUpdate") {
                errs.push(FieldError::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    go_literal("&apps.RollingUpdateStatefulSetStrategy{...}".to_string()),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            let ru = get(strategy, "rollingUpdate");
            nonnegative(errs, ru, "partition", "spec.updateStrategy.rollingUpdate");
            if let Some(mu) = ru.get("maxUnavailable").filter(|v| !v.is_null()) {
                let p = "spec.updateStrategy.rollingUpdate.maxUnavailable";
                positive_int_or_percent(errs, mu, p);
                if int_or_percent(mu) == 0 {
                    errs.push(FieldError::invalid(
                        p,
                        go_int_or_string(mu),
                        "must not be zero",
                    ));
                }
                not_more_than_100_percent(errs, mu, p);
            }
        }
        other => errs.push(FieldError::invalid(
            "spec.updateStrategy",
            go_literal(format!(
                "apps.StatefulSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}}",
                go_quote(other)
            )),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    let policy = get(spec, "persistentVolumeClaimRetentionPolicy");
    if !policy.is_null() {
        for key in ["whenDeleted", "whenScaled"] {
            let v = text(policy, key);
            if !["Retain", "Delete"].contains(&v) {
                errs.push(FieldError::not_supported(
                    &format!("spec.persistentVolumeClaimRetentionPolicy.{key}"),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    nonnegative(errs, spec, "replicas", "spec");
    nonnegative(errs, spec, "minReadySeconds", "spec");
    workload_selector(errs, spec, "statefulset");
    let template = get(spec, "template");
    let meta = get(template, "metadata");
    labels(errs, meta.get("labels"), "spec.template.labels");
    annotations(errs, meta.get("annotations"), "spec.template.annotations");
    let claims: Vec<String> = list(spec, "volumeClaimTemplates")
        .iter()
        .map(|c| text(get(c, "metadata"), "name").to_string())
        .collect();
    let tspec = get(template, "spec");
    pod_spec(errs, tspec, "spec.template.spec", &claims);
    let policy = text(tspec, "restartPolicy");
    if policy != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            policy,
            &["Always"],
        ));
    }
    if present(tspec, "activeDeadlineSeconds") {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
}

fn stateful_set_update(errs: &mut Vec<FieldError>, spec: &Value, old: &Value) {
    let mut clone = spec.clone();
    if let Some(m) = clone.as_object_mut() {
        for key in [
            "replicas",
            "template",
            "updateStrategy",
            "minReadySeconds",
            "ordinals",
            "revisionHistoryLimit",
            "persistentVolumeClaimRetentionPolicy",
        ] {
            m.insert(key.into(), get(old, key).clone());
        }
    }
    if !semantic_eq(&clone, old) {
        errs.push(FieldError::forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
}

fn daemon_set(errs: &mut Vec<FieldError>, spec: &Value) {
    let sel = get(spec, "selector");
    label_selector(errs, sel, "spec.selector");
    if let Some(selector) = as_selector(sel) {
        template_matches(errs, spec, selector.as_ref());
    }
    if !sel.is_null() && map_len(sel, "matchLabels") + list(sel, "matchExpressions").len() == 0 {
        errs.push(FieldError::invalid(
            "spec.selector",
            go_label_selector(sel),
            "empty selector is invalid for daemonset",
        ));
    }
    let template = get(spec, "template");
    pod_template(errs, template, "spec.template");
    let tspec = get(template, "spec");
    let policy = text(tspec, "restartPolicy");
    if policy != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            policy,
            &["Always"],
        ));
    }
    if let Some(n) = int(tspec, "activeDeadlineSeconds") {
        errs.push(FieldError::invalid(
            "spec.template.spec.activeDeadlineSeconds",
            n,
            "activeDeadlineSeconds must be nil for DaemonSets",
        ));
    }
    nonnegative(errs, spec, "minReadySeconds", "spec");
    let strategy = get(spec, "updateStrategy");
    match text(strategy, "type") {
        "OnDelete" => {}
        "RollingUpdate" => match strategy.get("rollingUpdate").filter(|v| !v.is_null()) {
            None => errs.push(FieldError::required(
                "spec.updateStrategy.rollingUpdate",
                "",
            )),
            Some(ru) => {
                let p = "spec.updateStrategy.rollingUpdate";
                let mut has = [false, false];
                for (i, key) in ["maxUnavailable", "maxSurge"].iter().enumerate() {
                    let v = get(ru, key);
                    if !v.is_null() && int_or_percent(v) != 0 {
                        has[i] = true;
                        positive_int_or_percent(errs, v, &format!("{p}.{key}"));
                        not_more_than_100_percent(errs, v, &format!("{p}.{key}"));
                    }
                }
                match has {
                    [true, true] => errs.push(FieldError::invalid(
                        &format!("{p}.maxSurge"),
                        go_int_or_string(get(ru, "maxSurge")),
                        "may not be set when maxUnavailable is non-zero",
                    )),
                    [false, false] => errs.push(FieldError::required(
                        &format!("{p}.maxUnavailable"),
                        "cannot be 0 when maxSurge is 0",
                    )),
                    _ => {}
                }
            }
        },
        other => errs.push(FieldError::not_supported(
            "spec.updateStrategy",
            go_literal(format!(
                "apps.DaemonSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}}",
                go_quote(other)
            )),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    nonnegative(errs, spec, "revisionHistoryLimit", "spec");
}

// ---------------------------------------------------------------------------------------------
// Jobs and CronJobs
// ---------------------------------------------------------------------------------------------

fn job(errs: &mut Vec<FieldError>, obj: &Value) {
    let meta = get(obj, "metadata");
    let spec = get(obj, "spec");
    let manual = spec.get("manualSelector") == Some(&Value::Bool(true));
    let template_meta = get(get(spec, "template"), "metadata");
    if !manual && present(template_meta, "labels") {
        if !present(spec, "selector") {
            errs.push(FieldError::required("spec.selector", ""));
        } else {
            let uid = text(meta, "uid");
            if uid.is_empty() {
                errs.push(FieldError::required("metadata.uid", ""));
            }
            let name = text(meta, "name");
            for (key, want) in [
                ("controller-uid", uid),
                ("job-name", name),
                ("batch.kubernetes.io/controller-uid", uid),
                ("batch.kubernetes.io/job-name", name),
            ] {
                let path = format!("spec.template.metadata.labels[{key}]");
                match template_meta.get("labels").and_then(|l| l.get(key)) {
                    None => errs.push(FieldError::required(&path, want)),
                    Some(v) if v.as_str() != Some(want) => errs.push(FieldError::invalid(
                        &path,
                        go_literal(go_string_map(template_meta.get("labels"))),
                        format!("must be '{want}'"),
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    job_spec(errs, spec, "spec");
    let sel = get(spec, "selector");
    if sel.is_null() {
        errs.push(FieldError::required("spec.selector", ""));
    } else {
        label_selector(errs, sel, "spec.selector");
    }
    if let Some(selector) = as_selector(sel) {
        template_matches(errs, spec, selector.as_ref());
    }
    if text(spec, "completionMode") == "Indexed"
        && let Some(completions) = int(spec, "completions").filter(|c| *c > 0)
    {
        let name = text(meta, "name");
        let hostname = format!("{name}-{}", completions - 1);
        if !is_dns1123_label(&hostname).is_empty() {
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                format!("will not able to create pod with invalid DNS label: {hostname}"),
            ));
        }
    }
}

/// Upstream `validateJobSpec` (without the selector).
fn job_spec(errs: &mut Vec<FieldError>, spec: &Value, path: &str) {
    for key in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        nonnegative(errs, spec, key, path);
    }
    if let Some(mode) = spec.get("completionMode").and_then(Value::as_str) {
        if mode != "NonIndexed" && mode != "Indexed" {
            errs.push(FieldError::not_supported(
                &format!("{path}.completionMode"),
                mode,
                &["NonIndexed", "Indexed"],
            ));
        }
        if mode == "Indexed" && !present(spec, "completions") {
            errs.push(FieldError::required(
                &format!("{path}.completions"),
                "when completion mode is Indexed",
            ));
        }
    }
    if let Some(policy) = spec.get("podReplacementPolicy").and_then(Value::as_str) {
        if present(spec, "podFailurePolicy") {
            if policy != "Failed" {
                errs.push(FieldError::not_supported(
                    &format!("{path}.podReplacementPolicy"),
                    policy,
                    &["Failed"],
                ));
            }
        } else if policy != "TerminatingOrFailed" && policy != "Failed" {
            errs.push(FieldError::not_supported(
                &format!("{path}.podReplacementPolicy"),
                policy,
                &["TerminatingOrFailed", "Failed"],
            ));
        }
    }
    let template_path = format!("{path}.template");
    pod_template(errs, get(spec, "template"), &template_path);
    let restart = text(get(get(spec, "template"), "spec"), "restartPolicy");
    let rp_path = format!("{template_path}.spec.restartPolicy");
    if restart == "Always" || restart.is_empty() {
        // Upstream reports this after the template's own Required, so "" is reported twice.
        errs.push(FieldError::required(
            &rp_path,
            "valid values: \"OnFailure\", \"Never\"",
        ));
    } else if restart != "OnFailure" && restart != "Never" {
        errs.push(FieldError::not_supported(
            &rp_path,
            restart,
            &["OnFailure", "Never"],
        ));
    } else if present(spec, "podFailurePolicy") && restart != "Never" {
        errs.push(FieldError::invalid(
            &rp_path,
            restart,
            "only \"Never\" is supported when podFailurePolicy is specified",
        ));
    }
}

fn job_update(errs: &mut Vec<FieldError>, spec: &Value, old: &Value) {
    let indexed = text(spec, "completionMode") == "Indexed";
    let elastic = indexed && int(spec, "completions") == int(spec, "parallelism");
    if !elastic {
        immutable(
            errs,
            get(spec, "completions"),
            get(old, "completions"),
            "spec.completions",
        );
    }
    let sel = get(spec, "selector");
    if !semantic_eq(sel, get(old, "selector")) {
        errs.push(FieldError::invalid(
            "spec.selector",
            go_label_selector(sel),
            IMMUTABLE,
        ));
    }
    let suspended = spec.get("suspend") == Some(&Value::Bool(true));
    let mut template = get(spec, "template").clone();
    if suspended {
        // A suspended job's scheduling directives may change.
        if let (Some(t), Some(o)) = (
            template.pointer_mut("/spec").and_then(Value::as_object_mut),
            old.pointer("/template/spec"),
        ) {
            for key in ["nodeSelector", "affinity", "tolerations", "schedulingGates"] {
                t.insert(key.into(), get(o, key).clone());
            }
        }
        if let (Some(t), Some(o)) = (
            template
                .pointer_mut("/metadata")
                .and_then(Value::as_object_mut),
            old.pointer("/template/metadata"),
        ) {
            for key in ["labels", "annotations"] {
                t.insert(key.into(), get(o, key).clone());
            }
        }
    }
    if !semantic_eq(&template, get(old, "template")) {
        errs.push(FieldError::invalid(
            "spec.template",
            go_literal("core.PodTemplateSpec{...}".to_string()),
            IMMUTABLE,
        ));
    }
    for key in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        immutable(errs, get(spec, key), get(old, key), &format!("spec.{key}"));
    }
}

fn cron_job(errs: &mut Vec<FieldError>, obj: &Value, old: Option<&Value>) {
    let spec = get(obj, "spec");
    let schedule = text(spec, "schedule");
    if schedule.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else {
        if let Err(e) = parse_cron(schedule) {
            errs.push(FieldError::invalid("spec.schedule", schedule, e));
        }
        let allow_tz = old.is_some_and(|o| text(o, "schedule").contains("TZ"));
        if allow_tz && schedule.contains("TZ") && present(spec, "timeZone") {
            errs.push(FieldError::invalid(
                "spec.schedule",
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                "spec.schedule",
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    nonnegative(errs, spec, "startingDeadlineSeconds", "spec");
    enum_field(
        errs,
        text(spec, "concurrencyPolicy"),
        "spec.concurrencyPolicy",
        &["Allow", "Forbid", "Replace"],
    );
    let job_template = get(spec, "jobTemplate");
    let jspec = get(job_template, "spec");
    job_spec(errs, jspec, "spec.jobTemplate.spec");
    if let Some(sel) = jspec.get("selector").filter(|s| !s.is_null()) {
        errs.push(FieldError::invalid(
            "spec.jobTemplate.spec.selector",
            go_label_selector(sel),
            "`selector` will be auto-generated",
        ));
    }
    if jspec.get("manualSelector") == Some(&Value::Bool(true)) {
        errs.push(FieldError::not_supported(
            "spec.jobTemplate.spec.manualSelector",
            true,
            &["nil", "false"],
        ));
    }
    nonnegative(errs, spec, "successfulJobsHistoryLimit", "spec");
    nonnegative(errs, spec, "failedJobsHistoryLimit", "spec");
    if old.is_none() {
        let name = text(get(obj, "metadata"), "name");
        if name.len() > 52 {
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                "must be no more than 52 characters",
            ));
        }
    }
}

/// The cron syntax upstream accepts (robfig/cron v3 `ParseStandard`): five fields or a
/// descriptor; the error text is the parser's.
pub fn parse_cron(schedule: &str) -> Result<(), String> {
    let mut spec = schedule.trim();
    if spec.is_empty() {
        return Err("empty spec string".to_string());
    }
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        spec = spec.split_once(' ').map_or("", |(_, rest)| rest.trim());
    }
    if let Some(descriptor) = spec.strip_prefix('@') {
        return match descriptor {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            d if d.starts_with("every ") => {
                let duration = &spec["@every ".len()..];
                if go_duration_ok(duration) {
                    Ok(())
                } else {
                    Err(format!(
                        "failed to parse duration {spec}: time: invalid duration {}",
                        go_quote(duration)
                    ))
                }
            }
            _ => Err(format!("unrecognized descriptor: {spec}")),
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [(u64, u64, &[&str], u64); 5] = [
        (0, 59, &[], 0),
        (0, 23, &[], 0),
        (1, 31, &[], 0),
        (1, 12, MONTHS, 1),
        (0, 6, DAYS, 0),
    ];
    for (field, (min, max, names, base)) in fields.iter().zip(bounds) {
        for expr in field.split(',') {
            cron_range(expr, min, max, names, base)?;
        }
    }
    Ok(())
}

fn cron_range(expr: &str, min: u64, max: u64, names: &[&str], base: u64) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let (start, mut end) = if low_and_high[0] == "*" || low_and_high[0] == "?" {
        (min, max)
    } else {
        let start = cron_int_or_name(low_and_high[0], names, base)?;
        match low_and_high.len() {
            1 => (start, start),
            2 => (start, cron_int_or_name(low_and_high[1], names, base)?),
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = cron_int(range_and_step[1])?;
            if low_and_high.len() == 1 {
                end = max;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {expr}"
        ));
    }
    if end > max {
        return Err(format!(
            "end of range ({end}) above maximum ({max}): {expr}"
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

fn cron_int_or_name(expr: &str, names: &[&str], base: u64) -> Result<u64, String> {
    let lower = expr.to_lowercase();
    match names.iter().position(|n| *n == lower) {
        Some(i) => Ok(i as u64 + base),
        None => cron_int(expr),
    }
}

/// `strconv.Atoi` as the cron parser reports it.
fn cron_int(expr: &str) -> Result<u64, String> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: invalid syntax",
            go_quote(expr)
        ));
    }
    let n: i64 = expr.parse().map_err(|_| {
        format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: value out of range",
            go_quote(expr)
        )
    })?;
    u64::try_from(n).map_err(|_| format!("negative number ({n}) not allowed: {expr}"))
}

/// Whether Go's `time.ParseDuration` accepts `s` (e.g. `1h30m`, `90s`, `1.5h`).
fn go_duration_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." {
            return false;
        }
        rest = &rest[num_len..];
        let unit = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"]
            .into_iter()
            .filter(|u| rest.starts_with(u))
            .max_by_key(|u| u.len());
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------------------------

/// `spec.clusterIPs`, or `[spec.clusterIP]` when only that is set (the server keeps them in step).
fn cluster_ips(spec: &Value) -> Vec<&str> {
    let ips: Vec<&str> = list(spec, "clusterIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if !ips.is_empty() {
        return ips;
    }
    match text(spec, "clusterIP") {
        "" => Vec::new(),
        ip => vec![ip],
    }
}

fn is_headless(spec: &Value) -> bool {
    cluster_ips(spec) == ["None"]
}

fn service(errs: &mut Vec<FieldError>, obj: &Value) {
    let spec = get(obj, "spec");
    let kind = text(spec, "type");
    let ports = list(spec, "ports");
    let headless = is_headless(spec);
    if ports.is_empty() && !headless && kind != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let ips = cluster_ips(spec);
    match kind {
        "LoadBalancer" | "NodePort" => {
            if headless {
                errs.push(FieldError::invalid(
                    "spec.clusterIPs[0]",
                    "None",
                    format!("may not be set to 'None' for {kind} services"),
                ));
            }
            if kind == "LoadBalancer" {
                for (i, p) in ports.iter().enumerate() {
                    if int(p, "port") == Some(10250) {
                        errs.push(FieldError::invalid(
                            &format!("spec.ports[{i}]"),
                            10250,
                            "may not expose port 10250 externally since it is used by kubelet",
                        ));
                    }
                }
            }
        }
        "ExternalName" => {
            if !ips.is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if !list(spec, "ipFamilies").is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if present(spec, "ipFamilyPolicy") {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            let external = text(spec, "externalName");
            let cname = external.strip_suffix('.').unwrap_or(external);
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                for msg in is_dns1123_subdomain(cname) {
                    errs.push(FieldError::invalid("spec.externalName", cname, msg));
                }
            }
        }
        _ => {}
    }
    if kind != "ExternalName" {
        for (i, ip) in ips.iter().enumerate() {
            let none_ok = i == 0 && *ip == "None" && ips.len() == 1;
            if !none_ok && ip.parse::<std::net::IpAddr>().is_err() {
                errs.push(FieldError::invalid(
                    &format!("spec.clusterIPs[{i}]"),
                    *ip,
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                ));
            }
        }
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        let name = text(p, "name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(&format!("{path}.name"), ""));
        } else if !name.is_empty() {
            for msg in is_dns1123_label(name) {
                errs.push(FieldError::invalid(&format!("{path}.name"), name, msg));
            }
            if names.contains(&name) {
                errs.push(FieldError::duplicate(&format!("{path}.name"), name));
            } else {
                names.push(name);
            }
        }
        let port = int(p, "port").unwrap_or(0);
        for msg in is_valid_port_num(port) {
            errs.push(FieldError::invalid(&format!("{path}.port"), port, msg));
        }
        enum_field(
            errs,
            text(p, "protocol"),
            &format!("{path}.protocol"),
            &["SCTP", "TCP", "UDP"],
        );
        port_num_or_name(errs, get(p, "targetPort"), &format!("{path}.targetPort"));
        if kind == "ClusterIP" && int(p, "nodePort").unwrap_or(0) != 0 {
            errs.push(FieldError::forbidden(
                &format!("{path}.nodePort"),
                "may not be used when `type` is 'ClusterIP'",
            ));
        }
    }
    labels(errs, spec.get("selector"), "spec.selector");
    enum_field(
        errs,
        text(spec, "sessionAffinity"),
        "spec.sessionAffinity",
        &["ClientIP", "None"],
    );
    enum_field(
        errs,
        kind,
        "spec.type",
        &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
    );
    let mut seen: Vec<(&str, i64)> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let key = (text(p, "protocol"), int(p, "port").unwrap_or(0));
        if seen.contains(&key) {
            errs.push(FieldError::duplicate(
                &format!("spec.ports[{i}]"),
                go_literal(format!(
                    "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                    go_quote(key.0),
                    key.1
                )),
            ));
        }
        seen.push(key);
    }
    for (key, supported) in [
        ("externalTrafficPolicy", ["Cluster", "Local"]),
        ("internalTrafficPolicy", ["Cluster", "Local"]),
    ] {
        let v = text(spec, key);
        if !v.is_empty() && !supported.contains(&v) {
            errs.push(FieldError::not_supported(
                &format!("spec.{key}"),
                v,
                &supported,
            ));
        }
    }
}

/// Upstream `validateUpgradeDowngradeClusterIPs`: the primary cluster IP may not change once
/// set, except to or from ExternalName.
fn service_update(errs: &mut Vec<FieldError>, obj: &Value, old: &Value) {
    let (spec, old_spec) = (get(obj, "spec"), get(old, "spec"));
    if text(spec, "type") == "ExternalName" || text(old_spec, "type") == "ExternalName" {
        return;
    }
    if is_headless(spec) && is_headless(old_spec) {
        return;
    }
    let (new_ips, old_ips) = (cluster_ips(spec), cluster_ips(old_spec));
    let value = || go_literal(go_string_slice(Some(&json!(new_ips))));
    let changed = "may not change once set";
    if new_ips.len() == old_ips.len() {
        if new_ips != old_ips {
            errs.push(FieldError::invalid("spec.clusterIPs[0]", value(), changed));
        }
    } else if old_ips.len() > new_ips.len() {
        if new_ips.is_empty() {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                value(),
                "primary clusterIP can not be unset",
            ));
        } else if new_ips[0] != old_ips[0] {
            errs.push(FieldError::invalid("spec.clusterIPs[0]", value(), changed));
        }
    } else if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
        errs.push(FieldError::invalid("spec.clusterIPs[0]", value(), changed));
    }
}

// ---------------------------------------------------------------------------------------------
// ConfigMaps and Secrets
// ---------------------------------------------------------------------------------------------

const MAX_DATA_SIZE: usize = 1024 * 1024;

/// The decoded length of a base64 value.
fn base64_len(v: &Value) -> usize {
    let s = v.as_str().unwrap_or("");
    let padding = s.bytes().rev().take_while(|c| *c == b'=').count();
    (s.len() / 4 * 3).saturating_sub(padding)
}

fn immutable_data(errs: &mut Vec<FieldError>, obj: &Value, old: &Value, fields: &[&str]) {
    if old.get("immutable") != Some(&Value::Bool(true)) {
        return;
    }
    if obj.get("immutable") != Some(&Value::Bool(true)) {
        errs.push(FieldError::forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
    for key in fields {
        if !semantic_eq(get(obj, key), get(old, key)) {
            errs.push(FieldError::forbidden(
                key,
                "field is immutable when `immutable` is set",
            ));
        }
    }
}

fn sorted_keys(v: &Value, key: &str) -> Vec<String> {
    let mut keys: Vec<String> = v
        .get(key)
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

fn config_map(errs: &mut Vec<FieldError>, obj: &Value, old: Option<&Value>) {
    if let Some(old) = old {
        immutable_data(errs, obj, old, &["data", "binaryData"]);
    }
    let mut total = 0;
    let binary = get(obj, "binaryData");
    for key in sorted_keys(obj, "data") {
        let path = format!("data[{key}]");
        for msg in is_config_map_key(&key) {
            errs.push(FieldError::invalid(&path, key.as_str(), msg));
        }
        if binary.get(&key).is_some() {
            errs.push(FieldError::invalid(
                &path,
                key.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        total += obj
            .pointer(&format!(
                "/data/{}",
                key.replace('~', "~0").replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .map_or(0, str::len);
    }
    for key in sorted_keys(obj, "binaryData") {
        for msg in is_config_map_key(&key) {
            errs.push(FieldError::invalid(
                &format!("binaryData[{key}]"),
                key.as_str(),
                msg,
            ));
        }
        total += base64_len(get(binary, &key));
    }
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long("", MAX_DATA_SIZE));
    }
}

/// Secret validation; `stringData` counts as `data` (upstream merges it before validating).
fn secret(errs: &mut Vec<FieldError>, obj: &Value, old: Option<&Value>) {
    let kind = text(obj, "type");
    if let Some(old) = old {
        let old_type = text(old, "type");
        if kind != old_type {
            errs.push(FieldError::invalid("type", kind, IMMUTABLE));
        }
        immutable_data(errs, obj, old, &["data"]);
    }
    let data = get(obj, "data");
    let string_data = get(obj, "stringData");
    let mut keys = sorted_keys(obj, "data");
    keys.extend(sorted_keys(obj, "stringData"));
    keys.sort();
    keys.dedup();
    let mut total = 0;
    for key in &keys {
        for msg in is_config_map_key(key) {
            errs.push(FieldError::invalid(
                &format!("data[{key}]"),
                key.as_str(),
                msg,
            ));
        }
        total += match string_data.get(key).and_then(Value::as_str) {
            Some(s) => s.len(),
            None => base64_len(get(data, key)),
        };
    }
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long("data", MAX_DATA_SIZE));
    }
    let has = |k: &str| keys.iter().any(|x| x == k);
    let required = |errs: &mut Vec<FieldError>, k: &str| {
        errs.push(FieldError::required(&format!("data[{k}]"), ""));
    };
    match kind {
        "kubernetes.io/service-account-token" => {
            let name = get(obj, "metadata")
                .pointer("/annotations/kubernetes.io~1service-account.name")
                .and_then(Value::as_str)
                .unwrap_or("");
            if name.is_empty() {
                errs.push(FieldError::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" if !has(".dockercfg") => required(errs, ".dockercfg"),
        "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => {
            required(errs, ".dockerconfigjson");
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            required(errs, "username");
            required(errs, "password");
        }
        "kubernetes.io/ssh-auth" if !has("ssh-privatekey") => required(errs, "ssh-privatekey"),
        "kubernetes.io/tls" => {
            for k in ["tls.crt", "tls.key"] {
                if !has(k) {
                    required(errs, k);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Nodes and RBAC
// ---------------------------------------------------------------------------------------------

fn node(errs: &mut Vec<FieldError>, spec: &Value, old: Option<&Value>) {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (i, t) in list(spec, "taints").iter().enumerate() {
        let p = format!("spec.taints[{i}]");
        let key = text(t, "key");
        for msg in is_qualified_name(key) {
            errs.push(FieldError::invalid(&format!("{p}.key"), key, msg));
        }
        let value = text(t, "value");
        let msgs = is_valid_label_value(value);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{p}.value"),
                value,
                msgs.join(";"),
            ));
        }
        let effect = text(t, "effect");
        if effect.is_empty() {
            errs.push(FieldError::required(&format!("{p}.effect"), ""));
        } else {
            taint_effect(errs, effect, &format!("{p}.effect"));
        }
        if seen.contains(&(key, effect)) {
            let mut e = FieldError::duplicate(
                &p,
                go_literal(format!(
                    "core.Taint{{Key:{}, Value:{}, Effect:{}, TimeAdded:<nil>}}",
                    go_quote(key),
                    go_quote(value),
                    go_quote(effect)
                )),
            );
            e.detail = "taints must be unique by key and effect pair".to_string();
            errs.push(e);
            continue;
        }
        seen.push((key, effect));
    }
    if let Some(old) = old {
        for (key, what) in [("podCIDR", "podCIDR"), ("providerID", "providerID")] {
            let before = text(old, key);
            if !before.is_empty() && text(spec, key) != before {
                errs.push(FieldError::forbidden(
                    &format!("spec.{key}"),
                    format!("node updates may not change {what} except from \"\" to valid"),
                ));
            }
        }
    }
}

/// Role and ClusterRole rules: verbs required; resource rules need groups and resources.
fn rules(errs: &mut Vec<FieldError>, obj: &Value, namespaced: bool) {
    for (i, rule) in list(obj, "rules").iter().enumerate() {
        let p = format!("rules[{i}]");
        if list(rule, "verbs").is_empty() {
            errs.push(FieldError::required(
                &format!("{p}.verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = list(rule, "nonResourceURLs");
        if !urls.is_empty() {
            let value = || go_literal(go_string_slice(rule.get("nonResourceURLs")));
            if namespaced {
                errs.push(FieldError::invalid(
                    &format!("{p}.nonResourceURLs"),
                    value(),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            let resourceful = ["apiGroups", "resources", "resourceNames"]
                .iter()
                .any(|k| !list(rule, k).is_empty());
            if resourceful {
                errs.push(FieldError::invalid(
                    &format!("{p}.nonResourceURLs"),
                    value(),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if list(rule, "apiGroups").is_empty() {
            errs.push(FieldError::required(
                &format!("{p}.apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if list(rule, "resources").is_empty() {
            errs.push(FieldError::required(
                &format!("{p}.resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
}

fn cluster_role(errs: &mut Vec<FieldError>, obj: &Value) {
    rules(errs, obj, false);
    if let Some(agg) = obj.get("aggregationRule").filter(|a| !a.is_null()) {
        let selectors = list(agg, "clusterRoleSelectors");
        if selectors.is_empty() {
            errs.push(FieldError::required(
                "aggregationRule.clusterRoleSelectors",
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, s) in selectors.iter().enumerate() {
            label_selector(
                errs,
                s,
                &format!("aggregationRule.clusterRoleSelectors[{i}]"),
            );
        }
        if !list(obj, "rules").is_empty() {
            errs.push(FieldError::forbidden(
                "rules",
                "rules must be empty if aggregationRule is non-nil",
            ));
        }
    }
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn role_binding(errs: &mut Vec<FieldError>, obj: &Value, namespaced: bool) {
    let role_ref = get(obj, "roleRef");
    let group = text(role_ref, "apiGroup");
    if group != RBAC_GROUP {
        errs.push(FieldError::not_supported(
            "roleRef.apiGroup",
            group,
            &[RBAC_GROUP],
        ));
    }
    let kind = text(role_ref, "kind");
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        errs.push(FieldError::not_supported("roleRef.kind", kind, kinds));
    }
    let name = text(role_ref, "name");
    if name.is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    } else {
        for msg in is_valid_path_segment_name(name) {
            errs.push(FieldError::invalid("roleRef.name", name, msg));
        }
    }
    for (i, s) in list(obj, "subjects").iter().enumerate() {
        let p = format!("subjects[{i}]");
        let name = text(s, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&format!("{p}.name"), ""));
        }
        let group = text(s, "apiGroup");
        match text(s, "kind") {
            "ServiceAccount" => {
                if !name.is_empty() {
                    for msg in is_dns1123_subdomain(name) {
                        errs.push(FieldError::invalid(&format!("{p}.name"), name, msg));
                    }
                }
                if !group.is_empty() {
                    errs.push(FieldError::not_supported(
                        &format!("{p}.apiGroup"),
                        group,
                        &[""],
                    ));
                }
                if !namespaced && text(s, "namespace").is_empty() {
                    errs.push(FieldError::required(&format!("{p}.namespace"), ""));
                }
            }
            "User" | "Group" => {
                if group != RBAC_GROUP {
                    errs.push(FieldError::not_supported(
                        &format!("{p}.apiGroup"),
                        group,
                        &[RBAC_GROUP],
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                &format!("{p}.kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults;
    use crate::registry::find_kind;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

    fn res(group: &str, kind: &str) -> &'static Resource {
        let version = if group == "autoscaling" { "v2" } else { "v1" };
        find_kind(group, version, kind).expect("kind is served")
    }

    /// Defaults `obj` as the server would, then validates it.
    fn check(group: &str, kind: &str, mut obj: Value, old: Option<Value>) -> Vec<String> {
        let r = res(group, kind);
        defaults::apply(r, &mut obj);
        if kind == "Job" {
            defaults::job_selector(&mut obj);
        }
        let old = old.map(|mut o| {
            defaults::apply(r, &mut o);
            if kind == "Job" {
                defaults::job_selector(&mut o);
            }
            o
        });
        validate(r, &obj, old.as_ref())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn pod(spec: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec})
    }

    fn nginx() -> Value {
        json!({"name": "nginx", "image": "nginx"})
    }

    fn deployment(spec_extra: Value) -> Value {
        let mut d = json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [nginx()]}
                }
            }
        });
        if let (Some(spec), Some(extra)) = (d["spec"].as_object_mut(), spec_extra.as_object()) {
            for (k, v) in extra {
                spec.insert(k.clone(), v.clone());
            }
        }
        d
    }

    #[test]
    fn messages_read_as_upstream() {
        let cases = [
            (
                FieldError::required("spec.containers", ""),
                "spec.containers: Required value",
            ),
            (
                FieldError::invalid("metadata.name", "Foo", is_dns1123_subdomain("Foo").join("")),
                &format!("metadata.name: Invalid value: \"Foo\": {SUBDOMAIN_MSG}"),
            ),
            (
                FieldError::not_supported("spec.type", "x", &["a", "b"]),
                "spec.type: Unsupported value: \"x\": supported values: \"a\", \"b\"",
            ),
            (
                FieldError::duplicate("spec.containers[1].name", "a"),
                "spec.containers[1].name: Duplicate value: \"a\"",
            ),
            (
                FieldError::too_long("metadata.annotations", 262144),
                "metadata.annotations: Too long: may not be more than 262144 bytes",
            ),
            (
                FieldError::too_many("spec.x", 5, 4),
                "spec.x: Too many: 5: must have at most 4 items",
            ),
            (
                FieldError::not_found("spec.volumeMounts[0].name", "v"),
                "spec.volumeMounts[0].name: Not found: \"v\"",
            ),
            (
                FieldError::forbidden("spec", "nope"),
                "spec: Forbidden: nope",
            ),
            (
                FieldError::invalid("spec.replicas", -1, NEGATIVE),
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                FieldError::invalid("x", "a\"b\n", "d"),
                "x: Invalid value: \"a\\\"b\\n\": d",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
        assert_eq!(FieldError::required("a", "").reason(), "FieldValueRequired");
        assert_eq!(
            FieldError::not_supported("a", "b", &[]).reason(),
            "FieldValueNotSupported"
        );
        assert_eq!(
            FieldError::invalid("a", "b", "c").message(),
            "Invalid value: \"b\": c"
        );
    }

    #[test]
    fn name_rules_per_kind() {
        let cm = |name: &str| {
            check(
                "",
                "ConfigMap",
                json!({"metadata": {"name": name, "namespace": "default"}}),
                None,
            )
        };
        assert!(cm("a.b-c").is_empty());
        assert_eq!(
            cm("Foo"),
            [format!(
                "metadata.name: Invalid value: \"Foo\": {SUBDOMAIN_MSG}"
            )]
        );
        assert_eq!(
            check("", "Namespace", json!({"metadata": {"name": "a.b"}}), None),
            [format!(
                "metadata.name: Invalid value: \"a.b\": {LABEL_MSG}"
            )]
        );
        assert_eq!(
            check(
                "",
                "Service",
                json!({"metadata": {"name": "1abc", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}}),
                None
            ),
            [
                "metadata.name: Invalid value: \"1abc\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
        assert_eq!(
            check(
                "rbac.authorization.k8s.io",
                "ClusterRole",
                json!({"metadata": {"name": "system:Admin/x"}}),
                None
            ),
            ["metadata.name: Invalid value: \"system:Admin/x\": may not contain '/'"]
        );
        assert!(
            check(
                "rbac.authorization.k8s.io",
                "ClusterRole",
                json!({"metadata": {"name": "system:Admin"}}),
                None
            )
            .is_empty()
        );
        assert_eq!(
            check(
                "",
                "ConfigMap",
                json!({"metadata": {"namespace": "default"}}),
                None
            ),
            ["metadata.name: Required value: name or generateName is required"]
        );
        // A generated name validates its prefix with the trailing dash.
        assert!(
            check(
                "",
                "ConfigMap",
                json!({"metadata": {"generateName": "web-", "name": "web-x1", "namespace": "default"}}),
                None
            )
            .is_empty()
        );
        assert_eq!(
            check("", "ConfigMap", json!({"metadata": {"name": "a"}}), None),
            ["metadata.namespace: Required value"]
        );
        assert_eq!(
            check(
                "",
                "Node",
                json!({"metadata": {"name": "a", "namespace": "x"}}),
                None
            ),
            ["metadata.namespace: Forbidden: not allowed on this type"]
        );
    }

    #[test]
    fn metadata_labels_annotations_and_owners() {
        let errs = check(
            "",
            "ConfigMap",
            json!({"metadata": {
                "name": "a", "namespace": "default",
                "labels": {"app": "-bad", "x/y/z": "ok"},
                "annotations": {"big": "x".repeat(256 * 1024)},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "", "uid": "u"}]
            }}),
            None,
        );
        assert_eq!(
            errs,
            [
                "metadata.labels: Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                "metadata.labels: Invalid value: \"x/y/z\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                "metadata.annotations: Too long: may not be more than 262144 bytes",
                "metadata.ownerReferences.name: Invalid value: \"\": must not be empty",
            ]
        );
    }

    #[test]
    fn metadata_identity_is_immutable() {
        let old = json!({"metadata": {"name": "a", "namespace": "default", "uid": "1"}});
        let new = json!({"metadata": {"name": "b", "namespace": "default", "uid": "2"}});
        assert_eq!(
            check("", "ConfigMap", new, Some(old.clone())),
            [
                "metadata.name: Invalid value: \"b\": field is immutable",
                "metadata.uid: Invalid value: \"2\": field is immutable",
            ]
        );
        // The uid may be left out (the server keeps the stored one).
        let same = json!({"metadata": {"name": "a", "namespace": "default"}});
        assert!(check("", "ConfigMap", same, Some(old)).is_empty());
    }

    #[test]
    fn pods_common_mistakes() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!({"containers": [nginx()]}), vec![]),
            (
                json!({"containers": []}),
                vec!["spec.containers: Required value"],
            ),
            (
                json!({"containers": [{"name": "a"}]}),
                vec!["spec.containers[0].image: Required value"],
            ),
            (
                json!({"containers": [nginx(), nginx()]}),
                vec!["spec.containers[1].name: Duplicate value: \"nginx\""],
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 70000, "protocol": "TCP"}]}]}),
                vec![
                    "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                ],
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80, "protocol": "tcp"}]}]}),
                vec![
                    "spec.containers[0].ports[0].protocol: Unsupported value: \"tcp\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                ],
            ),
            (
                json!({"containers": [nginx()], "restartPolicy": "Sometimes"}),
                vec![
                    "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                ],
            ),
            (
                json!({"containers": [nginx()], "dnsPolicy": "Foo"}),
                vec![
                    "spec.dnsPolicy: Unsupported value: \"Foo\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
                ],
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]}),
                vec!["spec.containers[0].volumeMounts[0].name: Not found: \"data\""],
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "livenessProbe": {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}}]}),
                vec![
                    "spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
                ],
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "readinessProbe": {"periodSeconds": 5}}]}),
                vec![
                    "spec.containers[0].readinessProbe: Required value: must specify a handler type",
                ],
            ),
            (
                json!({"containers": [nginx()], "volumes": [{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}, {"name": "v", "emptyDir": {}}]}),
                // The first volume is invalid, so the second does not duplicate it (as upstream).
                vec![
                    "spec.volumes[0].emptyDir: Forbidden: may not specify more than 1 volume type",
                ],
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "resources": {"limits": {"cpu": "500m"}, "requests": {"cpu": "1"}}}]}),
                vec![
                    "spec.containers[0].resources.requests: Invalid value: \"1\": must be less than or equal to cpu limit of 500m",
                ],
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "resources": {"requests": {"memory": "-1Gi", "example.com/gpu": "1"}}}]}),
                vec![
                    "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources",
                    "spec.containers[0].resources.requests[memory]: Invalid value: \"-1Gi\": must be greater than or equal to 0",
                ],
            ),
            (
                json!({"containers": [{"name": "Web", "image": "x"}]}),
                vec![Box::leak(
                    format!("spec.containers[0].name: Invalid value: \"Web\": {LABEL_MSG}")
                        .into_boxed_str(),
                )],
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(check("", "Pod", pod(spec.clone()), None), want, "{spec}");
        }
    }

    #[test]
    fn pod_updates_keep_most_of_the_spec() {
        let mut old = pod(json!({"containers": [nginx()], "activeDeadlineSeconds": 100}));
        defaults::apply(res("", "Pod"), &mut old);
        // As a patch does: the stored (defaulted) pod with a new image, a lower deadline and
        // one more toleration.
        let mut image = old.clone();
        image["spec"]["containers"][0]["image"] = json!("nginx:2");
        image["spec"]["activeDeadlineSeconds"] = json!(50);
        if let Some(ts) = image["spec"]["tolerations"].as_array_mut() {
            ts.push(json!({"key": "k", "operator": "Exists", "effect": "NoSchedule"}));
        }
        assert_eq!(
            check("", "Pod", image, Some(old.clone())),
            Vec::<String>::new()
        );

        let errs = check(
            "",
            "Pod",
            pod(
                json!({"containers": [nginx()], "activeDeadlineSeconds": 100, "restartPolicy": "Never"}),
            ),
            Some(old.clone()),
        );
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with(&format!("spec: Forbidden: {POD_UPDATE_FORBIDDEN}\n")),
            "{}",
            errs[0]
        );
        assert!(errs[0].contains("spec.restartPolicy"), "{}", errs[0]);

        assert_eq!(
            check(
                "",
                "Pod",
                pod(json!({"containers": [nginx()], "activeDeadlineSeconds": 200})),
                Some(old.clone())
            ),
            [
                "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"
            ]
        );
        assert_eq!(
            check(
                "",
                "Pod",
                pod(
                    json!({"containers": [nginx(), {"name": "b", "image": "b"}], "activeDeadlineSeconds": 100})
                ),
                Some(old)
            ),
            ["spec.containers: Forbidden: pod updates may not add or remove containers"]
        );
    }

    #[test]
    fn deployments_selectors_and_strategy() {
        assert!(check("apps", "Deployment", deployment(json!({})), None).is_empty());
        let mut no_selector = deployment(json!({}));
        no_selector["spec"]
            .as_object_mut()
            .expect("spec")
            .remove("selector");
        assert_eq!(
            check("apps", "Deployment", no_selector, None),
            [
                "spec.selector: Required value",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
            ]
        );
        assert_eq!(
            check(
                "apps",
                "Deployment",
                deployment(json!({"selector": {"matchLabels": {"app": "db"}}})),
                None
            ),
            [
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
            ]
        );
        assert_eq!(
            check(
                "apps",
                "Deployment",
                deployment(json!({"selector": {}})),
                None
            ),
            [
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
            ]
        );
        assert_eq!(
            check(
                "apps",
                "Deployment",
                deployment(json!({"replicas": -1})),
                None
            ),
            ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]
        );
        assert_eq!(
            check(
                "apps",
                "Deployment",
                deployment(
                    json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}})
                ),
                None
            ),
            [
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0"
            ]
        );
        let mut changed =
            deployment(json!({"selector": {"matchLabels": {"app": "web", "v": "2"}}}));
        changed["spec"]["template"]["metadata"]["labels"]["v"] = json!("2");
        assert_eq!(
            check("apps", "Deployment", changed, Some(deployment(json!({})))),
            [
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"v\":\"2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
            ]
        );
        let mut never = deployment(json!({}));
        never["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        assert_eq!(
            check("apps", "Deployment", never, None),
            [
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""
            ]
        );
    }

    #[test]
    fn other_workloads() {
        let mut sts = deployment(
            json!({"serviceName": "web", "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}]}),
        );
        sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] =
            json!([{"name": "data", "mountPath": "/data"}]);
        assert!(check("apps", "StatefulSet", sts.clone(), None).is_empty());
        let mut sts2 = sts.clone();
        sts2["spec"]["serviceName"] = json!("other");
        assert_eq!(
            check("apps", "StatefulSet", sts2, Some(sts.clone())),
            [
                "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
            ]
        );
        let mut sts3 = sts.clone();
        sts3["spec"]["replicas"] = json!(5);
        assert!(check("apps", "StatefulSet", sts3, Some(sts)).is_empty());

        assert!(check("apps", "DaemonSet", deployment(json!({})), None).is_empty());
        assert!(check("apps", "ReplicaSet", deployment(json!({})), None).is_empty());
        let rc = json!({"metadata": {"name": "rc", "namespace": "default"}, "spec": {
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [nginx()]}}}});
        assert!(check("", "ReplicationController", rc, None).is_empty());
    }

    fn job_obj(restart: &str) -> Value {
        json!({"metadata": {"name": "pi", "namespace": "default", "uid": "u-1"}, "spec": {
            "template": {"spec": {"restartPolicy": restart, "containers": [nginx()]}}}})
    }

    #[test]
    fn jobs_and_cron_jobs() {
        assert!(check("batch", "Job", job_obj("Never"), None).is_empty());
        assert_eq!(
            check("batch", "Job", job_obj("Always"), None),
            [
                "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
            ]
        );
        let mut changed = job_obj("Never");
        changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("other");
        assert_eq!(
            check("batch", "Job", changed, Some(job_obj("Never"))),
            ["spec.template: Invalid value: core.PodTemplateSpec{...}: field is immutable"]
        );
        let mut suspended = job_obj("Never");
        suspended["spec"]["suspend"] = json!(true);
        let mut scheduled = suspended.clone();
        scheduled["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
        assert!(check("batch", "Job", scheduled, Some(suspended)).is_empty());

        let cron = |schedule: &str, policy: &str| {
            json!({"metadata": {"name": "c", "namespace": "default"}, "spec": {
                "schedule": schedule, "concurrencyPolicy": policy,
                "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [nginx()]}}}}}})
        };
        for ok in [
            "*/5 * * * *",
            "@hourly",
            "0 0 1 jan,jul sun-sat",
            "@every 1h30m",
            "? * * * *",
        ] {
            assert!(
                check("batch", "CronJob", cron(ok, "Allow"), None).is_empty(),
                "{ok}"
            );
        }
        let cases = [
            ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
            ("60 * * * *", "end of range (60) above maximum (59): 60"),
            (
                "x * * * *",
                "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            ("@fortnightly", "unrecognized descriptor: @fortnightly"),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ];
        for (schedule, msg) in cases {
            assert_eq!(
                check("batch", "CronJob", cron(schedule, "Allow"), None),
                [format!(
                    "spec.schedule: Invalid value: {}: {msg}",
                    go_quote(schedule)
                )],
            );
        }
        assert_eq!(
            check("batch", "CronJob", cron("@daily", "Sometimes"), None),
            [
                "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\""
            ]
        );
        assert_eq!(
            check("batch", "CronJob", cron("TZ=UTC @daily", "Allow"), None),
            [
                "spec.schedule: Invalid value: \"TZ=UTC @daily\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            ]
        );
    }

    fn svc(spec: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
    }

    #[test]
    fn services() {
        assert!(
            check(
                "",
                "Service",
                svc(json!({"ports": [{"port": 80}], "selector": {"app": "web"}})),
                None
            )
            .is_empty()
        );
        assert_eq!(
            check("", "Service", svc(json!({})), None),
            ["spec.ports: Required value"]
        );
        assert!(check("", "Service", svc(json!({"clusterIP": "None"})), None).is_empty());
        assert!(
            check(
                "",
                "Service",
                svc(json!({"type": "ExternalName", "externalName": "db.example.com"})),
                None
            )
            .is_empty()
        );
        assert_eq!(
            check(
                "",
                "Service",
                svc(json!({"ports": [{"port": 80}, {"port": 0, "name": "b"}]})),
                None
            ),
            [
                "spec.ports[0].name: Required value",
                "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                // targetPort defaults to port, so it is 0 too.
                "spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
            ]
        );
        assert_eq!(
            check(
                "",
                "Service",
                svc(json!({"type": "Foo", "ports": [{"port": 80}]})),
                None
            ),
            [
                "spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
            ]
        );
        let old = svc(
            json!({"ports": [{"port": 80}], "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"]}),
        );
        assert_eq!(
            check(
                "",
                "Service",
                svc(
                    json!({"ports": [{"port": 80}], "clusterIP": "10.0.0.2", "clusterIPs": ["10.0.0.2"]})
                ),
                Some(old.clone())
            ),
            ["spec.clusterIPs[0]: Invalid value: []string{\"10.0.0.2\"}: may not change once set"]
        );
        assert!(
            check(
                "",
                "Service",
                svc(json!({"type": "ExternalName", "externalName": "x.example"})),
                Some(old)
            )
            .is_empty()
        );
    }

    #[test]
    fn config_maps_and_secrets() {
        let cm = |data: Value, immutable: bool| json!({"metadata": {"name": "c", "namespace": "default"}, "data": data, "immutable": immutable});
        assert_eq!(
            check(
                "",
                "ConfigMap",
                cm(json!({"a b": "x", "..x": "y"}), false),
                None
            ),
            [
                "data[..x]: Invalid value: \"..x\": must not start with '..'",
                "data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
            ]
        );
        assert_eq!(
            check(
                "",
                "ConfigMap",
                cm(json!({"k": "x".repeat(MAX_DATA_SIZE + 1)}), false),
                None
            ),
            [": Too long: may not be more than 1048576 bytes"]
        );
        assert_eq!(
            check(
                "",
                "ConfigMap",
                cm(json!({"k": "2"}), true),
                Some(cm(json!({"k": "1"}), true))
            ),
            ["data: Forbidden: field is immutable when `immutable` is set"]
        );
        let secret = |kind: &str, data: Value| json!({"metadata": {"name": "s", "namespace": "default"}, "type": kind, "data": data});
        assert!(check("", "Secret", secret("Opaque", json!({"a": "eA=="})), None).is_empty());
        assert_eq!(
            check(
                "",
                "Secret",
                secret("kubernetes.io/tls", json!({"tls.crt": "eA=="})),
                None
            ),
            ["data[tls.key]: Required value"]
        );
        assert_eq!(
            check(
                "",
                "Secret",
                secret("kubernetes.io/tls", json!({"tls.crt": "", "tls.key": ""})),
                Some(secret("Opaque", json!({})))
            ),
            ["type: Invalid value: \"kubernetes.io/tls\": field is immutable"]
        );
    }

    #[test]
    fn namespaces_nodes_and_rbac() {
        assert!(check("", "Namespace", json!({"metadata": {"name": "dev"}}), None).is_empty());
        assert_eq!(
            check(
                "",
                "Namespace",
                json!({"metadata": {"name": "dev"}, "spec": {"finalizers": ["custom"]}}),
                None
            ),
            [
                "spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"
            ]
        );
        assert_eq!(
            check(
                "",
                "Node",
                json!({"metadata": {"name": "n1"}, "spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}}),
                None
            ),
            [
                "spec.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""
            ]
        );
        let role = |rules: Value| json!({"metadata": {"name": "r", "namespace": "default"}, "rules": rules});
        assert!(
            check(
                "rbac.authorization.k8s.io",
                "Role",
                role(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])),
                None
            )
            .is_empty()
        );
        assert_eq!(
            check(
                "rbac.authorization.k8s.io",
                "Role",
                role(json!([{"apiGroups": [""], "resources": ["pods"]}])),
                None
            ),
            ["rules[0].verbs: Required value: verbs must contain at least one value"]
        );
        let binding = |role_kind: &str, role_name: &str| {
            json!({"metadata": {"name": "b", "namespace": "default"},
                   "roleRef": {"kind": role_kind, "name": role_name},
                   "subjects": [{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "default"}]})
        };
        assert!(
            check(
                "rbac.authorization.k8s.io",
                "RoleBinding",
                binding("Role", "r"),
                None
            )
            .is_empty()
        );
        assert_eq!(
            check(
                "rbac.authorization.k8s.io",
                "RoleBinding",
                binding("Role", "other"),
                Some(binding("Role", "r"))
            ),
            [
                "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"other\"}: cannot change roleRef"
            ]
        );
        assert_eq!(
            check(
                "rbac.authorization.k8s.io",
                "RoleBinding",
                binding("Pod", "r"),
                None
            ),
            [
                "roleRef.kind: Unsupported value: \"Pod\": supported values: \"Role\", \"ClusterRole\""
            ]
        );
    }

    #[test]
    fn quantities_parse() {
        for (q, want) in [
            ("500m", 0.5),
            ("1Gi", 1073741824.0),
            ("1e3", 1000.0),
            ("2", 2.0),
            ("1.5k", 1500.0),
        ] {
            assert_eq!(parse_quantity(q), Some(want), "{q}");
        }
        for bad in ["", "x", "1Q", "--1", "1e"] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }

    #[test]
    fn kinds_without_rules_get_metadata_checks() {
        assert!(
            check(
                "coordination.k8s.io",
                "Lease",
                json!({"metadata": {"name": "l", "namespace": "default"}}),
                None
            )
            .is_empty()
        );
        assert_eq!(
            check(
                "coordination.k8s.io",
                "Lease",
                json!({"metadata": {"name": "L", "namespace": "default"}}),
                None
            ),
            [format!(
                "metadata.name: Invalid value: \"L\": {SUBDOMAIN_MSG}"
            )]
        );
        // Wrong shapes never panic.
        let r = res("apps", "Deployment");
        let _ = validate(r, &json!({"spec": "nope", "metadata": 3}), Some(&json!([])));
    }
}
