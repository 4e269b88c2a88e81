//! The SessionManager value: opening the store, users and authentication, access checks.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kiln_types::state::ToolMerger;
use kiln_types::{Permission, Permissions};

use kiln_db::{Db, DbOptions, Session, User};

use crate::auth::{Caller, hash_token, new_token};
use crate::config::Config;
use crate::{Error, Result};

/// The one entry point to sessions; cheap to clone.
#[derive(Clone)]
pub struct SessionManager {
    pub(crate) db: Db,
    pub(crate) data_dir: PathBuf,
    /// Merges tool states when two branches changed the same tool (the tool registry).
    pub(crate) tool_merger: Arc<dyn ToolMerger + Send + Sync>,
    /// The full-text index, opened on first use (see `search.rs`).
    pub(crate) search: Arc<tokio::sync::OnceCell<Arc<kiln_search::SearchIndex>>>,
    /// Query bounds and the search deadline.
    pub(crate) search_config: crate::config::SearchConfig,
    /// Every write to the index goes through it (and tests switch it to fail writes).
    pub(crate) search_faults: kiln_search::FaultSwitch,
    /// Whether the index kept up at its last sync, and why not (see `search.rs`).
    pub(crate) search_health: Arc<crate::search::SearchHealth>,
    /// Statistics tallies by session, each folded up to a node rowid (see `report.rs`).
    pub(crate) tallies:
        Arc<std::sync::Mutex<std::collections::HashMap<String, crate::report::Tally>>>,
    /// Bytes each user has written, against `[limits] storage_quota_mb` (see `quota.rs`).
    pub(crate) usage: Arc<crate::quota::Usage>,
    /// The signing key and the trusted keys (see `integrity.rs`).
    pub(crate) integrity: Arc<crate::integrity::Integrity>,
    /// Turns in progress on this server, for live watchers (see `live.rs`).
    pub(crate) turn_feeds: Arc<crate::live::TurnFeeds>,
    /// On PostgreSQL, carries turns to and from the other servers (see `relay.rs`).
    pub(crate) turn_relay: Option<Arc<crate::relay::TurnRelay>>,
    /// The largest notebook file, in bytes (`[limits] max_file_mb`).
    pub(crate) max_file_bytes: u64,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

impl SessionManager {
    /// Opens (creating if needed) the data directory and its database.
    pub async fn open(config: &Config) -> Result<Self> {
        let dir = &config.storage.data_dir;
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::internal(format!(
                "could not create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let opts = DbOptions {
            busy_timeout: Duration::from_millis(config.storage.busy_timeout_ms),
            max_readers: config.storage.max_readers,
            snapshot_every: config.storage.snapshot_every,
            synchronous_full: false,
        };
        let db = match config.database.postgres_url() {
            Some(url) => {
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    return Err(Error::bad_request(
                        "database.url takes a PostgreSQL URL (postgres://user@host:port/db), \
                         or nothing for SQLite in the data directory",
                    ));
                }
                // The message names the server, never the password.
                Db::open_postgres(url, &opts).await.map_err(|e| {
                    Error::internal(format!(
                        "could not open database {}: {}",
                        kiln_db::redact_url(url),
                        e.to_string().replace(url, &kiln_db::redact_url(url))
                    ))
                })?
            }
            None => Db::open(&config.db_path(), &opts).await.map_err(|e| {
                Error::internal(format!(
                    "could not open database {}: {e}",
                    config.db_path().display()
                ))
            })?,
        };
        let integrity = Arc::new(crate::integrity::Integrity::load(config)?);
        // Servers sharing the store trust each other's exports (see `server_keys`).
        db.register_server_key(&integrity.key.public().to_hex())
            .await?;
        // Imports a killed process left half-written (their lease ran out) go now.
        db.purge_stale_imports(&kiln_db::now()).await?;
        let turn_feeds = Arc::<crate::live::TurnFeeds>::default();
        let turn_relay = crate::relay::TurnRelay::new(&db, Arc::clone(&turn_feeds));
        Ok(Self {
            db,
            data_dir: dir.clone(),
            tool_merger: Arc::new(()),
            search: Arc::default(),
            search_config: config.search.clone(),
            search_faults: kiln_search::FaultSwitch::default(),
            search_health: Arc::default(),
            tallies: Arc::default(),
            turn_feeds,
            turn_relay,
            usage: Arc::new(crate::quota::Usage::new(config.limits.storage_quota_mb)),
            integrity,
            max_file_bytes: config.limits.max_file_mb.saturating_mul(1024 * 1024),
        })
    }

    /// Installs the merger consulted when both sides of a merge changed a tool's state.
    pub fn with_tool_merger(mut self, merger: Arc<dyn ToolMerger + Send + Sync>) -> Self {
        self.tool_merger = merger;
        self
    }

    /// The underlying store (benchmarks and jobs).
    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn data_dir(&self) -> &PathBuf {
        &self.data_dir
    }

    /// The instance's public signing key and the keys it trusts (public, like /v1/health),
    /// with the keys of the other servers sharing this store.
    pub async fn instance_key(&self) -> Result<crate::InstanceKeyInfo> {
        let mut info = self.integrity.info();
        info.server_keys = self
            .db
            .server_keys()
            .await?
            .into_iter()
            .filter(|k| *k != info.public_key)
            .collect();
        Ok(info)
    }

