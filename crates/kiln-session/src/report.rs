//! Statistics, export (JSON and Markdown) and import of whole sessions.

use std::collections::{BTreeMap, HashSet};

use std::sync::Arc;

use kiln_db::{ImportOptions, NodeVerification, Provenance, SessionExport, Trust};
use kiln_types::ErrorKind;
use kiln_types::{NodeKind, SessionStatus};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{Caller, Error, Result, Session, SessionManager};

const REPORT_TEMPLATE: &str = include_str!("../../../templates/reports/session.md.j2");
/// The Markdown report's fuel (minijinja instructions): a base plus an allowance per listed item
/// (a message, branch, checkpoint, state entry or tool), several times what each costs.
const REPORT_FUEL_BASE: u64 = 100_000;
const REPORT_FUEL_PER_ITEM: u64 = 500;

/// Per-user contributions to a session.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Contribution {
    pub messages: i64,
    pub queries: i64,
    pub discoveries: i64,
    pub materials: i64,
    pub events: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Statistics {
    /// Seconds spent in the `active` status, from the lifecycle events.
    pub active_seconds: i64,
    /// User messages on any branch.
    pub queries: i64,
    pub messages: i64,
    /// Distinct materials referenced on any branch.
    pub materials: i64,
    /// Distinct discoveries recorded on any branch.
    pub discoveries: i64,
    pub tool_usage: BTreeMap<String, i64>,
    pub contributions: BTreeMap<String, Contribution>,
    pub branches: i64,
    pub checkpoints: i64,
}

/// The node-derived part of a session's statistics, folded up to a node rowid. The manager
/// keeps one per session it has counted, so the next count reads only the nodes added since
/// (see `Db::node_tally`): a page view of a 100k-node session costs what was added, not the
/// history.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    /// The newest node rowid folded in.
    upto: i64,
    /// Nodes by (kind, author id).
    counts: BTreeMap<(String, Option<String>), i64>,
    materials: HashSet<String>,
    discoveries: HashSet<String>,
    tool_usage: BTreeMap<String, i64>,
}

impl Tally {
    fn fold(&mut self, rows: Vec<kiln_db::TallyRow>) {
        for r in rows {
            self.upto = self.upto.max(r.max_rowid);
            let kind = r.kind.parse::<NodeKind>().ok();
            for d in &r.data {
                let text = |key: &str| d.get(key).and_then(Value::as_str).map(str::to_string);
                match kind {
                    Some(NodeKind::Material) => self.materials.extend(text("formula")),
                    Some(NodeKind::Discovery) => self.discoveries.extend(text("id")),
                    // The agent records `name` (the chat-completions field); `tool` is
                    // accepted for tool-call nodes appended by hand.
                    Some(NodeKind::ToolCall) => {
                        if let Some(t) = text("name").or_else(|| text("tool")) {
                            *self.tool_usage.entry(t).or_insert(0) += 1;
                        }
                    }
                    _ => {}
                }
            }
            *self.counts.entry((r.kind, r.author)).or_insert(0) += r.count;
        }
    }
}

/// The error for an export past the import limit (413 `payload_too_large`, recoverable).
pub fn import_too_large(limit: usize) -> Error {
    Error::new(
        ErrorKind::PayloadTooLarge,
        "payload_too_large",
        format!("the export is larger than the import limit of {limit} bytes"),
    )
}

fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

impl SessionManager {
    /// The conversation messages on the path ending at `node`, oldest first.
    async fn conversation_to(&self, session: &str, node: &str) -> Result<Vec<kiln_db::Node>> {
        let mut out = Vec::new();
        let mut before = None;
        loop {
            let page = self.db.path_messages(session, node, 1000, before).await?;
            out.extend(page.items);
            match page.next_cursor.and_then(|c| c.parse().ok()) {
                Some(c) => before = Some(c),
                None => break,
            }
        }
        out.reverse();
        Ok(out)
    }

    /// The session's node tally, brought up to date from the one kept since the last count.
    async fn tally(&self, id: &str) -> Result<Tally> {
        let kept = self.tallies.lock().ok().and_then(|t| t.get(id).cloned());
        let mut tally = kept.unwrap_or_default();
        tally.fold(self.db.node_tally(id, tally.upto).await?);
        if let Ok(mut t) = self.tallies.lock() {
            t.insert(id.to_string(), tally.clone());
        }
        Ok(tally)
    }

