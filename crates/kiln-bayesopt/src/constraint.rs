//! Linear input constraints such as `x1 + x2 <= 1` or `2*temp - time >= 10`: parsed against a
//! space (real and integer variables only), checked on raw coordinates. Designs, suggestions
//! and the optimum keep to them; measured experiments may lie outside (they are data).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::space::{Domain, SearchSpace};

/// Slack allowed when checking a constraint (relative to the right-hand side's scale).
const TOLERANCE: f64 = 1e-9;

/// `Σ coefficient · variable ≤ bound`, as written and as parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearConstraint {
    /// The text as the researcher wrote it.
    pub text: String,
    /// Variable name and coefficient, normalised to a `≤` form.
    pub terms: Vec<(String, f64)>,
    /// The right-hand side of the `≤` form.
    pub bound: f64,
}

fn bad(text: &str, why: &str) -> Error {
    Error::InvalidSpace(format!("constraint '{text}': {why}"))
}

impl LinearConstraint {
    /// Parses `a*x + b*y - z <= c` (also `>=`, `<`, `>`; a coefficient may be written `2x`,
    /// `2*x` or `2 * x`) against the space.
    pub fn parse(text: &str, space: &SearchSpace) -> Result<Self> {
        let (lhs, op, rhs) = ["<=", ">=", "≤", "≥", "<", ">"]
            .iter()
            .find_map(|op| text.split_once(op).map(|(l, r)| (l, *op, r)))
            .ok_or_else(|| bad(text, "needs <= or >= between two sides"))?;
        let rhs: f64 = rhs
            .trim()
            .parse()
            .map_err(|_| bad(text, "the right-hand side must be a number"))?;
        if !rhs.is_finite() {
            return Err(bad(text, "the right-hand side must be finite"));
        }
        let mut terms: Vec<(String, f64)> = Vec::new();
        let spaced = lhs.replace('-', " -").replace('+', " +");
        let mut pending_sign = 1.0;
        let mut tokens: Vec<String> = Vec::new();
        for t in spaced.split_whitespace() {
            tokens.push(t.to_owned());
        }
        let mut i = 0;
        while i < tokens.len() {
            let mut t = tokens[i].clone();
            if t == "+" || t == "-" {
                pending_sign *= if t == "-" { -1.0 } else { 1.0 };
                i += 1;
                continue;
            }
            if let Some(rest) = t.strip_prefix('-') {
                pending_sign = -pending_sign;
                t = rest.to_owned();
            } else if let Some(rest) = t.strip_prefix('+') {
                t = rest.to_owned();
            }
            // `2 * x`, `2*x`, `2 x`, `2x`, or `x`.
            let (coef, name) = if let Some((c, n)) = t.split_once('*') {
                let n = if n.is_empty() {
                    i += 1;
                    tokens
                        .get(i)
                        .cloned()
                        .unwrap_or_default()
                        .trim_start_matches('*')
                        .to_owned()
                } else {
                    n.to_owned()
                };
                (c.parse::<f64>().ok(), n)
            } else if let Ok(c) = t.parse::<f64>() {
                i += 1;
                let next = tokens.get(i).cloned().unwrap_or_default();
                (Some(c), next.trim_start_matches('*').to_owned())
            } else {
                let split = t
                    .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
                    .unwrap_or(t.len());
                if split > 0 {
                    (t[..split].parse::<f64>().ok(), t[split..].to_owned())
                } else {
                    (Some(1.0), t.clone())
                }
            };
            let coef = coef.ok_or_else(|| bad(text, &format!("cannot read the term '{t}'")))?;
            let name = if name.is_empty() && coef.is_finite() {
                return Err(bad(text, "constant terms belong on the right-hand side"));
            } else {
                name
            };
            let var = space
                .variables()
                .iter()
                .find(|v| v.name == name)
                .ok_or_else(|| bad(text, &format!("unknown variable '{name}'")))?;
            if matches!(var.domain, Domain::Categorical { .. }) {
                return Err(bad(text, &format!("'{name}' is categorical")));
            }
            let c = pending_sign * coef;
            match terms.iter_mut().find(|(n, _)| *n == name) {
                Some((_, existing)) => *existing += c,
                None => terms.push((name, c)),
            }
            pending_sign = 1.0;
            i += 1;
        }
        terms.retain(|(_, c)| *c != 0.0);
        if terms.is_empty() {
            return Err(bad(text, "names no variable"));
        }
        let flip = matches!(op, ">=" | "≥" | ">");
        let (terms, bound) = if flip {
            (terms.into_iter().map(|(n, c)| (n, -c)).collect(), -rhs)
        } else {
            (terms, rhs)
        };
        let c = LinearConstraint {
            text: text.trim().to_owned(),
            terms,
            bound,
        };
        // A constraint no point of the box meets leaves nothing to search.
        let min: f64 = c
            .terms
            .iter()
            .map(|(n, k)| {
                let v = space.variables().iter().find(|v| v.name == *n);
                let (lo, hi) = match v.map(|v| &v.domain) {
                    Some(Domain::Real { lower, upper, .. }) => (*lower, *upper),
                    Some(Domain::Integer { lower, upper }) => (*lower as f64, *upper as f64),
                    _ => (0.0, 0.0),
                };
                (k * lo).min(k * hi)
            })
            .sum();
        if min > c.bound + TOLERANCE * c.bound.abs().max(1.0) {
            return Err(bad(text, "no point inside the bounds meets it"));
        }
        Ok(c)
    }

