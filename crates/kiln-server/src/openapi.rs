//! The OpenAPI 3.1 document of the `/v1` API, served at `GET /v1/openapi.json`.
//!
//! Written by hand from the routes and their bodies (see `tests/openapi.rs`, which checks that
//! every route the router serves is documented and every documented operation is served, and
//! that every `$ref` resolves).

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

mod optimizer;
mod schemas;
mod tracking;
pub(crate) mod validate;

use schemas::{
    doc, enumeration, int_in, item_kind, nonblank, nullable, obj, page, r, strict, string, text,
    tree_name,
};

/// One documented operation.
struct Op {
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    /// Query parameters: name, schema, required.
    query: Vec<(&'static str, Value, bool)>,
    /// Extra request headers: name, description.
    headers: Vec<(&'static str, &'static str, Value)>,
    body: Option<Value>,
    /// The body's media type (`application/json` unless said).
    body_type: &'static str,
    /// The success body's media type (`application/json` unless said).
    response_type: &'static str,
    /// Whether the body may be left out.
    body_optional: bool,
    status: u16,
    /// A second success status with the same body (`PUT` that creates: 201 beside 200).
    also: Option<u16>,
    /// The success body, `None` for no content.
    response: Option<Value>,
    public: bool,
    markdown: bool,
    /// The success body is a `text/event-stream` with these events.
    events: Option<&'static str>,
}

impl Op {
    fn new(
        method: &'static str,
        path: &'static str,
        tag: &'static str,
        summary: &'static str,
    ) -> Self {
        Op {
            method,
            path,
            tag,
            summary,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            body_type: "application/json",
            response_type: "application/json",
            body_optional: false,
            status: 200,
            also: None,
            response: None,
            public: false,
            markdown: false,
            events: None,
        }
    }

    /// The success body is a stream of server-sent events, described in words.
    fn events(mut self, description: &'static str) -> Self {
        self.status = 200;
        self.events = Some(description);
        self
    }

    fn query(mut self, name: &'static str, schema: Value, required: bool) -> Self {
        self.query.push((name, schema, required));
        self
    }

    fn header(mut self, name: &'static str, description: &'static str, schema: Value) -> Self {
        self.headers.push((name, description, schema));
        self
    }

    fn body(mut self, schema: Value) -> Self {
        self.body = Some(schema);
        self
    }

    /// A body that is not JSON (`text/csv`, ...): a string of that media type.
    fn text_body(mut self, media_type: &'static str, description: &str) -> Self {
        self.body = Some(schemas::text(description));
        self.body_type = media_type;
        self
    }

    /// A success body that is not JSON (`image/svg+xml`, ...).
    fn ok_as(mut self, media_type: &'static str, schema: Value) -> Self {
        self.status = 200;
        self.response = Some(schema);
        self.response_type = media_type;
        self
    }

    /// The body may be left out (an upload of nothing is an empty file).
    fn body_may_be_empty(mut self) -> Self {
        self.body_optional = true;
        self
    }

    fn optional_body(mut self, schema: Value) -> Self {
        self.body = Some(schema);
        self.body_optional = true;
        self
    }

    fn ok(mut self, status: u16, schema: Value) -> Self {
        self.status = status;
        self.response = Some(schema);
        self
    }

    /// The same success body may also come with `status` (a find-or-create's 201).
    fn also(mut self, status: u16) -> Self {
        self.also = Some(status);
        self
    }

    fn no_content(mut self) -> Self {
        self.status = 204;
        self.response = None;
        self
    }

    /// The success response may also be `text/markdown` (`?format=md`).
    fn also_markdown(mut self) -> Self {
        self.markdown = true;
        self
    }

    fn public(mut self) -> Self {
        self.public = true;
        self
    }

