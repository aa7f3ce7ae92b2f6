//! Label and field selectors as upstream apimachinery's `labels` and `fields` packages: parsing
//! the query-string syntax, the canonical string form, matching, and the per-kind selectable
//! fields (upstream's field label conversion funcs and `GetAttrs`).

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use serde_json::Value;

use crate::registry::Resource;
use crate::validation::{FieldError, go_quote, is_qualified_name, is_valid_label_value};

/// Why a selector was rejected; the text reads as upstream's (the apiserver returns it as a
/// 400 BadRequest message).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector's syntax: `found 'x', expected: ...`.
    #[error("{0}")]
    Syntax(String),
    /// One requirement of a label selector string did not parse or was invalid.
    #[error("unable to parse requirement: {0}")]
    Requirement(String),
    /// A requirement built from a `LabelSelector` object was invalid.
    #[error("{0}")]
    Invalid(String),
    /// A `matchExpressions` operator other than In, NotIn, Exists, DoesNotExist.
    #[error("{} is not a valid label selector operator", go_quote(.0))]
    Operator(String),
    /// A field selector term without `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldTerm { selector: String, term: String },
    /// A backslash in a field selector value not followed by `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    Escape(String),
    /// An unescaped `,` or `=` inside a field selector value.
    #[error("invalid field selector: unescaped character in value: {0}")]
    Unescaped(char),
    /// A field label the kind does not support (kinds with their own conversion func).
    #[error("field label not supported: {0}")]
    FieldNotSupported(String),
    /// A field label other than metadata.name/namespace for kinds without a conversion func.
    #[error("{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"", go_quote(.0))]
    FieldNotKnown(String),
}

// ---------------------------------------------------------------------------------------------
// Labels
// ---------------------------------------------------------------------------------------------