    /// Computes a session's statistics.
    pub async fn statistics(&self, caller: &Caller, id: &str) -> Result<Statistics> {
        self.readable(caller, id).await?;
        let events = self.db.session_events(id).await?;
        let mut active_seconds = 0;
        let mut since: Option<chrono::DateTime<chrono::Utc>> = None;
        for e in &events {
            let at = parse_time(&e.at);
            if let (Some(start), Some(at)) = (since.take(), at) {
                active_seconds += (at - start).num_seconds();
            }
            if e.to == SessionStatus::Active {
                since = at;
            }
        }
        if let Some(start) = since {
            active_seconds += (chrono::Utc::now() - start).num_seconds();
        }
        let tally = self.tally(id).await?;
        let mut contributions: BTreeMap<String, Contribution> = BTreeMap::new();
        let (mut queries, mut messages) = (0, 0);
        let names = self
            .db
            .user_names(tally.counts.keys().filter_map(|(_, a)| a.as_deref()))
            .await?;
        for ((kind, author), n) in &tally.counts {
            let n = *n;
            let Ok(kind) = kind.parse::<NodeKind>() else {
                continue;
            };
            let author = match author {
                Some(a) => names[a.as_str()].clone(),
                None => "system".into(),
            };
            let c = contributions.entry(author).or_default();
            if kind.is_message() && kind != NodeKind::Merge {
                messages += n;
                c.messages += n;
            }
            match kind {
                NodeKind::User => {
                    queries += n;
                    c.queries += n;
                }
                NodeKind::Discovery => c.discoveries += n,
                NodeKind::Material => c.materials += n,
                _ => {}
            }
            if kind.is_state() {
                c.events += n;
            }
        }
        contributions.retain(|_, c| *c != Contribution::default());
        let (materials, discoveries) = (tally.materials.len(), tally.discoveries.len());
        let tool_usage = tally.tool_usage;
        Ok(Statistics {
            active_seconds,
            queries,
            messages,
            materials: materials as i64,
            discoveries: discoveries as i64,
            tool_usage,
            contributions,
            branches: self.db.branches(id, true).await?.len() as i64,
            checkpoints: self.db.checkpoints(id).await?.len() as i64,
        })
    }

    /// Exports everything in a session as one JSON document, signed with the instance's key.
    pub async fn export_json(&self, caller: &Caller, id: &str) -> Result<SessionExport> {
        self.readable(caller, id).await?;
        let mut doc = self.db.export(id).await?;
        let integrity = Arc::clone(&self.integrity);
        // Signing serialises the whole document: CPU work, off the async threads.
        tokio::task::spawn_blocking(move || {
            doc.sign(&integrity.key)?;
            Ok::<_, kiln_db::Error>(doc)
        })
        .await
        .map_err(|e| Error::internal(format!("export signing failed: {e}")))?
        .map_err(Error::from)
    }

    /// Recomputes the hash chain over a session's nodes (the per-append audit trail).
    pub async fn verify_nodes(&self, caller: &Caller, id: &str) -> Result<NodeVerification> {
        self.readable(caller, id).await?;
        Ok(self.db.verify_nodes(id).await?)
    }

    /// Renders a session as a Markdown report (templates/reports/session.md.j2).
    pub async fn export_markdown(&self, caller: &Caller, id: &str) -> Result<String> {
        let session = self.readable(caller, id).await?;
        let stats = self.statistics(caller, id).await?;
        let audit = self.db.verify_audit(id).await?;
        let branches = self.db.branches(id, true).await?;
        let checkpoints = self.db.checkpoints(id).await?;
        let state = self.db.head_state(id, &session.default_branch).await?;
        let head = self.db.branch(id, &session.default_branch).await?.head;
        let conversation = self.conversation_to(id, &head).await?;
        // Readers see who wrote each message by name; a deleted user keeps their id.
        let names = self
            .db
            .user_names(conversation.iter().filter_map(|n| n.author.as_deref()))
            .await?;
        // Each tool renders its own state (the optimizer: space, data, iterations).
        let tools: Vec<Value> = state
            .tools
            .iter()
            .filter_map(|(name, st)| {
                let md = self.tool_merger.report_tool(name, st)?;
                Some(json!({"name": name, "markdown": md}))
            })
            .collect();
        let mut env = minijinja::Environment::new();
        // The report lists everything, so its fuel grows with what it lists: a session of any
        // length exports, and a template that ran away over its data would still stop.
        let items = conversation.len()
            + branches.len()
            + checkpoints.len()
            + state.materials.len()
            + state.discoveries.len()
            + state.links.len()
            + state.hypotheses.len()
            + state.tasks.len()
            + tools.len()
            + stats.tool_usage.len();
        let allowance =
            REPORT_FUEL_PER_ITEM.saturating_mul(u64::try_from(items).unwrap_or(u64::MAX));
        env.set_fuel(Some(REPORT_FUEL_BASE.saturating_add(allowance)));
        env.add_template("session.md", REPORT_TEMPLATE)
            .map_err(|e| Error::internal(format!("report template: {e}")))?;
        let tmpl = env
            .get_template("session.md")
            .map_err(|e| Error::internal(e.to_string()))?;
        tmpl.render(json!({
            "session": session, "stats": stats, "audit": audit, "branches": branches,
            "checkpoints": checkpoints, "state": state, "conversation": conversation,
            "tools": tools, "names": names,
            "exported_at": kiln_db::now(),
        }))
        .map_err(|e| Error::internal(format!("report rendering failed: {e}")))
    }

