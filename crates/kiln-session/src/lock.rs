//! The serving lock on a data directory: one `kiln serve` per directory. A second server would
//! open the search index read-only and answer from a stale copy; on SQLite there is one server
//! (several servers share a PostgreSQL database instead).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use kiln_types::ErrorKind;

use crate::{Error, Result};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "serve.lock";

/// Held while a server runs on a data directory; the operating system releases it when the
/// process ends, however it ends (a `kill -9` leaves no stale lock behind).
#[derive(Debug)]
pub struct ServeLock {
    _file: File,
    path: PathBuf,
}

impl ServeLock {
    /// Takes the lock on `data_dir` (created if missing) and writes this process's id into it;
    /// refuses, naming the holder's process id, when another server holds it.
    pub fn acquire(data_dir: &Path) -> Result<ServeLock> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            Error::internal(format!(
                "could not create the data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::internal(format!("could not open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another process".to_string()
                } else {
                    format!("process {holder}")
                };
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "data_dir_locked",
                    format!(
                        "another kiln serve ({who}) is already serving {}; stop it first, or \
                         give this one its own --data-dir (several servers share one database \
                         only on PostgreSQL)",
                        data_dir.display()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::internal(format!(
                    "could not lock {}: {e}",
                    path.display()
                )));
            }
        }
        let pid = std::process::id().to_string();
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(pid.as_bytes()))
            .and_then(|()| file.sync_data());
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "could not record the server's pid");
        }
        Ok(ServeLock { _file: file, path })
    }

    /// Where the lock file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_by_pid_and_the_lock_frees_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = ServeLock::acquire(dir.path()).unwrap();
        let written = std::fs::read_to_string(first.path()).unwrap();
        assert_eq!(written, std::process::id().to_string());
        let err = ServeLock::acquire(dir.path()).unwrap_err();
        assert_eq!(err.code, "data_dir_locked");
        assert!(
            err.message
                .contains(&format!("process {}", std::process::id())),
            "{}",
            err.message
        );
        drop(first);
        let again = ServeLock::acquire(dir.path()).unwrap();
        drop(again);
    }
}