/// A set of labels a selector can be matched against.
pub trait Labels {
    /// The value of the label `key`, if the label is present.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// The labels as they sit in an object (`metadata.labels`): an object of strings; anything else
/// (null, absent) holds no labels.
impl Labels for Value {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
}

/// A label selector operator (upstream `selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One requirement: a key, an operator and its values (sorted, without duplicates).
#[derive(Debug, Clone, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

impl Requirement {
    /// Upstream `NewRequirement`: checks the key, the number of values and each value.
    fn new(key: &str, op: Op, mut values: Vec<String>) -> Result<Self, String> {
        let mut errs: Vec<FieldError> = Vec::new();
        let msgs = is_qualified_name(key);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid("key", key, msgs.join("; ")));
        }
        let as_list = || Value::from(values.clone());
        match op {
            Op::In | Op::NotIn if values.is_empty() => errs.push(FieldError::invalid(
                "values",
                as_list(),
                "for 'in', 'notin' operators, values set can't be empty",
            )),
            Op::Equals | Op::DoubleEquals | Op::NotEquals if values.len() != 1 => {
                errs.push(FieldError::invalid(
                    "values",
                    as_list(),
                    "exact-match compatibility requires one single value",
                ))
            }
            Op::Exists | Op::DoesNotExist if !values.is_empty() => errs.push(FieldError::invalid(
                "values",
                as_list(),
                "values set must be empty for exists and does not exist",
            )),
            Op::GreaterThan | Op::LessThan => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid(
                        "values",
                        as_list(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(FieldError::invalid(
                            &format!("values[{i}]"),
                            v.as_str(),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            let msgs = is_valid_label_value(v);
            if !msgs.is_empty() {
                errs.push(FieldError::invalid(
                    &format!("values[{i}][{key}]"),
                    v.as_str(),
                    msgs.join("; "),
                ));
            }
        }
        if !errs.is_empty() {
            return Err(aggregate(&errs));
        }
        values.sort();
        values.dedup();
        Ok(Requirement {
            key: key.to_string(),
            op,
            values,
        })
    }

    fn matches(&self, labels: &impl Labels) -> bool {
        let got = labels.label(&self.key);
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.op {
            Op::In | Op::Equals | Op::DoubleEquals => got.is_some_and(has),
            Op::NotIn | Op::NotEquals => !got.is_some_and(has),
            Op::Exists => got.is_some(),
            Op::DoesNotExist => got.is_none(),
            Op::GreaterThan | Op::LessThan => {
                let (Some(Ok(have)), Some(Ok(want))) = (
                    got.map(str::parse::<i64>),
                    self.values.first().map(|v| v.parse::<i64>()),
                ) else {
                    return false;
                };
                if self.op == Op::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.op == Op::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let (before, after) = match self.op {
            Op::Exists | Op::DoesNotExist => return Ok(()),
            Op::Equals => ("=", ""),
            Op::DoubleEquals => ("==", ""),
            Op::NotEquals => ("!=", ""),
            Op::GreaterThan => (">", ""),
            Op::LessThan => ("<", ""),
            Op::In => (" in (", ")"),
            Op::NotIn => (" notin (", ")"),
        };
        write!(f, "{before}{}{after}", self.values.join(","))
    }
}

/// Upstream `utilerrors.Aggregate` of field errors: one message as is, several (deduplicated)
/// in brackets.
fn aggregate(errs: &[FieldError]) -> String {
    let mut msgs: Vec<String> = Vec::new();
    for e in errs {
        let m = e.to_string();
        if !msgs.contains(&m) {
            msgs.push(m);
        }
    }
    if msgs.len() == 1 {
        msgs.remove(0)
    } else {
        format!("[{}]", msgs.join(", "))
    }
}

/// A label selector: requirements, all of which must hold. No requirements selects everything.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSelector {
    /// Sorted by key (stable), as upstream sorts them.
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the query-string syntax (`a=b,c!=d,e in (f,g),!h,i`); `""` selects everything.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut requirements = Parser::new(s).parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    /// Converts a `LabelSelector` object (matchLabels and matchExpressions) as upstream's
    /// `LabelSelectorAsSelector`.
    pub fn from_meta(sel: &meta::LabelSelector) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            requirements.push(
                Requirement::new(k, Op::Equals, vec![v.clone()]).map_err(SelectorError::Invalid)?,
            );
        }
        for expr in sel.match_expressions.iter().flatten() {
            let op = match expr.operator.as_str() {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                other => return Err(SelectorError::Operator(other.to_string())),
            };
            let values = expr.values.clone().unwrap_or_default();
            requirements
                .push(Requirement::new(&expr.key, op, values).map_err(SelectorError::Invalid)?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    /// The selector that matches every label set.
    pub fn everything() -> Self {
        LabelSelector {
            requirements: Vec::new(),
        }
    }

    /// Whether the selector has no requirements.
    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` satisfies every requirement.
    pub fn matches(&self, labels: &impl Labels) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// The lexer's tokens (upstream `labels.Token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Error,
    End,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &str) -> Option<Tok> {
    Some(match s {
        ")" => Tok::ClosedPar,
        "," => Tok::Comma,
        "!" => Tok::DoesNotExist,
        "==" => Tok::DoubleEquals,
        "=" => Tok::Equals,
        ">" => Tok::GreaterThan,
        "in" => Tok::In,
        "<" => Tok::LessThan,
        "!=" => Tok::NotEquals,
        "notin" => Tok::NotIn,
        "(" => Tok::OpenPar,
        _ => return None,
    })
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Splits a selector string into tokens as upstream's lexer (a NUL byte ends the string).
fn lex(s: &str) -> Vec<(Tok, String)> {
    let b = s.as_bytes();
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        while pos < end && is_space(b[pos]) {
            pos += 1;
        }
        if pos >= end {
            out.push((Tok::End, String::new()));
            return out;
        }
        let start = pos;
        if is_special(b[pos]) {
            let mut last: Option<(Tok, usize)> = None;
            while pos < end && is_special(b[pos]) {
                match keyword(&s[start..=pos]) {
                    Some(t) => last = Some((t, pos + 1)),
                    None if last.is_some() => break,
                    None => {}
                }
                pos += 1;
            }
            match last {
                Some((t, stop)) => {
                    pos = stop;
                    out.push((t, s[start..stop].to_string()));
                }
                None => out.push((
                    Tok::Error,
                    format!("error expected: keyword found '{}'", &s[start..pos]),
                )),
            }
        } else {
            while pos < end && !is_special(b[pos]) && !is_space(b[pos]) {
                pos += 1;
            }
            let word = &s[start..pos];
            out.push((keyword(word).unwrap_or(Tok::Identifier), word.to_string()));
        }
    }
}

/// Whether `in`/`notin` are keywords (after a key) or plain identifiers (values, keys).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

/// Upstream's recursive-descent label selector parser over the scanned tokens.
struct Parser {
    items: Vec<(Tok, String)>,
    pos: usize,
}

impl Parser {
    fn new(s: &str) -> Self {
        Parser {
            items: lex(s),
            pos: 0,
        }
    }

    fn item(&self, at: usize, ctx: Ctx) -> (Tok, String) {
        let (tok, lit) = self
            .items
            .get(at)
            .cloned()
            .unwrap_or((Tok::End, String::new()));
        match tok {
            Tok::In | Tok::NotIn if ctx == Ctx::Values => (Tok::Identifier, lit),
            _ => (tok, lit),
        }
    }

    fn lookahead(&self, ctx: Ctx) -> (Tok, String) {
        self.item(self.pos, ctx)
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, String) {
        let it = self.item(self.pos, ctx);
        self.pos += 1;
        it
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut out = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Ctx::Values);
            match tok {
                Tok::Identifier | Tok::DoesNotExist => {
                    out.push(self.requirement().map_err(SelectorError::Requirement)?);
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Tok::End => return Ok(out),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(Ctx::Values);
                            if t2 != Tok::Identifier && t2 != Tok::DoesNotExist {
                                return Err(SelectorError::Syntax(format!(
                                    "found '{l2}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(SelectorError::Syntax(format!(
                                "found '{l}', expected: ',' or 'end of string'"
                            )));
                        }
                    }
                }
                Tok::End => return Ok(out),
                _ => {
                    return Err(SelectorError::Syntax(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    )));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let (key, op) = self.key_and_inferred_operator()?;
        if let Some(op @ (Op::Exists | Op::DoesNotExist)) = op {
            return Requirement::new(&key, op, Vec::new());
        }
        let op = self.operator()?;
        let values = match op {
            Op::In | Op::NotIn => self.values()?,
            Op::DoesNotExist => Vec::new(),
            _ => self.exact_value()?,
        };
        Requirement::new(&key, op, values)
    }

    fn key_and_inferred_operator(&mut self) -> Result<(String, Option<Op>), String> {
        let mut op = None;
        let (mut tok, mut lit) = self.consume(Ctx::Values);
        if tok == Tok::DoesNotExist {
            op = Some(Op::DoesNotExist);
            (tok, lit) = self.consume(Ctx::Values);
        }
        if tok != Tok::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        let msgs = is_qualified_name(&lit);
        if !msgs.is_empty() {
            // Upstream passes a nil path here, which prints as `<nil>`.
            return Err(FieldError::invalid("<nil>", lit.as_str(), msgs.join("; ")).to_string());
        }
        let (next, _) = self.lookahead(Ctx::Values);
        if (next == Tok::End || next == Tok::Comma) && op.is_none() {
            op = Some(Op::Exists);
        }
        Ok((lit, op))
    }

    fn operator(&mut self) -> Result<Op, String> {
        let (tok, lit) = self.consume(Ctx::KeyAndOperator);
        Ok(match tok {
            Tok::DoesNotExist => Op::DoesNotExist,
            Tok::Equals => Op::Equals,
            Tok::DoubleEquals => Op::DoubleEquals,
            Tok::GreaterThan => Op::GreaterThan,
            Tok::LessThan => Op::LessThan,
            Tok::In => Op::In,
            Tok::NotIn => Op::NotIn,
            Tok::NotEquals => Op::NotEquals,
            _ => {
                return Err(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        })
    }

    fn values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume(Ctx::Values);
        if tok != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Ctx::Values);
        match tok {
            Tok::Identifier | Tok::Comma => {
                let list = self.identifiers()?;
                let (t, _) = self.consume(Ctx::Values);
                if t != Tok::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(list)
            }
            Tok::ClosedPar => {
                self.consume(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn identifiers(&mut self) -> Result<Vec<String>, String> {
        let mut out: Vec<String> = Vec::new();
        loop {
            let (tok, lit) = self.consume(Ctx::Values);
            match tok {
                Tok::Identifier => {
                    out.push(lit);
                    let (t2, l2) = self.lookahead(Ctx::Values);
                    match t2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(out),
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if out.is_empty() {
                        out.push(String::new());
                    }
                    let (t2, _) = self.lookahead(Ctx::Values);
                    if t2 == Tok::ClosedPar {
                        out.push(String::new());
                        return Ok(out);
                    }
                    if t2 == Tok::Comma {
                        self.consume(Ctx::Values);
                        out.push(String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        let (tok, _) = self.lookahead(Ctx::Values);
        if tok == Tok::End || tok == Tok::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Ctx::Values);
        if tok == Tok::Identifier {
            Ok(vec![lit])
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fields
// ---------------------------------------------------------------------------------------------

/// One field selector term: `field=value` (or `==`) or `field!=value`.
#[derive(Debug, Clone, PartialEq)]
struct Term {
    field: String,
    equal: bool,
    value: String,
}

/// A field selector: terms, all of which must hold. No terms selects everything.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSelector {
    terms: Vec<Term>,
}

impl FieldSelector {
    /// Parses `a=b,c!=d` with upstream's escaping (`\\`, `\,`, `\=` in values); `""` selects
    /// everything.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort();
        let mut terms = Vec::new();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let Some((field, equal, raw)) = split_term(part) else {
                return Err(SelectorError::FieldTerm {
                    selector: s.to_string(),
                    term: part.to_string(),
                });
            };
            terms.push(Term {
                field: field.to_string(),
                equal,
                value: unescape(raw)?,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// The selector that matches every object.
    pub fn everything() -> Self {
        FieldSelector { terms: Vec::new() }
    }

    /// Whether the selector has no terms.
    pub fn is_everything(&self) -> bool {
        self.terms.is_empty()
    }

    /// Rejects field labels the resource does not support, with upstream's message.
    pub fn check_supported(&self, res: &Resource) -> Result<(), SelectorError> {
        for t in &self.terms {
            supported(res, &t.field)?;
        }
        Ok(())
    }

    /// Whether `obj` (in `res`'s form) satisfies every term; an unknown or missing field reads
    /// as `""`, as upstream's `fields.Set`.
    pub fn matches(&self, res: &Resource, obj: &Value) -> bool {
        self.terms.iter().all(|t| {
            let got = field_value(res, obj, &t.field).unwrap_or_default();
            (got == t.value) == t.equal
        })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if t.equal { "=" } else { "!=" };
            write!(f, "{}{op}{}", t.field, escape(&t.value))?;
        }
        Ok(())
    }
}

/// Splits on commas not escaped by a backslash (the backslash stays in the term).
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    out.push(&s[start..]);
    out
}

/// Splits a term at the first operator: `!=`, then `==`, then `=` at each position.
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, equal) in [("!=", false), ("==", true), ("=", true)] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], equal, value));
            }
        }
    }
    None
}

/// Upstream `fields.EscapeValue`.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Upstream `fields.UnescapeValue`.
fn unescape(v: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(v.len());
    let mut in_slash = false;
    for c in v.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::Escape(format!("\\{c}")));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(SelectorError::Unescaped(c)),
            c => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::Escape("\\".to_string()));
    }
    Ok(out)
}

/// Field labels per kind as upstream's field label conversion funcs accept them; `None` for
/// kinds without one (they take `metadata.name` and `metadata.namespace` only).
fn conversion_labels(res: &Resource) -> Option<&'static [&'static str]> {
    Some(match (res.group, res.kind) {
        ("", "Pod") => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
            "spec.host",
        ],
        ("", "Node") => &["metadata.name", "spec.unschedulable"],
        ("", "ReplicationController") => {
            &["metadata.name", "metadata.namespace", "status.replicas"]
        }
        ("", "Event") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "metadata.namespace",
            "metadata.name",
        ],
        ("events.k8s.io", "Event") => &[
            "reason",
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reportingController",
            "type",
            "metadata.namespace",
            "metadata.name",
        ],
        ("", "Namespace") => &["status.phase", "metadata.name"],
        ("", "Secret") => &["type", "metadata.namespace", "metadata.name"],
        ("", "Service") => &[
            "metadata.namespace",
            "metadata.name",
            "spec.clusterIP",
            "spec.type",
        ],
        ("batch", "Job") => &["metadata.name", "metadata.namespace", "status.successful"],
        _ => return None,
    })
}

