//! Server-side apply and `metadata.managedFields`, as upstream's structured-merge-diff does them:
//! field sets per manager (`FieldsV1`), the merge of an applied configuration into the live
//! object, conflicts with other managers, pruning of fields an applier stopped applying, and the
//! ownership moves of ordinary (`Update`) writes. The object's shape (structs, granular maps,
//! atomic values, associative lists and their keys) comes from the OpenAPI schemas.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value, json};

use crate::openapi;
use crate::registry::{Resource, Subresource};

/// A field another manager owns with a different value than the applied one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The manager as upstream prints it: `"kubectl"`, or for `Update` managers
    /// `"kubectl-client-side-apply" using apps/v1` (with ` with subresource "status"` when set).
    pub manager: String,
    /// The field path as upstream prints it: `.spec.replicas`,
    /// `.spec.containers[name="nginx"].image`.
    pub field: String,
}

/// Why an apply failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplyError {
    /// Fields owned by other managers would change; the server answers 409 with this message
    /// and one `FieldManagerConflict` cause per conflict (`conflict with <manager>`, field).
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The applied configuration cannot be merged (not an object, list items without or with
    /// duplicate keys).
    #[error("{0}")]
    Invalid(String),
}

fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [one] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            one.manager, one.field
        );
    }
    let mut by_manager: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in conflicts {
        by_manager.entry(&c.manager).or_default().push(&c.field);
    }
    let mut lines = Vec::new();
    for (manager, fields) in by_manager {
        lines.push(format!("conflicts with {manager}:"));
        lines.extend(fields.iter().map(|f| format!("- {f}")));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pe {
    /// A struct field or map key (`f:`).
    Field(String),
    /// An associative list item by its keys, as compact JSON with sorted keys (`k:`).
    Key(String),
    /// A set item by its value, as JSON (`v:`).
    Val(String),
}

impl Pe {
    fn encode(&self) -> String {
        match self {
            Pe::Field(name) => format!("f:{name}"),
            Pe::Key(json) => format!("k:{json}"),
            Pe::Val(json) => format!("v:{json}"),
        }
    }

    fn decode(text: &str) -> Option<Pe> {
        let (kind, rest) = text.split_at_checked(2)?;
        match kind {
            "f:" => Some(Pe::Field(rest.to_string())),
            "k:" => Some(Pe::Key(rest.to_string())),
            "v:" => Some(Pe::Val(rest.to_string())),
            _ => None,
        }
    }
}

impl fmt::Display for Pe {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Pe::Field(name) => write!(f, ".{name}"),
            Pe::Key(json) => {
                let pairs: Vec<String> = match serde_json::from_str::<Map<String, Value>>(json) {
                    Ok(map) => map.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                    Err(_) => vec![json.clone()],
                };
                write!(f, "[{}]", pairs.join(","))
            }
            Pe::Val(json) => write!(f, "[={json}]"),
        }
    }
}

type Path = Vec<Pe>;

fn path_string(path: &[Pe]) -> String {
    path.iter().map(Pe::to_string).collect()
}

/// A set of field paths, as a trie; `member` marks the path leading to the node as in the set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Set {
    member: bool,
    children: BTreeMap<Pe, Set>,
}

impl Set {
    fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    fn insert(&mut self, path: &[Pe]) {
        match path.split_first() {
            None => self.member = true,
            Some((first, rest)) => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    fn contains(&self, path: &[Pe]) -> bool {
        match path.split_first() {
            None => self.member,
            Some((first, rest)) => self.children.get(first).is_some_and(|c| c.contains(rest)),
        }
    }

    /// Whether the set holds `path` or a path below it.
    fn covers(&self, path: &[Pe]) -> bool {
        match path.split_first() {
            None => !self.is_empty(),
            Some((first, rest)) => self.children.get(first).is_some_and(|c| c.covers(rest)),
        }
    }

    /// Removes `path` from the set (not the paths below it).
    fn remove(&mut self, path: &[Pe]) {
        match path.split_first() {
            None => self.member = false,
            Some((first, rest)) => {
                if let Some(child) = self.children.get_mut(first) {
                    child.remove(rest);
                    if child.is_empty() {
                        self.children.remove(first);
                    }
                }
            }
        }
    }

    /// Every member path, in order.
    fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect(prefix, out);
            prefix.pop();
        }
    }

    fn union(&mut self, other: &Set) {
        for p in other.paths() {
            self.insert(&p);
        }
    }

    fn difference(&mut self, other: &Set) {
        for p in other.paths() {
            self.remove(&p);
        }
    }

    fn intersection(&self, other: &Set) -> Set {
        let mut out = Set::default();
        for p in other.paths().into_iter().filter(|p| self.contains(p)) {
            out.insert(&p);
        }
        out
    }

    /// The `FieldsV1` form.
    fn to_fields(&self) -> Value {
        let mut out = Map::new();
        if self.member && !self.children.is_empty() {
            out.insert(".".into(), json!({}));
        }
        for (pe, child) in &self.children {
            out.insert(pe.encode(), child.to_fields());
        }
        Value::Object(out)
    }

