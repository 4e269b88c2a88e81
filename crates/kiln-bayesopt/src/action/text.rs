//! How the tool writes numbers and points back to a researcher: values rounded to what a lab
//! can set (1 °C, 0.1 h; otherwise three significant figures across the variable's range),
//! with their units, and suggestion lists as Markdown tables.

use crate::space::{Domain, Inputs, SearchSpace, Value, Variable, format_number};
use crate::state::SuggestedPoint;

/// Decimals a lab can set for a variable: whole degrees, minutes, seconds and rpm; tenths of
/// an hour; otherwise about three significant figures across the range.
pub(crate) fn decimals(variable: &Variable) -> usize {
    if let Some(p) = variable.precision {
        return crate::space::decimals_of(p);
    }
    match variable.unit.as_deref().map(str::trim) {
        Some("°C" | "C" | "K" | "min" | "s" | "rpm" | "°C/min" | "K/min") => return 0,
        Some("h" | "hr" | "hours") => return 1,
        _ => {}
    }
    match &variable.domain {
        Domain::Real { lower, upper, .. } => {
            let width = (upper - lower).abs();
            if width > 0.0 && width.is_finite() {
                (2 - width.log10().floor() as i64).clamp(0, 6) as usize
            } else {
                3
            }
        }
        _ => 0,
    }
}

/// A value of a variable as written back: rounded, with its unit.
pub(crate) fn value_text(variable: Option<&Variable>, value: &Value) -> String {
    let x = match value {
        Value::Number(x) => *x,
        Value::Text(label) => return label.clone(),
    };
    let Some(variable) = variable else {
        return format_number(x);
    };
    let places = decimals(variable);
    let text = format_number(round(x, places));
    match &variable.unit {
        Some(unit) if !unit.trim().is_empty() => format!("{text} {}", unit.trim()),
        _ => text,
    }
}

/// Rounds to `places` decimals.
fn round(x: f64, places: usize) -> f64 {
    let scale = 10f64.powi(places as i32);
    let rounded = (x * scale).round() / scale;
    if rounded.is_finite() { rounded } else { x }
}

/// A number with about three significant figures (`151`, `0.834`, `1.2e-05`).
pub(crate) fn sig(x: f64) -> String {
    if !x.is_finite() || x == 0.0 {
        return format_number(x);
    }
    let magnitude = x.abs().log10().floor() as i32;
    let places = (2 - magnitude).clamp(0, 8) as usize;
    format_number(round(x, places))
}

/// A coefficient of determination to two places (`-3e-8` is `0.00`, never `-0.00`).
pub(crate) fn r2(x: f64) -> String {
    let r = (x * 100.0).round() / 100.0;
    if r == 0.0 {
        "0.00".into()
    } else {
        format!("{r:.2}")
    }
}

/// A variable with its range and unit: `temperature 300–900 °C`, `atmosphere air or argon`.
pub(crate) fn variable_text(variable: &Variable) -> String {
    let unit = variable
        .unit
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map_or_else(String::new, |u| format!(" {u}"));
    match &variable.domain {
        Domain::Real { lower, upper, log } => format!(
            "{} {}–{}{unit}{}",
            variable.name,
            format_number(*lower),
            format_number(*upper),
            if *log { ", log scale" } else { "" }
        ),
        Domain::Integer { lower, upper } => {
            format!("{} {lower}–{upper}{unit} (integer)", variable.name)
        }
        Domain::Categorical { categories } => {
            format!("{} {}", variable.name, categories.join(" or "))
        }
    }
}

fn variable<'a>(space: &'a SearchSpace, name: &str) -> Option<&'a Variable> {
    space.variables().iter().find(|v| v.name == name)
}

/// `temperature = 700 °C, time = 5.3 h`, in the space's variable order.
pub(crate) fn inputs_text(space: &SearchSpace, inputs: &Inputs) -> String {
    let mut parts: Vec<String> = space
        .variables()
        .iter()
        .filter_map(|v| {
            inputs
                .get(&v.name)
                .map(|x| format!("{} = {}", v.name, value_text(Some(v), x)))
        })
        .collect();
    parts.extend(
        inputs
            .iter()
            .filter(|(name, _)| variable(space, name).is_none())
            .map(|(name, x)| format!("{name} = {}", value_text(None, x))),
    );
    parts.join(", ")
}

