//! Black-box tests of `kiln materials`: runs the built binary and reads what it prints.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn kiln(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start kiln: {e}"));
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("stdin: {e}"));
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("kiln did not finish: {e}"))
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn analyze_json_reads_stdin_and_goes_on_after_a_bad_line() {
    let input = "LiFePO4\nXx2O3\n\nFe3O4\nCa10(PO4\nCuSO4·5H2O\n";
    let out = kiln(&["materials", "analyze", "--json", "-"], Some(input));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed line makes the exit code 1"
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 5);

    let l = &lines[0];
    assert_eq!(l["formula"], "LiFePO4");
    assert_eq!(l["reduced_formula"], "LiFePO4");
    assert!((l["molar_mass"].as_f64().unwrap_or(0.0) - 157.755).abs() < 1e-3);
    assert_eq!(l["num_atoms"], 7.0);
    assert_eq!(l["elements"]["O"], 4);
    assert_eq!(l["oxidation_states"]["Fe"], 2);
    assert_eq!(l["valid"], true);
    assert!(l["reasons"].as_array().is_some_and(|r| !r.is_empty()));

    assert_eq!(lines[1]["formula"], "Xx2O3");
    assert_eq!(lines[1]["error"]["code"], "unknown_element");
    assert_eq!(lines[1]["error"]["position"], 0);
    assert!(
        lines[1]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Xx"))
    );

    assert_eq!(lines[2]["valid"], false);
    assert!(
        lines[2]["oxidation_states"]["Fe"]
            .as_f64()
            .is_some_and(|v| (v - 8.0 / 3.0).abs() < 1e-9)
    );
    assert_eq!(lines[3]["error"]["code"], "unclosed_group");
    assert_eq!(lines[3]["error"]["position"], 4);
    assert_eq!(lines[4]["elements"]["H"], 10);
}

#[test]
fn plain_output_and_success_exit_code() {
    let out = kiln(&["materials", "analyze", "LiFePO4", "NaCl"], None);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("LiFePO4: molar mass 157.755 g/mol, Li+1 Fe+2 P+5 O-2, valid\n"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 2);
}

#[test]
fn similar_validate_and_compare() {
    let out = kiln(
        &["materials", "similar", "--json", "--limit", "10", "LiFePO4"],
        None,
    );
    assert!(out.status.success());
    let lines = json_lines(&out);
    let names: Vec<&str> = lines[0]["candidates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["formula"].as_str())
        .collect();
    for want in ["LiMnPO4", "LiCoPO4", "LiNiPO4", "NaFePO4"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }

    let out = kiln(&["materials", "validate", "--json", "Fe2O3", "Fe3O4"], None);
    let lines = json_lines(&out);
    assert_eq!(
        (lines[0]["valid"].clone(), lines[1]["valid"].clone()),
        (Value::Bool(true), Value::Bool(false))
    );

    let out = kiln(
        &[
            "materials",
            "compare",
            "--json",
            "LiFePO4",
            "NaFePO4",
            "LiMnPO4",
        ],
        None,
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["formula"], "NaFePO4");
    assert_eq!(lines[0]["only_in_b"][0], "Na");
    assert_eq!(lines[1]["only_in_a"][0], "Fe");

    let out = kiln(&["materials", "compare", "LiFePO4"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least two formulas"));
}