    fn from_fields(fields: &Value) -> Set {
        let mut out = Set::default();
        if let Value::Object(map) = fields {
            for (key, child) in map {
                if key == "." {
                    out.member = true;
                    continue;
                }
                let Some(pe) = Pe::decode(key) else { continue };
                let mut set = Set::from_fields(child);
                if child.as_object().is_some_and(Map::is_empty) {
                    set.member = true;
                }
                out.children.insert(pe, set);
            }
        }
        out
    }
}

/// How a value merges, from its schema.
enum Node<'a> {
    /// Scalars, atomic structs and maps, atomic lists: owned and replaced whole.
    Leaf,
    /// A struct: its fields have their own schemas.
    Struct(&'a Map<String, Value>),
    /// A granular map: every key is owned on its own; values have the element schema (`None`:
    /// shape deduced from the value).
    Map(Option<&'a Value>),
    /// An associative list or a set, with the item schema.
    List(ListKind, Option<&'a Value>),
}

enum ListKind {
    Keys(Vec<String>),
    Set,
}

fn node<'a>(schema: Option<&'a Value>, value: &Value) -> Node<'a> {
    let Some(schema) = schema.map(openapi::resolve) else {
        return deduced(value);
    };
    if schema.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic") {
        return Node::Leaf;
    }
    if let Some(Value::Object(props)) = schema.get("properties") {
        return if value.is_object() {
            Node::Struct(props)
        } else {
            Node::Leaf
        };
    }
    if let Some(values @ Value::Object(_)) = schema.get("additionalProperties") {
        return if value.is_object() {
            Node::Map(Some(values))
        } else {
            Node::Leaf
        };
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("array") if value.is_array() => {
            let items = schema.get("items");
            match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("map") => {
                    let keys = schema
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|k| k.iter().filter_map(Value::as_str).map(String::from))
                        .map(Iterator::collect)
                        .unwrap_or_default();
                    Node::List(ListKind::Keys(keys), items)
                }
                Some("set") => Node::List(ListKind::Set, items),
                _ => Node::Leaf,
            }
        }
        Some("object") | None if schema.get("x-kubernetes-int-or-string").is_none() => {
            deduced(value)
        }
        _ => Node::Leaf,
    }
}

/// Free-form values: objects are granular maps, everything else is atomic.
fn deduced<'a>(value: &Value) -> Node<'a> {
    if value.is_object() {
        Node::Map(None)
    } else {
        Node::Leaf
    }
}

/// Defaults upstream's schemas give key fields, used when an item leaves them out.
fn key_default(key: &str) -> Option<Value> {
    (key == "protocol").then(|| json!("TCP"))
}

/// The path element of a list item.
fn item_pe(kind: &ListKind, item: &Value) -> Result<Pe, ApplyError> {
    match kind {
        ListKind::Set => Ok(Pe::Val(item.to_string())),
        ListKind::Keys(keys) => {
            let mut out = Map::new();
            for key in keys {
                if let Some(v) = item.get(key).cloned().or_else(|| key_default(key)) {
                    out.insert(key.clone(), v);
                }
            }
            if out.is_empty() {
                return Err(ApplyError::Invalid(format!(
                    "associative list with keys has an element that omits key field {:?}",
                    keys.first().map(String::as_str).unwrap_or_default()
                )));
            }
            Ok(Pe::Key(Value::Object(out).to_string()))
        }
    }
}

/// The items of a list by path element, in order; duplicates are an error.
fn index_items<'v>(
    kind: &ListKind,
    items: &'v [Value],
    path: &[Pe],
) -> Result<Vec<(Pe, &'v Value)>, ApplyError> {
    let mut out: Vec<(Pe, &Value)> = Vec::with_capacity(items.len());
    for item in items {
        let pe = item_pe(kind, item)?;
        if out.iter().any(|(p, _)| *p == pe) {
            return Err(ApplyError::Invalid(format!(
                "{}: duplicate entries for key {pe}",
                path_string(path)
            )));
        }
        out.push((pe, item));
    }
    Ok(out)
}

/// The fields a (partial) object sets: upstream's `ToFieldSet`.
fn to_set(
    schema: Option<&Value>,
    value: &Value,
    path: &mut Path,
    set: &mut Set,
) -> Result<(), ApplyError> {
    if is_empty_container(value) && !path.is_empty() {
        set.insert(path);
        return Ok(());
    }
    match node(schema, value) {
        Node::Leaf => set.insert(path),
        Node::Struct(props) => {
            for (key, child) in value.as_object().into_iter().flatten() {
                path.push(Pe::Field(key.clone()));
                if !props.contains_key(key) {
                    set.insert(path);
                }
                to_set(props.get(key), child, path, set)?;
                path.pop();
            }
        }
        Node::Map(values) => {
            for (key, child) in value.as_object().into_iter().flatten() {
                path.push(Pe::Field(key.clone()));
                set.insert(path);
                to_set(values, child, path, set)?;
                path.pop();
            }
        }
        Node::List(kind, items) => {
            let list = value.as_array().map(Vec::as_slice).unwrap_or_default();
            for (pe, item) in index_items(&kind, list, path)? {
                path.push(pe);
                set.insert(path);
                to_set(items, item, path, set)?;
                path.pop();
            }
        }
    }
    Ok(())
}

