//! The conversation tree through the manager: messages, state events, branches, checkpoints,
//! restore, merge, diff, reflog and the audit log.

use kiln_db::{
    AppendOutcome, AuditEntry, AuditVerification, Branch, Checkpoint, NewNode, Node, Page,
    ReflogEntry, Restored,
};
use kiln_types::{ResearchState, Role, StateEvent};
use serde::{Deserialize, Serialize};

use crate::{Caller, Error, Result, SessionManager};

/// Largest message accepted, in bytes.
pub use kiln_db::MAX_MESSAGE_BYTES;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageInput {
    pub role: Role,
    pub content: String,
    #[serde(default)]
    pub expected_head: Option<String>,
}

/// A state event with an optional head check.
#[derive(Debug, Clone, Deserialize)]
pub struct EventInput {
    #[serde(flatten)]
    pub event: StateEvent,
    #[serde(default)]
    pub expected_head: Option<String>,
}

/// Where a new branch starts.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum BranchFrom {
    Branch(String),
    Node(String),
    Checkpoint(String),
}

/// A branch placed on the session's tree: where it forked from and what was merged into it.
#[derive(Debug, Clone, Serialize)]
pub struct TreeBranch {
    #[serde(flatten)]
    pub branch: Branch,
    /// The branch it forked from (none for the first branch).
    pub parent: Option<String>,
    /// Branches merged into this one, oldest first, with the merge time.
    pub merged: Vec<(String, String)>,
}