    /// Whether several servers may share this store (PostgreSQL), so per-user budgets must
    /// live in it rather than in one server's memory.
    pub fn store_is_shared(&self) -> bool {
        self.db.is_postgres()
    }

    /// Takes `cost` from `user`'s budget of expensive calls kept in the store (refilled at
    /// `per_second` up to `burst`): `None` when granted, else how long until it would be.
    pub async fn take_rate_tokens(
        &self,
        user: &str,
        cost: f64,
        per_second: f64,
        burst: f64,
    ) -> Result<Option<Duration>> {
        Ok(self
            .db
            .take_rate_tokens(user, cost, per_second, burst)
            .await?)
    }

    /// The keys an import's signature is checked against: this server's, the configured
    /// ones, and those of every server that has run on this store.
    pub(crate) async fn trusted_keys(&self) -> Result<Vec<kiln_db::PublicKey>> {
        let mut trusted = self.integrity.trusted.clone();
        for k in self.db.server_keys().await? {
            // A malformed row trusts nothing.
            if let Ok(k) = kiln_db::PublicKey::from_hex(&k)
                && !trusted.contains(&k)
            {
                trusted.push(k);
            }
        }
        Ok(trusted)
    }

    /// The largest notebook file, in bytes.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    /// Takes `bytes` of a file the caller is storing from their quota, or refuses with 413
    /// `storage_quota_exceeded` before anything is written.
    pub fn reserve_file_bytes(&self, caller: &Caller, bytes: u64) -> Result<()> {
        self.check_quota(caller, bytes)?;
        self.count_written(caller, bytes);
        Ok(())
    }

    /// The largest export an import accepts, in bytes.
    pub fn max_import_bytes(&self) -> usize {
        self.integrity.max_import_bytes
    }

    /// Creates a user and returns it with its new API token (shown once, stored hashed).
    pub async fn add_user(&self, name: &str, is_owner: bool) -> Result<(User, String)> {
        let token = new_token();
        let user = self
            .db
            .create_user(name, is_owner, &hash_token(&token))
            .await?;
        Ok((user, token))
    }

    /// Creates the owner user on first start; returns its token, or `None` when users exist.
    pub async fn bootstrap_owner(&self) -> Result<Option<(User, String)>> {
        if self.db.count_users().await? > 0 {
            return Ok(None);
        }
        self.add_user("owner", true).await.map(Some)
    }

    /// Returns the caller holding a bearer token.
    pub async fn authenticate(&self, token: &str) -> Result<Caller> {
        if token.is_empty() || token.len() > 200 {
            return Err(Error::unauthorized("invalid API token"));
        }
        match self.db.user_by_token_hash(&hash_token(token)).await? {
            Some(u) => Ok(u.into()),
            None => Err(Error::unauthorized("invalid API token")),
        }
    }

    /// Returns the caller acting as a named user (the CLI works on the data directory
    /// directly, as the owner of that directory).
    pub async fn local_caller(&self, name: Option<&str>) -> Result<Caller> {
        if let Some(n) = name {
            return Ok(self.db.user_by_name(n).await?.into());
        }
        if let Some((u, _)) = self.bootstrap_owner().await? {
            return Ok(u.into());
        }
        Ok(self.db.user_by_name("owner").await?.into())
    }

    /// Returns the session if the caller holds `perm` on it (owner, or a collaborator with it).
    /// No access at all is the same 404 as a missing session; read access without `perm` is
    /// 403 `forbidden`, naming it.
    pub(crate) async fn require(
        &self,
        caller: &Caller,
        id: &str,
        perm: Permission,
    ) -> Result<Session> {
        Ok(self.access(caller, id, Permissions::of([perm])).await?.0)
    }

    /// Returns the session and the caller's permissions, if they hold `required`.
    ///
    /// This is where a write-protected session refuses every write (409 `session_protected`):
    /// anything needing more than read is a write. The store's triggers back it for the paths
    /// that fold the access check into their first query (see migration 0011).
    pub(crate) async fn access(
        &self,
        caller: &Caller,
        id: &str,
        required: Permissions,
    ) -> Result<(Session, Permissions)> {
        let (s, held) = self.access_to_read(caller, id, required).await?;
        if s.protected && required.list().into_iter().any(|p| p != Permission::Read) {
            return Err(Error::protected());
        }
        Ok((s, held))
    }

    /// As [`Self::access`], for the few reads that need more than read (listing share links
    /// needs manage) and for unprotecting: not refused on a protected session.
    pub(crate) async fn access_to_read(
        &self,
        caller: &Caller,
        id: &str,
        required: Permissions,
    ) -> Result<(Session, Permissions)> {
        let (s, held) = self.db.session_access(id, &caller.user_id).await?;
        kiln_db::check_access(id, held, required)?;
        Ok((s, held))
    }

    /// Returns the session if the caller may read it.
    pub(crate) async fn readable(&self, caller: &Caller, id: &str) -> Result<Session> {
        self.require(caller, id, Permission::Read).await
    }

    /// Returns the session if the caller may write to it.
    ///
    /// The hot paths (appends, reading messages, the agent's reads) fold this check into their
    /// first query (`Db::append_as`, `Db::messages_as`, `Db::turn_view`).
    pub(crate) async fn writable(&self, caller: &Caller, id: &str) -> Result<Session> {
        self.require(caller, id, Permission::Write).await
    }

    /// Checkpoints the WAL and closes the store.
    pub async fn close(&self) {
        self.db.close().await;
    }
}