fn is_empty_container(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// What changed from one object to another: upstream's `Compare`.
#[derive(Default)]
struct Comparison {
    added: Set,
    modified: Set,
    removed: Set,
}

fn compare(
    schema: Option<&Value>,
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    path: &mut Path,
    out: &mut Comparison,
) -> Result<(), ApplyError> {
    let (Some(probe), other) = (rhs.or(lhs), lhs.and(rhs)) else {
        return Ok(());
    };
    let both_empty = lhs.is_none_or(is_empty_container) && rhs.is_none_or(is_empty_container);
    let leaf = |out: &mut Comparison| match (lhs, rhs) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        (Some(l), Some(r)) if l != r => out.modified.insert(path),
        _ => {}
    };
    let kind = node(schema, probe);
    // Both sides must have the node's shape to descend.
    let same_shape = other
        .is_none_or(|o| o.is_object() == probe.is_object() && o.is_array() == probe.is_array());
    if both_empty || !same_shape || matches!(kind, Node::Leaf) {
        leaf(out);
        return Ok(());
    }
    if !path.is_empty() {
        match (lhs, rhs) {
            (None, Some(_)) => out.added.insert(path),
            (Some(_), None) => out.removed.insert(path),
            _ => {}
        }
    }
    match kind {
        Node::Leaf => {}
        Node::Struct(_) | Node::Map(_) => {
            let empty = Map::new();
            let l = lhs.and_then(Value::as_object).unwrap_or(&empty);
            let r = rhs.and_then(Value::as_object).unwrap_or(&empty);
            let keys: std::collections::BTreeSet<&String> = l.keys().chain(r.keys()).collect();
            for key in keys {
                let child = match &kind {
                    Node::Struct(props) => props.get(key.as_str()),
                    Node::Map(values) => *values,
                    _ => None,
                };
                path.push(Pe::Field(key.clone()));
                compare(child, l.get(key.as_str()), r.get(key.as_str()), path, out)?;
                path.pop();
            }
        }
        Node::List(list, items) => {
            let l = index_items(
                &list,
                lhs.and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default(),
                path,
            )?;
            let r = index_items(
                &list,
                rhs.and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default(),
                path,
            )?;
            let mut pes: Vec<&Pe> = l.iter().map(|(p, _)| p).collect();
            pes.extend(
                r.iter()
                    .map(|(p, _)| p)
                    .filter(|p| !l.iter().any(|(q, _)| q == *p)),
            );
            for pe in pes {
                path.push(pe.clone());
                compare(items, find_item(&l, pe), find_item(&r, pe), path, out)?;
                path.pop();
            }
        }
    }
    Ok(())
}

fn find_item<'v>(side: &[(Pe, &'v Value)], pe: &Pe) -> Option<&'v Value> {
    side.iter().find(|(p, _)| p == pe).map(|(_, v)| *v)
}

/// Merges the applied configuration into the live value: upstream's `Merge`.
fn merge(
    schema: Option<&Value>,
    lhs: &Value,
    rhs: &Value,
    path: &mut Path,
) -> Result<Value, ApplyError> {
    let same_shape = lhs.is_object() == rhs.is_object() && lhs.is_array() == rhs.is_array();
    if !same_shape {
        return Ok(rhs.clone());
    }
    match node(schema, rhs) {
        Node::Leaf => Ok(rhs.clone()),
        kind @ (Node::Struct(_) | Node::Map(_)) => {
            let (Value::Object(l), Value::Object(r)) = (lhs, rhs) else {
                return Ok(rhs.clone());
            };
            let mut out = l.clone();
            for (key, value) in r {
                let child = match &kind {
                    Node::Struct(props) => props.get(key),
                    Node::Map(values) => *values,
                    _ => None,
                };
                path.push(Pe::Field(key.clone()));
                let merged = match l.get(key) {
                    Some(live) => merge(child, live, value, path)?,
                    None => value.clone(),
                };
                path.pop();
                out.insert(key.clone(), merged);
            }
            Ok(Value::Object(out))
        }
        Node::List(kind, items) => {
            let (Value::Array(l), Value::Array(r)) = (lhs, rhs) else {
                return Ok(rhs.clone());
            };
            let l = index_items(&kind, l, path)?;
            let r = index_items(&kind, r, path)?;
            merge_list(items, &l, &r, path)
        }
    }
}