    /// The operation object.
    fn render(&self) -> Value {
        let mut params: Vec<Value> = self
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                // `{n}` numbers an optimizer experiment (from 1); every other segment is text.
                let schema = if name == "n" {
                    json!({"type": "integer", "minimum": 1, "maximum": 1_000_000_000})
                } else if self.path.starts_with("/v1/projects/")
                    && (name == "project" || name == "name")
                {
                    // A project's and a session's names: 1-200 characters, not blank, no
                    // control characters.
                    json!({"type": "string", "minLength": 1, "maxLength": 200,
                           "pattern": schemas::NONBLANK_LINE})
                } else {
                    string()
                };
                json!({"name": name, "in": "path", "required": true, "schema": schema})
            })
            .collect();
        params.extend(self.query.iter().map(|(name, schema, required)| {
            json!({"name": name, "in": "query", "required": required, "schema": schema})
        }));
        params.extend(self.headers.iter().map(|(name, description, schema)| {
            json!({"name": name, "in": "header", "required": false,
                   "description": description, "schema": schema})
        }));
        let mut ok = match (&self.response, self.events) {
            // Each event: its name, its id and its data (one JSON document as text).
            (_, Some(events)) => json!({"description": "server-sent events",
                "content": {"text/event-stream": {"schema": {
                    "type": "object", "description": events,
                    "properties": {"event": {"type": "string"}, "id": {"type": "string"},
                                   "data": {"type": "string"}, "retry": {"type": "integer"}}}}}}),
            (None, None) => json!({"description": "done, no content"}),
            (Some(schema), None) => json!({"description": "success",
                                   "content": {self.response_type: {"schema": schema}}}),
        };
        if self.markdown {
            ok["content"]["text/markdown"] = json!({"schema": text("the Markdown report")});
        }
        let mut responses = Map::new();
        if let Some(also) = self.also {
            responses.insert(also.to_string(), ok.clone());
        }
        responses.insert(self.status.to_string(), ok);
        responses.insert(
            "default".into(),
            json!({"$ref": "#/components/responses/Error"}),
        );
        let mut op = json!({
            "tags": [self.tag],
            "summary": self.summary,
            "operationId": operation_id(self.method, self.path),
            "parameters": params,
            "responses": responses,
        });
        if let Some(body) = &self.body {
            op["requestBody"] = json!({
                "required": !self.body_optional,
                "content": {self.body_type: {"schema": body}},
            });
        }
        if self.public {
            op["security"] = json!([]);
        }
        op
    }
}

/// `post_sessions_id_branches_b_merge` for `POST /v1/sessions/{id}/branches/{b}/merge`.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for seg in path
        .trim_start_matches("/v1")
        .split('/')
        .filter(|s| !s.is_empty())
    {
        id.push('_');
        id.push_str(&seg.replace(['{', '}'], "").replace(['-', '.'], "_"));
    }
    id
}