    /// Indices into the space's variables and coefficients (for fast checks).
    pub fn indexed(&self, space: &SearchSpace) -> (Vec<(usize, f64)>, f64) {
        let terms = self
            .terms
            .iter()
            .filter_map(|(n, c)| {
                space
                    .variables()
                    .iter()
                    .position(|v| v.name == *n)
                    .map(|i| (i, *c))
            })
            .collect();
        (terms, self.bound)
    }
}

/// Constraints as index form, for [`feasible`].
pub type Indexed = Vec<(Vec<(usize, f64)>, f64)>;

/// Whether raw coordinates meet every constraint.
pub fn feasible(constraints: &Indexed, raw: &[f64]) -> bool {
    constraints.iter().all(|(terms, bound)| {
        let lhs: f64 = terms.iter().map(|(i, c)| c * raw[*i]).sum();
        lhs <= bound + TOLERANCE * bound.abs().max(1.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::Variable;

    fn space() -> SearchSpace {
        SearchSpace::new(vec![
            Variable::real("x1", 0.0, 1.0).unwrap(),
            Variable::real("x2", 0.0, 1.0).unwrap(),
            Variable::integer("n", 1, 10).unwrap(),
            Variable::categorical("c", &["a", "b"]).unwrap(),
        ])
        .unwrap()
    }

    #[test]
    fn constraints_parse_to_a_le_form() {
        let s = space();
        let c = LinearConstraint::parse("x1 + x2 <= 1", &s).unwrap();
        assert_eq!(c.terms, vec![("x1".into(), 1.0), ("x2".into(), 1.0)]);
        assert_eq!(c.bound, 1.0);
        let c = LinearConstraint::parse("2*x1 - 0.5 x2 >= 0.25", &s).unwrap();
        assert_eq!(c.terms, vec![("x1".into(), -2.0), ("x2".into(), 0.5)]);
        assert_eq!(c.bound, -0.25);
        let c = LinearConstraint::parse("3x1+ n<=5", &s).unwrap();
        assert_eq!(c.terms, vec![("x1".into(), 3.0), ("n".into(), 1.0)]);
        let idx = vec![
            LinearConstraint::parse("x1 + x2 <= 1", &s)
                .unwrap()
                .indexed(&s),
        ];
        assert!(feasible(&idx, &[0.4, 0.6, 1.0, 0.0]));
        assert!(!feasible(&idx, &[0.5, 0.6, 1.0, 0.0]));
    }

    #[test]
    fn bad_constraints_are_space_errors() {
        let s = space();
        for text in [
            "x1 + x2",
            "x1 + x9 <= 1",
            "x1 + c <= 1",
            "x1 <= lots",
            "x1 - x1 <= 1",
            "x1 + x2 <= -1",
            "x1 ** 2 <= 1",
        ] {
            assert!(
                matches!(
                    LinearConstraint::parse(text, &s),
                    Err(Error::InvalidSpace(_))
                ),
                "{text}"
            );
        }
    }
}