/// Upstream's list merge order: shared items in the applied order, live-only items where they
/// were, new items where the applied list has them.
fn merge_list(
    items: Option<&Value>,
    l: &[(Pe, &Value)],
    r: &[(Pe, &Value)],
    path: &mut Path,
) -> Result<Value, ApplyError> {
    let in_r = |pe: &Pe| find_item(r, pe);
    let in_l = |pe: &Pe| find_item(l, pe);
    let mut shared = r.iter().map(|(p, _)| p).filter(|p| in_l(p).is_some());
    let mut next_shared = shared.next();
    let mut out = Vec::with_capacity(l.len().max(r.len()));
    let (mut li, mut ri) = (0, 0);
    let merge_item = |pe: &Pe, live: Option<&Value>, applied: &Value, path: &mut Path| {
        path.push(pe.clone());
        let merged = match live {
            Some(live) => merge(items, live, applied, path),
            None => Ok(applied.clone()),
        };
        path.pop();
        merged
    };
    while li < l.len() || ri < r.len() {
        if li < l.len() && ri < r.len() {
            let pe = &l[li].0;
            if *pe == r[ri].0 {
                out.push(merge_item(pe, Some(l[li].1), r[ri].1, path)?);
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if in_r(pe).is_some() && next_shared.is_some_and(|s| s != pe) {
                li += 1;
                continue;
            }
        }
        if li < l.len() && in_r(&l[li].0).is_none() {
            out.push(l[li].1.clone());
            li += 1;
            continue;
        }
        if ri < r.len() {
            let pe = &r[ri].0;
            out.push(merge_item(pe, in_l(pe), r[ri].1, path)?);
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.next();
            }
            continue;
        }
        li += 1;
    }
    Ok(Value::Array(out))
}

/// Removes the value at `path` from `value` (the whole subtree).
fn remove_path(schema: Option<&Value>, value: &mut Value, path: &[Pe]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let kind = node(schema, value);
    match (first, value) {
        (Pe::Field(name), Value::Object(map)) => {
            if rest.is_empty() {
                map.remove(name);
                return;
            }
            let child = match &kind {
                Node::Struct(props) => props.get(name),
                Node::Map(values) => *values,
                _ => None,
            };
            if let Some(v) = map.get_mut(name) {
                remove_path(child, v, rest);
            }
        }
        (pe, Value::Array(list)) => {
            let Node::List(list_kind, items) = kind else {
                return;
            };
            let Some(i) = list
                .iter()
                .position(|item| item_pe(&list_kind, item).is_ok_and(|p| p == *pe))
            else {
                return;
            };
            if rest.is_empty() {
                list.remove(i);
            } else if let Some(item) = list.get_mut(i) {
                remove_path(items, item, rest);
            }
        }
        _ => {}
    }
}

/// Paths the field manager never records (upstream's stripped metadata).
fn strip_meta(set: &mut Set) {
    for field in ["apiVersion", "kind"] {
        set.children.remove(&Pe::Field(field.into()));
    }
    let meta = Pe::Field("metadata".into());
    if let Some(m) = set.children.get_mut(&meta) {
        m.member = false;
        for field in [
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "generation",
            "managedFields",
            "resourceVersion",
        ] {
            m.children.remove(&Pe::Field(field.into()));
        }
        if m.is_empty() {
            set.children.remove(&meta);
        }
    }
}

/// One `managedFields` entry.
#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: String,
    set: Set,
}

impl Entry {
    /// Upstream's manager identity: appliers are one manager across versions.
    fn same(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == "Apply" || self.api_version == other.api_version)
    }

    /// The manager as conflict messages print it.
    fn display(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            out.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }

    fn decode(value: &Value) -> Entry {
        let text = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Entry {
            manager: text("manager"),
            operation: text("operation"),
            api_version: text("apiVersion"),
            time: value.get("time").and_then(Value::as_str).map(String::from),
            subresource: text("subresource"),
            set: value
                .get("fieldsV1")
                .map(Set::from_fields)
                .unwrap_or_default(),
        }
    }

    fn encode(&self) -> Value {
        let mut out = Map::new();
        out.insert("manager".into(), self.manager.clone().into());
        out.insert("operation".into(), self.operation.clone().into());
        out.insert("apiVersion".into(), self.api_version.clone().into());
        if let Some(time) = &self.time {
            out.insert("time".into(), time.clone().into());
        }
        out.insert("fieldsType".into(), "FieldsV1".into());
        out.insert("fieldsV1".into(), self.set.to_fields());
        if !self.subresource.is_empty() {
            out.insert("subresource".into(), self.subresource.clone().into());
        }
        Value::Object(out)
    }
}

fn decode_entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .map(Entry::decode)
                .filter(|e| !e.set.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Writes the entries into the object, in upstream's order (Apply before Update, then by time,
/// manager, version).
fn write_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|a, b| {
        (
            &a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let encoded: Vec<Value> = entries.iter().map(Entry::encode).collect();
    if let Some(Value::Object(meta)) = obj
        .as_object_mut()
        .map(|o| o.entry("metadata").or_insert_with(|| json!({})))
    {
        if encoded.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(encoded));
        }
    }
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(Value::Object(meta)) = out.get_mut("metadata") {
        meta.remove("managedFields");
    }
    out
}

fn root_schema(res: &Resource) -> Option<&'static Value> {
    openapi::schema_name(res.group, res.version, res.kind)
        .and_then(|name| openapi::definitions().get(&name))
}