/// Every documented operation, in the order the document lists them.
fn operations() -> Vec<Op> {
    let limit = || {
        int_in(
            0,
            i64::from(u32::MAX),
            "page size: 0 is taken as 1, past 1000 as 1000",
        )
    };
    let permissions = || {
        json!({"type": "array", "minItems": 1, "items": r("Permission"),
               "description": "at least one (remove the collaborator to take all away)"})
    };
    // Empty is no cursor.
    let cursor =
        |of: &str| json!({"type": "string", "pattern": "^[0-9]{0,18}$", "description": of});
    let branch_q = || nullable(text("branch name; default: the session's default branch"));
    let sse = "text/event-stream in Accept streams the turn as server-sent events";
    vec![
        Op::new(
            "GET",
            "/v1/health",
            "service",
            "Liveness and version; `degraded`, with a short reason, while search cannot keep up \
             (a storage fault of its index or the database)",
        )
        .ok(
            200,
            obj(
                &["status", "version"],
                &[
                    ("status", enumeration(&["ok", "degraded"])),
                    ("version", string()),
                    ("reason", text("what is failing, in a few words")),
                ],
            ),
        )
        .public(),
        Op::new("GET", "/v1/openapi.json", "service", "This document")
            .ok(200, doc("object", "OpenAPI 3.1"))
            .public(),
        Op::new(
            "GET",
            "/v1/instance/key",
            "service",
            "The ed25519 public key that signs this instance's exports, and the keys it trusts",
        )
        .ok(200, r("InstanceKey"))
        .public(),
        // Sessions
        Op::new(
            "POST",
            "/v1/sessions",
            "sessions",
            "Create a session (or from a template, with `template` and `parameters`)",
        )
        .body(json!({"oneOf": [r("NewSession"), r("FromTemplate")]}))
        .ok(201, r("Session")),
        Op::new(
            "GET",
            "/v1/sessions",
            "sessions",
            "List the sessions you own or collaborate on, newest first (by creation, or by last \
             activity with `sort=activity`)",
        )
        .query("status", r("SessionStatus"), false)
        .query("project", string(), false)
        .query("type", r("SessionType"), false)
        .query("tag", string(), false)
        .query("owner", text("user name"), false)
        .query("cursor", string(), false)
        .query("limit", limit(), false)
        .query(
            "sort",
            json!({"type": "string", "enum": ["created", "activity"], "default": "created"}),
            false,
        )
        .ok(200, page("ListedSession")),
        Op::new("GET", "/v1/sessions/{id}", "sessions", "Show a session").ok(200, r("Session")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/leave",
            "collaborators",
            "Leave a session someone else added you to (the owner cannot leave)",
        )
        .no_content(),
        Op::new(
            "PATCH",
            "/v1/sessions/{id}",
            "sessions",
            "Update a session's details",
        )
        .header(
            "If-Match",
            "the version you read; a stale one gets 409 version_conflict",
            json!({"type": "string", "pattern": "^[0-9]{1,18}$"}),
        )
        .body(r("SessionPatch"))
        .ok(200, r("Session")),
        Op::new(
            "DELETE",
            "/v1/sessions/{id}",
            "sessions",
            "Delete a session (owner)",
        )
        .no_content(),
        Op::new(
            "POST",
            "/v1/sessions/{id}/status",
            "sessions",
            "Move a session through its lifecycle",
        )
        .body(strict(&["status"], &[("status", r("SessionStatus"))]))
        .ok(200, r("Session")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/events",
            "sessions",
            "Lifecycle transitions",
        )
        .ok(200, page("SessionEvent")),
        // Tree
        Op::new(
            "GET",
            "/v1/sessions/{id}/branches",
            "branches",
            "List branches",
        )
        .query("all", doc("boolean", "include discarded branches"), false)
        .ok(200, page("Branch")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/branches",
            "branches",
            "Create a branch (O(1), copies nothing)",
        )
        .body(strict(
            &["name"],
            &[("name", tree_name()), ("from", r("BranchFrom"))],
        ))
        .ok(201, r("Branch")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/branches/{b}/messages",
            "branches",
            "A branch's conversation, newest first",
        )
        .query("limit", limit(), false)
        .query(
            "before",
            cursor("`next_cursor` of the previous page"),
            false,
        )
        .ok(200, page("Node")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/branches/{b}/messages",
            "branches",
            "Append a message",
        )
        .body(strict(
            &["role", "content"],
            &[
                ("role", r("Role")),
                ("content", nonblank(1024 * 1024, "the message")),
                (
                    "expected_head",
                    nullable(text("409 head_moved if the head is elsewhere")),
                ),
            ],
        ))
        .ok(201, r("AppendOutcome")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/branches/{b}/events",
            "branches",
            "Record a research-state event",
        )
        .body(
            json!({"allOf": [r("StateEvent"), obj(&[], &[("expected_head", nullable(string()))])]}),
        )
        .ok(201, r("AppendOutcome")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/branches/{b}/state",
            "branches",
            "The research state at the head or at a point",
        )
        .query("at", text("branch, checkpoint or node id"), false)
        .ok(200, r("ResearchState")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/branches/{b}/merge",
            "branches",
            "Merge this branch into another",
        )
        .body(r("MergeBody"))
        .ok(200, r("MergeResult")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/branches/{b}/merge/preview",
            "branches",
            "What a merge with these choices would do (conflicts in words, merged state, changes); writes nothing",
        )
        .body(r("MergeBody"))
        .ok(200, r("MergePreview")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/branches/{b}/discard",
            "branches",
            "Discard a branch (kept, hidden)",
        )
        .ok(200, r("Branch")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/branches/{b}/reopen",
            "branches",
            "Undo a discard",
        )
        .ok(200, r("Branch")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/checkpoints",
            "checkpoints",
            "List checkpoints",
        )
        .ok(200, page("Checkpoint")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/checkpoints",
            "checkpoints",
            "Name a node",
        )
        .body(strict(
            &["name"],
            &[
                ("name", tree_name()),
                ("branch", nullable(string())),
                ("node", nullable(string())),
            ],
        ))
        .ok(201, r("Checkpoint")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/checkpoints/{name}/restore",
            "checkpoints",
            "Move a branch's head back to a checkpoint (the old head is kept)",
        )
        .optional_body(strict(&[], &[("branch", nullable(string()))]))
        .ok(200, r("Restored")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/recover",
            "checkpoints",
            "Restore the newest checkpoint",
        )
        .optional_body(strict(&[], &[("branch", nullable(string()))]))
        .ok(200, r("Restored")),
        // History
        Op::new(
            "GET",
            "/v1/sessions/{id}/reflog",
            "history",
            "Every head move that was not an append",
        )
        .ok(200, page("ReflogEntry")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/diff",
            "history",
            "The state changes in words and data, the common ancestor, and the newest messages on each side",
        )
        .query("from", text("branch, checkpoint or node id"), true)
        .query("to", text("branch, checkpoint or node id"), true)
        .query(
            "limit",
            int_in(1, 500, "conversation nodes per side, newest kept (default 50)"),
            false,
        )
        .ok(200, r("DiffResult")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/audit",
            "history",
            "The audit log, oldest first",
        )
        .query(
            "entry_type",
            text("only this action (`bayesian_optimizer.lock`) or dotted prefix (`session`)"),
            false,
        )
        .ok(200, page("AuditEntry")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/audit/export",
            "history",
            "The stand-alone audit record, as ALchemist's export is: session metadata, the branch optimizer's search space, the data table (suggested versus actual, status, exclusions with reasons), decisions by iteration (locks with actor and time), every audit entry and the chain verification. `format=markdown` (default, text/markdown) or `json`; another format is 400",
        )
        .query("format", enumeration(&["markdown", "md", "json"]), false)
        .query("branch", text("whose optimizer (default: the session's default branch)"), false)
        .ok(200, json!({"type": "object", "description": "`format=json`: the record as data"}))
        .also_markdown(),
        Op::new(
            "GET",
            "/v1/sessions/{id}/audit/verify",
            "history",
            "Recompute the audit hash chain",
        )
        .ok(200, r("AuditVerification")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/statistics",
            "history",
            "Activity, counts, tool usage, contributions",
        )
        .ok(200, r("Statistics")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/export",
            "history",
            "Export as JSON (everything) or a Markdown report (text/markdown)",
        )
        .query("format", enumeration(&["json", "markdown", "md"]), false)
        .ok(200, r("SessionExport"))
        .also_markdown(),
        Op::new(
            "POST",
            "/v1/sessions/import",
            "history",
            "Import an export as a new session: `verified` (signed by a trusted key, authors \
             kept) or `unverified` (nodes credited to the importer); larger than \
             `integrity.max_import_bytes` is 413 `payload_too_large`. With `format=alchemist` \
             the body is an ALchemist session file: its search space, experiments (Iteration, \
             Reason), staged queue and lock entries become the optimizer on the default branch, \
             each ALchemist audit entry an `alchemist.<entry_type>` entry of Kiln's chain with \
             `imported: true` and ALchemist's hash as `original_hash`; 400 `invalid_alchemist` \
             for a file Kiln cannot read",
        )
        .query("format", enumeration(&["kiln", "alchemist"]), false)
        .body(json!({"oneOf": [r("SessionExport"), r("AlchemistSession")]}))
        .ok(201, r("Session")),
        // Templates
        Op::new(
            "GET",
            "/v1/templates",
            "templates",
            "The templates you see: built-in ones, your own, those shared with you and \
             instance-wide ones",
        )
        .ok(200, page("SessionTemplate")),
        Op::new(
            "POST",
            "/v1/templates",
            "templates",
            "Save a session you manage as a template you own (names are unique per owner)",
        )
        .body(r("SaveTemplate"))
        .ok(201, r("SessionTemplate")),
        Op::new(
            "GET",
            "/v1/templates/{name}",
            "templates",
            "Show a template by name or `name@owner` (yours, then shared with you, then \
             instance-wide, then built-in; a `/` in a name as `%2F`); one you do not see is 404",
        )
        .ok(200, r("SessionTemplate")),
        Op::new(
            "PATCH",
            "/v1/templates/{name}",
            "templates",
            "Change a template you own: description, visibility, who it is shared with, \
             parameters and texts (instance-wide needs an administrator)",
        )
        .body(r("TemplatePatch"))
        .ok(200, r("SessionTemplate")),
        Op::new(
            "DELETE",
            "/v1/templates/{name}",
            "templates",
            "Delete a template you own",
        )
        .no_content(),
        Op::new(
            "POST",
            "/v1/sessions/{id}/branches/{b}/undo",
            "branches",
            "Put the branch back to just before its last question (the chat's /undo): that \
             point is checkpointed as `undo-…` and restored, so the undone turn stays \
             reachable from `before-restore-…`; 409 `nothing_to_undo` without a question",
        )
        .ok(200, r("Undone")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/fresh-branch",
            "branches",
            "Start a fresh branch `fresh-N` from the session's root (the chat's /clear); every \
             branch is kept",
        )
        .ok(201, r("Branch")),
        // Batches
        Op::new(
            "POST",
            "/v1/sessions/{id}/batches",
            "batches",
            "Start a batch: the agent answers `request` once per item (its `{field}`s filled \
             in), each on its own branch from one checkpoint (or in order on one shared \
             branch), `concurrency` at a time within `item_timeout_seconds` each; 202 with the \
             batch, which runs in the background, carries on after a restart and never redoes \
             an item done",
        )
        .body(r("BatchSpec"))
        .ok(202, r("Batch")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/batches",
            "batches",
            "The session's batches, newest first (at most 50), with their progress",
        )
        .ok(200, page("Batch")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/batches/{batch}",
            "batches",
            "A batch with its progress and its items (answer, key numbers, branch, error)",
        )
        .ok(200, r("Batch")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/batches/{batch}/cancel",
            "batches",
            "Cancel a running batch: pending items will not run, a running one stops within a \
             second; a finished batch is 409 `batch_finished`",
        )
        .ok(200, r("Batch")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/batches/{batch}/results.csv",
            "batches",
            "The results table as CSV: item number, the item's fields, status, branch, answer, \
             one column per key number, error",
        )
        .ok_as("text/csv", text("CSV with a header row")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/batches/{batch}/events",
            "batches",
            "Watch a batch: `progress` ({status, total, counts, progress, elapsed_seconds}) when \
             the counts change, `item` (the item, as in the batch) as each finishes, then \
             `done` (the batch) and the end of the stream",
        )
        .events(
            "`progress`, `item` and `done` events as described; `closed` ({reason, code}) when \
             the batch can no longer be read",
        ),
        // Memory across sessions
        Op::new(
            "GET",
            "/v1/me/memory",
            "memory",
            "Your memory: the notes and preferences every context window of your turns \
             includes, in every session (nobody else sees them), oldest first",
        )
        .ok(200, page("MemoryEntry")),
        Op::new(
            "POST",
            "/v1/me/memory",
            "memory",
            "Save a note or preference (at most 200 entries; the same text again returns the \
             entry already there)",
        )
        .body(r("MemoryInput"))
        .ok(201, r("MemoryEntry")),
        Op::new(
            "PATCH",
            "/v1/me/memory/{id}",
            "memory",
            "Change one of your entries",
        )
        .body(r("MemoryPatch"))
        .ok(200, r("MemoryEntry")),
        Op::new(
            "DELETE",
            "/v1/me/memory/{id}",
            "memory",
            "Delete one of your entries",
        )
        .no_content(),
        Op::new(
            "GET",
            "/v1/sessions/{id}/events/stream",
            "sessions",
            "Watch a session live: its changes as server-sent events, for anyone who may read it",
        )
        .query(
            "max_seconds",
            json!({"type": "integer", "minimum": 1, "maximum": 86400, "default": 3600,
                   "description": "the stream ends after this long; reconnect"}),
            false,
        )
        .events(
            "`snapshot` first (status, name, last_activity_at, branches with their heads), then \
             as they happen: `nodes` ({nodes: [{id, parent, kind, author, text, created_at}]}, \
             in the order written), `branches` ({changed: [{name, head, status}], removed}), \
             `audit` ({entries: [{seq, action, actor, at, payload}]}: decisions, including an \
             optimizer controller's lock taken, released or broken, which write no node), \
             `session` ({status, name, last_activity_at}); `presence` ({present: [{user, since}]}, \
             who is watching, refreshed every 5 s); `turn` ({event: started|token|tool_call|\
             tool_result|done|error, branch, user, text?, name?, node?}, a turn in progress on \
             this server); `closed` ({reason}) when access is withdrawn or the session deleted. \
             Changes are seen within about 250 ms, whichever \
             server made them.",
        ),
        // Agent
        Op::new(
            "GET",
            "/v1/tools",
            "agent",
            "Every tool with its JSON schema",
        )
        .ok(200, page("ToolInfo")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/query",
            "agent",
            "One agent turn: JSON, or server-sent events",
        )
        .header("Accept", sse, string())
        .body(strict(
            &["message"],
            &[
                ("message", nonblank(64 * 1024, "the question")),
                ("branch", branch_q()),
            ],
        ))
        .ok(200, r("TurnOutcome")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/tools/{tool}",
            "agent",
            "Call one tool, recorded as the agent would",
        )
        .body(strict(
            &[],
            &[
                ("arguments", doc("object", "the tool's arguments")),
                ("branch", branch_q()),
            ],
        ))
        .ok(200, r("ToolCallRecord")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/context",
            "context",
            "Exactly what the model sees, with tokens per part",
        )
        .query("branch", string(), false)
        .ok(200, r("ContextWindow")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/context/compress",
            "context",
            "Summarise older turns now",
        )
        .optional_body(strict(
            &[],
            &[
                ("branch", branch_q()),
                ("keep_recent", int_in(0, 1000, "messages kept verbatim")),
            ],
        ))
        .ok(200, r("Compressed")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/context/items",
            "context",
            "Pin a context item",
        )
        .body(strict(
            &["kind", "content"],
            &[
                ("kind", item_kind()),
                ("content", nonblank(4096, "the pinned text")),
                ("name", nullable(nonblank(200, "default: from the content"))),
                ("branch", branch_q()),
            ],
        ))
        .ok(201, r("AppendOutcome")),
        Op::new(
            "DELETE",
            "/v1/sessions/{id}/context/items",
            "context",
            "Clear pinned items of a kind (or `all`)",
        )
        .query("kind", item_kind(), true)
        .query("branch", string(), false)
        .ok(200, r("Cleared")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/context/cleanup",
            "context",
            "Clear old pinned items",
        )
        .body({
            let mut body = strict(
                &[],
                &[
                    ("older_than_days", int_in(0, 36_500, "days")),
                    (
                        "keep_latest",
                        int_in(0, i64::from(u32::MAX), "items of each kind kept"),
                    ),
                    ("kind", nullable(item_kind())),
                    ("branch", branch_q()),
                ],
            );
            // One of the two, or both.
            body["anyOf"] =
                json!([{"required": ["older_than_days"]}, {"required": ["keep_latest"]}]);
            body
        })
        .ok(200, r("Cleared")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/summary",
            "context",
            "Key findings, materials, open hypotheses, next steps",
        )
        .query("branch", string(), false)
        .ok(200, r("SessionSummary")),
        // Collaboration
        Op::new(
            "GET",
            "/v1/sessions/{id}/collaborators",
            "collaborators",
            "List collaborators",
        )
        .ok(200, page("Collaborator")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/collaborators",
            "collaborators",
            "Invite a user with permissions",
        )
        .body(strict(
            &["user", "permissions"],
            &[("user", text("name or id")), ("permissions", permissions())],
        ))
        .ok(201, r("Collaborator")),
        Op::new(
            "PATCH",
            "/v1/sessions/{id}/collaborators/{user}",
            "collaborators",
            "Replace a collaborator's permissions",
        )
        .body(strict(&["permissions"], &[("permissions", permissions())]))
        .ok(200, r("Collaborator")),
        Op::new(
            "DELETE",
            "/v1/sessions/{id}/collaborators/{user}",
            "collaborators",
            "Remove a collaborator (or leave)",
        )
        .no_content(),
        Op::new(
            "GET",
            "/v1/sessions/{id}/contributions",
            "collaborators",
            "Per-user contributions",
        )
        .ok(200, page("Contribution")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/shares",
            "shares",
            "Create a read-only share link (the token is shown once)",
        )
        .body({
            let mut body = strict(
                &["expires_in_days"],
                &[
                    (
                        "expires_in_days",
                        int_in(1, 365, "days until the link stops working"),
                    ),
                    (
                        "max_views",
                        nullable(int_in(1, i64::from(u32::MAX), "opens allowed")),
                    ),
                    ("branch", nullable(string())),
                    ("checkpoint", nullable(string())),
                ],
            );
            // A branch or a checkpoint, not both.
            body["not"] = json!({"required": ["branch", "checkpoint"],
                                 "properties": {"branch": string(), "checkpoint": string()}});
            body
        })
        .ok(201, r("CreatedShare")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/shares",
            "shares",
            "List share links",
        )
        .ok(200, page("ShareLink")),
        Op::new(
            "DELETE",
            "/v1/sessions/{id}/shares/{share}",
            "shares",
            "Revoke a share link",
        )
        .ok(200, r("ShareLink")),
        Op::new(
            "GET",
            "/v1/shared/{token}",
            "shares",
            "Read a shared session (no sign-in; each page counts as a view)",
        )
        .query("before", cursor("`older` of the previous page"), false)
        .ok(200, r("SharedView"))
        .public(),
        // Search
        Op::new(
            "GET",
            "/v1/search",
            "search",
            "Full-text search over the sessions you may read",
        )
        .query(
            "q",
            nonblank(
                1000,
                "words, \"phrases\", prefix*, (groups) with AND/OR/NOT; at most 1000 bytes, 8 \
                 levels of parentheses and 32 words ([search] in the configuration): past a bound \
                 400 invalid_query with details.position. A search stopped at its deadline is 503 \
                 search_timeout; a storage fault is 507 insufficient_storage or 503 \
                 storage_unavailable (all recoverable)",
            ),
            true,
        )
        .query("session", string(), false)
        .query("project", string(), false)
        .query("status", r("SessionStatus"), false)
        .query("type", r("SessionType"), false)
        .query("tag", string(), false)
        .query("author", text("user name or id"), false)
        .query("kind", text("node kind, or `session`"), false)
        .query("material", text("formula"), false)
        .query("element", text("element symbol"), false)
        .query(
            "from",
            json!({"type": "string", "format": "date-time"}),
            false,
        )
        .query(
            "to",
            json!({"type": "string", "format": "date-time"}),
            false,
        )
        .query("cursor", string(), false)
        .query(
            "limit",
            int_in(
                0,
                i64::from(u32::MAX),
                "sessions per page: 0 is taken as 1, past 100 as 100",
            ),
            false,
        )
        .query(
            "per_session",
            int_in(
                0,
                i64::from(u32::MAX),
                "hits per session: 0 is taken as 1, past 20 as 20",
            ),
            false,
        )
        .ok(200, r("SearchPage")),
    ]
}

