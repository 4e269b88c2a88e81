//! Storage quotas: how many bytes of messages and events each user has written (their own
//! appends, tool results of their turns, their imports), kept in memory and checked before
//! every write, so one user cannot fill the disk for everyone. The totals are loaded by one
//! grouped scan on first need, in the background; writes meanwhile are counted, not refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use kiln_db::NewNode;
use kiln_types::ErrorKind;
use serde_json::json;

use crate::{Caller, Error, Result, SessionManager};

/// Bytes written per user, against one quota.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    /// Bytes each user may store; 0: no quota.
    quota: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    loading: bool,
    loaded: bool,
    bytes: HashMap<String, u64>,
}

impl Usage {
    pub(crate) fn new(quota_mb: u64) -> Self {
        Usage {
            quota: quota_mb.saturating_mul(1024 * 1024),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The bytes a node takes in the store: its text and its JSON.
fn node_bytes(n: &NewNode) -> u64 {
    let data = n.data.as_ref().map_or(0, json_len);
    let event = n.event.as_ref().map_or(0, json_len);
    (n.content.len() + data + event) as u64
}

/// The length of `v` as JSON, counted as it is written rather than built as a string.
fn json_len<T: serde::Serialize>(v: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, v);
    count.0
}

impl SessionManager {
    /// The bytes `nodes` will take against the caller's quota (0, uncounted, without one).
    pub(crate) fn incoming_bytes(&self, nodes: &[NewNode]) -> u64 {
        if self.usage.quota == 0 {
            return 0;
        }
        nodes.iter().map(node_bytes).sum()
    }

    /// Refuses, with 413 `storage_quota_exceeded` (recoverable: delete or export something),
    /// a write of `incoming` bytes that would take the caller past their quota.
    pub(crate) fn check_quota(&self, caller: &Caller, incoming: u64) -> Result<()> {
        let usage = &self.usage;
        if usage.quota == 0 {
            return Ok(());
        }
        self.load_usage();
        let used = usage
            .state()
            .bytes
            .get(&caller.user_id)
            .copied()
            .unwrap_or(0);
        if used.saturating_add(incoming) > usage.quota {
            let mb = |b: u64| b.div_ceil(1024 * 1024);
            return Err(Error::new(
                ErrorKind::PayloadTooLarge,
                "storage_quota_exceeded",
                format!(
                    "this would take you past your storage quota ({} MB of {} MB used); delete \
                     or export sessions you no longer need, or ask the operator for more",
                    mb(used),
                    mb(usage.quota)
                ),
            )
            .with_details(json!({"used_bytes": used, "quota_bytes": usage.quota})));
        }
        Ok(())
    }

    /// Counts `bytes` the caller has just written.
    pub(crate) fn count_written(&self, caller: &Caller, bytes: u64) {
        if self.usage.quota == 0 {
            return;
        }
        let mut state = self.usage.state();
        let used = state.bytes.entry(caller.user_id.clone()).or_insert(0);
        *used = used.saturating_add(bytes);
    }

    /// Starts the one scan that loads everyone's totals, unless it ran or is running.
    fn load_usage(&self) {
        {
            let mut state = self.usage.state();
            if state.loaded || state.loading {
                return;
            }
            state.loading = true;
        }
        let (db, usage) = (self.db.clone(), Arc::clone(&self.usage));
        tokio::spawn(async move {
            match db.bytes_by_author().await {
                Ok(rows) => {
                    let mut state = usage.state();
                    for (user, bytes) in rows {
                        let used = state.bytes.entry(user).or_insert(0);
                        *used = used.saturating_add(u64::try_from(bytes).unwrap_or(0));
                    }
                    state.loaded = true;
                    state.loading = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not load storage usage; retrying on the next write");
                    usage.state().loading = false;
                }
            }
        });
    }

    /// Whether the totals are loaded (tests wait for it).
    pub async fn storage_usage(&self, caller: &Caller) -> Option<u64> {
        if self.usage.quota == 0 {
            return None;
        }
        self.load_usage();
        for _ in 0..200 {
            {
                let state = self.usage.state();
                if state.loaded {
                    return Some(state.bytes.get(&caller.user_id).copied().unwrap_or(0));
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        None
    }
}