/// Drops `null` members of objects: an applied `null` sets nothing.
fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// Applies `applied` (the user's partial object) as `manager` onto `live` (None = create) and
/// returns the merged object with updated metadata.managedFields (operation Apply). Fields
/// owned by other managers with different values conflict unless `force` (then ownership
/// moves). Fields the manager applied before and no longer applies are removed unless another
/// manager owns them.
pub fn apply(
    res: &Resource,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    if !applied.is_object() {
        return Err(ApplyError::Invalid(
            "the applied configuration must be an object".into(),
        ));
    }
    let schema = root_schema(res);
    let mut applied = without_managed_fields(&strip_nulls(applied));
    if res.has(Subresource::Status)
        && let Some(obj) = applied.as_object_mut()
    {
        obj.remove("status");
    }
    let live_clean = live
        .map(without_managed_fields)
        .unwrap_or_else(|| json!({}));
    let mut entries = live.map(decode_entries).unwrap_or_default();
    let me = Entry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version: res.api_version(),
        time: Some(now.to_string()),
        subresource: String::new(),
        set: Set::default(),
    };

    let mut config_set = Set::default();
    to_set(schema, &applied, &mut Vec::new(), &mut config_set)?;
    strip_meta(&mut config_set);
    let mut merged = merge(schema, &live_clean, &applied, &mut Vec::new())?;

    // Prune what this manager applied last time and no longer applies, unless others own it.
    let last = entries
        .iter()
        .find(|e| e.same(&me))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let others: Vec<&Entry> = entries.iter().filter(|e| !e.same(&me)).collect();
    let mut dropped = last.clone();
    dropped.difference(&config_set);
    for path in dropped.paths() {
        let owned = others.iter().any(|e| e.set.covers(&path));
        if !owned && !config_set.covers(&path) {
            remove_path(schema, &mut merged, &path);
        }
    }

    let mut cmp = Comparison::default();
    compare(
        schema,
        Some(&live_clean),
        Some(&merged),
        &mut Vec::new(),
        &mut cmp,
    )?;
    let mut changed = cmp.modified.clone();
    changed.union(&cmp.added);
    let mut conflicts = Vec::new();
    for entry in entries.iter_mut().filter(|e| !e.same(&me)) {
        let clash = entry.set.intersection(&changed);
        if force {
            entry.set.difference(&clash);
        } else {
            conflicts.extend(clash.paths().iter().map(|p| Conflict {
                manager: entry.display(),
                field: path_string(p),
            }));
        }
        entry.set.difference(&cmp.removed);
    }
    if !conflicts.is_empty() {
        return Err(ApplyError::Conflicts(conflicts));
    }

    let previous = entries.iter().position(|e| e.same(&me));
    let time = match previous.map(|i| &entries[i]) {
        Some(prev) if prev.set == config_set => prev.time.clone(),
        _ => me.time.clone(),
    };
    if let Some(i) = previous {
        entries.remove(i);
    }
    entries.push(Entry {
        set: config_set,
        time,
        ..me
    });
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// The parts of a created object present in upstream's zero value of its kind: value structs
/// (`spec`, `template`, …) and required lists (`containers`, serialized as `null`), so that
/// creating marks only pointers, maps, optional lists and list items as added containers (`.`).
fn zero_skeleton(schema: Option<&Value>, obj: &Value) -> Value {
    const VALUE_STRUCTS: &[&str] = &["metadata", "spec", "status", "template", "jobTemplate"];
    let Node::Struct(props) = node(schema, obj) else {
        return json!({});
    };
    let required: Vec<&str> = schema
        .map(openapi::resolve)
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    for (key, value) in obj.as_object().into_iter().flatten() {
        if value.is_object() && VALUE_STRUCTS.contains(&key.as_str()) {
            out.insert(key.clone(), zero_skeleton(props.get(key), value));
        } else if value.is_array() && required.contains(&key.as_str()) {
            out.insert(key.clone(), json!([]));
        }
    }
    Value::Object(out)
}

/// Adds to `target` what `skeleton` has and it lacks.
fn fill(target: &mut Value, skeleton: &Value) {
    if let (Value::Object(target), Value::Object(skeleton)) = (target, skeleton) {
        for (key, value) in skeleton {
            match target.get_mut(key) {
                Some(existing) => fill(existing, value),
                None => {
                    target.insert(key.clone(), value.clone());
                }
            }
        }
    }
}

/// Records ownership for a non-apply write (operation Update) of `manager`: fields changed
/// from `old` to `new` (all fields on create) move to it. Managed fields the client sent in
/// `new` replace the stored ones when they are not empty, as upstream allows.
pub fn track_update(
    res: &Resource,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    now: &str,
) {
    track(res, "", old, new, manager, now);
}

/// Records ownership for a write through a subresource (`status`, `scale`) of the object:
/// the entry carries `subresource`, and a status write owns only `.status`.
pub fn track_subresource_update(
    res: &Resource,
    subresource: &str,
    old: &Value,
    new: &mut Value,
    manager: &str,
    now: &str,
) {
    track(res, subresource, Some(old), new, manager, now);
}

