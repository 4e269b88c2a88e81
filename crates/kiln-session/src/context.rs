//! Context items: pinned notes of a kind (goal, constraint, note, …) that the agent always sees,
//! added, cleared by kind and cleaned up by age. They are ordinary `context_pin` and
//! `context_clear` state events, so they branch, merge and restore with the session.

use chrono::{DateTime, Duration, Utc};
use kiln_types::StateEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::{AppendOutcome, Caller, Error, NewNode, Result, SessionManager};

/// Longest item text, in bytes.
const MAX_ITEM_BYTES: usize = 4096;

/// Oldest age a cleanup names, in days (a hundred years: anything older is nothing).
pub const MAX_AGE_DAYS: u32 = 36_500;

/// A context item to pin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextItemInput {
    /// Lower-case word: `goal`, `constraint`, `note`, `reference`, … (letters, digits, `_`).
    pub kind: String,
    pub content: String,
    /// The item's name within its kind (default: taken from the content). Pinning the same
    /// kind and name again replaces the item.
    #[serde(default)]
    pub name: Option<String>,
}

/// What to clean up: items added more than `older_than_days` ago, and/or all but the newest
/// `keep_latest` items (optionally of one kind).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextCleanup {
    #[serde(default)]
    pub older_than_days: Option<u32>,
    #[serde(default)]
    pub keep_latest: Option<u32>,
    #[serde(default)]
    pub kind: Option<String>,
}

/// The items a clear or cleanup removed, and the new head (none when nothing matched).
#[derive(Debug, Clone, Serialize)]
pub struct Cleared {
    pub cleared: Vec<String>,
    pub head: Option<String>,
}

fn check_kind(kind: &str) -> Result<()> {
    let ok = (1..=32).contains(&kind.len())
        && kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "kind `{kind}` must be 1-32 lower-case letters, digits or `_`, starting with a letter"
        )))
    }
}

/// Turns text into a short key part: lower-case words joined by `-`, at most 40 chars.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let word = word.to_lowercase();
        if out.len() + word.len() + 1 > 40 {
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&word);
    }
    if out.is_empty() {
        // One word longer than the whole slug: its start.
        let first = text
            .split(|c: char| !c.is_alphanumeric())
            .find(|w| !w.is_empty());
        out = first
            .unwrap_or_default()
            .to_lowercase()
            .chars()
            .scan(0, |len, c| {
                *len += c.len_utf8();
                (*len <= 40).then_some(c)
            })
            .collect();
    }
    out
}

/// A pinned item written by [`SessionManager::add_context_item`]: its kind and when it was added.
fn item_meta(key: &str, value: &Value) -> Option<(String, DateTime<Utc>)> {
    let kind = value.get("kind")?.as_str()?;
    if !key.starts_with(&format!("{kind}:")) {
        return None;
    }
    let at = value.get("added_at")?.as_str()?.parse().ok()?;
    Some((kind.to_string(), at))
}

