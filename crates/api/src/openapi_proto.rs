//! The OpenAPI v2 document in protobuf (gnostic's `openapi.v2.Document`), the only form kubectl
//! accepts from `/openapi/v2` (it validates `List` manifests with it). Encodes the JSON document
//! field by field; extension values, defaults and enums travel as YAML text (JSON is YAML), as
//! gnostic does.

use serde_json::{Map, Value};

/// The protobuf encoding of a Swagger 2.0 JSON document.
pub fn v2_protobuf(doc: &Value) -> Vec<u8> {
    let mut m = Msg::default();
    let Some(doc) = doc.as_object() else {
        return m.0;
    };
    m.string(1, str_of(doc, "swagger"));
    if let Some(info) = doc.get("info").and_then(Value::as_object) {
        let mut i = Msg::default();
        i.string(1, str_of(info, "title"));
        i.string(2, str_of(info, "version"));
        i.string(3, str_of(info, "description"));
        i.extensions(7, info);
        m.message(2, i);
    }
    m.string(3, str_of(doc, "host"));
    m.string(4, str_of(doc, "basePath"));
    m.strings(5, doc.get("schemes"));
    m.strings(6, doc.get("consumes"));
    m.strings(7, doc.get("produces"));
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        let mut p = Msg::default();
        p.extensions(1, paths);
        for (name, item) in paths.iter().filter(|(k, _)| !k.starts_with("x-")) {
            p.named(2, name, path_item(item));
        }
        m.message(8, p);
    }
    if let Some(defs) = doc.get("definitions").and_then(Value::as_object) {
        let mut d = Msg::default();
        for (name, schema) in defs {
            d.named(1, name, self::schema(schema));
        }
        m.message(9, d);
    }
    for requirement in doc
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut r = Msg::default();
        for (name, scopes) in requirement.as_object().into_iter().flatten() {
            let mut array = Msg::default();
            array.strings(1, Some(scopes));
            r.named(1, name, array);
        }
        m.message(12, r);
    }
    if let Some(defs) = doc.get("securityDefinitions").and_then(Value::as_object) {
        let mut d = Msg::default();
        for (name, def) in defs {
            d.named(1, name, security_definition(def));
        }
        m.message(13, d);
    }
    m.extensions(16, doc);
    m.0
}

/// `SecurityDefinitionsItem`: basic auth or an API key (the two an apiserver advertises).
fn security_definition(def: &Value) -> Msg {
    let mut item = Msg::default();
    let Some(def) = def.as_object() else {
        return item;
    };
    let mut s = Msg::default();
    s.string(1, str_of(def, "type"));
    if str_of(def, "type") == "basic" {
        s.string(2, str_of(def, "description"));
        s.extensions(3, def);
        item.message(1, s);
    } else {
        s.string(2, str_of(def, "name"));
        s.string(3, str_of(def, "in"));
        s.string(4, str_of(def, "description"));
        s.extensions(5, def);
        item.message(2, s);
    }
    item
}

fn path_item(item: &Value) -> Msg {
    let mut p = Msg::default();
    let Some(item) = item.as_object() else {
        return p;
    };
    p.string(1, str_of(item, "$ref"));
    for (field, verb) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(op) = item.get(verb).and_then(Value::as_object) {
            p.message(field, operation(op));
        }
    }
    for param in item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        p.message(9, parameters_item(param));
    }
    p.extensions(10, item);
    p
}

fn operation(op: &Map<String, Value>) -> Msg {
    let mut o = Msg::default();
    o.strings(1, op.get("tags"));
    o.string(2, str_of(op, "summary"));
    o.string(3, str_of(op, "description"));
    o.string(5, str_of(op, "operationId"));
    o.strings(6, op.get("produces"));
    o.strings(7, op.get("consumes"));
    for param in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        o.message(8, parameters_item(param));
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        let mut r = Msg::default();
        for (code, response) in responses.iter().filter(|(k, _)| !k.starts_with("x-")) {
            r.named(1, code, response_value(response));
        }
        r.extensions(2, responses);
        o.message(9, r);
    }
    o.strings(10, op.get("schemes"));
    o.bool(11, bool_of(op, "deprecated"));
    o.extensions(13, op);
    o
}

