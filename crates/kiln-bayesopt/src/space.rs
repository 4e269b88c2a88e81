//! Search spaces: variable definitions, their validation, and the encodings between user
//! values, raw per-variable coordinates, the unit cube and the GP feature vector.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A user-facing value of one variable: a number (real or integer) or a category label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A real or integer value.
    Number(f64),
    /// A category label.
    Text(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Number(x) => write!(f, "{}", format_number(*x)),
            Value::Text(s) => f.write_str(s),
        }
    }
}

/// Formats a number compactly (integers without a decimal point, others with 6 significant digits).
pub fn format_number(x: f64) -> String {
    if x.is_finite() && x == x.round() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e6) {
        format!("{x:.4e}")
    } else {
        let s = format!("{x:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Largest magnitude of an integer bound (keeps every count and f64 conversion exact).
pub const MAX_INTEGER_BOUND: u64 = 1_000_000_000_000_000;

/// Inputs of one experiment or point: variable name to value, ordered by name.
pub type Inputs = BTreeMap<String, Value>;

/// The domain of one variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Domain {
    /// A continuous variable in `[lower, upper]`, optionally searched on a log scale.
    Real {
        /// Lower bound (inclusive).
        lower: f64,
        /// Upper bound (inclusive).
        upper: f64,
        /// Whether the model sees `ln(x)` instead of `x` (requires `lower > 0`).
        #[serde(default)]
        log: bool,
    },
    /// An integer variable in `[lower, upper]`.
    Integer {
        /// Lower bound (inclusive).
        lower: i64,
        /// Upper bound (inclusive).
        upper: i64,
    },
    /// One label out of a fixed list.
    Categorical {
        /// The allowed labels, in order (at least two, distinct).
        categories: Vec<String>,
    },
}

/// One named variable of the search space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variable {
    /// Unique name, used as the key in experiment inputs.
    pub name: String,
    /// The variable's domain.
    #[serde(flatten)]
    pub domain: Domain,
    /// Unit of measure, for reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Free-text description, for reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The step a lab can set for a real variable (0.5, 0.01, ...); suggestions and designs
    /// are rounded to it. Unset: whole units for °C, K, min, s and rpm, tenths for hours,
    /// otherwise about three significant figures across the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<f64>,
}

/// The loose shape of a variable in tool arguments (`bounds` as a pair, `type` as a string).
#[derive(Debug, Clone, Deserialize)]
pub struct VariableSpec {
    /// Variable name.
    pub name: String,
    /// "real", "integer" or "categorical".
    #[serde(rename = "type")]
    pub kind: String,
    /// `[lower, upper]` for real and integer variables.
    #[serde(default)]
    pub bounds: Option<Vec<f64>>,
    /// Labels for categorical variables (numbers are accepted and turned into labels).
    #[serde(default)]
    pub categories: Option<Vec<Value>>,
    /// Log scale for real variables.
    #[serde(default)]
    pub log: Option<bool>,
    /// Unit of measure.
    #[serde(default)]
    pub unit: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// The settable step of a real variable.
    #[serde(default)]
    pub precision: Option<f64>,
}

impl Variable {
    /// Builds a validated real variable.
    pub fn real(name: &str, lower: f64, upper: f64) -> Result<Self> {
        Self::checked(
            name,
            Domain::Real {
                lower,
                upper,
                log: false,
            },
        )
    }

    /// Builds a validated real variable searched on a log scale.
    pub fn log_real(name: &str, lower: f64, upper: f64) -> Result<Self> {
        Self::checked(
            name,
            Domain::Real {
                lower,
                upper,
                log: true,
            },
        )
    }

    /// Builds a validated integer variable.
    pub fn integer(name: &str, lower: i64, upper: i64) -> Result<Self> {
        Self::checked(name, Domain::Integer { lower, upper })
    }

    /// Builds a validated categorical variable.
    pub fn categorical(name: &str, categories: &[&str]) -> Result<Self> {
        let categories = categories.iter().map(|c| (*c).to_string()).collect();
        Self::checked(name, Domain::Categorical { categories })
    }

