//! Notebook files: content-addressed blobs under `<data_dir>/files/<sha[..2]>/<sha>`, written
//! while hashing (never whole in memory for an upload), named on the branch by an entry that
//! a deletion marks rather than removes (the content stays until purged).

use std::path::{Path, PathBuf};

use kiln_session::Error;
use kiln_types::ErrorKind;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

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

/// Where a blob with this digest is stored.
pub fn blob_path(data_dir: &Path, sha256: &str) -> PathBuf {
    data_dir
        .join("files")
        .join(sha256.get(..2).unwrap_or("00"))
        .join(sha256)
}

/// Whether `s` is a SHA-256 in lower-case hex.
pub fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn io_error(e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(28) {
        Error::insufficient_storage("the server's disk is full; retry once space is freed")
    } else {
        tracing::warn!(error = %e, "could not store a notebook file");
        Error::storage_unavailable("could not store the file; retry later")
    }
}

/// The file is larger than the limit: 413.
pub fn too_large(limit: u64) -> Error {
    Error::new(
        ErrorKind::PayloadTooLarge,
        "payload_too_large",
        format!("the file is larger than the limit of {limit} bytes ([limits] max_file_mb)"),
    )
}

/// Writes chunks to the store as they come, hashing them, refusing past `limit` bytes; the
/// blob appears under its digest only when complete (write, then rename).
pub async fn store_stream<S, B, E>(
    data_dir: &Path,
    mut chunks: S,
    limit: u64,
) -> Result<(String, u64), Error>
where
    S: futures::Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    use futures::StreamExt;
    let tmp_dir = data_dir.join("files").join("tmp");
    tokio::fs::create_dir_all(&tmp_dir)
        .await
        .map_err(io_error)?;
    let tmp = tmp_dir.join(format!("upload-{}", uuid::Uuid::now_v7()));
    let mut file = tokio::fs::File::create(&tmp).await.map_err(io_error)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let outcome: Result<(), Error> = async {
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| {
                Error::new(
                    ErrorKind::BadRequest,
                    "invalid_body",
                    format!("the upload broke off: {e}"),
                )
            })?;
            let chunk = chunk.as_ref();
            size += chunk.len() as u64;
            if size > limit {
                return Err(too_large(limit));
            }
            hasher.update(chunk);
            file.write_all(chunk).await.map_err(io_error)?;
        }
        file.flush().await.map_err(io_error)?;
        file.sync_all().await.map_err(io_error)
    }
    .await;
    drop(file);
    if let Err(e) = outcome {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    let sha = hex::encode(hasher.finalize());
    let path = blob_path(data_dir, &sha);
    if tokio::fs::try_exists(&path).await.unwrap_or(false) {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Ok((sha, size));
    }
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(io_error)?;
    }
    tokio::fs::rename(&tmp, &path).await.map_err(io_error)?;
    Ok((sha, size))
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