/// `ResponseValue`: a response or a reference to one.
fn response_value(response: &Value) -> Msg {
    let mut value = Msg::default();
    let Some(response) = response.as_object() else {
        return value;
    };
    if let Some(reference) = response.get("$ref").and_then(Value::as_str) {
        value.message(2, json_reference(reference, response));
        return value;
    }
    let mut r = Msg::default();
    r.string(1, str_of(response, "description"));
    if let Some(schema) = response.get("schema") {
        let mut item = Msg::default();
        item.message(1, self::schema(schema));
        r.message(2, item);
    }
    r.extensions(5, response);
    value.message(1, r);
    value
}

fn json_reference(reference: &str, at: &Map<String, Value>) -> Msg {
    let mut j = Msg::default();
    j.string(1, reference);
    j.string(2, str_of(at, "description"));
    j
}

/// `ParametersItem`: a body parameter, a non-body one (by where it goes), or a reference.
fn parameters_item(param: &Value) -> Msg {
    let mut item = Msg::default();
    let Some(param) = param.as_object() else {
        return item;
    };
    if let Some(reference) = param.get("$ref").and_then(Value::as_str) {
        item.message(2, json_reference(reference, param));
        return item;
    }
    let mut parameter = Msg::default();
    let location = str_of(param, "in");
    if location == "body" {
        let mut b = Msg::default();
        b.string(1, str_of(param, "description"));
        b.string(2, str_of(param, "name"));
        b.string(3, location);
        b.bool(4, bool_of(param, "required"));
        if let Some(schema) = param.get("schema") {
            b.message(5, self::schema(schema));
        }
        b.extensions(6, param);
        parameter.message(1, b);
    } else {
        // Query and formData parameters carry allowEmptyValue at 5, which shifts every later
        // field by one against path and header parameters.
        let (variant, shift) = match location {
            "header" => (1, 0),
            "formData" => (2, 1),
            "path" => (4, 0),
            _ => (3, 1),
        };
        let mut s = Msg::default();
        s.bool(1, bool_of(param, "required"));
        s.string(2, location);
        s.string(3, str_of(param, "description"));
        s.string(4, str_of(param, "name"));
        if shift == 1 {
            s.bool(5, bool_of(param, "allowEmptyValue"));
        }
        s.string(5 + shift, str_of(param, "type"));
        s.string(6 + shift, str_of(param, "format"));
        if let Some(items) = param.get("items") {
            s.message(7 + shift, primitives_items(items));
        }
        s.string(8 + shift, str_of(param, "collectionFormat"));
        s.any(9 + shift, param.get("default"));
        s.string(16 + shift, str_of(param, "pattern"));
        s.bool(19 + shift, bool_of(param, "uniqueItems"));
        s.anys(20 + shift, param.get("enum"));
        s.extensions(22 + shift, param);
        let mut non_body = Msg::default();
        non_body.message(variant, s);
        parameter.message(2, non_body);
    }
    item.message(1, parameter);
    item
}

fn primitives_items(items: &Value) -> Msg {
    let mut p = Msg::default();
    let Some(items) = items.as_object() else {
        return p;
    };
    p.string(1, str_of(items, "type"));
    p.string(2, str_of(items, "format"));
    if let Some(inner) = items.get("items") {
        p.message(3, primitives_items(inner));
    }
    p.string(4, str_of(items, "collectionFormat"));
    p.any(5, items.get("default"));
    p.bool(15, bool_of(items, "uniqueItems"));
    p.anys(16, items.get("enum"));
    p.extensions(18, items);
    p
}

