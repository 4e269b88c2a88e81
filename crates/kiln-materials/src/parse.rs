//! The formula parser: text → [`Formula`] (element amounts), with positioned, typed errors.
//!
//! Grammar (whitespace allowed between tokens and around the whole input):
//!
//! ```text
//! formula  := part (separator part)*
//! part     := number? item+
//! item     := (element | "(" item+ ")" | "[" item+ "]" | "{" item+ "}") number?
//! number   := digits ("." digits)? ("/" digits)?
//! separator:= "·" | "•" | "∙" | "⋅" | "*" | "."
//! ```
//!
//! The `.` rule: a dot between digits is a decimal point (`LiNi0.8Co0.15Al0.05O2`), except
//! when the digits after it are directly followed by `H2O` and the digits before it are not `0`
//! (`CuSO4.5H2O` is the pentahydrate, as chemists mean it, `CaSO4·0.5H2O` the hemihydrate); a
//! dot anywhere else separates adducts (`Na2CO3.H2O`). The middle dot
//! and `*` are never ambiguous and are the recommended spellings.

use crate::amount::Amount;
use crate::element::Element;
use crate::error::{Error, Result};

/// Longest accepted input, in bytes.
pub const MAX_INPUT_LEN: usize = 1024;
/// Deepest accepted group nesting.
pub const MAX_DEPTH: usize = 16;
/// Largest single number accepted in a formula.
pub const MAX_NUMBER: u64 = 1_000_000;
/// Most digits accepted after a decimal point.
const MAX_DECIMALS: u32 = 9;

/// A parsed chemical formula: each element once, with its exact total amount, in order of
/// first appearance.
#[derive(Debug, Clone, PartialEq)]
pub struct Formula {
    text: String,
    elements: Vec<(Element, Amount)>,
}

impl Formula {
    /// Returns the input as written, without surrounding whitespace.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Returns each element with its total amount, in order of first appearance.
    pub fn elements(&self) -> &[(Element, Amount)] {
        &self.elements
    }

    /// Returns the total amount of `element`, if present.
    pub fn amount(&self, element: Element) -> Option<Amount> {
        self.elements
            .iter()
            .find(|(e, _)| *e == element)
            .map(|&(_, a)| a)
    }

    /// Returns whether every amount is a whole number.
    pub fn is_integer(&self) -> bool {
        self.elements.iter().all(|(_, a)| a.is_integer())
    }

    /// Returns the total number of atoms in the formula unit.
    pub fn num_atoms(&self) -> f64 {
        self.elements.iter().map(|(_, a)| a.to_f64()).sum()
    }

    /// Builds a formula from element amounts (merging repeats), e.g. for substitution results.
    pub(crate) fn from_amounts(text: String, amounts: &[(Element, Amount)]) -> Option<Formula> {
        let mut elements: Vec<(Element, Amount)> = Vec::with_capacity(amounts.len());
        for &(el, amt) in amounts {
            match elements.iter_mut().find(|(e, _)| *e == el) {
                Some((_, total)) => *total = total.checked_add(amt)?,
                None => elements.push((el, amt)),
            }
        }
        Some(Formula { text, elements })
    }
}

/// Parses a chemical formula.
///
/// Never panics; every malformed input yields an [`Error`] with the byte offset (into `input`
/// as given, before trimming) of the problem.
pub fn parse(input: &str) -> Result<Formula> {
    if input.len() > MAX_INPUT_LEN {
        return Err(Error::TooLong {
            len: input.len(),
            max: MAX_INPUT_LEN,
        });
    }
    let trimmed_start = input.len() - input.trim_start().len();
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(Error::Empty);
    }
    let mut p = Parser {
        s: input.as_bytes(),
        pos: trimmed_start,
        end: trimmed_start + trimmed.len(),
        entries: Vec::with_capacity(16),
        groups: Vec::new(),
    };
    p.formula()?;
    let elements = merge(&p.entries)?;
    Ok(Formula {
        text: trimmed.to_owned(),
        elements,
    })
}

struct Entry {
    element: Element,
    amount: Amount,
    position: usize,
}

struct Group {
    open: u8,
    position: usize,
    first_entry: usize,
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    end: usize,
    entries: Vec<Entry>,
    groups: Vec<Group>,
}

