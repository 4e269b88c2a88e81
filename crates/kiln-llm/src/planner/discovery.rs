//! Rule-based discovery detection: sentences that state a finding, by category, with a
//! confidence from cue counts and hedging. Also parses a provider's JSON classification.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The kinds of finding the agent records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscoveryCategory {
    /// A structure (or composition) explains a property.
    StructureProperty,
    /// A new or improved way to make a material.
    NovelSynthesis,
    /// Something about (in)stability, decomposition or degradation.
    StabilityInsight,
    /// Phases, transitions, solid solutions, polymorphs.
    PhaseRelationship,
}

impl DiscoveryCategory {
    /// Every category, in a fixed order.
    pub const ALL: [DiscoveryCategory; 4] = [
        DiscoveryCategory::StructureProperty,
        DiscoveryCategory::NovelSynthesis,
        DiscoveryCategory::StabilityInsight,
        DiscoveryCategory::PhaseRelationship,
    ];

    /// Returns the snake_case name used in configuration and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscoveryCategory::StructureProperty => "structure_property",
            DiscoveryCategory::NovelSynthesis => "novel_synthesis",
            DiscoveryCategory::StabilityInsight => "stability_insight",
            DiscoveryCategory::PhaseRelationship => "phase_relationship",
        }
    }
}

impl fmt::Display for DiscoveryCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DiscoveryCategory {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        DiscoveryCategory::ALL
            .into_iter()
            .find(|category| category.as_str() == name.trim())
            .ok_or_else(|| Error::Malformed(format!("unknown discovery category: {name}")))
    }
}

/// One finding detected in a text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectedDiscovery {
    /// Its category.
    pub category: DiscoveryCategory,
    /// The sentence that states it.
    pub description: String,
    /// 0..=1.
    pub confidence: f32,
}

