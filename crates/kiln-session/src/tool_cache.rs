//! The results cache of expensive tools (external MCP tool servers): a policy per tool (off,
//! for a time, forever) and the caller's cached results, keyed by tool, version and the
//! arguments normalised (object keys sorted, so `{"a":1,"b":2}` and `{"b":2,"a":1}` are one
//! call). Shared across the caller's sessions, never across users.

use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{Caller, Result, SessionManager};

/// How long a tool's results are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CachePolicy {
    /// Not cached (the default).
    #[default]
    Off,
    /// Kept for this long.
    For(Duration),
    /// Kept until the tool's version changes.
    Forever,
}

impl CachePolicy {
    /// Reads `off`, `forever`, or a duration: seconds (`3600`) or with a unit (`90s`, `30m`,
    /// `12h`, `7d`).
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let t = text.trim();
        match t {
            "" | "off" => return Ok(CachePolicy::Off),
            "forever" => return Ok(CachePolicy::Forever),
            _ => {}
        }
        let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
        let n: u64 = digits.parse().map_err(|_| {
            format!("cache `{text}`: use off, forever, or a time like 3600, 30m, 12h, 7d")
        })?;
        let secs = match unit {
            "" | "s" => n,
            "m" => n.saturating_mul(60),
            "h" => n.saturating_mul(3600),
            "d" => n.saturating_mul(86_400),
            _ => {
                return Err(format!(
                    "cache `{text}`: use off, forever, or a time like 3600, 30m, 12h, 7d"
                ));
            }
        };
        if secs == 0 {
            return Ok(CachePolicy::Off);
        }
        Ok(CachePolicy::For(Duration::from_secs(secs)))
    }
}

/// The arguments as one canonical text: object keys sorted at every level.
fn canonical(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&o[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

fn key(args: &Value) -> String {
    hex::encode(Sha256::digest(canonical(args).as_bytes()))
}

impl SessionManager {
    /// The caller's cached result of `tool` (at `version`) for these arguments, with when it
    /// was stored. A store that cannot be read is a miss, never an error.
    pub async fn cached_tool_result(
        &self,
        caller: &Caller,
        tool: &str,
        version: &str,
        args: &Value,
    ) -> Option<kiln_db::CachedOutput> {
        match self
            .db
            .cached_tool_output(&caller.user_id, tool, version, &key(args))
            .await
        {
            Ok(hit) => hit,
            Err(e) => {
                tracing::debug!("the tool cache could not be read: {e}");
                None
            }
        }
    }

    /// Keeps a result under the policy (nothing for `Off`).
    pub async fn cache_tool_result(
        &self,
        caller: &Caller,
        tool: &str,
        version: &str,
        args: &Value,
        output: &Value,
        policy: CachePolicy,
    ) -> Result<()> {
        let expires = match policy {
            CachePolicy::Off => return Ok(()),
            CachePolicy::Forever => None,
            CachePolicy::For(d) => Some(kiln_db::stamp(
                chrono::Utc::now() + chrono::Duration::from_std(d).unwrap_or_default(),
            )),
        };
        Ok(self
            .db
            .cache_tool_output(
                &caller.user_id,
                tool,
                version,
                &key(args),
                output,
                expires.as_deref(),
            )
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policies_read_and_arguments_normalise() {
        assert_eq!(CachePolicy::parse("off"), Ok(CachePolicy::Off));
        assert_eq!(CachePolicy::parse("forever"), Ok(CachePolicy::Forever));
        assert_eq!(
            CachePolicy::parse("90"),
            Ok(CachePolicy::For(Duration::from_secs(90)))
        );
        assert_eq!(
            CachePolicy::parse("12h"),
            Ok(CachePolicy::For(Duration::from_secs(43_200)))
        );
        assert_eq!(
            CachePolicy::parse("7d"),
            Ok(CachePolicy::For(Duration::from_secs(604_800)))
        );
        assert!(CachePolicy::parse("soon").is_err());
        assert!(CachePolicy::parse("5y").is_err());
        assert_eq!(
            key(&json!({"a": 1, "b": {"y": 2, "x": [1, {"q": 1, "p": 2}]}})),
            key(&json!({"b": {"x": [1, {"p": 2, "q": 1}], "y": 2}, "a": 1}))
        );
        assert_ne!(key(&json!({"a": 1})), key(&json!({"a": 2})));
    }
}