    fn checked(name: &str, domain: Domain) -> Result<Self> {
        let v = Variable {
            name: name.to_string(),
            domain,
            unit: None,
            description: None,
            precision: None,
        };
        v.validate()?;
        Ok(v)
    }

    /// Sets the unit (builder style).
    pub fn with_unit(mut self, unit: &str) -> Self {
        self.unit = Some(unit.to_string());
        self
    }

    /// Sets the description (builder style).
    pub fn with_description(mut self, description: &str) -> Self {
        self.description = Some(description.to_string());
        self
    }

    /// Converts the loose tool-argument shape into a validated variable.
    pub fn from_spec(spec: VariableSpec) -> Result<Self> {
        let name = spec.name.clone();
        let bounds = || -> Result<(f64, f64)> {
            match spec.bounds.as_deref() {
                Some([lo, hi]) => Ok((*lo, *hi)),
                Some(_) => Err(Error::InvalidSpace(format!(
                    "variable '{name}': bounds must be a pair [lower, upper]"
                ))),
                None => Err(Error::InvalidSpace(format!(
                    "variable '{name}': bounds are required"
                ))),
            }
        };
        let domain = match spec.kind.to_ascii_lowercase().as_str() {
            "real" | "continuous" | "float" => {
                let (lower, upper) = bounds()?;
                Domain::Real {
                    lower,
                    upper,
                    log: spec.log.unwrap_or(false),
                }
            }
            "integer" | "int" => {
                let (lo, hi) = bounds()?;
                for b in [lo, hi] {
                    if !b.is_finite() || b != b.round() || b.abs() > 1e15 {
                        return Err(Error::InvalidSpace(format!(
                            "variable '{name}': integer bounds must be whole numbers, got {b}"
                        )));
                    }
                }
                Domain::Integer {
                    lower: lo as i64,
                    upper: hi as i64,
                }
            }
            "categorical" | "category" => {
                let categories = spec
                    .categories
                    .as_ref()
                    .ok_or_else(|| {
                        Error::InvalidSpace(format!("variable '{name}': categories are required"))
                    })?
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                Domain::Categorical { categories }
            }
            other => {
                return Err(Error::InvalidSpace(format!(
                    "variable '{name}': unknown type '{other}' (expected real, integer or categorical)"
                )));
            }
        };
        let v = Variable {
            name: spec.name,
            domain,
            unit: spec.unit,
            description: spec.description,
            precision: spec.precision,
        };
        v.validate()?;
        Ok(v)
    }

    /// Checks the variable on its own.
    pub fn validate(&self) -> Result<()> {
        let name = &self.name;
        let bad = |msg: String| Err(Error::InvalidSpace(format!("variable '{name}': {msg}")));
        if name.trim().is_empty() {
            return Err(Error::InvalidSpace("a variable has an empty name".into()));
        }
        if let Some(p) = self.precision {
            if !p.is_finite() || p <= 0.0 {
                return bad(format!("precision must be a positive step, got {p}"));
            }
            match &self.domain {
                Domain::Real { lower, upper, .. } if p > upper - lower => {
                    return bad(format!(
                        "precision {p} is wider than the range [{lower}, {upper}]"
                    ));
                }
                Domain::Real { .. } => {}
                _ => return bad("precision applies to real variables only".into()),
            }
        }
        match &self.domain {
            Domain::Real { lower, upper, log } => {
                if !lower.is_finite() || !upper.is_finite() {
                    return bad(format!("bounds must be finite, got [{lower}, {upper}]"));
                }
                if lower > upper {
                    return bad(format!("reversed bounds [{lower}, {upper}]"));
                }
                if lower == upper {
                    return bad(format!("empty range [{lower}, {upper}]"));
                }
                if !(upper - lower).is_finite() {
                    return bad(format!("range [{lower}, {upper}] is too wide to represent"));
                }
                if *log && *lower <= 0.0 {
                    return bad(format!(
                        "log scale needs a positive lower bound, got {lower}"
                    ));
                }
            }
            Domain::Integer { lower, upper } => {
                if lower > upper {
                    return bad(format!("reversed bounds [{lower}, {upper}]"));
                }
                if lower == upper {
                    return bad(format!(
                        "a single value [{lower}, {upper}] is a constant, not a variable"
                    ));
                }
                if lower.unsigned_abs() > MAX_INTEGER_BOUND
                    || upper.unsigned_abs() > MAX_INTEGER_BOUND
                {
                    return bad(format!(
                        "integer bounds must lie within ±{MAX_INTEGER_BOUND}"
                    ));
                }
            }
            Domain::Categorical { categories } => {
                if categories.len() < 2 {
                    return bad(format!(
                        "a categorical needs at least two levels, got {}",
                        categories.len()
                    ));
                }
                for (i, c) in categories.iter().enumerate() {
                    if categories[..i].contains(c) {
                        return bad(format!("duplicate category '{c}'"));
                    }
                    if c.trim().is_empty() {
                        return bad("empty category label".into());
                    }
                }
            }
        }
        Ok(())
    }

