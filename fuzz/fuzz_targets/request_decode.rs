//! Fuzzes everything the API server reads from a request before it touches state: the query
//! string, the path, the Accept and Content-Type headers, the body as JSON or YAML, and the scan
//! for duplicate fields. Each must answer or refuse with an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxkube_apiserver::negotiate::{self, BodyType};
use oxkube_apiserver::request::{self, Query};
use oxkube_apiserver::rest::decode_value;

const METHODS: [http::Method; 5] = [
    http::Method::GET,
    http::Method::POST,
    http::Method::PUT,
    http::Method::PATCH,
    http::Method::DELETE,
];

fuzz_target!(|data: &[u8]| {
    // Layout: one byte chooses the method, then path, query, accept, content-type and body,
    // separated by 0x00.
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(5, |b| *b == 0);
    let text = |p: Option<&[u8]>| String::from_utf8_lossy(p.unwrap_or_default()).into_owned();
    let (path, query, accept, content_type) = (
        text(parts.next()),
        text(parts.next()),
        text(parts.next()),
        text(parts.next()),
    );
    let body = parts.next().unwrap_or_default();
    let method = &METHODS[usize::from(choice) % METHODS.len()];
    if let Ok(q) = Query::parse(Some(&query)) {
        let _ = request::parse(method, &path, &q);
    }
    let _ = negotiate::choose(Some(&accept), choice & 1 == 0, choice & 2 == 0);
    let body_type = negotiate::body_type(Some(&content_type)).unwrap_or(BodyType::Json);
    let _ = decode_value(body, body_type);
    let _ = decode_value(body, BodyType::Yaml);
    let _ = oxkube_api::fields::duplicate_fields(body);
});