impl SessionManager {
    /// Pins a context item on a branch (default: the session's default branch).
    pub async fn add_context_item(
        &self,
        caller: &Caller,
        session: &str,
        branch: Option<&str>,
        item: ContextItemInput,
    ) -> Result<AppendOutcome> {
        check_kind(&item.kind)?;
        let content = item.content.trim();
        if content.is_empty() {
            return Err(Error::bad_request("content must not be empty"));
        }
        if content.len() > MAX_ITEM_BYTES {
            return Err(Error::bad_request(format!(
                "content is longer than {MAX_ITEM_BYTES} bytes"
            )));
        }
        if let Some(name) = &item.name
            && (name.trim().is_empty() || name.len() > 200)
        {
            return Err(Error::bad_request(
                "name must not be blank, and at most 200 bytes",
            ));
        }
        // A name (or, without one, the content) with no letter or digit (`→ 42 %`, `…`) is
        // named by its digest.
        let named = item.name.as_deref().map(str::trim).unwrap_or(content);
        let name = Some(slug(named))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                let digest = sha2::Sha256::digest(named.as_bytes());
                format!(
                    "item-{:02x}{:02x}{:02x}{:02x}",
                    digest[0], digest[1], digest[2], digest[3]
                )
            });
        let s = self.active_session(caller, session).await?;
        let branch = branch.unwrap_or(&s.default_branch);
        let event = StateEvent::ContextPin {
            key: format!("{}:{name}", item.kind),
            value: json!({
                "kind": item.kind,
                "content": content,
                "added_at": kiln_db::now(),
            }),
        };
        let node = NewNode::event(event, Some(caller.user_id.clone()));
        self.append_nodes(caller, session, branch, vec![node], None)
            .await
    }

    /// Clears the pinned items of one kind, or every pinned item with `kind = "all"`.
    pub async fn clear_context(
        &self,
        caller: &Caller,
        session: &str,
        branch: Option<&str>,
        kind: &str,
    ) -> Result<Cleared> {
        if kind != "all" {
            check_kind(kind)?;
        }
        self.clear_pins(caller, session, branch, |key, _| {
            kind == "all" || key.starts_with(&format!("{kind}:"))
        })
        .await
    }

    /// Clears pinned items by age and count (items pinned by other means, without a kind and
    /// time, are left alone).
    pub async fn cleanup_context(
        &self,
        caller: &Caller,
        session: &str,
        branch: Option<&str>,
        req: ContextCleanup,
    ) -> Result<Cleared> {
        // Who may touch the session comes first: a stranger learns nothing from our checks.
        let s = self.active_session(caller, session).await?;
        if req.older_than_days.is_none() && req.keep_latest.is_none() {
            return Err(Error::bad_request(
                "give older_than_days, keep_latest or both",
            ));
        }
        if let Some(k) = &req.kind {
            check_kind(k)?;
        }
        let cutoff = match req.older_than_days {
            None => None,
            Some(d) if d <= MAX_AGE_DAYS => {
                Duration::try_days(i64::from(d)).and_then(|age| Utc::now().checked_sub_signed(age))
            }
            Some(_) => None,
        };
        if req.older_than_days.is_some() && cutoff.is_none() {
            return Err(Error::bad_request(format!(
                "older_than_days must be at most {MAX_AGE_DAYS}"
            )));
        }
        let branch = branch.unwrap_or(&s.default_branch).to_string();
        let state = self.state(caller, session, &branch, None).await?;
        let mut items: Vec<(String, DateTime<Utc>)> = state
            .context
            .iter()
            .filter_map(|(k, v)| {
                let (kind, at) = item_meta(k, v)?;
                req.kind
                    .as_ref()
                    .is_none_or(|want| *want == kind)
                    .then(|| (k.clone(), at))
            })
            .collect();
        // Newest first, so `keep_latest` keeps a prefix.
        items.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let doomed: Vec<String> = items
            .iter()
            .enumerate()
            .filter(|(i, (_, at))| {
                let too_old = cutoff.is_some_and(|c| *at < c);
                let beyond = req.keep_latest.is_some_and(|n| *i >= n as usize);
                too_old || beyond
            })
            .map(|(_, (k, _))| k.clone())
            .collect();
        self.clear_pins(caller, session, Some(&branch), |key, _| {
            doomed.iter().any(|d| d == key)
        })
        .await
    }

    /// Appends one `context_clear` per pinned key that `doomed` selects, in one transaction,
    /// on the head the selection was made from (`head_moved` if someone appended meanwhile).
    async fn clear_pins(
        &self,
        caller: &Caller,
        session: &str,
        branch: Option<&str>,
        doomed: impl Fn(&str, &Value) -> bool,
    ) -> Result<Cleared> {
        let s = self.active_session(caller, session).await?;
        let branch = branch.unwrap_or(&s.default_branch).to_string();
        let head = self.db.branch(session, &branch).await?.head;
        // A head that moves after this read makes the append below fail with `head_moved`.
        let state = self.state(caller, session, &branch, None).await?;
        let keys: Vec<String> = state
            .context
            .iter()
            .filter(|(k, v)| doomed(k, v))
            .map(|(k, _)| k.clone())
            .collect();
        if keys.is_empty() {
            return Ok(Cleared {
                cleared: keys,
                head: None,
            });
        }
        let nodes = keys
            .iter()
            .map(|k| {
                NewNode::event(
                    StateEvent::ContextClear {
                        key: Some(k.clone()),
                    },
                    Some(caller.user_id.clone()),
                )
            })
            .collect();
        let out = self
            .append_nodes(caller, session, &branch, nodes, Some(&head))
            .await?;
        Ok(Cleared {
            cleared: keys,
            head: Some(out.head),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_short_lower_case_words() {
        assert_eq!(slug("Keep Li+ mobility HIGH!"), "keep-li-mobility-high");
        assert!(slug(&"word ".repeat(40)).len() <= 40);
        assert_eq!(
            slug(&"ä".repeat(30)),
            "ä".repeat(20),
            "one long word keeps its start"
        );
        assert_eq!(slug("!!!"), "");
    }

    #[test]
    fn kinds_are_checked() {
        assert!(check_kind("goal").is_ok());
        assert!(check_kind("lab_note2").is_ok());
        for bad in ["", "Goal", "2goal", "goal-x", &"g".repeat(33)] {
            assert!(check_kind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_items_with_a_matching_kind_and_time_are_dated() {
        let v = json!({"kind": "goal", "content": "x", "added_at": "2026-01-01T00:00:00Z"});
        assert_eq!(item_meta("goal:x", &v).map(|m| m.0), Some("goal".into()));
        assert!(item_meta("note:x", &v).is_none());
        assert!(item_meta("goal:x", &json!("plain pin")).is_none());
    }
}
