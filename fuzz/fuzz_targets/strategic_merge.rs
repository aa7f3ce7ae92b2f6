//! Fuzzes strategic merge patch: any object and patch must merge or be refused, never panic. The
//! first byte picks the resource; the rest is the object and the patch, split at the first NUL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxkube_api::{patch, registry::RESOURCES};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let res = &RESOURCES[usize::from(pick) % RESOURCES.len()];
    let mut parts = rest.splitn(2, |&b| b == 0);
    let (Some(doc), Some(p)) = (parts.next(), parts.next()) else {
        return;
    };
    let (Ok(doc), Ok(p)) = (
        serde_json::from_slice::<serde_json::Value>(doc),
        serde_json::from_slice::<serde_json::Value>(p),
    ) else {
        return;
    };
    if let Ok(merged) = patch::strategic_merge_patch(res, &doc, &p) {
        // A successful merge is an object, and merging an empty patch into it changes nothing.
        assert!(merged.is_object());
        let again = patch::strategic_merge_patch(res, &merged, &serde_json::json!({}));
        assert_eq!(again.ok(), Some(merged));
    }
});
