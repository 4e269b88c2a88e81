//! Rows as the store returns them: serialisable, typed, with JSON columns decoded.

use kiln_types::session::SessionConfig;
use kiln_types::{NodeKind, SessionStatus, SessionType};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::conn::Row;
use crate::{Error, Result};

fn parse<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T> {
    s.parse::<T>().map_err(Error::Invalid)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub is_owner: bool,
    pub created_at: String,
}

impl User {
    pub(crate) fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            is_owner: r.flag("is_owner")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub owner_id: String,
    pub name: String,
    pub description: String,
    pub session_type: SessionType,
    pub status: SessionStatus,
    pub project: Option<String>,
    pub tags: Vec<String>,
    pub metadata: Value,
    pub config: SessionConfig,
    pub template: Option<String>,
    pub default_branch: String,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    /// When anything last happened in the session: a message, an event, a tool run, a branch
    /// or checkpoint move, a lifecycle change (kept by the store's triggers).
    #[serde(default)]
    pub last_activity_at: String,
    /// How an imported session's history was verified: `verified` (signed by a trusted key,
    /// original authors kept) or `unverified` (nodes credited to the importer); absent for a
    /// session created here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
    /// The session's folder in its project (`/` is the top, `/experiments/2026/jan`). Left
    /// out when `/`, and `protected` when false, so an export signed before they existed
    /// still serialises to the bytes it was signed as.
    #[serde(default = "top_folder", skip_serializing_if = "is_top")]
    pub folder: String,
    /// Whether the session is write-protected: every write is refused until its owner
    /// unprotects it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub protected: bool,
    /// When it was protected, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected_at: Option<String>,
}

fn top_folder() -> String {
    "/".into()
}

fn is_top(folder: &str) -> bool {
    folder == "/"
}

pub(crate) const SESSION_COLUMNS: &str = "id, owner_id, name, description, session_type, status, \
    project, tags, metadata, config, template, default_branch, version, created_at, updated_at, \
    last_activity_at, provenance, folder, protected_at";

impl Session {
    pub(crate) fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.try_get("id")?,
            owner_id: r.try_get("owner_id")?,
            name: r.try_get("name")?,
            description: r.try_get("description")?,
            session_type: parse(r.try_get::<&str, _>("session_type")?)?,
            status: parse(r.try_get::<&str, _>("status")?)?,
            project: r.try_get("project")?,
            tags: serde_json::from_str(r.try_get::<&str, _>("tags")?)?,
            metadata: serde_json::from_str(r.try_get::<&str, _>("metadata")?)?,
            config: serde_json::from_str(r.try_get::<&str, _>("config")?)?,
            template: r.try_get("template")?,
            default_branch: r.try_get("default_branch")?,
            version: r.try_get("version")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
            last_activity_at: r.try_get("last_activity_at")?,
            provenance: r.try_get("provenance")?,
            folder: r.try_get("folder")?,
            protected: r.try_get::<Option<String>, _>("protected_at")?.is_some(),
            protected_at: r.try_get("protected_at")?,
        })
    }
}

/// A node on the conversation tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    pub seq: i64,
    pub parent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_parent_id: Option<String>,
    pub kind: NodeKind,
    /// The message role for conversation nodes (same as `kind`).
    pub role: NodeKind,
    pub author: Option<String>,
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<i64>,
    pub created_at: String,
}

pub(crate) const NODE_COLUMNS: &str = "n.id, n.seq, n.parent_id, n.merge_parent_id, n.kind, \
    n.author, n.content, n.data, n.tokens, n.created_at";

/// What a recorded tool result says, from the data the agent stores beside it: the tool's text,
/// or the error message of a failed call (`true`).
pub fn tool_result_words(data: &Value) -> Option<(&str, bool)> {
    if let Some(text) = data.get("text").and_then(Value::as_str) {
        return Some((text, false));
    }
    data.pointer("/error/message")
        .and_then(Value::as_str)
        .map(|m| (m, true))
}

impl Node {
    /// What a person reads for this node: a tool result's text, or why the call failed, rather
    /// than the JSON the model was handed; the content for every other node.
    pub fn readable_text(&self) -> String {
        match self.result_words() {
            Some((text, false)) => text.to_owned(),
            Some((message, true)) => format!("failed: {message}"),
            None => self.content.clone(),
        }
    }

    /// For a tool result, [`tool_result_words`] of its data.
    pub fn result_words(&self) -> Option<(&str, bool)> {
        self.data
            .as_ref()
            .filter(|_| self.kind == NodeKind::ToolResult)
            .and_then(tool_result_words)
    }

