//! Numbers with units as researchers type them (`700 °C`, `650C`, `5.5 h`, `151 mAh/g`,
//! `300-900 °C`): a small lexer the optimiser matcher reads ranges, results and points from.

/// Unit spellings and the unit they mean, longest first so `°C/min` wins over `°C`.
const UNITS: &[(&str, &str)] = &[
    ("°C/min", "°C/min"),
    ("ºC/min", "°C/min"),
    ("C/min", "°C/min"),
    ("K/min", "K/min"),
    ("mL/min", "mL/min"),
    ("ml/min", "mL/min"),
    ("µL/min", "µL/min"),
    ("uL/min", "µL/min"),
    ("L/min", "L/min"),
    ("mL/h", "mL/h"),
    ("ml/h", "mL/h"),
    ("mg/mL", "mg/mL"),
    ("mg/ml", "mg/mL"),
    ("mA/cm2", "mA/cm²"),
    ("mA/cm²", "mA/cm²"),
    ("mA/g", "mA/g"),
    ("g/L", "g/L"),
    ("mg/L", "mg/L"),
    ("sccm", "sccm"),
    ("mAh/g", "mAh/g"),
    ("mAh g-1", "mAh/g"),
    ("mS/cm", "mS/cm"),
    ("S/cm", "S/cm"),
    ("m2/g", "m²/g"),
    ("m²/g", "m²/g"),
    ("g/cm3", "g/cm³"),
    ("g/cm³", "g/cm³"),
    ("°C", "°C"),
    ("ºC", "°C"),
    ("degC", "°C"),
    ("deg C", "°C"),
    ("C", "°C"),
    ("K", "K"),
    ("hours", "h"),
    ("hour", "h"),
    ("hrs", "h"),
    ("hr", "h"),
    ("h", "h"),
    ("minutes", "min"),
    ("minute", "min"),
    ("mins", "min"),
    ("min", "min"),
    ("seconds", "s"),
    ("sec", "s"),
    ("s", "s"),
    ("wt%", "wt%"),
    ("wt. %", "wt%"),
    ("mol%", "mol%"),
    ("at%", "at%"),
    ("%", "%"),
    ("rpm", "rpm"),
    ("mM", "mM"),
    ("M", "M"),
    ("mol/L", "M"),
    ("eV", "eV"),
    ("mV", "mV"),
    ("V", "V"),
    ("mA", "mA"),
    ("kV", "kV"),
    ("kW", "kW"),
    ("W", "W"),
    ("ppm", "ppm"),
    ("psi", "psi"),
    ("mbar", "mbar"),
    ("bar", "bar"),
    ("kPa", "kPa"),
    ("MPa", "MPa"),
    ("GPa", "GPa"),
    ("Pa", "Pa"),
    ("nm", "nm"),
    ("µm", "µm"),
    ("um", "µm"),
    ("mg", "mg"),
    ("mmol", "mmol"),
    ("µL", "µL"),
    ("uL", "µL"),
    ("mL", "mL"),
    ("ml", "mL"),
    ("g", "g"),
];

/// One lexical token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    /// A number and the unit written right after it.
    Num {
        value: f64,
        unit: Option<&'static str>,
    },
    /// A word (letters, digits, `_`, `-`, `.` inside: `pH`, `O2`, `sol-gel`).
    Word(String),
    /// Any other character that is not a space (a new line is kept: it separates rows).
    Punct(char),
}

impl Token {
    /// The word, lowercased, if this is a word.
    pub(crate) fn word(&self) -> Option<String> {
        match self {
            Token::Word(word) => Some(word.to_lowercase()),
            _ => None,
        }
    }

    /// True for this punctuation character.
    pub(crate) fn is(&self, c: char) -> bool {
        matches!(self, Token::Punct(p) if *p == c)
    }
}

/// Returns the unit for a spelling at the start of `rest`, and its length in bytes, when the
/// spelling is not the start of a longer word.
fn unit_at(rest: &str) -> Option<(&'static str, usize)> {
    UNITS.iter().find_map(|(spelling, unit)| {
        let tail = rest.strip_prefix(spelling)?;
        // A `/` ends a unit only between two values ("250C/30min").
        let boundary = tail.chars().next().is_none_or(|c| {
            !c.is_alphanumeric()
                && (c != '/' || tail[1..].starts_with(|d: char| d.is_ascii_digit()))
        });
        boundary.then_some((*unit, spelling.len()))
    })
}