/// A JSON Schema object, every field gnostic's `Schema` has.
fn schema(schema: &Value) -> Msg {
    let mut s = Msg::default();
    let Some(o) = schema.as_object() else {
        return s;
    };
    s.string(1, str_of(o, "$ref"));
    s.string(2, str_of(o, "format"));
    s.string(3, str_of(o, "title"));
    s.string(4, str_of(o, "description"));
    s.any(5, o.get("default"));
    for (field, key) in [(6, "multipleOf"), (7, "maximum"), (9, "minimum")] {
        s.double(field, o.get(key).and_then(Value::as_f64).unwrap_or(0.0));
    }
    s.bool(8, bool_of(o, "exclusiveMaximum"));
    s.bool(10, bool_of(o, "exclusiveMinimum"));
    for (field, key) in [
        (11, "maxLength"),
        (12, "minLength"),
        (14, "maxItems"),
        (15, "minItems"),
        (17, "maxProperties"),
        (18, "minProperties"),
    ] {
        s.int64(field, o.get(key).and_then(Value::as_i64).unwrap_or(0));
    }
    s.string(13, str_of(o, "pattern"));
    s.bool(16, bool_of(o, "uniqueItems"));
    s.strings(19, o.get("required"));
    s.anys(20, o.get("enum"));
    match o.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut a = Msg::default();
            a.bool_always(2, *b);
            s.message(21, a);
        }
        Some(inner @ Value::Object(_)) => {
            let mut a = Msg::default();
            a.message(1, self::schema(inner));
            s.message(21, a);
        }
        _ => {}
    }
    match o.get("type") {
        Some(Value::String(t)) => {
            let mut t_msg = Msg::default();
            t_msg.string(1, t);
            s.message(22, t_msg);
        }
        Some(types @ Value::Array(_)) => {
            let mut t_msg = Msg::default();
            t_msg.strings(1, Some(types));
            s.message(22, t_msg);
        }
        _ => {}
    }
    match o.get("items") {
        Some(Value::Array(list)) => {
            let mut i = Msg::default();
            for item in list {
                i.message(1, self::schema(item));
            }
            s.message(23, i);
        }
        Some(item @ Value::Object(_)) => {
            let mut i = Msg::default();
            i.message(1, self::schema(item));
            s.message(23, i);
        }
        _ => {}
    }
    for part in o
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        s.message(24, self::schema(part));
    }
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        let mut p = Msg::default();
        for (name, prop) in props {
            p.named(1, name, self::schema(prop));
        }
        s.message(25, p);
    }
    s.string(26, str_of(o, "discriminator"));
    s.bool(27, bool_of(o, "readOnly"));
    s.any(30, o.get("example"));
    s.extensions(31, o);
    s
}

fn str_of<'a>(o: &'a Map<String, Value>, key: &str) -> &'a str {
    o.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn bool_of(o: &Map<String, Value>, key: &str) -> bool {
    o.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// One protobuf message being written; proto3 rules: zero scalars are left out.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, 2);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    /// Each string of a JSON array, as a repeated string field.
    fn strings(&mut self, field: u32, list: Option<&Value>) {
        for s in list.and_then(Value::as_array).into_iter().flatten() {
            if let Some(s) = s.as_str() {
                self.bytes(field, s.as_bytes());
            }
        }
    }

    fn bool(&mut self, field: u32, b: bool) {
        if b {
            self.bool_always(field, b);
        }
    }

    /// A bool inside a `oneof`, where `false` is a value too.
    fn bool_always(&mut self, field: u32, b: bool) {
        self.key(field, 0);
        self.varint(u64::from(b));
    }

    fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }

    fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn message(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }

    /// A `Named*` map entry: name 1, value 2.
    fn named(&mut self, field: u32, name: &str, value: Msg) {
        let mut entry = Msg::default();
        entry.string(1, name);
        entry.message(2, value);
        self.message(field, entry);
    }

    /// An `Any` holding a value as YAML text.
    fn any(&mut self, field: u32, value: Option<&Value>) {
        if let Some(value) = value {
            self.message(field, any(value));
        }
    }

    fn anys(&mut self, field: u32, list: Option<&Value>) {
        for value in list.and_then(Value::as_array).into_iter().flatten() {
            self.message(field, any(value));
        }
    }

    /// The object's `x-` keys as `NamedAny` entries.
    fn extensions(&mut self, field: u32, o: &Map<String, Value>) {
        for (name, value) in o.iter().filter(|(k, _)| k.starts_with("x-")) {
            self.named(field, name, any(value));
        }
    }
}

