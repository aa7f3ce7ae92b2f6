//! Fuzzes the protobuf body decoder: any bytes after the magic must decode or be refused, never
//! panic, and what decodes is an object carrying the envelope's apiVersion and kind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxkube_api::protobuf;

fuzz_target!(|data: &[u8]| {
    let body = [protobuf::MAGIC.as_slice(), data].concat();
    if let Ok(value) = protobuf::decode(&body) {
        assert!(value.is_object());
        assert!(value["apiVersion"].is_string());
        assert!(value["kind"].is_string());
    }
});