/// Splits text into numbers (with units), words and punctuation. A `-` or `–` between two
/// numbers is punctuation (a range), never a sign.
pub(crate) fn lex(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let Some(c) = rest.chars().next() else { break };
        let signed = c == '-'
            && !matches!(tokens.last(), Some(Token::Num { .. }))
            && rest[1..].starts_with(|d: char| d.is_ascii_digit());
        if c.is_ascii_digit() || signed {
            let start = i + usize::from(signed);
            let mut end = start;
            let bytes = text.as_bytes();
            while end < text.len()
                && (bytes[end].is_ascii_digit()
                    || (bytes[end] == b'.' && bytes.get(end + 1).is_some_and(u8::is_ascii_digit)))
            {
                end += 1;
            }
            // A number glued to letters that are not a unit is a word ("2nd", "O2" is
            // caught as a word before its digit).
            let after = &text[end..];
            let glued = after.starts_with(|d: char| d.is_alphabetic() || d == '°' || d == '%');
            let value: f64 = text[start..end].parse().unwrap_or(0.0);
            let value = if signed { -value } else { value };
            let spaced = after.trim_start_matches(' ');
            let unit = if glued {
                unit_at(after).map(|(unit, len)| (unit, end + len))
            } else if after.len() - spaced.len() <= 1 {
                unit_at(spaced).map(|(unit, len)| (unit, text.len() - spaced.len() + len))
            } else {
                None
            };
            match unit {
                Some((unit, next)) => {
                    tokens.push(Token::Num {
                        value,
                        unit: Some(unit),
                    });
                    i = next;
                }
                None if glued => {
                    let word_end = end
                        + after
                            .find(|d: char| !d.is_alphanumeric())
                            .unwrap_or(after.len());
                    tokens.push(Token::Word(text[i..word_end].to_owned()));
                    i = word_end;
                }
                None => {
                    tokens.push(Token::Num { value, unit: None });
                    i = end;
                }
            }
            continue;
        }
        if c.is_alphabetic() {
            let mut end = i;
            for (offset, d) in rest.char_indices() {
                let inner = matches!(d, '_' | '-' | '.')
                    && rest[offset + d.len_utf8()..].starts_with(char::is_alphanumeric);
                if d.is_alphanumeric() || (offset > 0 && inner) {
                    end = i + offset + d.len_utf8();
                } else {
                    break;
                }
            }
            tokens.push(Token::Word(text[i..end].to_owned()));
            i = end;
            continue;
        }
        if !c.is_whitespace() || c == '\n' {
            tokens.push(Token::Punct(c));
        }
        i += c.len_utf8();
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(value: f64, unit: Option<&'static str>) -> Token {
        Token::Num { value, unit }
    }

    #[test]
    fn numbers_keep_their_units() {
        assert_eq!(
            lex("got 151 mAh/g at 650C for 3h, 2nd run 300-900 °C"),
            vec![
                Token::Word("got".into()),
                num(151.0, Some("mAh/g")),
                Token::Word("at".into()),
                num(650.0, Some("°C")),
                Token::Word("for".into()),
                num(3.0, Some("h")),
                Token::Punct(','),
                Token::Word("2nd".into()),
                Token::Word("run".into()),
                num(300.0, None),
                Token::Punct('-'),
                num(900.0, Some("°C")),
            ]
        );
        assert_eq!(
            lex("pH 3-7, -20 to 5.5 hrs, O2/air"),
            vec![
                Token::Word("pH".into()),
                num(3.0, None),
                Token::Punct('-'),
                num(7.0, None),
                Token::Punct(','),
                num(-20.0, None),
                Token::Word("to".into()),
                num(5.5, Some("h")),
                Token::Punct(','),
                Token::Word("O2".into()),
                Token::Punct('/'),
                Token::Word("air".into()),
            ]
        );
        // A word after a number is a word, not a unit: "5 samples", "3 hot".
        assert_eq!(lex("5 samples")[0], num(5.0, None));
        assert_eq!(lex("3 hot")[1], Token::Word("hot".into()));
    }
}