    /// The step suggestions and designs are rounded to (real variables only).
    pub fn step(&self) -> Option<f64> {
        match self.domain {
            Domain::Real { .. } => Some(
                self.precision
                    .unwrap_or_else(|| 10f64.powi(-(crate::action::text::decimals(self) as i32))),
            ),
            _ => None,
        }
    }

    /// A raw coordinate rounded to the variable's step and kept inside the bounds.
    pub fn round_raw(&self, raw: f64) -> f64 {
        let (Some(step), Domain::Real { lower, upper, .. }) = (self.step(), &self.domain) else {
            return raw;
        };
        let k = (raw / step).round();
        // k * step in decimal: 3 * 0.1 is 0.3, not 0.30000000000000004.
        let places = decimals_of(step);
        let scale = 10f64.powi(places as i32);
        let mut x = ((k * step) * scale).round() / scale;
        if !x.is_finite() {
            return raw;
        }
        // The nearest step inside the bounds (a bound itself when no step lies inside).
        if x < *lower {
            x += step;
        }
        if x > *upper {
            x -= step;
        }
        if x < *lower || x > *upper {
            x = raw.clamp(*lower, *upper);
        }
        x
    }

    /// Number of GP features this variable occupies (one, or one per category).
    pub fn n_features(&self) -> usize {
        match &self.domain {
            Domain::Categorical { categories } => categories.len(),
            _ => 1,
        }
    }

    /// Parses a user value into the raw coordinate (value, or category index).
    pub fn parse_value(&self, value: &Value) -> Result<f64, String> {
        match (&self.domain, value) {
            (Domain::Real { lower, upper, .. }, Value::Number(x)) => {
                check_number(*x)?;
                if *x < *lower || *x > *upper {
                    return Err(format!(
                        "{} is outside [{lower}, {upper}]",
                        format_number(*x)
                    ));
                }
                Ok(*x)
            }
            (Domain::Integer { lower, upper }, Value::Number(x)) => {
                check_number(*x)?;
                if *x != x.round() {
                    return Err(format!("{x} is not an integer"));
                }
                if *x < *lower as f64 || *x > *upper as f64 {
                    return Err(format!(
                        "{} is outside [{lower}, {upper}]",
                        format_number(*x)
                    ));
                }
                Ok(*x)
            }
            (Domain::Real { .. } | Domain::Integer { .. }, Value::Text(s)) => {
                let x: f64 = s
                    .trim()
                    .parse()
                    .map_err(|_| format!("'{s}' is not a number"))?;
                self.parse_value(&Value::Number(x))
            }
            (Domain::Categorical { categories }, v) => {
                let label = v.to_string();
                categories
                    .iter()
                    .position(|c| *c == label)
                    .map(|i| i as f64)
                    .ok_or_else(|| {
                        format!(
                            "unknown category '{label}' (expected one of {})",
                            categories.join(", ")
                        )
                    })
            }
        }
    }