fn supported(res: &Resource, label: &str) -> Result<(), SelectorError> {
    match conversion_labels(res) {
        Some(labels) if labels.contains(&label) => Ok(()),
        Some(_) => Err(SelectorError::FieldNotSupported(label.to_string())),
        None if label == "metadata.name" || label == "metadata.namespace" => Ok(()),
        None => Err(SelectorError::FieldNotKnown(label.to_string())),
    }
}

/// The value a field selector compares for `field` on `obj` (in `res`'s form), as upstream's
/// per-kind `GetAttrs`: missing strings read `""`, bools `"true"`/`"false"`, counts in decimal.
/// `None` when the kind has no such selectable field.
pub fn field_value(res: &Resource, obj: &Value, field: &str) -> Option<String> {
    let s = |path: &[&str]| Some(text(obj, path));
    match field {
        "metadata.name" => return s(&["metadata", "name"]),
        "metadata.namespace" => return s(&["metadata", "namespace"]),
        _ => {}
    }
    match (res.group, res.kind, field) {
        ("", "Pod", "spec.nodeName" | "spec.host") => s(&["spec", "nodeName"]),
        ("", "Pod", "spec.restartPolicy") => s(&["spec", "restartPolicy"]),
        ("", "Pod", "spec.schedulerName") => s(&["spec", "schedulerName"]),
        ("", "Pod", "spec.serviceAccountName") => s(&["spec", "serviceAccountName"]),
        ("", "Pod", "spec.hostNetwork") => Some(flag(obj, &["spec", "hostNetwork"])),
        ("", "Pod", "status.phase") => s(&["status", "phase"]),
        ("", "Pod", "status.podIP") => {
            let first = text(obj, &["status", "podIPs", "0", "ip"]);
            if first.is_empty() {
                s(&["status", "podIP"])
            } else {
                Some(first)
            }
        }
        ("", "Pod", "status.nominatedNodeName") => s(&["status", "nominatedNodeName"]),
        ("", "Event", "source") => {
            let component = text(obj, &["source", "component"]);
            if component.is_empty() {
                s(&["reportingComponent"])
            } else {
                Some(component)
            }
        }
        ("", "Event", "reason" | "reportingComponent" | "type") => s(&[field]),
        ("", "Event", f) => {
            let sub = f.strip_prefix("involvedObject.")?;
            involved(sub).map(|sub| text(obj, &["involvedObject", sub]))
        }
        ("events.k8s.io", "Event", "reason" | "type") => s(&[field]),
        ("events.k8s.io", "Event", "reportingController" | "reportingComponent") => {
            s(&["reportingController"])
        }
        ("events.k8s.io", "Event", "source") => {
            let component = text(obj, &["deprecatedSource", "component"]);
            if component.is_empty() {
                s(&["reportingController"])
            } else {
                Some(component)
            }
        }
        ("events.k8s.io", "Event", f) => {
            let sub = f
                .strip_prefix("regarding.")
                .or_else(|| f.strip_prefix("involvedObject."))?;
            involved(sub).map(|sub| text(obj, &["regarding", sub]))
        }
        ("", "Secret", "type") => s(&["type"]),
        ("", "Namespace", "status.phase") => s(&["status", "phase"]),
        ("", "Node", "spec.unschedulable") => Some(flag(obj, &["spec", "unschedulable"])),
        ("", "ReplicationController", "status.replicas")
        | ("apps", "ReplicaSet", "status.replicas") => Some(count(obj, &["status", "replicas"])),
        ("batch", "Job", "status.successful") => Some(count(obj, &["status", "succeeded"])),
        ("", "Service", "spec.clusterIP") => s(&["spec", "clusterIP"]),
        ("", "Service", "spec.type") => s(&["spec", "type"]),
        _ => None,
    }
}

