//! Notebook file and attachment contents: content-addressed blobs under
//! `<data_dir>/<kind>/<sha[..2]>/<sha>` (kind `files` or `attachments`), an upload written
//! while hashing (never whole in memory). On SQLite that directory is the store. On PostgreSQL, where several servers share the database but no disk, the
//! database holds every blob (`kiln_db`'s `put_blob`) and each server's directory is a cache
//! filled on first read; the database decides whether content exists, so a purge on one
//! server is a purge on all.

use std::path::{Path, PathBuf};

use kiln_types::ErrorKind;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::{Error, Result, SessionManager};

/// The two kinds of stored content, each its own folder of the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Notebook files (uploads, up to `[limits] max_file_mb`).
    Files,
    /// Notebook attachments and images tools return (small).
    Attachments,
}

impl Content {
    /// The folder of the data directory, and the kind's name in the store.
    pub fn dir(self) -> &'static str {
        match self {
            Content::Files => "files",
            Content::Attachments => "attachments",
        }
    }
}

/// Where content of `kind` with this digest is on this server's disk.
pub fn content_path(data_dir: &Path, kind: Content, sha256: &str) -> PathBuf {
    data_dir
        .join(kind.dir())
        .join(sha256.get(..2).unwrap_or("00"))
        .join(sha256)
}

/// Where a notebook file's content with this digest is on this server's disk.
pub fn blob_path(data_dir: &Path, sha256: &str) -> PathBuf {
    content_path(data_dir, Content::Files, sha256)
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
async fn store_stream<S, B, E>(
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
    let tmp = tmp_dir.join(format!("upload-{}", kiln_types::NodeId::new()));
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

impl SessionManager {
    /// Stores an upload as it streams (hashed, refused past `limit` bytes) and, on a shared
    /// store, in the database too. Returns its SHA-256 (hex) and size.
    pub async fn store_file<S, B, E>(&self, chunks: S, limit: u64) -> Result<(String, u64)>
    where
        S: futures::Stream<Item = std::result::Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let (sha, size) = store_stream(&self.data_dir, chunks, limit).await?;
        self.share_content(Content::Files, &sha).await?;
        Ok((sha, size))
    }

    /// Stores small content held in memory (an attachment, an image a tool returned) under
    /// its digest; returns the digest.
    pub async fn store_content(&self, kind: Content, bytes: &[u8]) -> Result<String> {
        let sha = hex::encode(Sha256::digest(bytes));
        let path = content_path(&self.data_dir, kind, &sha);
        if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            let parent = path.parent().unwrap_or(&self.data_dir);
            tokio::fs::create_dir_all(parent).await.map_err(io_error)?;
            // Write then rename: a crash never leaves a partial file under the final name.
            let tmp = parent.join(format!("{sha}.tmp-{}", kiln_types::NodeId::new()));
            tokio::fs::write(&tmp, bytes).await.map_err(io_error)?;
            tokio::fs::rename(&tmp, &path).await.map_err(io_error)?;
        }
        self.share_content(kind, &sha).await?;
        Ok(sha)
    }

    /// On a shared store, copies content just written to this server's disk into the
    /// database (once: content already there is left alone).
    async fn share_content(&self, kind: Content, sha256: &str) -> Result<()> {
        if self.db.keeps_files() {
            self.db
                .put_blob(
                    kind.dir(),
                    sha256,
                    &content_path(&self.data_dir, kind, sha256),
                )
                .await?;
        }
        Ok(())
    }

    /// Where stored content is on this server's disk, or `None` when it is not stored (never
    /// uploaded, or purged). On a shared store the database is asked first, and content
    /// another server stored is fetched into this server's cache.
    pub async fn content(&self, kind: Content, sha256: &str) -> Result<Option<PathBuf>> {
        if !is_digest(sha256) {
            return Ok(None);
        }
        let path = content_path(&self.data_dir, kind, sha256);
        let on_disk = tokio::fs::metadata(&path)
            .await
            .ok()
            .filter(|m| m.is_file());
        if !self.db.keeps_files() {
            return Ok(on_disk.map(|_| path));
        }
        match self.db.blob_bytes(kind.dir(), sha256).await? {
            // Purged (perhaps on another server): a cached copy goes too.
            None => {
                if on_disk.is_some() {
                    let _ = tokio::fs::remove_file(&path).await;
                }
                Ok(None)
            }
            Some(bytes) if on_disk.is_some_and(|m| m.len() == bytes) => Ok(Some(path)),
            Some(_) => Ok(self
                .db
                .read_blob(kind.dir(), sha256, &path)
                .await?
                .then_some(path)),
        }
    }

    /// Where a notebook file's content is on this server's disk (see [`Self::content`]).
    pub async fn file_content(&self, sha256: &str) -> Result<Option<PathBuf>> {
        self.content(Content::Files, sha256).await
    }

    /// Removes a notebook file's content (from this server's disk and, on a shared store,
    /// the database). Returns whether any was removed.
    pub async fn remove_file_content(&self, sha256: &str) -> Result<bool> {
        let mut removed = false;
        if self.db.keeps_files() {
            removed = self.db.delete_blob(Content::Files.dir(), sha256).await?;
        }
        if is_digest(sha256) {
            match tokio::fs::remove_file(blob_path(&self.data_dir, sha256)).await {
                Ok(()) => removed = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::storage_unavailable(format!(
                        "could not remove the file's content: {e}"
                    )));
                }
            }
        }
        Ok(removed)
    }
}