    /// Turns a raw coordinate back into a user value.
    pub fn value_of(&self, raw: f64) -> Value {
        match &self.domain {
            Domain::Real { .. } | Domain::Integer { .. } => Value::Number(raw),
            Domain::Categorical { categories } => {
                let i = (raw.max(0.0) as usize).min(categories.len().saturating_sub(1));
                Value::Text(categories.get(i).cloned().unwrap_or_default())
            }
        }
    }

    /// Maps a unit-cube coordinate in `[0, 1]` to a raw coordinate with equal mass per level
    /// for discrete variables.
    pub fn from_unit(&self, u: f64) -> f64 {
        let u = u.clamp(0.0, 1.0);
        match &self.domain {
            Domain::Real {
                lower,
                upper,
                log: false,
            } => lower + u * (upper - lower),
            Domain::Real {
                lower,
                upper,
                log: true,
            } => (lower.ln() + u * (upper.ln() - lower.ln()))
                .exp()
                .clamp(*lower, *upper),
            Domain::Integer { lower, upper } => {
                let span = (upper - lower + 1) as f64;
                ((*lower as f64) + (u * span).floor()).min(*upper as f64)
            }
            Domain::Categorical { categories } => {
                ((u * categories.len() as f64).floor()).min((categories.len() - 1) as f64)
            }
        }
    }

    /// Writes the GP features of a raw coordinate into `out` (length `n_features`).
    /// Reals and integers map to `[0, 1]` (log-aware); categoricals to one-hot.
    pub fn write_features(&self, raw: f64, out: &mut [f64]) {
        match &self.domain {
            Domain::Real {
                lower,
                upper,
                log: false,
            } => out[0] = (raw - lower) / (upper - lower),
            Domain::Real {
                lower,
                upper,
                log: true,
            } => {
                out[0] = (raw.max(*lower).ln() - lower.ln()) / (upper.ln() - lower.ln());
            }
            Domain::Integer { lower, upper } => {
                out[0] = (raw - *lower as f64) / ((upper - lower) as f64);
            }
            Domain::Categorical { .. } => {
                let idx = raw.max(0.0) as usize;
                for (k, o) in out.iter_mut().enumerate() {
                    *o = if k == idx { 1.0 } else { 0.0 };
                }
            }
        }
    }
}

/// Decimals needed to write `step` (0.25 → 2, 5 → 0), at most 12.
pub(crate) fn decimals_of(step: f64) -> usize {
    (0..12)
        .find(|d| {
            let scale = 10f64.powi(*d);
            ((step * scale).round() - step * scale).abs() < 1e-9 * scale.max(1.0)
        })
        .unwrap_or(12) as usize
}

fn check_number(x: f64) -> Result<(), String> {
    if x.is_nan() {
        Err("value is NaN".into())
    } else if x.is_infinite() {
        Err("value is infinite".into())
    } else {
        Ok(())
    }
}

/// A validated, non-empty list of uniquely named variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Variable>", into = "Vec<Variable>")]
pub struct SearchSpace {
    variables: Vec<Variable>,
}

impl TryFrom<Vec<Variable>> for SearchSpace {
    type Error = Error;
    fn try_from(v: Vec<Variable>) -> Result<Self> {
        SearchSpace::new(v)
    }
}

impl From<SearchSpace> for Vec<Variable> {
    fn from(s: SearchSpace) -> Self {
        s.variables
    }
}

impl SearchSpace {
    /// Validates and builds a search space.
    pub fn new(variables: Vec<Variable>) -> Result<Self> {
        if variables.is_empty() {
            return Err(Error::InvalidSpace(
                "the search space has no variables".into(),
            ));
        }
        for (i, v) in variables.iter().enumerate() {
            v.validate()?;
            if variables[..i].iter().any(|w| w.name == v.name) {
                return Err(Error::InvalidSpace(format!(
                    "duplicate variable name '{}'",
                    v.name
                )));
            }
        }
        Ok(SearchSpace { variables })
    }

