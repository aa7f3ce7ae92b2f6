//! Fuzzes the checkpoint decoder: any file content must decode or be refused, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxkube_store::embedded::checkpoint;

fuzz_target!(|data: &[u8]| {
    let _ = checkpoint::decode(data);
});