/// Cue lists for one category: every group must match at least once.
struct Rule {
    category: DiscoveryCategory,
    groups: &'static [&'static [&'static str]],
}

const RULES: [Rule; 4] = [
    Rule {
        category: DiscoveryCategory::StructureProperty,
        groups: &[
            &[
                "structure",
                "olivine",
                "spinel",
                "perovskite",
                "layered",
                "lattice",
                "crystal",
                "framework",
                "coordination",
                "dopant",
                "doping",
                "grain",
                "morpholog",
                "tunnel",
                "channel",
                "vacanc",
                "octahedr",
                "tetrahedr",
            ],
            &[
                "conductiv",
                "mobility",
                "diffusi",
                "capacity",
                "voltage",
                "band gap",
                "bandgap",
                "hardness",
                "magnet",
                "catalytic",
                "efficien",
                "rate capability",
                "transport",
                "performance",
            ],
            &[
                "crucial",
                "key",
                "essential",
                "enable",
                "improve",
                "increase",
                "decrease",
                "determine",
                "responsible",
                "correlat",
                "govern",
                "affect",
                "lead to",
                "leads to",
                "result in",
                "due to",
                "because",
                "explain",
                "control",
                "important",
                "drives",
            ],
        ],
    },
    Rule {
        category: DiscoveryCategory::NovelSynthesis,
        groups: &[
            &[
                "synthes",
                "prepared",
                "fabricat",
                "grown",
                "sol-gel",
                "hydrothermal",
                "solid-state route",
                "anneal",
                "calcin",
                "sinter",
                "ball mill",
                "precursor",
            ],
            &[
                "new",
                "novel",
                "first",
                "unprecedented",
                "lower temperature",
                "successful",
                "route",
                "method",
                "faster",
                "cheaper",
                "higher yield",
                "improved",
            ],
        ],
    },
    Rule {
        category: DiscoveryCategory::StabilityInsight,
        groups: &[
            &[
                "stable",
                "stability",
                "decompos",
                "degrad",
                "metastable",
                "formation energy",
                "convex hull",
                "capacity fade",
                "cycle life",
                "oxidation resistance",
                "corrosion",
            ],
            &[
                "more", "less", "up to", "above", "below", "remain", "retain", "improve", "reduce",
                "increase", "decrease", "until", "over", "suggest", "show",
            ],
        ],
    },
    Rule {
        category: DiscoveryCategory::PhaseRelationship,
        groups: &[&[
            "phase transition",
            "phase diagram",
            "transforms to",
            "transforms into",
            "two-phase",
            "solid solution",
            "miscib",
            "polymorph",
            "eutectic",
            "phase boundary",
            "coexist",
            "phase separation",
            "transition temperature",
        ]],
    },
];

const HEDGES: [&str; 8] = [
    "seem", "may ", "might", "possibly", "perhaps", "appears", "could", "likely",
];
const ASSERTIONS: [&str; 5] = [
    "confirmed",
    "demonstrated",
    "clearly",
    "consistently",
    "measured",
];

/// Returns the findings stated in `text`: at most one per sentence (its best category),
/// in order. Questions are never findings.
pub fn detect_discoveries(text: &str) -> Vec<DetectedDiscovery> {
    sentences(text)
        .into_iter()
        .filter(|sentence| !sentence.ends_with('?'))
        .filter_map(|sentence| {
            let lower = sentence.to_lowercase();
            let (category, cues) = RULES
                .iter()
                .filter_map(|rule| score(rule, &lower).map(|cues| (rule.category, cues)))
                .max_by_key(|(_, cues)| *cues)?;
            Some(DetectedDiscovery {
                category,
                description: sentence.to_owned(),
                confidence: confidence(&lower, cues),
            })
        })
        .collect()
}

/// Returns the number of matched cues if every group of the rule matches.
fn score(rule: &Rule, lower: &str) -> Option<usize> {
    let mut total = 0;
    for group in rule.groups {
        let hits = group.iter().filter(|cue| lower.contains(*cue)).count();
        if hits == 0 {
            return None;
        }
        total += hits;
    }
    Some(total)
}

fn confidence(lower: &str, cues: usize) -> f32 {
    let mut value = 0.5 + 0.08 * cues.saturating_sub(1).min(4) as f32;
    if HEDGES.iter().any(|hedge| lower.contains(hedge)) {
        value -= 0.15;
    }
    if ASSERTIONS.iter().any(|word| lower.contains(word)) {
        value += 0.15;
    }
    (value.clamp(0.1, 0.95) * 100.0).round() / 100.0
}

/// Splits text into trimmed sentences, keeping decimal points (`1.5 V`) inside sentences.
pub(crate) fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes: Vec<(usize, char)> = text.char_indices().collect();
    for (position, &(index, c)) in bytes.iter().enumerate() {
        let next = bytes.get(position + 1).map(|&(_, n)| n);
        let ends =
            matches!(c, '.' | '!' | '?') && next.is_none_or(char::is_whitespace) || c == '\n';
        if ends {
            let end = index + c.len_utf8();
            let sentence = text[start..end]
                .trim()
                .trim_start_matches(['-', '*', '•', ' ']);
            if sentence.chars().any(char::is_alphanumeric) {
                out.push(sentence.trim());
            }
            start = end;
        }
    }
    let rest = text[start..]
        .trim()
        .trim_start_matches(['-', '*', '•', ' ']);
    if rest.chars().any(char::is_alphanumeric) {
        out.push(rest.trim());
    }
    out
}

