//! Fuzzes the WAL frame decoder: any bytes on disk must decode or be refused, never panic, and a
//! frame that decodes must re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxkube_store::embedded::wal;

fuzz_target!(|data: &[u8]| {
    if let Ok((record, used)) = wal::decode(data) {
        let mut again = Vec::new();
        wal::encode(&record, &mut again);
        assert_eq!(&again[..], &data[..used]);
    }
});