/// Builds the document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in operations()
        .into_iter()
        .chain(optimizer::operations())
        .chain(tracking::operations())
    {
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        entry[op.method.to_ascii_lowercase()] = op.render();
    }
    let tags: Vec<Value> = [
        "service",
        "sessions",
        "branches",
        "checkpoints",
        "history",
        "templates",
        "memory",
        "batches",
        "agent",
        "context",
        "collaborators",
        "shares",
        "search",
        "optimizer",
        "projects",
        "notebook",
    ]
    .iter()
    .map(|t| json!({"name": t}))
    .collect();
    let mut components = schemas::all();
    for (name, schema) in optimizer::schemas().into_iter().chain(tracking::schemas()) {
        components[name] = schema;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Kiln",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A conversational research-agent service with persistent sessions: \
                conversation trees with branches, checkpoints and merges, research state, tools, \
                search, collaborators and share links. Errors are \
                `{\"error\": {\"code\", \"message\", \"recoverable\"}}`.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": tags,
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                "description": "an API token (`kiln user add NAME` prints one)"}},
            "responses": {"Error": {"description": "an error", "content": {
                "application/json": {"schema": r("Error")}}}},
            "schemas": components,
        },
    })
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| document().to_string());

/// `GET /v1/openapi.json`.
pub async fn serve() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}