/// A Markdown table of points: one row each, a column per variable (with its unit), and the
/// model's predicted mean ± std when there is one.
pub(crate) fn points_table(space: &SearchSpace, points: &[SuggestedPoint], output: &str) -> String {
    let predicted = points.iter().any(|p| p.mean.is_some());
    let mut header: Vec<String> = vec!["#".into()];
    header.extend(space.variables().iter().map(|v| match &v.unit {
        Some(unit) if !unit.trim().is_empty() => format!("{} ({})", v.name, unit.trim()),
        _ => v.name.clone(),
    }));
    if predicted {
        header.push(format!("predicted {output} (mean ± std)"));
    }
    let mut lines = vec![
        format!("| {} |", header.join(" | ")),
        format!("|{}", "---|".repeat(header.len())),
    ];
    for (i, point) in points.iter().enumerate() {
        let mut cells = vec![(i + 1).to_string()];
        cells.extend(space.variables().iter().map(|v| {
            point.inputs.get(&v.name).map_or_else(String::new, |x| {
                let text = value_text(Some(v), x);
                match &v.unit {
                    Some(unit) => text.trim_end_matches(unit.trim()).trim_end().to_owned(),
                    None => text,
                }
            })
        }));
        if predicted {
            cells.push(match (point.mean, point.std) {
                (Some(mean), Some(std)) => format!("{} ± {}", sig(mean), sig(std)),
                (Some(mean), None) => sig(mean),
                _ => String::new(),
            });
        }
        lines.push(format!("| {} |", cells.join(" | ")));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn space() -> SearchSpace {
        serde_json::from_value(json!([
            {"name": "temperature", "type": "real", "lower": 300.0, "upper": 900.0, "unit": "°C"},
            {"name": "time", "type": "real", "lower": 1.0, "upper": 10.0, "unit": "h"},
            {"name": "dopant", "type": "real", "lower": 0.01, "upper": 0.2},
            {"name": "atmosphere", "type": "categorical", "categories": ["air", "argon"]}
        ]))
        .unwrap()
    }

    #[test]
    fn a_fit_reads_to_two_places_and_never_as_minus_zero() {
        assert_eq!(r2(-3.0e-8), "0.00");
        assert_eq!(r2(-0.3049), "-0.30");
        assert_eq!(r2(0.987), "0.99");
    }

    #[test]
    fn values_are_rounded_to_what_a_lab_can_set() {
        let space = space();
        let inputs: Inputs = serde_json::from_value(json!({
            "temperature": 699.8731, "time": 1.0000000000000044, "dopant": 0.123456,
            "atmosphere": "argon"
        }))
        .unwrap();
        assert_eq!(
            inputs_text(&space, &inputs),
            "temperature = 700 °C, time = 1 h, dopant = 0.123, atmosphere = argon"
        );
        assert_eq!(sig(151.234), "151");
        assert_eq!(sig(0.0123456), "0.0123");
    }

    #[test]
    fn points_are_a_table_with_predictions() {
        let space = space();
        let point = |t: f64, mean: Option<f64>| SuggestedPoint {
            inputs: serde_json::from_value(
                json!({"temperature": t, "time": 5.55, "dopant": 0.1, "atmosphere": "air"}),
            )
            .unwrap(),
            mean,
            std: mean.map(|_| 3.21),
            acquisition: None,
        };
        let table = points_table(&space, &[point(650.4, Some(148.26))], "capacity");
        assert_eq!(
            table,
            "| # | temperature (°C) | time (h) | dopant | atmosphere | predicted capacity (mean ± std) |\n\
             |---|---|---|---|---|---|\n\
             | 1 | 650 | 5.6 | 0.1 | air | 148 ± 3.21 |"
        );
        let design = points_table(&space, &[point(301.0, None)], "capacity");
        assert!(
            design.lines().last().unwrap().ends_with("| air |"),
            "{design}"
        );
    }
}