    /// The variables, in definition order.
    pub fn variables(&self) -> &[Variable] {
        &self.variables
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.variables.len()
    }

    /// Always false: a search space has at least one variable.
    pub fn is_empty(&self) -> bool {
        self.variables.is_empty()
    }

    /// Total GP feature dimension.
    pub fn n_features(&self) -> usize {
        self.variables.iter().map(Variable::n_features).sum()
    }

    /// Parses named inputs into raw coordinates; the error names the offending variable.
    pub fn parse_inputs(&self, inputs: &Inputs) -> Result<Vec<f64>, (Option<String>, String)> {
        for key in inputs.keys() {
            if !self.variables.iter().any(|v| &v.name == key) {
                return Err((Some(key.clone()), "unknown variable".into()));
            }
        }
        self.variables
            .iter()
            .map(|v| match inputs.get(&v.name) {
                None => Err((Some(v.name.clone()), "missing value".into())),
                Some(value) => v.parse_value(value).map_err(|m| (Some(v.name.clone()), m)),
            })
            .collect()
    }

    /// Raw coordinates with every real variable rounded to its step.
    pub fn round_raw(&self, raw: &[f64]) -> Vec<f64> {
        self.variables
            .iter()
            .zip(raw)
            .map(|(v, r)| v.round_raw(*r))
            .collect()
    }

    /// Turns raw coordinates into named user values.
    pub fn to_inputs(&self, raw: &[f64]) -> Inputs {
        self.variables
            .iter()
            .zip(raw)
            .map(|(v, r)| (v.name.clone(), v.value_of(*r)))
            .collect()
    }

    /// Maps a unit-cube point (one coordinate per variable) to raw coordinates.
    pub fn from_unit(&self, u: &[f64]) -> Vec<f64> {
        self.variables
            .iter()
            .zip(u)
            .map(|(v, x)| v.from_unit(*x))
            .collect()
    }