/// The selectable fields of an event's object reference.
fn involved(sub: &str) -> Option<&str> {
    [
        "kind",
        "namespace",
        "name",
        "uid",
        "apiVersion",
        "resourceVersion",
        "fieldPath",
    ]
    .into_iter()
    .find(|f| *f == sub)
}

fn lookup<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, seg| match v {
        Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => v.get(seg),
    })
}

fn text(obj: &Value, path: &[&str]) -> String {
    lookup(obj, path)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn flag(obj: &Value, path: &[&str]) -> String {
    lookup(obj, path)
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .to_string()
}

fn count(obj: &Value, path: &[&str]) -> String {
    lookup(obj, path)
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find;
    use proptest::prelude::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_and_prints_canonically() {
        let cases = [
            ("", ""),
            ("x=a", "x=a"),
            ("x==a", "x==a"),
            ("  x != a ", "x!=a"),
            ("b=c,a=d", "a=d,b=c"),
            ("x in (b,a,a)", "x in (a,b)"),
            ("x notin(a)", "x notin (a)"),
            ("x in ()", "x in ()"),
            ("x in (,a)", "x in (,a)"),
            ("!x", "!x"),
            ("x", "x"),
            ("x=", "x="),
            ("x>1,y<2", "x>1,y<2"),
            ("example.com/app=v1", "example.com/app=v1"),
            ("in=notin", "in=notin"),
        ];
        for (input, want) in cases {
            let sel = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(sel.to_string(), want, "{input}");
        }
    }

    #[test]
    fn rejects_with_upstream_messages() {
        let cases = [
            ("x=a b", "found 'b', expected: ',' or 'end of string'"),
            ("x=a,", "found '', expected: identifier after ','"),
            (
                "=a",
                "found '=', expected: !, identifier, or 'end of string'",
            ),
            (
                "x in a",
                "unable to parse requirement: found 'a' expected: '('",
            ),
            (
                "x in (a",
                "unable to parse requirement: found '', expected: ',' or ')'",
            ),
            (
                "x in (a b)",
                "unable to parse requirement: found 'b', expected: ',' or ')'",
            ),
            (
                "x=(a",
                "unable to parse requirement: found '(', expected: identifier",
            ),
            (
                "x y",
                "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt",
            ),
            (
                "x>a",
                "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer",
            ),
            (
                "x=-a",
                "unable to parse requirement: values[0][x]: Invalid value: \"-a\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ),
            (
                "-x=a",
                "unable to parse requirement: <nil>: Invalid value: \"-x\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            ),
        ];
        for (input, want) in cases {
            let err = LabelSelector::parse(input).expect_err(input);
            assert_eq!(err.to_string(), want, "{input}");
        }
    }

    #[test]
    fn matches_like_upstream() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        let yes = [
            "",
            "app=web",
            "app==web",
            "app!=db",
            "missing!=x",
            "app in (db,web)",
            "app notin (db)",
            "missing notin (db)",
            "app",
            "!missing",
            "n>4",
            "n<6",
            "app=web,tier=front",
        ];
        let no = [
            "app=db",
            "missing=x",
            "app in (db)",
            "missing in (x)",
            "app notin (web)",
            "missing",
            "!app",
            "n>5",
            "app>1",
            "missing<1",
            "app=web,tier=back",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).expect(s).matches(&l), "{s}");
        }
        for s in no {
            assert!(!LabelSelector::parse(s).expect(s).matches(&l), "{s}");
        }
        let as_json = json!({"app": "web"});
        assert!(
            LabelSelector::parse("app=web")
                .expect("ok")
                .matches(&as_json)
        );
        assert!(
            LabelSelector::parse("!app")
                .expect("ok")
                .matches(&Value::Null)
        );
    }

    #[test]
    fn converts_label_selector_objects() {
        let sel: meta::LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"b": "1", "a": "2"},
            "matchExpressions": [
                {"key": "c", "operator": "In", "values": ["y", "x"]},
                {"key": "d", "operator": "DoesNotExist"}
            ]
        }))
        .expect("selector");
        let s = LabelSelector::from_meta(&sel).expect("valid");
        assert_eq!(s.to_string(), "a=2,b=1,c in (x,y),!d");
        assert_eq!(
            s,
            LabelSelector::parse("a=2,b=1,c in (x,y),!d").expect("ok")
        );
        assert!(
            LabelSelector::from_meta(&meta::LabelSelector::default())
                .expect("empty")
                .is_everything()
        );

        let bad: meta::LabelSelector = serde_json::from_value(json!({
            "matchExpressions": [{"key": "c", "operator": "Foo", "values": ["x"]}]
        }))
        .expect("selector");
        assert_eq!(
            LabelSelector::from_meta(&bad)
                .expect_err("bad op")
                .to_string(),
            "\"Foo\" is not a valid label selector operator"
        );
        let empty_in: meta::LabelSelector = serde_json::from_value(json!({
            "matchExpressions": [{"key": "c", "operator": "In", "values": []}]
        }))
        .expect("selector");
        assert_eq!(
            LabelSelector::from_meta(&empty_in)
                .expect_err("empty in")
                .to_string(),
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
        );
    }

    #[test]
    fn field_selectors_parse_escape_and_print() {
        let s = FieldSelector::parse("b=x\\,y,a!=1,c==\\\\").expect("ok");
        assert_eq!(s.to_string(), "a!=1,b=x\\,y,c=\\\\");
        assert_eq!(FieldSelector::parse(&s.to_string()).expect("ok"), s);
        assert!(FieldSelector::parse("").expect("ok").is_everything());
        assert_eq!(
            FieldSelector::parse("a").expect_err("no op").to_string(),
            "invalid selector: 'a'; can't understand 'a'"
        );
        assert_eq!(
            FieldSelector::parse("a=b\\c").expect_err("esc").to_string(),
            "invalid field selector: invalid escape sequence: \\c"
        );
        assert_eq!(
            FieldSelector::parse("a=b=c")
                .expect_err("unescaped")
                .to_string(),
            "invalid field selector: unescaped character in value: ="
        );
        assert_eq!(
            FieldSelector::parse("a=b\\")
                .expect_err("trailing")
                .to_string(),
            "invalid field selector: invalid escape sequence: \\"
        );
    }

    #[test]
    fn field_labels_are_checked_per_kind() {
        let pods = find("", "v1", "pods").expect("pods");
        let cms = find("", "v1", "configmaps").expect("configmaps");
        let sel = FieldSelector::parse("status.hostIP=1.2.3.4").expect("ok");
        assert_eq!(
            sel.check_supported(pods).expect_err("pods").to_string(),
            "field label not supported: status.hostIP"
        );
        assert!(
            FieldSelector::parse("spec.nodeName=n,metadata.name=a")
                .expect("ok")
                .check_supported(pods)
                .is_ok()
        );
        assert_eq!(
            FieldSelector::parse("data.x=1")
                .expect("ok")
                .check_supported(cms)
                .expect_err("configmaps")
                .to_string(),
            "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
    }

    #[test]
    fn field_values_follow_get_attrs() {
        let pods = find("", "v1", "pods").expect("pods");
        let pod = json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"nodeName": "n1"},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}]}
        });
        assert_eq!(
            field_value(pods, &pod, "spec.hostNetwork").as_deref(),
            Some("false")
        );
        assert_eq!(
            field_value(pods, &pod, "status.podIP").as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(field_value(pods, &pod, "spec.host").as_deref(), Some("n1"));
        assert_eq!(
            field_value(pods, &pod, "spec.restartPolicy").as_deref(),
            Some("")
        );
        assert_eq!(field_value(pods, &pod, "spec.bogus"), None);
        let sel = FieldSelector::parse("status.phase=Running,metadata.namespace!=kube-system")
            .expect("ok");
        assert!(sel.matches(pods, &pod));
        let sel = FieldSelector::parse("spec.nodeName=").expect("ok");
        assert!(!sel.matches(pods, &pod));

        let events = find("events.k8s.io", "v1", "events").expect("events");
        let ev =
            json!({"regarding": {"kind": "Pod", "name": "p"}, "reportingController": "kubelet"});
        assert!(
            FieldSelector::parse("regarding.kind=Pod,reportingController=kubelet")
                .expect("ok")
                .matches(events, &ev)
        );
        let core_events = find("", "v1", "events").expect("events");
        let cev = json!({"involvedObject": {"kind": "Pod"}, "reportingComponent": "kubelet"});
        assert_eq!(
            field_value(core_events, &cev, "source").as_deref(),
            Some("kubelet")
        );
        let jobs = find("batch", "v1", "jobs").expect("jobs");
        assert_eq!(
            field_value(
                jobs,
                &json!({"status": {"succeeded": 3}}),
                "status.successful"
            )
            .as_deref(),
            Some("3")
        );
        let nodes = find("", "v1", "nodes").expect("nodes");
        assert_eq!(
            field_value(
                nodes,
                &json!({"spec": {"unschedulable": true}}),
                "spec.unschedulable"
            )
            .as_deref(),
            Some("true")
        );
    }

    /// A requirement as the model sees it: key, operator text, values.
    fn arb_requirement() -> impl Strategy<Value = (String, &'static str, Vec<String>)> {
        let key = prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("in".to_string()),
            Just("x.io/c".to_string()),
            "[a-z][a-z0-9]{0,3}",
        ];
        let value = prop_oneof![Just(String::new()), "[a-z0-9]{1,3}", Just("in".to_string())];
        (
            key,
            prop::sample::select(vec!["=", "==", "!=", "in", "notin", "exists", "!"]),
            prop::collection::btree_set(value, 1..4).prop_map(|v| v.into_iter().collect()),
        )
    }

    fn render(reqs: &[(String, &'static str, Vec<String>)]) -> String {
        reqs.iter()
            .map(|(k, op, vals)| match *op {
                "exists" => k.clone(),
                "!" => format!("!{k}"),
                "in" | "notin" => format!("{k} {op} ({})", vals.join(",")),
                _ => format!("{k}{op}{}", vals[0]),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn model(reqs: &[(String, &'static str, Vec<String>)], l: &BTreeMap<String, String>) -> bool {
        reqs.iter().all(|(k, op, vals)| {
            let got = l.get(k);
            match *op {
                "=" | "==" => got == Some(&vals[0]),
                "!=" => got != Some(&vals[0]),
                "in" => got.is_some_and(|g| vals.contains(g)),
                "notin" => !got.is_some_and(|g| vals.contains(g)),
                "exists" => got.is_some(),
                _ => got.is_none(),
            }
        })
    }

    proptest! {
        #[test]
        fn display_round_trips(reqs in prop::collection::vec(arb_requirement(), 0..5)) {
            let sel = LabelSelector::parse(&render(&reqs)).expect("generated selectors parse");
            prop_assert_eq!(LabelSelector::parse(&sel.to_string()).expect("reparse"), sel);
        }

        #[test]
        fn matching_agrees_with_model(
            reqs in prop::collection::vec(arb_requirement(), 0..4),
            l in prop::collection::btree_map(
                prop_oneof![Just("a".to_string()), Just("b".to_string()), Just("in".to_string())],
                prop_oneof![Just(String::new()), "[a-z0-9]{1,2}", Just("in".to_string())],
                0..3,
            ),
        ) {
            let sel = LabelSelector::parse(&render(&reqs)).expect("generated selectors parse");
            prop_assert_eq!(sel.matches(&l), model(&reqs, &l));
        }

        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = LabelSelector::parse(&s);
            let _ = FieldSelector::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_selector_alphabet(s in "[a-c!=(), \\\\in]{0,20}") {
            if let Ok(sel) = LabelSelector::parse(&s) {
                prop_assert_eq!(LabelSelector::parse(&sel.to_string()).expect("reparse"), sel);
            }
            if let Ok(sel) = FieldSelector::parse(&s) {
                // `==` prints as `=`, which may sort the terms differently once; after one
                // round the form is canonical and holds the same terms.
                let once = FieldSelector::parse(&sel.to_string()).expect("reparse");
                let mut a = sel.terms.clone();
                let mut b = once.terms.clone();
                a.sort_by(|x, y| (&x.field, &x.value, x.equal).cmp(&(&y.field, &y.value, y.equal)));
                b.sort_by(|x, y| (&x.field, &x.value, x.equal).cmp(&(&y.field, &y.value, y.equal)));
                prop_assert_eq!(a, b);
                prop_assert_eq!(FieldSelector::parse(&once.to_string()).expect("reparse"), once);
            }
        }
    }
}
