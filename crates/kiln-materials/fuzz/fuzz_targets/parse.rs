//! Fuzz target: parsing and analysing arbitrary text never panics, and errors point inside it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match kiln_materials::analyze(text) {
            Ok(a) => assert!(a.molar_mass > 0.0 && a.num_atoms > 0.0),
            Err(e) => assert!(e.position().is_none_or(|p| p <= text.len())),
        }
        let _ = kiln_materials::similar_str(text, 5);
    }
});
