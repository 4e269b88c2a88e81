//! Fuzz target: an import's checks on arbitrary bytes (JSON → `SessionExport` → `check()`,
//! which replays the events against every snapshot, then the signature check) never panic,
//! and a document that passes them round-trips through JSON to the same verdict.
#![no_main]

use kiln_db::{InstanceKey, SessionExport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<SessionExport>(data) else {
        return;
    };
    let key = InstanceKey::from_seed([1; 32]);
    let _ = doc.trust(&[key.public()]);
    if doc.check().is_ok() {
        let mut signed = doc.clone();
        signed.sign(&key).expect("a checked document serialises");
        let text = serde_json::to_vec(&signed).expect("a checked document serialises");
        let back: SessionExport = serde_json::from_slice(&text).expect("it parses back");
        assert!(back.check().is_ok(), "a checked document checks again");
        assert!(
            back.trust(&[key.public()]).expect("trust").is_verified(),
            "a signature survives a JSON round trip"
        );
    }
});
