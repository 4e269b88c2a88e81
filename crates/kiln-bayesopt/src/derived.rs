//! Derived variables: quantities computed from an experiment's inputs (`ratio = li / (li + na)`,
//! `energy = temperature * time`), recorded and shown beside the inputs and suggestions. They
//! are not modelled: the model works on the variables; a derived value is arithmetic on them.
//! Expressions are parsed by `exmex` (floating point: `+ - * / ^`, parentheses, `exp`, `log`,
//! `sqrt`, `abs`, …) and may name only the space's real and integer variables.

use std::collections::BTreeMap;

use exmex::{Express, FlatEx};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::space::{Domain, Inputs, SearchSpace, Value};

/// The longest expression, in bytes.
const MAX_EXPRESSION: usize = 500;
/// The most derived variables.
const MAX_DERIVED: usize = 32;

/// A quantity computed from the inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DerivedVariable {
    pub name: String,
    /// Arithmetic over the real and integer variables' names.
    pub expression: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

fn parse(expression: &str) -> std::result::Result<FlatEx<f64>, String> {
    exmex::parse::<f64>(expression).map_err(|e| e.to_string())
}

/// Checks the derived variables against the space: names of their own, expressions that parse,
/// name only numeric variables, and give a finite value at the space's centre.
pub fn check(derived: &[DerivedVariable], space: &SearchSpace, taken: &[&str]) -> Result<()> {
    if derived.len() > MAX_DERIVED {
        return Err(Error::InvalidSpace(format!(
            "at most {MAX_DERIVED} derived variables"
        )));
    }
    let mut centre = Inputs::new();
    for v in space.variables() {
        match &v.domain {
            Domain::Real { lower, upper, .. } => {
                centre.insert(v.name.clone(), Value::Number((lower + upper) / 2.0));
            }
            Domain::Integer { lower, upper } => {
                centre.insert(v.name.clone(), Value::Number(((lower + upper) / 2) as f64));
            }
            Domain::Categorical { .. } => {}
        }
    }
    for (i, d) in derived.iter().enumerate() {
        let name = d.name.trim();
        let clash = name.is_empty()
            || space.variables().iter().any(|v| v.name == name)
            || taken.contains(&name)
            || derived[..i].iter().any(|p| p.name == d.name);
        if clash {
            return Err(Error::InvalidSpace(format!(
                "derived variable '{}' needs a name of its own (not empty, not a variable, an \
                 output or another derived variable)",
                d.name
            )));
        }
        if d.expression.len() > MAX_EXPRESSION {
            return Err(Error::InvalidSpace(format!(
                "derived variable '{name}': the expression is longer than {MAX_EXPRESSION} bytes"
            )));
        }
        let ex = parse(&d.expression).map_err(|e| {
            Error::InvalidSpace(format!(
                "derived variable '{name}': `{}` is not an expression: {e}",
                d.expression
            ))
        })?;
        for var in ex.var_names() {
            if !centre.contains_key(var) {
                return Err(Error::InvalidSpace(format!(
                    "derived variable '{name}' names `{var}`, which is not a real or integer \
                     variable of the space"
                )));
            }
        }
        if value(d, &centre).is_none() {
            return Err(Error::InvalidSpace(format!(
                "derived variable '{name}': `{}` has no finite value at the centre of the space",
                d.expression
            )));
        }
    }
    Ok(())
}

/// The value of one derived variable for these inputs (none when an input is missing or not a
/// number, or the result is not finite).
pub fn value(d: &DerivedVariable, inputs: &Inputs) -> Option<f64> {
    let ex = parse(&d.expression).ok()?;
    let args: Vec<f64> = ex
        .var_names()
        .iter()
        .map(|n| match inputs.get(n.as_str())? {
            Value::Number(x) => Some(*x),
            Value::Text(_) => None,
        })
        .collect::<Option<_>>()?;
    let v = ex.eval(&args).ok()?;
    v.is_finite().then_some(v)
}

/// Every derived variable's value for these inputs, by name, rounded to 6 significant digits.
pub fn values(derived: &[DerivedVariable], inputs: &Inputs) -> BTreeMap<String, f64> {
    derived
        .iter()
        .filter_map(|d| {
            let v = value(d, inputs)?;
            let digits = 6 - 1 - v.abs().log10().floor().clamp(-12.0, 12.0) as i32;
            let scale = 10f64.powi(digits.max(0));
            Some((d.name.clone(), (v * scale).round() / scale))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{Variable, VariableSpec};
    use serde_json::json;

    fn space() -> SearchSpace {
        let specs: Vec<VariableSpec> = serde_json::from_value(json!([
            {"name": "li", "type": "real", "bounds": [0.1, 1.0]},
            {"name": "na", "type": "real", "bounds": [0.0, 1.0]},
            {"name": "steps", "type": "integer", "bounds": [1, 9]},
            {"name": "gas", "type": "categorical", "categories": ["air", "argon"]}
        ]))
        .unwrap();
        SearchSpace::new(
            specs
                .into_iter()
                .map(|s| Variable::from_spec(s).unwrap())
                .collect(),
        )
        .unwrap()
    }

    fn d(name: &str, expression: &str) -> DerivedVariable {
        DerivedVariable {
            name: name.into(),
            expression: expression.into(),
            unit: None,
        }
    }

    #[test]
    fn values_are_computed_from_the_inputs() {
        let ratio = d("ratio", "li / (li + na)");
        check(&[ratio.clone(), d("dose", "steps * 2.5")], &space(), &[]).unwrap();
        let inputs: Inputs =
            serde_json::from_value(json!({"li": 0.75, "na": 0.25, "steps": 3, "gas": "air"}))
                .unwrap();
        let v = values(&[ratio, d("dose", "steps * 2.5")], &inputs);
        assert_eq!(v["ratio"], 0.75);
        assert_eq!(v["dose"], 7.5);
        // 1/3 is kept to six significant digits; a division by zero has no value.
        let third: Inputs = serde_json::from_value(json!({"li": 1.0, "na": 2.0})).unwrap();
        assert_eq!(values(&[d("r", "li / (li + na)")], &third)["r"], 0.333333);
        let zero: Inputs = serde_json::from_value(json!({"li": 0.0, "na": 0.0})).unwrap();
        assert!(values(&[d("r", "li / (li + na)")], &zero).is_empty());
    }

    #[test]
    fn bad_definitions_are_refused_with_the_reason() {
        for (bad, says) in [
            (d("li", "na * 2"), "name of its own"),
            (d("x", "li +* na"), "not an expression"),
            (d("x", "li * gas"), "not a real or integer variable"),
            (d("x", "li * pressure"), "not a real or integer variable"),
            (d("x", "1 / (li - li)"), "no finite value"),
            (d("capacity", "li"), "name of its own"),
        ] {
            let e = check(std::slice::from_ref(&bad), &space(), &["capacity"]).unwrap_err();
            assert!(e.to_string().contains(says), "{bad:?}: {e}");
        }
    }
}
