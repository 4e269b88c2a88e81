//! The instance's signing key (loaded, or generated at first start) and the keys it trusts.

use std::io::Write as _;
use std::path::Path;

use kiln_db::{InstanceKey, PublicKey};
use serde::Serialize;

use crate::config::Config;
use crate::{Error, Result};

/// What signs this instance's exports and decides whose imports keep their authors.
#[derive(Debug)]
pub(crate) struct Integrity {
    pub key: InstanceKey,
    /// The instance's own public key first, then the configured ones.
    pub trusted: Vec<PublicKey>,
    pub max_import_bytes: usize,
}

/// The instance's public key, as `GET /v1/instance/key` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InstanceKeyInfo {
    pub algorithm: &'static str,
    /// 64 hex digits.
    pub public_key: String,
    /// The other instances' keys this one trusts.
    pub trusted_keys: Vec<String>,
    /// The keys of the other servers sharing this store (several servers on one PostgreSQL),
    /// trusted as this instance's own.
    pub server_keys: Vec<String>,
}

impl Integrity {
    pub fn load(config: &Config) -> Result<Self> {
        let key = load_key(&config.key_path())?;
        let mut trusted = vec![key.public()];
        for k in &config.integrity.trusted_keys {
            let k = PublicKey::from_hex(k)
                .map_err(|e| Error::bad_request(format!("integrity.trusted_keys: {e}")))?;
            if !trusted.contains(&k) {
                trusted.push(k);
            }
        }
        Ok(Integrity {
            key,
            trusted,
            max_import_bytes: config.integrity.max_import_bytes,
        })
    }

    pub fn info(&self) -> InstanceKeyInfo {
        InstanceKeyInfo {
            algorithm: kiln_db::integrity::ALGORITHM,
            public_key: self.key.public().to_hex(),
            trusted_keys: self.trusted[1..].iter().map(PublicKey::to_hex).collect(),
            server_keys: Vec::new(),
        }
    }
}

/// Reads the key file, or creates it (readable by its owner only) if it does not exist.
fn load_key(path: &Path) -> Result<InstanceKey> {
    let read = |path: &Path| -> Result<Option<InstanceKey>> {
        match std::fs::read_to_string(path) {
            Ok(text) => InstanceKey::from_hex(&text)
                .map(Some)
                .map_err(|e| Error::internal(format!("key file {}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::internal(format!(
                "could not read key file {}: {e}",
                path.display()
            ))),
        }
    };
    if let Some(k) = read(path)? {
        return Ok(k);
    }
    let key = InstanceKey::from_seed(rand::random());
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(mut f) => {
            f.write_all(format!("{}\n", key.secret_hex()).as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| {
                    Error::internal(format!("could not write key file {}: {e}", path.display()))
                })?;
            tracing::info!(file = %path.display(), public_key = %key.public(), "instance signing key generated");
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path)?
            .ok_or_else(|| Error::internal(format!("key file {} vanished", path.display()))),
        Err(e) => Err(Error::internal(format!(
            "could not create key file {}: {e}",
            path.display()
        ))),
    }
}
