//! A user's memory across sessions: notes and preferences the user (or the agent, when the user
//! asks it to remember) saves, read into the context window of every turn that user starts and
//! never visible to anyone else.

use kiln_db::{MemoryEntry, NewMemory};
use serde::Deserialize;

use crate::{Caller, Error, Result, SessionManager};

/// The most entries one user keeps.
pub const MAX_MEMORY_ENTRIES: u32 = 200;
/// The longest entry, in characters.
pub const MAX_MEMORY_CHARS: usize = 1000;

/// An entry to save: `kind` is `note` (the default) or `preference`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryInput {
    pub content: String,
    #[serde(default)]
    pub kind: Option<String>,
}

/// A change to an entry; an absent field is kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryPatch {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
}

/// Who saves an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemorySource<'a> {
    /// The user, through the API, the CLI or the web.
    User,
    /// The agent, asked in the named session to remember something.
    Agent { session: &'a str },
}

fn content(text: &str) -> Result<&str> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::bad_request("a memory entry needs some text"));
    }
    let chars = text.chars().count();
    if chars > MAX_MEMORY_CHARS {
        return Err(Error::bad_request(format!(
            "a memory entry is at most {MAX_MEMORY_CHARS} characters (this one has {chars})"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::bad_request(
            "a memory entry may not contain control characters",
        ));
    }
    Ok(text)
}

fn kind(kind: Option<&str>) -> Result<Option<&'static str>> {
    match kind {
        None => Ok(None),
        Some("note") => Ok(Some("note")),
        Some("preference") => Ok(Some("preference")),
        Some(other) => Err(Error::bad_request(format!(
            "unknown memory kind `{other}`: use `note` or `preference`"
        ))),
    }
}

impl SessionManager {
    /// The caller's memory, oldest first.
    pub async fn memory(&self, caller: &Caller) -> Result<Vec<MemoryEntry>> {
        Ok(self.db.memory(&caller.user_id).await?)
    }

    /// Saves an entry in the caller's memory; saving the same text again returns the entry
    /// already there. A full memory is a 400 naming the limit.
    pub async fn remember(
        &self,
        caller: &Caller,
        input: &MemoryInput,
        source: MemorySource<'_>,
    ) -> Result<MemoryEntry> {
        let text = content(&input.content)?;
        let kind = kind(input.kind.as_deref())?.unwrap_or("note");
        let (source, session_id) = match source {
            MemorySource::User => ("user", None),
            MemorySource::Agent { session } => ("agent", Some(session)),
        };
        Ok(self
            .db
            .insert_memory(
                &NewMemory {
                    user_id: &caller.user_id,
                    kind,
                    content: text,
                    source,
                    session_id,
                },
                MAX_MEMORY_ENTRIES,
            )
            .await?)
    }

    /// Changes one of the caller's entries; someone else's is "not found".
    pub async fn update_memory(
        &self,
        caller: &Caller,
        id: &str,
        patch: &MemoryPatch,
    ) -> Result<MemoryEntry> {
        let text = patch.content.as_deref().map(content).transpose()?;
        let kind = kind(patch.kind.as_deref())?;
        Ok(self
            .db
            .update_memory(&caller.user_id, id, text, kind)
            .await?)
    }

    /// Deletes one of the caller's entries; someone else's is "not found".
    pub async fn forget(&self, caller: &Caller, id: &str) -> Result<()> {
        Ok(self.db.delete_memory(&caller.user_id, id).await?)
    }
}
