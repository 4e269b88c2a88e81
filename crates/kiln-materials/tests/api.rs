//! The public surface other crates call: one test per entry point, through the crate root only.

use kiln_materials::{
    Error, analyze, compare, parse, run_tool, similar_str, tool_schema, validate_str,
};
use serde_json::json;

#[test]
fn parse_and_analyze() {
    let f = parse("Ca10(PO4)6(OH)2").unwrap_or_else(|e| panic!("{e}"));
    assert!((f.num_atoms() - 44.0).abs() < 1e-12);
    let a = analyze("CuSO4·5H2O").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.reduced_formula, "CuH10SO9");
    assert!((a.molar_mass - 249.68).abs() < 0.01, "{}", a.molar_mass);
    assert!(matches!(
        parse("Xx2O3"),
        Err(Error::UnknownElement { position: 0, .. })
    ));
}

#[test]
fn validate_similar_compare() {
    assert!(validate_str("LiFePO4").is_ok_and(|v| v.valid));
    assert!(validate_str("Fe3O4").is_ok_and(|v| !v.valid && !v.charge_neutral));
    let c = similar_str("LiFePO4", 10).unwrap_or_default();
    assert!(c.iter().any(|c| c.formula == "LiMnPO4"));
    let cmp = compare("LiCoO2", "NaCoO2").unwrap_or_else(|e| panic!("{e}"));
    assert!(cmp.same_anonymized_formula);
}

#[test]
fn tool_contract() {
    assert_eq!(tool_schema()["type"], "object");
    let out = run_tool(&json!({"action": "analyze", "formula": "Fe2O3"}))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.text
            .starts_with("Fe2O3: molar mass 159.687 g/mol, Fe+3 O-2, valid"),
        "{}",
        out.text
    );
    let err = run_tool(&json!({"action": "analyze", "formula": "Fe2O3)"})).err();
    let report = err.map(|e| serde_json::to_value(e.report()).unwrap_or_default());
    assert_eq!(
        report,
        Some(
            json!({"code": "unbalanced_close", "message": "`)` at byte 5 closes no group", "position": 5})
        )
    );
}
