//! Parser tests: accepted spellings, exact amounts, and positioned errors.

use proptest::prelude::*;

use super::*;

fn amounts(input: &str) -> Vec<(String, f64)> {
    match parse(input) {
        Ok(f) => f
            .elements()
            .iter()
            .map(|(e, a)| (e.symbol().to_owned(), a.to_f64()))
            .collect(),
        Err(e) => panic!("{input}: {e}"),
    }
}

fn expect(input: &str, want: &[(&str, f64)]) {
    let got = amounts(input);
    assert_eq!(got.len(), want.len(), "{input}: {got:?}");
    for ((gs, ga), (ws, wa)) in got.iter().zip(want) {
        assert_eq!(gs, ws, "{input}");
        assert!((ga - wa).abs() < 1e-12, "{input}: {gs} {ga} != {wa}");
    }
}

#[test]
fn plain_and_grouped_formulas() {
    expect(
        "LiFePO4",
        &[("Li", 1.0), ("Fe", 1.0), ("P", 1.0), ("O", 4.0)],
    );
    expect(
        "Ca10(PO4)6(OH)2",
        &[("Ca", 10.0), ("P", 6.0), ("O", 26.0), ("H", 2.0)],
    );
    expect(
        "K4[Fe(CN)6]",
        &[("K", 4.0), ("Fe", 1.0), ("C", 6.0), ("N", 6.0)],
    );
    expect("{[(Mg)2]3}2", &[("Mg", 12.0)]);
    expect("  Fe2O3\t", &[("Fe", 2.0), ("O", 3.0)]);
    expect("Fe O", &[("Fe", 1.0), ("O", 1.0)]);
}

#[test]
fn decimal_and_fractional_amounts_are_exact() {
    expect(
        "LiNi0.8Co0.15Al0.05O2",
        &[
            ("Li", 1.0),
            ("Ni", 0.8),
            ("Co", 0.15),
            ("Al", 0.05),
            ("O", 2.0),
        ],
    );
    expect(
        "LiNi1/3Mn1/3Co1/3O2",
        &[
            ("Li", 1.0),
            ("Ni", 1.0 / 3.0),
            ("Mn", 1.0 / 3.0),
            ("Co", 1.0 / 3.0),
            ("O", 2.0),
        ],
    );
    let f = parse("Li(Ni1/3Mn1/3Co1/3)3O2").ok();
    let ni = f
        .as_ref()
        .and_then(|f| f.amount(Element::from_symbol("Ni")?));
    assert_eq!(ni, Some(Amount::ONE));
}

#[test]
fn hydrates_and_adducts() {
    let pentahydrate = [("Cu", 1.0), ("S", 1.0), ("O", 9.0), ("H", 10.0)];
    for input in [
        "CuSO4·5H2O",
        "CuSO4.5H2O",
        "CuSO4*5H2O",
        "CuSO4 · 5 H2O",
        "CuSO4•5H2O",
        "CuSO4∙5H2O",
    ] {
        expect(input, &pentahydrate);
    }
    expect(
        "Na2CO3.H2O",
        &[("Na", 2.0), ("C", 1.0), ("O", 4.0), ("H", 2.0)],
    );
    expect(
        "CaSO4·0.5H2O",
        &[("Ca", 1.0), ("S", 1.0), ("O", 4.5), ("H", 1.0)],
    );
    expect(
        "Na2SO4.10H2O",
        &[("Na", 2.0), ("S", 1.0), ("O", 14.0), ("H", 20.0)],
    );
    // A dot between digits not followed by H2O stays a decimal point.
    expect("Fe2.5O4", &[("Fe", 2.5), ("O", 4.0)]);
}

fn err(input: &str) -> Error {
    match parse(input) {
        Ok(f) => panic!("{input} parsed as {f:?}"),
        Err(e) => e,
    }
}

#[test]
fn errors_carry_code_and_position() {
    let cases: &[(&str, &str, Option<usize>)] = &[
        ("Xx2O3", "unknown_element", Some(0)),
        ("Fe2Xx3", "unknown_element", Some(3)),
        ("", "empty", Some(0)),
        ("   ", "empty", Some(0)),
        ("Ca10(PO4", "unclosed_group", Some(4)),
        ("Ca10PO4)2", "unbalanced_close", Some(7)),
        ("Fe()O", "empty_group", Some(2)),
        ("K4[Fe(CN)6)", "unexpected", Some(10)),
        ("CuSO4·", "unexpected", Some(7)),
        ("CuSO4*", "unexpected", Some(6)),
        ("fe2O3", "unexpected", Some(0)),
        ("Fe2O3!", "unexpected", Some(5)),
        ("Fe0O", "bad_amount", Some(2)),
        ("Fe2000000O", "bad_amount", Some(2)),
        ("Fe1/0O", "bad_amount", Some(4)),
        ("Fe1/O", "unexpected", Some(4)),
        ("Fe.5O", "unexpected", Some(2)),
        ("2", "unexpected", Some(1)),
        (" Xx", "unknown_element", Some(1)),
    ];
    for &(input, code, position) in cases {
        let e = err(input);
        assert_eq!((e.code(), e.position()), (code, position), "{input}: {e}");
    }
}

#[test]
fn error_messages_say_what_was_expected() {
    let e = err("K4[Fe(CN)6)");
    assert!(e.to_string().contains("expected `]`"), "{e}");
    let e = err("Xx2O3");
    assert_eq!(e.to_string(), "unknown element `Xx` at byte 0");
}

#[test]
fn limits_on_length_depth_and_size() {
    let long = "H".repeat(MAX_INPUT_LEN + 1);
    assert_eq!(err(&long).code(), "too_long");
    let deep = format!(
        "{}H{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert_eq!(err(&deep).code(), "too_deep");
    let ok = format!("{}H{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(parse(&ok).is_ok());
    // Each level multiplies by 999999: overflows the exact amount range.
    let huge = format!("{}H{}", "(".repeat(4), ")999999".repeat(4));
    assert_eq!(err(&huge).code(), "bad_amount");
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_text(s in "\\PC{0,64}") {
        let _ = parse(&s);
    }

    #[test]
    fn parse_never_panics_on_formula_like_text(s in "[A-Za-z0-9()\\[\\]{}./*· ]{0,48}") {
        match parse(&s) {
            Ok(f) => prop_assert!(f.elements().iter().all(|(_, a)| a.to_f64() > 0.0)),
            Err(e) => prop_assert!(e.position().is_none_or(|p| p <= s.len())),
        }
    }

    #[test]
    fn writing_a_parsed_formula_back_parses_to_the_same_amounts(
        parts in proptest::collection::vec((0usize..103, 1u64..50), 1..6)
    ) {
        let mut text = String::new();
        for (z, n) in &parts {
            let el = Element::all().nth(*z).unwrap_or(Element::all().next().unwrap_or_else(|| unreachable!()));
            text.push_str(&format!("{el}{n}"));
        }
        let f = parse(&text);
        prop_assert!(f.is_ok(), "{text}");
        let total: u64 = parts.iter().map(|(_, n)| n).sum();
        let got = f.map(|f| f.num_atoms()).unwrap_or(0.0);
        prop_assert!((got - total as f64).abs() < 1e-9);
    }
}