    /// GP features of raw coordinates.
    pub fn features(&self, raw: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.n_features()];
        let mut off = 0;
        for (v, r) in self.variables.iter().zip(raw) {
            let k = v.n_features();
            v.write_features(*r, &mut out[off..off + k]);
            off += k;
        }
        out
    }

    /// Number of distinct points if every variable is discrete, `None` if any is real or the
    /// count overflows.
    pub fn discrete_cardinality(&self) -> Option<u64> {
        self.variables
            .iter()
            .try_fold(1u64, |acc, v| match &v.domain {
                Domain::Real { .. } => None,
                Domain::Integer { lower, upper } => acc.checked_mul((upper - lower + 1) as u64),
                Domain::Categorical { categories } => acc.checked_mul(categories.len() as u64),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Result<Variable> {
        let s: VariableSpec =
            serde_json::from_value(json).map_err(|e| Error::InvalidArguments(e.to_string()))?;
        Variable::from_spec(s)
    }

    #[test]
    fn invalid_variables_are_rejected_with_reasons() {
        let cases = [
            (
                serde_json::json!({"name": "t", "type": "real", "bounds": [5, 1]}),
                "reversed",
            ),
            (
                serde_json::json!({"name": "t", "type": "real", "bounds": [1, 1]}),
                "empty range",
            ),
            (
                serde_json::json!({"name": "t", "type": "real", "bounds": [0, 1], "log": true}),
                "log scale",
            ),
            (
                serde_json::json!({"name": "t", "type": "real"}),
                "bounds are required",
            ),
            (
                serde_json::json!({"name": "t", "type": "integer", "bounds": [0.5, 3]}),
                "whole numbers",
            ),
            (
                serde_json::json!({"name": "c", "type": "categorical", "categories": ["a"]}),
                "two levels",
            ),
            (
                serde_json::json!({"name": "c", "type": "categorical", "categories": ["a", "a"]}),
                "duplicate",
            ),
            (
                serde_json::json!({"name": "c", "type": "vector"}),
                "unknown type",
            ),
            (
                serde_json::json!({"name": " ", "type": "real", "bounds": [0, 1]}),
                "empty name",
            ),
        ];
        for (json, needle) in cases {
            let err = spec(json.clone()).expect_err(&json.to_string()).to_string();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }

    #[test]
    fn extreme_bounds_are_rejected_not_overflowed() {
        assert!(Variable::integer("n", i64::MIN, i64::MAX).is_err());
        assert!(Variable::real("x", -1e308, 1e308).is_err());
        assert!(Variable::real("x", 0.0, f64::INFINITY).is_err());
    }

    #[test]
    fn empty_space_and_duplicate_names_are_rejected() {
        assert!(matches!(
            SearchSpace::new(vec![]),
            Err(Error::InvalidSpace(_))
        ));
        let a = Variable::real("a", 0.0, 1.0).unwrap();
        let err = SearchSpace::new(vec![a.clone(), a]).unwrap_err();
        assert!(err.to_string().contains("duplicate variable"));
    }

    #[test]
    fn features_are_unit_scaled_and_one_hot() {
        let space = SearchSpace::new(vec![
            Variable::real("x", -2.0, 2.0).unwrap(),
            Variable::log_real("lr", 1e-4, 1.0).unwrap(),
            Variable::integer("n", 1, 5).unwrap(),
            Variable::categorical("c", &["a", "b", "c"]).unwrap(),
        ])
        .unwrap();
        let f = space.features(&[0.0, 1e-2, 5.0, 1.0]);
        let expected = [0.5, 0.5, 1.0, 0.0, 1.0, 0.0];
        assert_eq!(f.len(), expected.len());
        for (a, b) in f.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "{f:?}");
        }
    }

    #[test]
    fn parse_inputs_reports_the_offending_variable() {
        let space = SearchSpace::new(vec![
            Variable::real("x", 0.0, 1.0).unwrap(),
            Variable::categorical("c", &["a", "b"]).unwrap(),
        ])
        .unwrap();
        let mk = |x: Value, c: &str| -> Inputs {
            [
                ("x".to_string(), x),
                ("c".to_string(), Value::Text(c.into())),
            ]
            .into_iter()
            .collect()
        };
        assert_eq!(
            space.parse_inputs(&mk(Value::Number(0.5), "b")),
            Ok(vec![0.5, 1.0])
        );
        let cases = [
            (mk(Value::Number(2.0), "a"), "outside"),
            (mk(Value::Number(f64::NAN), "a"), "NaN"),
            (mk(Value::Number(f64::INFINITY), "a"), "infinite"),
            (mk(Value::Number(0.5), "z"), "unknown category"),
            (mk(Value::Text("abc".into()), "a"), "not a number"),
        ];
        for (inputs, needle) in cases {
            let (_, msg) = space.parse_inputs(&inputs).unwrap_err();
            assert!(msg.contains(needle), "{msg}");
        }
        let mut missing = mk(Value::Number(0.5), "a");
        missing.remove("x");
        assert_eq!(space.parse_inputs(&missing).unwrap_err().1, "missing value");
    }

    #[test]
    fn from_unit_gives_every_integer_level_equal_mass() {
        let v = Variable::integer("n", 0, 3).unwrap();
        let counts = (0..400).fold([0usize; 4], |mut acc, i| {
            let raw = v.from_unit((i as f64 + 0.5) / 400.0);
            acc[raw as usize] += 1;
            acc
        });
        assert_eq!(counts, [100, 100, 100, 100]);
        assert_eq!(v.from_unit(1.0), 3.0);
    }

    #[test]
    fn space_round_trips_through_json_and_validates_on_load() {
        let space = SearchSpace::new(vec![
            Variable::log_real("lr", 1e-4, 1.0)
                .unwrap()
                .with_unit("1/s"),
            Variable::categorical("c", &["a", "b"]).unwrap(),
        ])
        .unwrap();
        let json = serde_json::to_string(&space).unwrap();
        let back: SearchSpace = serde_json::from_str(&json).unwrap();
        assert_eq!(back, space);
        assert!(serde_json::from_str::<SearchSpace>("[]").is_err());
    }
}