    /// Imports an exported session (a JSON value) as a new session owned by the caller.
    pub async fn import(&self, caller: &Caller, doc: &Value) -> Result<Session> {
        let doc: SessionExport = serde_json::from_value(doc.clone())
            .map_err(|e| Error::bad_request(format!("import: not a Kiln session export: {e}")))?;
        let size = serde_json::to_vec(&doc).map_or(0, |v| v.len() as u64);
        self.import_doc(caller, doc, size).await
    }

    /// Imports an export as sent (JSON bytes): refused with 413 `payload_too_large` past
    /// `integrity.max_import_bytes` (`body.len()` is the import's size, for quotas).
    pub async fn import_bytes(&self, caller: &Caller, body: Vec<u8>) -> Result<Session> {
        let limit = self.integrity.max_import_bytes;
        if body.len() > limit {
            return Err(import_too_large(limit));
        }
        let size = body.len() as u64;
        let doc =
            tokio::task::spawn_blocking(move || serde_json::from_slice::<SessionExport>(&body))
                .await
                .map_err(|e| Error::internal(format!("import parsing failed: {e}")))?
                .map_err(|e| {
                    Error::bad_request(format!("import: not a Kiln session export: {e}"))
                })?;
        self.import_doc(caller, doc, size).await
    }

    /// Checks a document (session fields with the create rules, structure, replay), decides
    /// its provenance from its signature, and writes it.
    /// `size` (the export's bytes) counts against the caller's storage quota.
    async fn import_doc(&self, caller: &Caller, doc: SessionExport, size: u64) -> Result<Session> {
        self.check_quota(caller, size)?;
        let trusted = self.trusted_keys().await?;
        // Checking replays every event and hashes the document: CPU work, off the async threads.
        let (checked, trust) = tokio::task::spawn_blocking(move || {
            crate::sessions::check_imported(&doc.session)?;
            let trust = doc.trust(&trusted)?;
            Ok::<_, Error>((doc.checked()?, trust))
        })
        .await
        .map_err(|e| Error::internal(format!("import check failed: {e}")))??;
        let doc = checked.doc();
        // A session imported unverified stays so: a later signature vouches for what the
        // signing instance held, whose authors were already the importer.
        let was_unverified = doc.session.provenance.as_deref() == Some("unverified");
        let (provenance, reason, key) = match &trust {
            Trust::Verified { key } if !was_unverified => (Provenance::Verified, None, Some(key)),
            Trust::Verified { key } => (
                Provenance::Unverified,
                Some("the exporting instance had imported it unverified".to_string()),
                Some(key),
            ),
            Trust::Unverified { reason } => (Provenance::Unverified, Some(reason.clone()), None),
        };
        let mut payload = json!({
            "source": doc.session.id,
            "provenance": provenance.as_str(),
            "nodes": doc.nodes.len(),
        });
        if let Some(k) = key {
            payload["key"] = json!(k);
        }
        if let Some(r) = &reason {
            payload["reason"] = json!(r);
            payload["authors"] = json!("credited to the importer");
        }
        let opts = ImportOptions::new(&caller.user_id, provenance, payload);
        let session = self.db.import(&checked, &opts).await?;
        self.count_written(caller, size);
        Ok(session)
    }
}