impl SessionManager {
    /// The open branches as a tree: each branch's parent is the oldest other branch whose
    /// history reaches the node it forked at; merges come from the reflog.
    pub async fn branch_tree(&self, caller: &Caller, session: &str) -> Result<Vec<TreeBranch>> {
        self.readable(caller, session).await?;
        let mut branches = self.db.branches(session, false).await?;
        branches.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.name.cmp(&b.name)));
        let bases: Vec<String> = branches.iter().map(|b| b.base.clone()).collect();
        let reaching = self.db.branches_reaching(session, &bases).await?;
        let reflog = self.db.reflog(session).await?;
        Ok(branches
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let parent = reaching.get(&b.base).and_then(|names| {
                    branches[..i]
                        .iter()
                        .find(|older| names.contains(&older.name))
                        .map(|older| older.name.clone())
                });
                let mut merged: Vec<(String, String)> = reflog
                    .iter()
                    .filter(|r| r.branch == b.name)
                    .filter_map(|r| {
                        let from = r.reason.strip_prefix("merge ")?;
                        Some((from.to_string(), r.at.clone()))
                    })
                    .collect();
                merged.sort_by(|a, b| a.1.cmp(&b.1));
                TreeBranch {
                    branch: b.clone(),
                    parent,
                    merged,
                }
            })
            .collect())
    }

    /// Appends one message to a branch.
    pub async fn append_message(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        msg: MessageInput,
    ) -> Result<AppendOutcome> {
        if msg.content.trim().is_empty() {
            return Err(Error::bad_request("content must not be empty"));
        }
        if msg.content.len() > MAX_MESSAGE_BYTES {
            return Err(Error::new(
                kiln_types::ErrorKind::PayloadTooLarge,
                "too_large",
                "message is larger than 1 MiB",
            ));
        }
        let node = NewNode::message(msg.role.kind(), Some(caller.user_id.clone()), msg.content);
        self.append_nodes(
            caller,
            session,
            branch,
            vec![node],
            msg.expected_head.as_deref(),
        )
        .await
    }

    /// Appends prepared nodes (the agent's turn: user message, tool calls, results, answer).
    pub async fn append_nodes(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        nodes: Vec<NewNode>,
        expected_head: Option<&str>,
    ) -> Result<AppendOutcome> {
        let nodes = match &caller.client {
            Some(client) => nodes.into_iter().map(|n| with_client(n, client)).collect(),
            None => nodes,
        };
        let bytes = self.incoming_bytes(&nodes);
        self.check_quota(caller, bytes)?;
        // Watchers on other servers hear a turn's events before they read the nodes it writes.
        if let Some(relay) = &self.turn_relay {
            relay.flush(session).await;
        }
        // The access check rides on the append's first query: the hot path.
        let out = self
            .db
            .append_as(
                &caller.user_id,
                session,
                branch,
                nodes,
                expected_head,
                &caller.user_id,
            )
            .await?;
        self.count_written(caller, bytes);
        Ok(out)
    }

    /// Records a state event on a branch.
    pub async fn append_event(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        input: EventInput,
    ) -> Result<AppendOutcome> {
        check_material(&input.event)?;
        let node = NewNode::event(input.event, Some(caller.user_id.clone()));
        self.append_nodes(
            caller,
            session,
            branch,
            vec![node],
            input.expected_head.as_deref(),
        )
        .await
    }

    /// Returns the session if the caller may write to it and it takes new messages (not
    /// paused or archived): the check the append makes, for work that must happen before it.
    pub async fn active_session(&self, caller: &Caller, session: &str) -> Result<kiln_db::Session> {
        let s = self.writable(caller, session).await?;
        if !s.status.accepts_writes() {
            return Err(kiln_db::Error::NotActive(s.status).into());
        }
        Ok(s)
    }

    /// Returns the newest summary node on a branch's path (the agent's context window).
    pub async fn latest_summary(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
    ) -> Result<Option<Node>> {
        self.readable(caller, session).await?;
        Ok(self.db.latest_summary(session, branch).await?)
    }

    /// What the agent reads for one step, on one connection: the state at the head, the newest
    /// summary and the last `limit` messages (the access check rides on the head query).
    pub async fn turn_view(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        limit: u32,
    ) -> Result<kiln_db::TurnView> {
        Ok(self
            .db
            .turn_view(Some(&caller.user_id), session, branch, limit)
            .await?)
    }

    /// Whether another session records this content digest (see [`kiln_db::Db`]).
    pub async fn content_used_elsewhere(&self, session: &str, sha256: &str) -> Result<bool> {
        Ok(self.db.content_used_elsewhere(session, sha256).await?)
    }

    /// Appends a decision (an optimizer lock, …) to the session's audit log.
    pub async fn record_audit(
        &self,
        caller: &Caller,
        session: &str,
        action: &str,
        payload: &serde_json::Value,
    ) -> Result<()> {
        self.writable(caller, session).await?;
        Ok(self
            .db
            .record_audit(session, &caller.user_id, action, payload)
            .await?)
    }

    /// Returns a branch's conversation newest first.
    pub async fn messages(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        limit: Option<u32>,
        before: Option<&str>,
    ) -> Result<Page<Node>> {
        // `?before=` is no cursor.
        let before = before
            .filter(|b| !b.is_empty())
            .map(|b| {
                b.parse::<i64>()
                    .map_err(|_| Error::bad_request("before must be a cursor from next_cursor"))
            })
            .transpose()?;
        Ok(self
            .db
            .messages_as(
                &caller.user_id,
                session,
                branch,
                limit.unwrap_or(50),
                before,
            )
            .await?)
    }

    /// Returns the research state at a branch head, or at a checkpoint or node on request.
    /// One node of a session the caller may read.
    pub async fn node(&self, caller: &Caller, session: &str, node: &str) -> Result<Node> {
        self.readable(caller, session).await?;
        Ok(self.db.node(session, node).await?)
    }

    /// Puts `branch` back to just before its last user message (the chat's `/undo`): the
    /// parent of that message is checkpointed as `undo-…` and restored, so the undone turn
    /// stays reachable from the automatic `before-restore-…` checkpoint. Returns what was done
    /// and the undone message's text; 409 `nothing_to_undo` on a branch without one.
    pub async fn undo_turn(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
    ) -> Result<(Restored, String)> {
        let page = self
            .messages(caller, session, branch, Some(1000), None)
            .await?;
        let last = page
            .items
            .iter()
            .find(|n| n.kind == kiln_types::NodeKind::User)
            .and_then(|n| Some((n, n.parent_id.clone()?)));
        let Some((last, parent)) = last else {
            return Err(Error::new(
                kiln_types::ErrorKind::Conflict,
                "nothing_to_undo",
                format!("{branch} has no question to undo"),
            ));
        };
        let name = format!("undo-{}", last.id.rsplit('-').next().unwrap_or(&last.id));
        self.create_checkpoint(caller, session, &name, Some(branch), Some(&parent))
            .await?;
        let restored = self.restore(caller, session, &name, Some(branch)).await?;
        Ok((restored, last.content.clone()))
    }

    /// A new branch from the session's root (the chat's `/clear`): a fresh start that keeps
    /// every other branch. Named `fresh-N`, the first number free.
    pub async fn fresh_branch(&self, caller: &Caller, session: &str) -> Result<Branch> {
        let root = self.root(caller, session).await?;
        let taken: Vec<String> = self
            .branches(caller, session, true)
            .await?
            .into_iter()
            .map(|b| b.name)
            .collect();
        let name = (2..)
            .map(|i| format!("fresh-{i}"))
            .find(|n| !taken.contains(n))
            .unwrap_or_else(|| "fresh".to_owned());
        self.create_branch(caller, session, &name, Some(BranchFrom::Node(root.id)))
            .await
    }

    /// The session's root node, where a fresh branch starts.
    pub async fn root(&self, caller: &Caller, session: &str) -> Result<Node> {
        self.readable(caller, session).await?;
        Ok(self.db.root(session).await?)
    }

    pub async fn state(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        at: Option<&str>,
    ) -> Result<ResearchState> {
        self.readable(caller, session).await?;
        match at {
            None => Ok(self.db.head_state(session, branch).await?),
            Some(spec) => {
                self.db.branch(session, branch).await?;
                let node = self.db.resolve(session, spec).await?;
                Ok(self.db.state_at_node(session, &node).await?)
            }
        }
    }

    pub async fn branches(
        &self,
        caller: &Caller,
        session: &str,
        include_discarded: bool,
    ) -> Result<Vec<Branch>> {
        self.readable(caller, session).await?;
        Ok(self.db.branches(session, include_discarded).await?)
    }

    /// Creates a branch at the head of a branch, a node or a checkpoint (default: `main`).
    pub async fn create_branch(
        &self,
        caller: &Caller,
        session: &str,
        name: &str,
        from: Option<BranchFrom>,
    ) -> Result<Branch> {
        let s = self.writable(caller, session).await?;
        let node = match from.unwrap_or(BranchFrom::Branch(s.default_branch.clone())) {
            BranchFrom::Branch(b) => self.db.branch(session, &b).await?.head,
            BranchFrom::Node(n) => self.db.node(session, &n).await?.id,
            BranchFrom::Checkpoint(c) => self.db.checkpoint(session, &c).await?.node,
        };
        Ok(self
            .db
            .create_branch(session, name, &node, &caller.user_id)
            .await?)
    }

    pub async fn discard_branch(
        &self,
        caller: &Caller,
        session: &str,
        name: &str,
    ) -> Result<Branch> {
        self.writable(caller, session).await?;
        Ok(self
            .db
            .set_branch_discarded(session, name, true, &caller.user_id)
            .await?)
    }

    pub async fn reopen_branch(
        &self,
        caller: &Caller,
        session: &str,
        name: &str,
    ) -> Result<Branch> {
        self.writable(caller, session).await?;
        Ok(self
            .db
            .set_branch_discarded(session, name, false, &caller.user_id)
            .await?)
    }

    pub async fn create_checkpoint(
        &self,
        caller: &Caller,
        session: &str,
        name: &str,
        branch: Option<&str>,
        node: Option<&str>,
    ) -> Result<Checkpoint> {
        self.writable(caller, session).await?;
        if name.starts_with("before-restore-") {
            return Err(Error::bad_request(
                "names starting with before-restore- are reserved",
            ));
        }
        Ok(self
            .db
            .create_checkpoint(session, name, branch, node, false, &caller.user_id)
            .await?)
    }

    pub async fn checkpoints(&self, caller: &Caller, session: &str) -> Result<Vec<Checkpoint>> {
        self.readable(caller, session).await?;
        Ok(self.db.checkpoints(session).await?)
    }

    /// Restores a checkpoint onto a branch; the old head stays reachable.
    pub async fn restore(
        &self,
        caller: &Caller,
        session: &str,
        checkpoint: &str,
        branch: Option<&str>,
    ) -> Result<Restored> {
        self.writable(caller, session).await?;
        Ok(self
            .db
            .restore(session, checkpoint, branch, &caller.user_id)
            .await?)
    }

    /// Restores the newest checkpoint onto a branch (default: the default branch).
    pub async fn recover(
        &self,
        caller: &Caller,
        session: &str,
        branch: Option<&str>,
    ) -> Result<Restored> {
        let s = self.writable(caller, session).await?;
        let branch = branch.unwrap_or(&s.default_branch);
        let cp = self.db.newest_checkpoint(session, branch).await?;
        Ok(self
            .db
            .restore(session, &cp.name, Some(branch), &caller.user_id)
            .await?)
    }

    pub async fn reflog(&self, caller: &Caller, session: &str) -> Result<Vec<ReflogEntry>> {
        self.readable(caller, session).await?;
        Ok(self.db.reflog(session).await?)
    }

    pub async fn audit(&self, caller: &Caller, session: &str) -> Result<Vec<AuditEntry>> {
        self.readable(caller, session).await?;
        Ok(self.db.audit(session).await?)
    }

    /// The audit log, only entries of `entry_type` when given (see [`entry_type_matches`]).
    pub async fn audit_of_type(
        &self,
        caller: &Caller,
        session: &str,
        entry_type: Option<&str>,
    ) -> Result<Vec<AuditEntry>> {
        let mut entries = self.audit(caller, session).await?;
        if let Some(t) = entry_type.filter(|t| !t.is_empty()) {
            entries.retain(|e| entry_type_matches(&e.action, t));
        }
        Ok(entries)
    }

    pub async fn verify_audit(&self, caller: &Caller, session: &str) -> Result<AuditVerification> {
        self.readable(caller, session).await?;
        Ok(self.db.verify_audit(session).await?)
    }

    /// The audit log and its verification from one read of the chain (the session page shows
    /// both).
    pub async fn audit_verified(
        &self,
        caller: &Caller,
        session: &str,
    ) -> Result<(Vec<AuditEntry>, AuditVerification)> {
        self.readable(caller, session).await?;
        let entries = self.db.audit(session).await?;
        let verification = kiln_db::verify_chain(&entries);
        Ok((entries, verification))
    }
}