/// Parses a model's classification, `{"discoveries": [...]}` or a bare array. Entries with an
/// unknown category or no description are dropped; confidence is clamped to 0..=1.
pub fn parse_discoveries(json: &str) -> Result<Vec<DetectedDiscovery>> {
    let value: serde_json::Value = serde_json::from_str(json.trim())
        .map_err(|error| Error::Malformed(format!("discoveries are not JSON: {error}")))?;
    let items = match &value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(map) => match map.get("discoveries") {
            Some(serde_json::Value::Array(items)) => items,
            _ => return Err(Error::Malformed("no \"discoveries\" array".into())),
        },
        _ => {
            return Err(Error::Malformed(
                "discoveries must be an object or array".into(),
            ));
        }
    };
    Ok(items
        .iter()
        .filter_map(|item| {
            let category = item.get("category")?.as_str()?.parse().ok()?;
            let description = item.get("description")?.as_str()?.trim();
            if description.is_empty() {
                return None;
            }
            let confidence = item.get("confidence").and_then(serde_json::Value::as_f64);
            Some(DetectedDiscovery {
                category,
                description: description.to_owned(),
                confidence: confidence.unwrap_or(0.5).clamp(0.0, 1.0) as f32,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_from_sentences() {
        use DiscoveryCategory::*;
        let cases = [
            (
                "The olivine structure seems crucial for Li+ mobility.",
                Some(StructureProperty),
            ),
            (
                "We synthesized LiFePO4 by a novel sol-gel route at 500 C.",
                Some(NovelSynthesis),
            ),
            (
                "LiFePO4 remains stable up to 400 C in air.",
                Some(StabilityInsight),
            ),
            (
                "FePO4 and LiFePO4 coexist as a two-phase mixture.",
                Some(PhaseRelationship),
            ),
            ("The molar mass is 157.76 g/mol.", None),
            ("Does the olivine structure improve Li mobility?", None),
        ];
        for (text, expected) in cases {
            let found = detect_discoveries(text);
            assert_eq!(found.first().map(|d| d.category), expected, "{text}");
            if let Some(discovery) = found.first() {
                assert_eq!(discovery.description, text);
            }
        }
    }

    #[test]
    fn hedging_lowers_and_assertion_raises_confidence() {
        let hedged = detect_discoveries("The olivine structure seems crucial for Li mobility.");
        let firm =
            detect_discoveries("Measured: the olivine structure is crucial for Li mobility.");
        assert!(
            hedged[0].confidence < firm[0].confidence,
            "{hedged:?} {firm:?}"
        );
        assert!((0.0..=1.0).contains(&hedged[0].confidence));
    }

    #[test]
    fn one_finding_per_sentence_in_order() {
        let text = "LiFePO4 remains stable up to 400 C. The molar mass is 157.76 g/mol. \
                    Doping with Nb increases the electronic conductivity.";
        let found = detect_discoveries(text);
        let categories: Vec<_> = found.iter().map(|d| d.category).collect();
        assert_eq!(
            categories,
            vec![
                DiscoveryCategory::StabilityInsight,
                DiscoveryCategory::StructureProperty
            ]
        );
    }

    #[test]
    fn sentences_keep_decimals() {
        assert_eq!(
            sentences("It is 3.5 V. Next one"),
            vec!["It is 3.5 V.", "Next one"]
        );
    }

    #[test]
    fn parses_model_classification() {
        let json = r#"{"discoveries": [
            {"category": "stability_insight", "description": "stable to 400 C", "confidence": 1.4},
            {"category": "astrology", "description": "x"},
            {"category": "novel_synthesis", "description": "  "}
        ]}"#;
        let parsed = parse_discoveries(json).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].category, DiscoveryCategory::StabilityInsight);
        assert_eq!(parsed[0].confidence, 1.0);
        assert!(parse_discoveries("[]").unwrap().is_empty());
        assert!(parse_discoveries("not json").is_err());
        assert!(parse_discoveries(r#"{"other": 1}"#).is_err());
    }

    #[test]
    fn category_names_round_trip() {
        for category in DiscoveryCategory::ALL {
            assert_eq!(
                category.as_str().parse::<DiscoveryCategory>().unwrap(),
                category
            );
            assert_eq!(serde_json::to_value(category).unwrap(), category.as_str());
        }
    }
}