fn any(value: &Value) -> Msg {
    let mut a = Msg::default();
    a.string(2, &value.to_string());
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A minimal reader for the tests: the (field, bytes-or-varint) pairs of one message.
    fn fields(mut buf: &[u8]) -> Vec<(u64, Vec<u8>)> {
        fn varint(buf: &mut &[u8]) -> u64 {
            let mut v = 0u64;
            let mut shift = 0;
            loop {
                let b = buf[0];
                *buf = &buf[1..];
                v |= u64::from(b & 0x7f) << shift;
                if b < 0x80 {
                    return v;
                }
                shift += 7;
            }
        }
        let mut out = Vec::new();
        while !buf.is_empty() {
            let key = varint(&mut buf);
            let (field, wire) = (key >> 3, key & 7);
            match wire {
                0 => out.push((field, varint(&mut buf).to_le_bytes().to_vec())),
                1 => {
                    out.push((field, buf[..8].to_vec()));
                    buf = &buf[8..];
                }
                2 => {
                    let len = varint(&mut buf) as usize;
                    out.push((field, buf[..len].to_vec()));
                    buf = &buf[len..];
                }
                _ => panic!("wire type {wire}"),
            }
        }
        out
    }

    fn field(buf: &[u8], n: u64) -> Vec<Vec<u8>> {
        fields(buf)
            .into_iter()
            .filter(|(f, _)| *f == n)
            .map(|(_, b)| b)
            .collect()
    }

    #[test]
    fn definitions_carry_their_group_version_kind_as_yaml() {
        let doc = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.37.0"},
            "definitions": {
                "io.k8s.api.core.v1.ConfigMap": {
                    "type": "object",
                    "required": ["metadata"],
                    "properties": {"data": {"type": "object", "additionalProperties": {"type": "string"}}},
                    "x-kubernetes-group-version-kind": [{"group": "", "kind": "ConfigMap", "version": "v1"}]
                }
            }
        });
        let buf = v2_protobuf(&doc);
        assert_eq!(field(&buf, 1), vec![b"2.0".to_vec()]);
        let info = &field(&buf, 2)[0];
        assert_eq!(field(info, 1), vec![b"Kubernetes".to_vec()]);
        let defs = &field(&buf, 9)[0];
        let entry = &field(defs, 1)[0];
        assert_eq!(
            field(entry, 1),
            vec![b"io.k8s.api.core.v1.ConfigMap".to_vec()]
        );
        let schema = &field(entry, 2)[0];
        assert_eq!(field(&field(schema, 22)[0], 1), vec![b"object".to_vec()]);
        assert_eq!(field(schema, 19), vec![b"metadata".to_vec()]);
        let ext = &field(schema, 31)[0];
        assert_eq!(
            field(ext, 1),
            vec![b"x-kubernetes-group-version-kind".to_vec()]
        );
        let yaml = &field(&field(ext, 2)[0], 2)[0];
        let back: Value = serde_json::from_slice(yaml).expect("the YAML text is JSON");
        assert_eq!(back[0]["kind"], "ConfigMap");
        let data = &field(&field(&field(schema, 25)[0], 1)[0], 2)[0];
        let additional = &field(data, 21)[0];
        let inner = &field(additional, 1)[0];
        assert_eq!(field(&field(inner, 22)[0], 1), vec![b"string".to_vec()]);
    }

    #[test]
    fn query_and_path_parameters_use_their_own_field_numbers() {
        let doc = json!({"paths": {"/api/v1/namespaces/{namespace}/pods": {
            "parameters": [{"in": "path", "name": "namespace", "type": "string", "uniqueItems": true}],
            "get": {"operationId": "listPods", "parameters": [
                {"in": "query", "name": "limit", "type": "integer", "uniqueItems": true}
            ], "responses": {"200": {"description": "OK", "schema": {"$ref": "#/definitions/x"}}}}
        }}});
        let buf = v2_protobuf(&doc);
        let item = &field(&field(&field(&buf, 8)[0], 2)[0], 2)[0];
        // The path parameter: ParametersItem.parameter → Parameter.non_body → path (4).
        let path = &field(&field(&field(&field(item, 9)[0], 1)[0], 2)[0], 4)[0];
        assert_eq!(field(path, 4), vec![b"namespace".to_vec()]);
        assert_eq!(field(path, 5), vec![b"string".to_vec()]);
        assert_eq!(field(path, 19), vec![1u64.to_le_bytes().to_vec()]);
        let get = &field(item, 2)[0];
        assert_eq!(field(get, 5), vec![b"listPods".to_vec()]);
        let query = &field(&field(&field(&field(get, 8)[0], 1)[0], 2)[0], 3)[0];
        assert_eq!(field(query, 6), vec![b"integer".to_vec()]);
        assert_eq!(field(query, 20), vec![1u64.to_le_bytes().to_vec()]);
        let responses = &field(get, 9)[0];
        let ok = &field(responses, 1)[0];
        assert_eq!(field(ok, 1), vec![b"200".to_vec()]);
        let schema = &field(&field(&field(&field(ok, 2)[0], 1)[0], 2)[0], 1)[0];
        assert_eq!(field(schema, 1), vec![b"#/definitions/x".to_vec()]);
    }

    #[test]
    fn false_additional_properties_is_still_written() {
        let buf = schema(&json!({"additionalProperties": false})).0;
        let a = &field(&buf, 21)[0];
        assert_eq!(fields(a), vec![(2, 0u64.to_le_bytes().to_vec())]);
    }
}