    pub(crate) fn from_row(r: &Row) -> Result<Self> {
        let kind: NodeKind = parse(r.try_get::<&str, _>("kind")?)?;
        let data: Option<&str> = r.try_get("data")?;
        Ok(Self {
            id: r.try_get("id")?,
            seq: r.try_get("seq")?,
            parent_id: r.try_get("parent_id")?,
            merge_parent_id: r.try_get("merge_parent_id")?,
            kind,
            role: kind,
            author: r.try_get("author")?,
            content: r.try_get("content")?,
            data: data.map(serde_json::from_str).transpose()?,
            tokens: r.try_get("tokens")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

/// Aggregates the rows of a subquery `p` over [`NODE_COLUMNS`] into one JSON array of
/// [`NodeTuple`]s: one result row instead of one hand-off per node.
// dialect: json_group_array/json_array/json(): PostgreSQL uses COALESCE(json_agg(json_build_array(…, p.data::json, …)), '[]') (json_agg of no rows is NULL)
pub(crate) const NODES_AS_JSON: &str = "json_group_array(json_array(p.id, p.seq, p.parent_id, \
    p.merge_parent_id, p.kind, p.author, p.content, json(p.data), p.tokens, p.created_at))";

/// [`NODES_AS_JSON`] on PostgreSQL (text, `[]` for no rows).
pub(crate) const NODES_AS_JSON_PG: &str = "COALESCE(json_agg(json_build_array(p.id, p.seq, \
    p.parent_id, p.merge_parent_id, p.kind, p.author, p.content, p.data::json, p.tokens, \
    p.created_at))::text, '[]')";

/// [`NODES_AS_JSON`] in `d`'s dialect.
pub(crate) fn nodes_as_json(d: crate::conn::Dialect) -> &'static str {
    match d {
        crate::conn::Dialect::Sqlite => NODES_AS_JSON,
        crate::conn::Dialect::Postgres => NODES_AS_JSON_PG,
    }
}

/// Parses [`NODES_AS_JSON`] output, newest first.
pub(crate) fn nodes_from_json(json: &str) -> Result<Vec<Node>> {
    let mut nodes = serde_json::from_str::<Vec<NodeTuple>>(json)?
        .into_iter()
        .map(Node::try_from)
        .collect::<Result<Vec<_>>>()?;
    nodes.sort_unstable_by_key(|n| std::cmp::Reverse(n.seq));
    Ok(nodes)
}

/// A node as a JSON array in [`NODE_COLUMNS`] order, `data` embedded as JSON.
pub(crate) type NodeTuple = (
    String,
    i64,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    String,
    Option<Value>,
    Option<i64>,
    String,
);

impl TryFrom<NodeTuple> for Node {
    type Error = crate::Error;

    fn try_from(t: NodeTuple) -> Result<Self> {
        let (id, seq, parent_id, merge_parent_id, kind, author, content, data, tokens, created_at) =
            t;
        let kind: NodeKind = parse(&kind)?;
        Ok(Self {
            id,
            seq,
            parent_id,
            merge_parent_id,
            kind,
            role: kind,
            author,
            content,
            data,
            tokens,
            created_at,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Branch {
    pub name: String,
    pub head: String,
    pub base: String,
    pub status: String,
    pub version: i64,
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

pub(crate) const BRANCH_COLUMNS: &str =
    "name, head_id, base_id, status, version, created_by, created_at, updated_at";

impl Branch {
    pub(crate) fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            name: r.try_get("name")?,
            head: r.try_get("head_id")?,
            base: r.try_get("base_id")?,
            status: r.try_get("status")?,
            version: r.try_get("version")?,
            created_by: r.try_get("created_by")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

/// A named checkpoint (or tag) on a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub name: String,
    pub node: String,
    pub branch: Option<String>,
    pub auto: bool,
    pub created_by: Option<String>,
    pub created_at: String,
}

impl Checkpoint {
    pub(crate) fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            name: r.try_get("name")?,
            node: r.try_get("node_id")?,
            branch: r.try_get("branch")?,
            auto: r.flag("auto")?,
            created_by: r.try_get("created_by")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReflogEntry {
    pub id: i64,
    pub branch: String,
    pub old_head: Option<String>,
    pub new_head: String,
    pub actor: String,
    pub reason: String,
    pub at: String,
}

impl ReflogEntry {
    pub(crate) fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.try_get("id")?,
            branch: r.try_get("branch")?,
            old_head: r.try_get("old_head")?,
            new_head: r.try_get("new_head")?,
            actor: r.try_get("actor")?,
            reason: r.try_get("reason")?,
            at: r.try_get("at")?,
        })
    }
}

/// One lifecycle transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEvent {
    pub id: i64,
    pub from: Option<SessionStatus>,
    pub to: SessionStatus,
    pub actor: String,
    pub reason: String,
    pub at: String,
}

impl SessionEvent {
    pub(crate) fn from_row(r: &Row) -> Result<Self> {
        let from: Option<&str> = r.try_get("from_status")?;
        Ok(Self {
            id: r.try_get("id")?,
            from: from.map(parse).transpose()?,
            to: parse(r.try_get::<&str, _>("to_status")?)?,
            actor: r.try_get("actor")?,
            reason: r.try_get("reason")?,
            at: r.try_get("at")?,
        })
    }
}

/// A page of a list: the items and the cursor for the next page, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}
