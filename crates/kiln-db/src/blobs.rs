//! Notebook file and attachment contents held in the store, for PostgreSQL, where several
//! servers share the database but no disk: blobs (`file_blobs`, `file_chunks`) addressed by a
//! kind (`files`, `attachments`) and their SHA-256, in chunks of at
//! most [`BLOB_CHUNK`] bytes, written and read one chunk at a time, so a 100 MB file never sits
//! whole in memory. Blob writes stay outside the store's write order (no advisory lock): a blob
//! is named by its content, so no other write depends on when it lands. On SQLite the contents
//! stay in `<data_dir>/files` and these tables stay empty.

use std::path::Path;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::conn::{query, query_scalar};
use crate::{Db, Error, Result};

/// The largest chunk of a blob stored in one row.
pub const BLOB_CHUNK: usize = 1 << 20;

fn io(what: &str, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(28) {
        Error::StorageFull(format!("{what}: {e}"))
    } else {
        Error::StorageFailed(format!("{what}: {e}"))
    }
}

/// Reads until `buf` is full or the file ends; returns how many bytes were read.
pub(crate) async fn fill(f: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).await? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

impl Db {
    /// Whether notebook file contents live in the store (PostgreSQL: servers share no disk)
    /// rather than only in this server's data directory (SQLite).
    pub fn keeps_files(&self) -> bool {
        self.is_postgres()
    }

    /// Stores the file at `path`, whose SHA-256 (hex) is `sha256`, as a blob of `kind`, unless
    /// the store holds that content already. Returns whether it was written. Two servers storing the same content
    /// at once: the second waits for the first and then finds it there.
    pub async fn put_blob(&self, kind: &str, sha256: &str, path: &Path) -> Result<bool> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| io("could not open a file to store", e))?;
        let bytes = file
            .metadata()
            .await
            .map_err(|e| io("could not read a file's size", e))?
            .len();
        let mut tx = self.write_unordered().await?;
        let fresh = query(
            "INSERT INTO file_blobs (kind, sha256, bytes, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kind, sha256) DO NOTHING",
        )
        .bind(kind)
        .bind(sha256)
        .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
        .bind(crate::now())
        .execute(&mut tx)
        .await?;
        if fresh == 0 {
            return Ok(false);
        }
        let mut buf = vec![0u8; BLOB_CHUNK];
        let mut idx = 0i64;
        loop {
            let n = fill(&mut file, &mut buf)
                .await
                .map_err(|e| io("could not read a file to store", e))?;
            if n == 0 {
                break;
            }
            query("INSERT INTO file_chunks (kind, sha256, idx, data) VALUES ($1, $2, $3, $4)")
                .bind(kind)
                .bind(sha256)
                .bind(idx)
                .bind(&buf[..n])
                .execute(&mut tx)
                .await?;
            idx += 1;
            if n < BLOB_CHUNK {
                break;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The size of a stored blob, or `None` when the store does not hold it.
    pub async fn blob_bytes(&self, kind: &str, sha256: &str) -> Result<Option<u64>> {
        let mut conn = self.read().await?;
        let bytes: Option<i64> =
            query_scalar("SELECT bytes FROM file_blobs WHERE kind = $1 AND sha256 = $2")
                .bind(kind)
                .bind(sha256)
                .fetch_optional(&mut conn)
                .await?;
        Ok(bytes.map(|b| u64::try_from(b).unwrap_or(0)))
    }

    /// Writes a stored blob to `dest` (through a temporary file beside it, renamed when
    /// complete), checking its size and digest on the way. Returns `false` when the store does
    /// not hold it.
    pub async fn read_blob(&self, kind: &str, sha256: &str, dest: &Path) -> Result<bool> {
        let Some(bytes) = self.blob_bytes(kind, sha256).await? else {
            return Ok(false);
        };
        let dir = dest
            .parent()
            .ok_or_else(|| Error::Invalid("a blob's destination has no directory".into()))?;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| io("could not make the files directory", e))?;
        let tmp = dir.join(format!(".fetch-{}", uuid::Uuid::now_v7()));
        let written = self.write_blob_to(kind, sha256, bytes, &tmp).await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        tokio::fs::rename(&tmp, dest)
            .await
            .map_err(|e| io("could not place a fetched file", e))?;
        Ok(true)
    }

    async fn write_blob_to(&self, kind: &str, sha256: &str, bytes: u64, tmp: &Path) -> Result<()> {
        let mut out = tokio::fs::File::create(tmp)
            .await
            .map_err(|e| io("could not write a fetched file", e))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut idx = 0i64;
        loop {
            // One chunk per statement: memory stays at one chunk whatever the file's size.
            let chunk: Option<Vec<u8>> = {
                let mut conn = self.read().await?;
                query_scalar(
                    "SELECT data FROM file_chunks WHERE kind = $1 AND sha256 = $2 AND idx = $3",
                )
                .bind(kind)
                .bind(sha256)
                .bind(idx)
                .fetch_optional(&mut conn)
                .await?
            };
            let Some(chunk) = chunk else { break };
            hasher.update(&chunk);
            size += chunk.len() as u64;
            out.write_all(&chunk)
                .await
                .map_err(|e| io("could not write a fetched file", e))?;
            idx += 1;
        }
        out.sync_all()
            .await
            .map_err(|e| io("could not write a fetched file", e))?;
        if size != bytes || hex::encode(hasher.finalize()) != sha256 {
            return Err(Error::StorageFailed(format!(
                "the stored content {sha256} does not match its digest or size ({size} of \
                 {bytes} bytes read back)"
            )));
        }
        Ok(())
    }

    /// Removes a stored blob. Returns whether the store held it.
    pub async fn delete_blob(&self, kind: &str, sha256: &str) -> Result<bool> {
        let mut tx = self.write_unordered().await?;
        query("DELETE FROM file_chunks WHERE kind = $1 AND sha256 = $2")
            .bind(kind)
            .bind(sha256)
            .execute(&mut tx)
            .await?;
        let n = query("DELETE FROM file_blobs WHERE kind = $1 AND sha256 = $2")
            .bind(kind)
            .bind(sha256)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }
}
