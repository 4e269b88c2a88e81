//! `Amount`: an exact, positive rational stoichiometric amount with overflow-checked arithmetic.

use std::fmt;

use serde::{Serialize, Serializer};

/// Largest numerator or denominator an amount may reach (keeps products inside `u64`).
pub const MAX_TERM: u64 = 1 << 40;

/// A positive rational amount `num / den` in lowest terms.
///
/// Decimal amounts are exact (`0.15` is `3/20`), so reduction and scaling to integers never
/// suffer from floating-point noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Amount {
    num: u64,
    den: u64,
}

pub(crate) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Amount {
    /// The amount one.
    pub const ONE: Amount = Amount { num: 1, den: 1 };

    /// Builds `num / den` in lowest terms; `None` when zero, undefined or too large.
    pub fn new(num: u64, den: u64) -> Option<Amount> {
        if num == 0 || den == 0 {
            return None;
        }
        let g = gcd(num, den);
        let (num, den) = (num / g, den / g);
        (num <= MAX_TERM && den <= MAX_TERM).then_some(Amount { num, den })
    }

    /// Returns the numerator (lowest terms).
    pub fn numer(self) -> u64 {
        self.num
    }

    /// Returns the denominator (lowest terms).
    pub fn denom(self) -> u64 {
        self.den
    }

    /// Returns whether the amount is a whole number.
    pub fn is_integer(self) -> bool {
        self.den == 1
    }

    /// Returns the amount as a float.
    pub fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// Returns the product, or `None` on overflow.
    pub fn checked_mul(self, other: Amount) -> Option<Amount> {
        // Cross-cancel first so that exact results stay small.
        let g1 = gcd(self.num, other.den);
        let g2 = gcd(other.num, self.den);
        let num = (self.num / g1).checked_mul(other.num / g2)?;
        let den = (self.den / g2).checked_mul(other.den / g1)?;
        Amount::new(num, den)
    }

    /// Returns the sum, or `None` on overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        let g = gcd(self.den, other.den);
        let den = (self.den / g).checked_mul(other.den)?;
        let num = self
            .num
            .checked_mul(other.den / g)?
            .checked_add(other.num.checked_mul(self.den / g)?)?;
        Amount::new(num, den)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", format_amount(self.to_f64()))
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.is_integer() {
            serializer.serialize_u64(self.num)
        } else {
            serializer.serialize_f64(self.to_f64())
        }
    }
}

/// Formats an amount like pymatgen's `formula_double_format`: integers bare, otherwise rounded
/// to eight decimals with the shortest representation.
pub(crate) fn format_amount(x: f64) -> String {
    if (x - x.round()).abs() < 1e-8 {
        format!("{}", x.round() as i64)
    } else {
        format!("{}", (x * 1e8).round() / 1e8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_exact_and_reduced() {
        let third = Amount::new(1, 3);
        let sum = third
            .and_then(|t| t.checked_add(t))
            .and_then(|t| third?.checked_add(t));
        assert_eq!(sum, Some(Amount::ONE));
        let tenth = Amount::new(15, 100);
        assert_eq!(tenth.map(|a| (a.numer(), a.denom())), Some((3, 20)));
        let prod = Amount::new(3, 20).and_then(|a| a.checked_mul(Amount::new(20, 1)?));
        assert_eq!(prod, Amount::new(3, 1));
    }

    #[test]
    fn zero_and_overflow_are_rejected() {
        assert_eq!(Amount::new(0, 1), None);
        assert_eq!(Amount::new(1, 0), None);
        assert_eq!(Amount::new(MAX_TERM + 1, 1), None);
        let big = Amount::new(MAX_TERM, 1);
        assert_eq!(big.and_then(|b| b.checked_mul(b)), None);
    }

    #[test]
    fn formatting_follows_pymatgen() {
        assert_eq!(format_amount(2.0), "2");
        assert_eq!(format_amount(0.15), "0.15");
        assert_eq!(format_amount(1.0 / 3.0), "0.33333333");
    }
}