/// Byte length of an adduct separator starting at `s[0]`, if there is one (excluding `.`).
fn separator_len(s: &[u8]) -> Option<usize> {
    match s {
        [b'*', ..] => Some(1),
        [0xC2, 0xB7, ..] => Some(2), // · U+00B7
        [0xE2, 0x80, 0xA2, ..] | [0xE2, 0x88, 0x99, ..] | [0xE2, 0x8B, 0x85, ..] => Some(3), // • ∙ ⋅
        _ => None,
    }
}

fn closer(open: u8) -> u8 {
    match open {
        b'(' => b')',
        b'[' => b']',
        _ => b'}',
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        (self.pos < self.end).then(|| self.s[self.pos])
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        let i = self.pos.checked_add(offset)?;
        (i < self.end).then(|| self.s[i])
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Describes what is at the cursor, for error messages.
    fn found(&self) -> String {
        if self.pos >= self.end {
            return "end of input".to_owned();
        }
        let rest = std::str::from_utf8(&self.s[self.pos..self.end]).ok();
        match rest.and_then(|r| r.chars().next()) {
            Some(c) => format!("`{c}`"),
            None => "an invalid byte".to_owned(),
        }
    }

    fn unexpected(&self, expected: &'static str) -> Error {
        Error::Unexpected {
            position: self.pos,
            expected,
            found: self.found(),
        }
    }

    fn formula(&mut self) -> Result<()> {
        loop {
            self.part()?;
            self.skip_ws();
            if self.pos >= self.end {
                return Ok(());
            }
            // `part` stops only at the end or at a separator.
            let len = separator_len(&self.s[self.pos..self.end]).unwrap_or(1);
            self.pos += len;
            self.skip_ws();
            if self.pos >= self.end {
                return Err(self.unexpected("a formula after the adduct separator"));
            }
        }
    }

    fn part(&mut self) -> Result<()> {
        let first_entry = self.entries.len();
        let coefficient = if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.number()?
        } else {
            None
        };
        loop {
            self.skip_ws();
            let Some(b) = self.peek() else { break };
            match b {
                b'A'..=b'Z' => self.element()?,
                b'(' | b'[' | b'{' => {
                    if self.groups.len() >= MAX_DEPTH {
                        return Err(Error::TooDeep {
                            position: self.pos,
                            max: MAX_DEPTH,
                        });
                    }
                    self.groups.push(Group {
                        open: b,
                        position: self.pos,
                        first_entry: self.entries.len(),
                    });
                    self.pos += 1;
                }
                b')' | b']' | b'}' => self.close(b)?,
                b'.' if self.peek_at(1).is_some_and(|d| d.is_ascii_digit())
                    && !self.dot_starts_water() =>
                {
                    return Err(self.unexpected("a digit before the decimal point"));
                }
                b'.' => break,
                _ if separator_len(&self.s[self.pos..self.end]).is_some() => break,
                b'a'..=b'z' => return Err(self.unexpected("an element symbol (capitalised)")),
                _ => return Err(self.unexpected("an element symbol or `(`")),
            }
        }
        if let Some(g) = self.groups.last() {
            return Err(Error::UnclosedGroup {
                position: g.position,
                open: char::from(g.open),
            });
        }
        if self.entries.len() == first_entry {
            return Err(self.unexpected("an element symbol or `(`"));
        }
        if let Some(c) = coefficient {
            self.scale(first_entry, c)?;
        }
        Ok(())
    }

    fn element(&mut self) -> Result<()> {
        let start = self.pos;
        self.pos += 1;
        while self.peek().is_some_and(|b| b.is_ascii_lowercase()) {
            self.pos += 1;
        }
        let sym = &self.s[start..self.pos];
        let element = match *sym {
            [a] => Element::from_bytes(a, 0),
            [a, b] => Element::from_bytes(a, b),
            _ => None,
        };
        let Some(element) = element else {
            let symbol = String::from_utf8_lossy(sym).into_owned();
            return Err(Error::UnknownElement {
                symbol,
                position: start,
            });
        };
        let amount = self.number()?.unwrap_or(Amount::ONE);
        self.entries.push(Entry {
            element,
            amount,
            position: start,
        });
        Ok(())
    }

    fn close(&mut self, b: u8) -> Result<()> {
        let Some(group) = self.groups.pop() else {
            return Err(Error::UnbalancedClose {
                position: self.pos,
                close: char::from(b),
            });
        };
        if closer(group.open) != b {
            return Err(self.unexpected(match group.open {
                b'(' => "`)`",
                b'[' => "`]`",
                _ => "`}`",
            }));
        }
        if self.entries.len() == group.first_entry {
            return Err(Error::EmptyGroup {
                position: group.position,
            });
        }
        self.pos += 1;
        if let Some(m) = self.number()? {
            self.scale(group.first_entry, m)?;
        }
        Ok(())
    }

    fn scale(&mut self, from: usize, by: Amount) -> Result<()> {
        let position = self.pos;
        for e in self.entries.iter_mut().skip(from) {
            e.amount = e.amount.checked_mul(by).ok_or(Error::BadAmount {
                position,
                reason: "amounts multiply out too large",
            })?;
        }
        Ok(())
    }

    fn digits(&mut self, max_digits: u32) -> Result<(u64, u32)> {
        let start = self.pos;
        let mut value: u64 = 0;
        let mut count = 0u32;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            count += 1;
            if count > max_digits {
                return Err(Error::BadAmount {
                    position: start,
                    reason: "too many digits",
                });
            }
            value = value * 10 + u64::from(d - b'0');
            self.pos += 1;
        }
        Ok((value, count))
    }

    /// Whether the `.` at the cursor, which follows digits, starts a `nH2O` adduct.
    fn dot_starts_water(&self) -> bool {
        let mut i = 1;
        while self.peek_at(i).is_some_and(|b| b.is_ascii_digit()) {
            i += 1;
        }
        i > 1
            && self.peek_at(i) == Some(b'H')
            && self.peek_at(i + 1) == Some(b'2')
            && self.peek_at(i + 2) == Some(b'O')
            && !self
                .peek_at(i + 3)
                .is_some_and(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    }

    /// Parses an optional amount at the cursor (`2`, `0.15`, `1/3`).
    fn number(&mut self) -> Result<Option<Amount>> {
        if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        let start = self.pos;
        let (int, _) = self.digits(7)?;
        let mut num = int;
        let mut den = 1u64;
        if self.peek() == Some(b'.')
            && self.peek_at(1).is_some_and(|b| b.is_ascii_digit())
            && (int == 0 || !self.dot_starts_water())
        {
            self.pos += 1;
            let (frac, places) = self.digits(MAX_DECIMALS)?;
            den = 10u64.pow(places);
            num = int * den + frac;
        }
        if self.peek() == Some(b'/') {
            self.pos += 1;
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(self.unexpected("a denominator after `/`"));
            }
            let den_pos = self.pos;
            let (d, _) = self.digits(7)?;
            if d == 0 {
                return Err(Error::BadAmount {
                    position: den_pos,
                    reason: "division by zero",
                });
            }
            den *= d;
        }
        if num == 0 {
            return Err(Error::BadAmount {
                position: start,
                reason: "amount must be positive",
            });
        }
        if num > MAX_NUMBER.saturating_mul(den) {
            return Err(Error::BadAmount {
                position: start,
                reason: "amount above 1000000",
            });
        }
        Amount::new(num, den).map(Some).ok_or(Error::BadAmount {
            position: start,
            reason: "amount out of range",
        })
    }
}

/// Sums repeated elements, keeping the order of first appearance.
fn merge(entries: &[Entry]) -> Result<Vec<(Element, Amount)>> {
    let mut slot = [u8::MAX; 128];
    let mut out: Vec<(Element, Amount)> = Vec::with_capacity(entries.len().min(16));
    for e in entries {
        let z = usize::from(e.element.z());
        match out.get_mut(usize::from(slot[z])) {
            Some((_, total)) => {
                *total = total.checked_add(e.amount).ok_or(Error::BadAmount {
                    position: e.position,
                    reason: "amounts add up too large",
                })?;
            }
            None => {
                slot[z] = u8::try_from(out.len()).unwrap_or(u8::MAX);
                out.push((e.element, e.amount));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "parse/tests.rs"]
mod tests;