/// A material (or a focus on one) must be a formula the materials tool can read: a typo such
/// as `Qq2O3` would otherwise become a material of interest, or the focus, that every later
/// "it" resolves to. The error is the tool's own parse error, as a 400.
fn check_material(event: &kiln_types::StateEvent) -> Result<()> {
    let formula = match event {
        kiln_types::StateEvent::Material { formula, .. } => formula,
        kiln_types::StateEvent::Focus {
            material: Some(formula),
            ..
        } => formula,
        _ => return Ok(()),
    };
    match kiln_materials::parse(formula) {
        Ok(_) => Ok(()),
        Err(e) => {
            let report = e.report();
            Err(Error::new(
                kiln_types::ErrorKind::BadRequest,
                "invalid_formula",
                format!("`{formula}` is not a formula: {}", report.message),
            )
            .with_details(serde_json::json!({
                "formula": formula,
                "code": report.code,
                "position": report.position,
            })))
        }
    }
}

/// Whether an audit entry's action is of `wanted` type: the action itself, or a dotted prefix of
/// it (`session` takes `session.create` and `session.status`; `bayesian_optimizer.lock` only
/// itself).
pub fn entry_type_matches(action: &str, wanted: &str) -> bool {
    action == wanted
        || action
            .strip_prefix(wanted)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Marks a node as written through `client` (`data.client`); a node whose data is not an object
/// (none is today) keeps it as it is.
fn with_client(mut node: NewNode, client: &crate::ClientInfo) -> NewNode {
    let mut data = node.data.take().unwrap_or_else(|| serde_json::json!({}));
    if let Some(map) = data.as_object_mut() {
        map.insert(
            "client".into(),
            serde_json::to_value(client).unwrap_or_default(),
        );
    }
    node.data = Some(data);
    node
}

#[cfg(test)]
mod entry_type_tests {
    use super::entry_type_matches;

    #[test]
    fn a_type_is_the_action_or_a_dotted_prefix() {
        assert!(entry_type_matches("session.create", "session"));
        assert!(entry_type_matches("session.create", "session.create"));
        assert!(!entry_type_matches("session.create", "sess"));
        assert!(!entry_type_matches("sessions.x", "session"));
    }
}
