//! Notebook files on a branch: an entry per file naming content-addressed content (stored by
//! `kiln_session::files`), which a deletion marks rather than removes (the content stays
//! until purged).

use kiln_session::Error;
pub use kiln_session::files::{blob_path, is_digest, too_large};
use kiln_types::ErrorKind;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{NotebookState, bad};
use crate::tool::ToolError;

/// One file on the branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The entry's id (`f` + the first 16 hex digits of SHA-256 over session-free facts:
    /// name, digest, time), unique on the branch.
    pub id: String,
    /// The name given.
    pub name: String,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// The media type given (default application/octet-stream).
    pub content_type: String,
    /// When it was added, and by whom.
    pub at: String,
    pub by: String,
    /// When it was deleted (the content is kept until purged), and by whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_by: Option<String>,
}

/// Checks a file name and media type.
pub fn check_meta(name: &str, content_type: &str) -> Result<(), ToolError> {
    if name.trim().is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        return Err(bad("`name` must be 1-255 bytes without control characters"));
    }
    if content_type.is_empty()
        || content_type.len() > 255
        || !content_type.contains('/')
        || content_type.chars().any(|c| c.is_control() || c == '\n')
    {
        return Err(bad("`content_type` must be a media type such as text/csv"));
    }
    Ok(())
}

/// Names a stored blob on the branch; returns the new entry.
pub fn record(
    nb: &mut NotebookState,
    name: &str,
    sha256: &str,
    bytes: u64,
    content_type: &str,
    at: &str,
    by: &str,
) -> FileEntry {
    let digest = Sha256::digest(format!("{name}\n{sha256}\n{at}\n{}", nb.files.len()));
    let entry = FileEntry {
        id: format!("f{}", &hex::encode(digest)[..16]),
        name: name.to_owned(),
        sha256: sha256.to_owned(),
        bytes,
        content_type: content_type.to_owned(),
        at: at.to_owned(),
        by: by.to_owned(),
        deleted_at: None,
        deleted_by: None,
    };
    nb.files.push(entry.clone());
    entry
}

/// A file on the branch that is not deleted.
pub fn find<'a>(nb: &'a NotebookState, id: &str) -> Result<&'a FileEntry, ToolError> {
    nb.files
        .iter()
        .find(|f| f.id == id && f.deleted_at.is_none())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                "no_such_file",
                format!("no file `{id}` on this branch"),
            )
            .into()
        })
}

/// Marks a file deleted on the branch (the content is kept).
pub fn delete(
    nb: &mut NotebookState,
    id: &str,
    at: &str,
    by: &str,
) -> Result<FileEntry, ToolError> {
    find(nb, id)?;
    let f = nb
        .files
        .iter_mut()
        .find(|f| f.id == id && f.deleted_at.is_none())
        .ok_or_else(|| bad("no such file"))?;
    f.deleted_at = Some(at.to_owned());
    f.deleted_by = Some(by.to_owned());
    Ok(f.clone())
}

/// Merges two branches' files: the union by id; deleted on either side is deleted.
pub fn union(ours: &mut Vec<FileEntry>, theirs: Vec<FileEntry>) {
    for t in theirs {
        match ours.iter_mut().find(|o| o.id == t.id) {
            Some(o) => {
                if o.deleted_at.is_none() && t.deleted_at.is_some() {
                    o.deleted_at = t.deleted_at;
                    o.deleted_by = t.deleted_by;
                }
            }
            None => ours.push(t),
        }
    }
}
