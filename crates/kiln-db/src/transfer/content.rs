//! The data directory's stored content (notebook files, attachments) moved into PostgreSQL's
//! `file_blobs` / `file_chunks` as part of the copy's one transaction, and checked by reading
//! every blob back: its chunks must hash to its name and add up to its size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnection;

use crate::blobs::{BLOB_CHUNK, fill};
use crate::{Error, Result};

/// The tables that hold content (empty on SQLite, so no row of theirs is copied or compared).
pub(super) const CONTENT_TABLES: [&str; 2] = ["file_blobs", "file_chunks"];

/// One kind of content: what the data directory held and what PostgreSQL holds after the copy.
#[derive(Debug, Clone, Serialize)]
pub struct ContentTransfer {
    /// `files` or `attachments`.
    pub kind: String,
    pub on_disk: i64,
    pub in_postgres: i64,
    pub bytes: u64,
    /// Every blob in PostgreSQL reads back to its name's digest and its size, and the names
    /// are those on disk.
    pub same_content: bool,
    /// Files on disk whose content does not hash to their name (not copied: damaged before
    /// the move). A verified copy has none.
    pub damaged: Vec<String>,
}

/// Content found on disk: digest → (path, size).
pub(super) type Found = BTreeMap<String, (PathBuf, u64)>;

fn io(what: &Path, e: std::io::Error) -> Error {
    Error::StorageFailed(format!("could not read {}: {e}", what.display()))
}

fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The content under `dir` (`<dir>/<sha[..2]>/<sha>`; temporary files and anything else are
/// ignored), each hashed: those whose content does not match their name come back apart.
pub(super) async fn scan(dir: &Path) -> Result<(Found, Vec<String>)> {
    let mut found = Found::new();
    let mut damaged = Vec::new();
    let mut top = match tokio::fs::read_dir(dir).await {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((found, damaged)),
        Err(e) => return Err(io(dir, e)),
    };
    let mut buf = vec![0u8; BLOB_CHUNK];
    while let Some(sub) = top.next_entry().await.map_err(|e| io(dir, e))? {
        let sub_path = sub.path();
        if !sub_path.is_dir() || sub.file_name().len() != 2 {
            continue;
        }
        let mut files = tokio::fs::read_dir(&sub_path)
            .await
            .map_err(|e| io(&sub_path, e))?;
        while let Some(f) = files.next_entry().await.map_err(|e| io(&sub_path, e))? {
            let name = f.file_name().to_string_lossy().into_owned();
            let path = f.path();
            if !is_digest(&name) || !path.is_file() {
                continue;
            }
            let mut file = tokio::fs::File::open(&path)
                .await
                .map_err(|e| io(&path, e))?;
            let mut h = Sha256::new();
            let mut size = 0u64;
            loop {
                let n = fill(&mut file, &mut buf).await.map_err(|e| io(&path, e))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                size += n as u64;
            }
            if hex::encode(h.finalize()) == name {
                found.insert(name, (path, size));
            } else {
                damaged.push(path.display().to_string());
            }
        }
    }
    Ok((found, damaged))
}

/// Copies the content found into PostgreSQL, in the copy's transaction.
pub(super) async fn copy(pg: &mut PgConnection, kind: &str, found: &Found) -> Result<()> {
    let mut buf = vec![0u8; BLOB_CHUNK];
    let now = crate::now();
    for (sha, (path, size)) in found {
        sqlx::query(
            "INSERT INTO file_blobs (kind, sha256, bytes, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(kind)
        .bind(sha)
        .bind(i64::try_from(*size).unwrap_or(i64::MAX))
        .bind(&now)
        .execute(&mut *pg)
        .await?;
        let mut file = tokio::fs::File::open(path).await.map_err(|e| io(path, e))?;
        let mut idx = 0i64;
        loop {
            let n = fill(&mut file, &mut buf).await.map_err(|e| io(path, e))?;
            if n == 0 {
                break;
            }
            sqlx::query(
                "INSERT INTO file_chunks (kind, sha256, idx, data) VALUES ($1, $2, $3, $4)",
            )
            .bind(kind)
            .bind(sha)
            .bind(idx)
            .bind(&buf[..n])
            .execute(&mut *pg)
            .await?;
            idx += 1;
        }
    }
    Ok(())
}

/// Reads every blob of `kind` back from PostgreSQL and compares it with what was found.
pub(super) async fn check(
    pg: &mut PgConnection,
    kind: &str,
    found: &Found,
    damaged: Vec<String>,
) -> Result<ContentTransfer> {
    let blobs: Vec<(String, i64)> =
        sqlx::query_as("SELECT sha256, bytes FROM file_blobs WHERE kind = $1 ORDER BY sha256")
            .bind(kind)
            .fetch_all(&mut *pg)
            .await?;
    let mut same = blobs.len() == found.len();
    let mut bytes = 0u64;
    for (sha, size) in &blobs {
        let mut h = Sha256::new();
        let mut read = 0u64;
        let mut chunks = sqlx::query_scalar::<_, Vec<u8>>(
            "SELECT data FROM file_chunks WHERE kind = $1 AND sha256 = $2 ORDER BY idx",
        )
        .bind(kind)
        .bind(sha)
        .fetch(&mut *pg);
        while let Some(chunk) = chunks.try_next().await? {
            h.update(&chunk);
            read += chunk.len() as u64;
        }
        bytes += read;
        let size = u64::try_from(*size).unwrap_or(0);
        same &= read == size
            && hex::encode(h.finalize()) == *sha
            && found.get(sha).is_some_and(|(_, s)| *s == size);
    }
    Ok(ContentTransfer {
        kind: kind.to_owned(),
        on_disk: found.len() as i64,
        in_postgres: blobs.len() as i64,
        bytes,
        same_content: same,
        damaged,
    })
}