/// Drops the fields a write through `subresource` ("" = the main resource) cannot set, as
/// upstream's reset fields: the main resource of a kind with `/status` does not write
/// `.status`; `/status` writes nothing else.
fn reset_fields(res: &Resource, subresource: &str, set: &mut Set) {
    let status = Pe::Field("status".into());
    match subresource {
        "" if res.has(Subresource::Status) => {
            set.children.remove(&status);
        }
        "status" => set.children.retain(|pe, _| *pe == status),
        _ => {}
    }
}

fn track(
    res: &Resource,
    subresource: &str,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    now: &str,
) {
    let schema = root_schema(res);
    // Managed fields can only be written through the main resource.
    let sent = if subresource.is_empty() {
        decode_entries(new)
    } else {
        Vec::new()
    };
    let mut entries = if sent.is_empty() {
        old.map(decode_entries).unwrap_or_default()
    } else {
        sent
    };
    let new_clean = without_managed_fields(new);
    // Upstream compares typed objects, where value structs are never absent.
    let mut old_clean = old.map(without_managed_fields).unwrap_or_else(|| json!({}));
    fill(&mut old_clean, &zero_skeleton(schema, &new_clean));
    let mut cmp = Comparison::default();
    // An update whose lists cannot be keyed records no ownership change (upstream logs it and
    // lets the write through).
    if compare(
        schema,
        Some(&old_clean),
        Some(&new_clean),
        &mut Vec::new(),
        &mut cmp,
    )
    .is_err()
    {
        write_entries(new, entries);
        return;
    }
    let mut changed = cmp.modified;
    changed.union(&cmp.added);
    strip_meta(&mut changed);
    reset_fields(res, subresource, &mut changed);
    let me = Entry {
        manager: manager.to_string(),
        operation: "Update".into(),
        api_version: res.api_version(),
        time: Some(now.to_string()),
        subresource: subresource.to_string(),
        set: Set::default(),
    };
    for entry in entries.iter_mut().filter(|e| !e.same(&me)) {
        entry.set.difference(&changed);
        entry.set.difference(&cmp.removed);
    }
    let previous = entries.iter().position(|e| e.same(&me));
    let mut set = previous.map(|i| entries[i].set.clone()).unwrap_or_default();
    let before = set.clone();
    set.difference(&cmp.removed);
    set.union(&changed);
    let time = match previous.map(|i| &entries[i]) {
        Some(prev) if before == set => prev.time.clone(),
        _ => me.time.clone(),
    };
    if let Some(i) = previous {
        entries.remove(i);
    }
    entries.push(Entry { set, time, ..me });
    write_entries(new, entries);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find;
    use proptest::prelude::*;

    const T0: &str = "2026-01-01T00:00:00Z";
    const T1: &str = "2026-01-01T00:01:00Z";

    fn deployments() -> &'static Resource {
        find("apps", "v1", "deployments").expect("deployments")
    }

    fn config(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": image}]},
                },
            },
        })
    }

    fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
        obj["metadata"]["managedFields"]
            .as_array()?
            .iter()
            .find(|e| e["manager"] == manager && e["operation"] == operation)
    }

    #[test]
    fn create_by_apply_records_the_applied_fields() {
        let obj = apply(
            deployments(),
            None,
            &config(3, "nginx:1"),
            "kubectl",
            false,
            T0,
        )
        .expect("apply");
        assert_eq!(obj["spec"]["replicas"], 3);
        let e = entry(&obj, "kubectl", "Apply").expect("entry");
        assert_eq!(e["apiVersion"], "apps/v1");
        assert_eq!(e["time"], T0);
        assert_eq!(e["fieldsType"], "FieldsV1");
        assert_eq!(
            e["fieldsV1"],
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}}},
                    },
                },
            })
        );
    }

    #[test]
    fn a_second_applier_conflicts_then_force_moves_ownership() {
        let live = apply(
            deployments(),
            None,
            &config(3, "nginx:1"),
            "kubectl",
            false,
            T0,
        )
        .expect("create");
        let other = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 5}});
        let err =
            apply(deployments(), Some(&live), &other, "scaler", false, T1).expect_err("conflict");
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"
        );
        // The same value is shared, not a conflict.
        let same = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}});
        let shared = apply(deployments(), Some(&live), &same, "scaler", false, T1).expect("shared");
        assert!(entry(&shared, "kubectl", "Apply").expect("kubectl")["fieldsV1"]["f:spec"]["f:replicas"].is_object());
        assert!(
            entry(&shared, "scaler", "Apply").expect("scaler")["fieldsV1"]["f:spec"]["f:replicas"]
                .is_object()
        );

        let forced = apply(deployments(), Some(&live), &other, "scaler", true, T1).expect("force");
        assert_eq!(forced["spec"]["replicas"], 5);
        let kubectl = entry(&forced, "kubectl", "Apply").expect("kubectl");
        assert!(kubectl["fieldsV1"]["f:spec"].get("f:replicas").is_none());
        assert!(kubectl["fieldsV1"]["f:spec"]["f:template"].is_object());
        assert_eq!(
            entry(&forced, "scaler", "Apply").expect("scaler")["fieldsV1"],
            json!({"f:spec": {"f:replicas": {}}})
        );
        // Now kubectl applying its old value conflicts with the new owner.
        let err = apply(
            deployments(),
            Some(&forced),
            &config(3, "nginx:1"),
            "kubectl",
            false,
            T1,
        )
        .expect_err("conflict back");
        assert_eq!(
            err,
            ApplyError::Conflicts(vec![Conflict {
                manager: "\"scaler\"".into(),
                field: ".spec.replicas".into(),
            }])
        );
        // Apply entries come first, then by time.
        let managers: Vec<&str> = forced["metadata"]["managedFields"]
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|e| e["manager"].as_str())
            .collect();
        assert_eq!(managers, ["kubectl", "scaler"]);
    }

    #[test]
    fn client_side_apply_fields_conflict_with_server_side_apply() {
        let mut created = config(3, "nginx:1");
        track_update(
            deployments(),
            None,
            &mut created,
            "kubectl-client-side-apply",
            T0,
        );
        let csa = entry(&created, "kubectl-client-side-apply", "Update").expect("csa");
        assert_eq!(csa["apiVersion"], "apps/v1");
        // Created containers and maps are owned with their own node (".") as upstream records.
        assert_eq!(
            csa["fieldsV1"]["f:metadata"],
            json!({"f:labels": {".": {}, "f:app": {}}})
        );
        assert_eq!(
            csa["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"],
            json!({"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}})
        );
        assert!(csa["fieldsV1"]["f:spec"].get(".").is_none());

        let err = apply(
            deployments(),
            Some(&created),
            &config(4, "nginx:1"),
            "kubectl",
            false,
            T1,
        )
        .expect_err("conflict");
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
        );
        let err = apply(
            deployments(),
            Some(&created),
            &config(4, "nginx:2"),
            "kubectl",
            false,
            T1,
        )
        .expect_err("conflicts");
        assert_eq!(
            err.to_string(),
            "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image"
        );
        let same = apply(
            deployments(),
            Some(&created),
            &config(3, "nginx:1"),
            "kubectl",
            false,
            T1,
        )
        .expect("same values");
        assert!(entry(&same, "kubectl-client-side-apply", "Update").is_some());
        assert!(entry(&same, "kubectl", "Apply").is_some());
    }

    #[test]
    fn dropping_a_field_from_the_config_removes_it_unless_owned_elsewhere() {
        let mut first = config(3, "nginx:1");
        first["metadata"]["labels"]["tier"] = json!("front");
        first["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .expect("containers")
            .push(json!({"name": "sidecar", "image": "busybox"}));
        let live = apply(deployments(), None, &first, "kubectl", false, T0).expect("create");
        let next = apply(
            deployments(),
            Some(&live),
            &config(3, "nginx:1"),
            "kubectl",
            false,
            T1,
        )
        .expect("reapply");
        assert_eq!(next["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(
            next["spec"]["template"]["spec"]["containers"],
            json!([{"name": "nginx", "image": "nginx:1"}])
        );

        // A label another manager also set survives.
        let mut labelled = live.clone();
        labelled["metadata"]["labels"]["team"] = json!("a");
        labelled["metadata"]["labels"]["tier"] = json!("back");
        track_update(deployments(), Some(&live), &mut labelled, "labeller", T1);
        let owner = entry(&labelled, "labeller", "Update").expect("labeller");
        assert_eq!(
            owner["fieldsV1"],
            json!({"f:metadata": {"f:labels": {"f:team": {}, "f:tier": {}}}})
        );
        // The update took tier from kubectl.
        assert!(entry(&labelled, "kubectl", "Apply").expect("kubectl")["fieldsV1"]["f:metadata"]["f:labels"].get("f:tier").is_none());
        let next = apply(
            deployments(),
            Some(&labelled),
            &config(3, "nginx:1"),
            "kubectl",
            false,
            T1,
        )
        .expect("reapply");
        assert_eq!(
            next["metadata"]["labels"],
            json!({"app": "web", "team": "a", "tier": "back"})
        );
    }

    #[test]
    fn associative_lists_merge_by_key_and_keep_others_items() {
        let live = apply(
            deployments(),
            None,
            &config(3, "nginx:1"),
            "kubectl",
            false,
            T0,
        )
        .expect("create");
        let mut injected = live.clone();
        injected["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .expect("containers")
            .insert(0, json!({"name": "proxy", "image": "envoy"}));
        track_update(deployments(), Some(&live), &mut injected, "injector", T1);
        let next = apply(
            deployments(),
            Some(&injected),
            &config(3, "nginx:2"),
            "kubectl",
            false,
            T1,
        )
        .expect("apply");
        assert_eq!(
            next["spec"]["template"]["spec"]["containers"],
            json!([{"name": "proxy", "image": "envoy"}, {"name": "nginx", "image": "nginx:2"}])
        );
        let injector = entry(&next, "injector", "Update").expect("injector");
        assert_eq!(
            injector["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"],
            json!({"k:{\"name\":\"proxy\"}": {".": {}, "f:image": {}, "f:name": {}}})
        );
    }

    #[test]
    fn ports_are_keyed_by_port_and_protocol_and_finalizers_are_a_set() {
        let pods = find("", "v1", "pods").expect("pods");
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "finalizers": ["a/b"]},
            "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]},
        });
        let obj = apply(pods, None, &pod, "m", false, T0).expect("apply");
        let fields = &entry(&obj, "m", "Apply").expect("entry")["fieldsV1"];
        assert_eq!(
            fields["f:metadata"],
            json!({"f:finalizers": {"v:\"a/b\"": {}}})
        );
        assert_eq!(
            fields["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["f:ports"],
            json!({"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}})
        );
    }

    #[test]
    fn rejects_bad_configurations() {
        let bad = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
        assert!(matches!(
            apply(deployments(), None, &bad, "m", false, T0),
            Err(ApplyError::Invalid(_))
        ));
        let dup =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}});
        assert!(matches!(
            apply(deployments(), None, &dup, "m", false, T0),
            Err(ApplyError::Invalid(_))
        ));
        assert!(matches!(
            apply(deployments(), None, &json!([1]), "m", false, T0),
            Err(ApplyError::Invalid(_))
        ));
    }

    #[test]
    fn status_is_owned_through_the_status_subresource_only() {
        let mut applied = config(3, "nginx:1");
        applied["status"] = json!({"replicas": 3});
        let live = apply(deployments(), None, &applied, "kubectl", false, T0).expect("create");
        assert!(live.get("status").is_none());
        let mut with_status = live.clone();
        with_status["status"] = json!({"replicas": 3, "readyReplicas": 1});
        with_status["spec"]["paused"] = json!(true);
        track_subresource_update(deployments(), "status", &live, &mut with_status, "kcm", T1);
        let e = entry(&with_status, "kcm", "Update").expect("kcm");
        assert_eq!(e["subresource"], "status");
        assert_eq!(
            e["fieldsV1"],
            json!({"f:status": {"f:readyReplicas": {}, "f:replicas": {}}})
        );
        let mut main = live.clone();
        main["status"] = json!({"replicas": 1});
        main["spec"]["paused"] = json!(true);
        track_update(deployments(), Some(&live), &mut main, "editor", T1);
        assert_eq!(
            entry(&main, "editor", "Update").expect("editor")["fieldsV1"],
            json!({"f:spec": {"f:paused": {}}})
        );
    }

    #[test]
    fn updates_take_ownership_and_keep_time_when_nothing_moves() {
        let live = apply(
            deployments(),
            None,
            &config(3, "nginx:1"),
            "kubectl",
            false,
            T0,
        )
        .expect("create");
        let mut scaled = live.clone();
        scaled["spec"]["replicas"] = json!(7);
        track_update(
            deployments(),
            Some(&live),
            &mut scaled,
            "kube-controller-manager",
            T1,
        );
        assert_eq!(
            entry(&scaled, "kube-controller-manager", "Update").expect("kcm")["fieldsV1"],
            json!({"f:spec": {"f:replicas": {}}})
        );
        assert!(
            entry(&scaled, "kubectl", "Apply").expect("kubectl")["fieldsV1"]["f:spec"]
                .get("f:replicas")
                .is_none()
        );
        // Re-applying the same config is a no-op for ownership times.
        let again = apply(
            deployments(),
            Some(&live),
            &config(3, "nginx:1"),
            "kubectl",
            false,
            T1,
        )
        .expect("again");
        assert_eq!(
            entry(&again, "kubectl", "Apply").expect("kubectl")["time"],
            T0
        );
        assert_eq!(again["spec"], live["spec"]);
        // Sending managedFields replaces the stored ones.
        let mut cleared = live.clone();
        cleared["metadata"]["managedFields"] = json!([{"manager": "x", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:paused": {}}}}]);
        track_update(deployments(), Some(&live), &mut cleared, "y", T1);
        let managers: Vec<&str> = cleared["metadata"]["managedFields"]
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|e| e["manager"].as_str())
            .collect();
        assert_eq!(managers, ["x"]);
    }

    fn arb_pe() -> impl Strategy<Value = Pe> {
        prop_oneof![
            "[a-z]{1,5}".prop_map(Pe::Field),
            "[a-z]{1,5}".prop_map(|n| Pe::Key(json!({"name": n}).to_string())),
            "[a-z]{1,5}".prop_map(|v| Pe::Val(json!(v).to_string())),
        ]
    }

    proptest! {
        #[test]
        fn fields_v1_round_trips(paths in proptest::collection::vec(proptest::collection::vec(arb_pe(), 1..4), 0..8)) {
            let mut set = Set::default();
            for p in &paths {
                set.insert(p);
            }
            prop_assert_eq!(Set::from_fields(&set.to_fields()), set);
        }

        #[test]
        fn reapplying_the_same_config_changes_nothing(replicas in 0..10i64, image in "[a-z]{1,8}", manager in "[a-z]{1,8}") {
            let first = apply(deployments(), None, &config(replicas, &image), &manager, false, T0).expect("create");
            let again = apply(deployments(), Some(&first), &config(replicas, &image), &manager, false, T1).expect("again");
            prop_assert_eq!(first, again);
        }
    }
}
