//! The document's shared schemas (`components.schemas`): every body the API takes or returns,
//! as serde writes and reads it.

use serde_json::{Map, Value, json};

/// `{"$ref": "#/components/schemas/NAME"}`.
pub(super) fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// An object schema: `props` as `(name, schema)`, `required` the names that must be present.
pub(super) fn obj(required: &[&str], props: &[(&str, Value)]) -> Value {
    let properties: Map<String, Value> = props
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let mut o = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        o["required"] = json!(required);
    }
    o
}

/// A closed object schema (the server refuses unknown fields).
pub(super) fn strict(required: &[&str], props: &[(&str, Value)]) -> Value {
    let mut o = obj(required, props);
    o["additionalProperties"] = json!(false);
    o
}

/// Text that must hold something besides white space, at most `max` bytes.
pub(super) fn nonblank(max: usize, description: &str) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": "\\S",
           "description": format!("{description}; not blank, at most {max} bytes (UTF-8)")})
}

/// A branch or checkpoint name.
pub(super) fn tree_name() -> Value {
    json!({"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9._/-]{0,63}$",
           "description": "1-64 ASCII letters, digits, `.`, `_`, `-` or `/`, not starting with \
                           `.`, `-` or `/`"})
}

/// A context item kind: 1-32 lower-case letters, digits or `_`, starting with a letter.
pub(super) fn item_kind() -> Value {
    json!({"type": "string", "pattern": "^[a-z][a-z0-9_]{0,31}$",
           "description": "e.g. goal, constraint: 1-32 lower-case letters, digits or `_`"})
}

/// At most 50 tags of 1-64 characters.
/// One line with at least one character that is neither a space nor a control character, and
/// no control character (Rust's `char::is_control`: C0, DEL and C1): what a trimmed text field
/// that must not be blank accepts.
pub(super) const NONBLANK_LINE: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$";

/// As [`NONBLANK_LINE`], with line breaks and tabs allowed.
pub(super) const NONBLANK_TEXT: &str = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$";

pub(super) fn tags() -> Value {
    json!({"type": "array", "maxItems": 50, "items": {"type": "string", "minLength": 1,
           "maxLength": 64, "pattern": NONBLANK_LINE,
           "description": "1-64 characters, not blank, no control characters"}})
}

pub(super) fn string() -> Value {
    json!({"type": "string"})
}

pub(super) fn text(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

/// A `ty` value with a description.
pub(super) fn doc(ty: &str, description: &str) -> Value {
    json!({"type": ty, "description": description})
}

pub(super) fn int() -> Value {
    json!({"type": "integer"})
}

/// An integer the server takes only within `min..=max`.
pub(super) fn int_in(min: i64, max: i64, description: &str) -> Value {
    json!({"type": "integer", "minimum": min, "maximum": max, "description": description})
}

/// A string of `min..=max` bytes (UTF-8; JSON Schema counts characters, so `maxLength` is an
/// upper bound) without control characters (`multi_line`: line breaks and tabs allowed).
pub(super) fn bounded(min: usize, max: usize, multi_line: bool) -> Value {
    let what = if multi_line {
        "no control characters but line breaks and tabs"
    } else {
        "no control characters"
    };
    // Rust's `char::is_control`: C0, DEL and C1.
    let pattern = if multi_line {
        "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"
    } else {
        "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    };
    json!({"type": "string", "minLength": min, "maxLength": max, "pattern": pattern,
           "description": format!("at most {max} bytes (UTF-8), {what}")})
}

pub(super) fn number() -> Value {
    json!({"type": "number"})
}

pub(super) fn boolean() -> Value {
    json!({"type": "boolean"})
}

/// Any JSON value.
pub(super) fn any() -> Value {
    json!({})
}

pub(super) fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

/// `schema` or `null`.
pub(super) fn nullable(schema: Value) -> Value {
    json!({"oneOf": [schema, {"type": "null"}]})
}

pub(super) fn enumeration(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

/// An object from string keys to `values`.
pub(super) fn map(values: Value) -> Value {
    json!({"type": "object", "additionalProperties": values})
}

/// `{"items": [ITEM], "next_cursor": string | null}`.
pub(super) fn page(item: &str) -> Value {
    obj(
        &["items", "next_cursor"],
        &[
            ("items", array(r(item))),
            (
                "next_cursor",
                nullable(text("pass as `cursor` / `before` for the next page")),
            ),
        ],
    )
}

/// Every schema the paths refer to.
pub(super) fn all() -> Value {
    let mut s = Map::new();
    let mut put = |name: &str, schema: Value| {
        s.insert(name.to_owned(), schema);
    };
    let ts = || text("RFC 3339 time, UTC");
    let id = || text("an id (UUIDv7)");

    put(
        "Error",
        obj(
            &["error"],
            &[(
                "error",
                obj(
                    &["code", "message", "recoverable"],
                    &[
                        (
                            "code",
                            text("stable machine-readable code, e.g. `invalid_transition`"),
                        ),
                        ("message", string()),
                        ("recoverable", boolean()),
                        (
                            "details",
                            json!({"type": "object", "description": "present where it helps: \
                                    `allowed` targets, merge `conflicts`, your and the stored \
                                    `version`, a query error's `position`"}),
                        ),
                    ],
                ),
            )],
        ),
    );
    put(
        "SessionStatus",
        enumeration(&["created", "active", "paused", "archived", "resumed"]),
    );
    put(
        "SessionType",
        enumeration(&["interactive", "batch", "research", "collaborative"]),
    );
    put(
        "NodeKind",
        enumeration(&[
            "root",
            "user",
            "assistant",
            "system",
            "tool_call",
            "tool_result",
            "summary",
            "merge",
            "note",
            "material",
            "discovery",
            "discovery_link",
            "hypothesis",
            "task",
            "context_pin",
            "context_clear",
            "focus",
            "tool_state",
        ]),
    );
    put(
        "Role",
        enumeration(&[
            "user",
            "assistant",
            "system",
            "note",
            "tool_call",
            "tool_result",
            "summary",
        ]),
    );
    put(
        "Permission",
        enumeration(&[
            "read",
            "comment",
            "write",
            "add_materials",
            "manage",
            "owner",
        ]),
    );
    put(
        "MergeStrategy",
        enumeration(&["fail", "ours", "theirs", "union"]),
    );
    put(
        "CheckpointFrequency",
        json!({"type": "string", "minLength": 1, "pattern": "\\S",
               "description": "`hourly`, `daily` or a cron expression (5 fields, or 6 with \
                               seconds)"}),
    );
    put(
        "ContextConfig",
        strict(
            &[],
            &[
                (
                    "max_history",
                    int_in(1, 10_000, "messages kept in the window"),
                ),
                ("material_memory", int_in(0, 1000, "materials remembered")),
                ("auto_summarise", boolean()),
                (
                    "relevance_threshold",
                    json!({"type": "number", "minimum": 0, "maximum": 1}),
                ),
                ("context_window", int_in(256, 2_000_000, "tokens")),
                (
                    "recall",
                    json!({"type": "boolean", "description": "include findings from the \
                           user's other readable sessions that the request is about"}),
                ),
            ],
        ),
    );
    let session = obj(
        &[
            "id",
            "owner_id",
            "name",
            "description",
            "session_type",
            "status",
            "project",
            "tags",
            "metadata",
            "config",
            "template",
            "default_branch",
            "version",
            "created_at",
            "updated_at",
            "last_activity_at",
        ],
        &[
            ("id", id()),
            ("owner_id", id()),
            ("name", string()),
            ("description", string()),
            ("session_type", r("SessionType")),
            ("status", r("SessionStatus")),
            ("project", nullable(string())),
            ("tags", array(string())),
            ("metadata", json!({"type": "object"})),
            (
                "config",
                obj(
                    &["context"],
                    &[
                        ("context", r("ContextConfig")),
                        ("duration_days", int()),
                        ("checkpoint_frequency", r("CheckpointFrequency")),
                    ],
                ),
            ),
            ("template", nullable(string())),
            ("default_branch", string()),
            ("version", doc("integer", "for `If-Match` on PATCH")),
            ("created_at", ts()),
            ("updated_at", ts()),
            (
                "last_activity_at",
                json!({"type": "string", "format": "date-time",
                       "description": "when anything last happened in the session: a message, \
                        an event, a tool run, a branch or checkpoint move, a lifecycle change"}),
            ),
            (
                "provenance",
                json!({"type": "string", "enum": ["verified", "unverified"],
                       "description": "imported sessions only: `verified` (signed by a \
                        trusted key, original authors) or `unverified` (nodes credited to \
                        the importer)"}),
            ),
            (
                "folder",
                text("its folder in the project, such as `/experiments/2026/jan`; absent for `/`"),
            ),
            (
                "protected",
                doc(
                    "boolean",
                    "write-protected: every write is 409 `session_protected` until the owner \
                     unprotects it; absent when false",
                ),
            ),
            ("protected_at", ts()),
        ],
    );
    put("Session", session.clone());
    // The list marks sessions someone else owns and added you to.
    let mut listed = session;
    listed["properties"]["shared_with_you"] = nullable(obj(
        &["permissions", "added_by", "added_at"],
        &[
            ("permissions", array(r("Permission"))),
            ("added_by", nullable(text("who added you (their name)"))),
            ("added_at", ts()),
        ],
    ));
    if let Some(req) = listed["required"].as_array_mut() {
        req.push(json!("shared_with_you"));
    }
    put("ListedSession", listed);
    put(
        "NewSession",
        strict(
            &["name"],
            &[
                ("name", bounded(1, 200, false)),
                ("description", bounded(0, 10_000, true)),
                ("session_type", r("SessionType")),
                ("project", nullable(bounded(1, 200, false))),
                ("tags", tags()),
                ("metadata", json!({"type": "object"})),
                ("context", r("ContextConfig")),
                ("duration_days", int_in(1, 3650, "research sessions only")),
                ("checkpoint_frequency", r("CheckpointFrequency")),
                ("template", nullable(bounded(1, 200, false))),
                (
                    "members",
                    json!({"type": "array", "maxItems": 200,
                    "description": "collaborators added in the same call (not yourself, \
                                    each once)",
                    "items": strict(&["user", "permissions"], &[
                        ("user", text("a user name or id")),
                        ("permissions", json!({"type": "array", "minItems": 1,
                            "items": r("Permission")})),
                    ])}),
                ),
            ],
        ),
    );
    put(
        "FromTemplate",
        strict(
            &["template"],
            &[
                (
                    "template",
                    json!({"type": "string", "minLength": 1,
                           "description": "a template name or `name@owner`"}),
                ),
                (
                    "parameters",
                    map(text("inserted where the texts say `{name}`, as plain text")),
                ),
            ],
        ),
    );
    put(
        "SessionPatch",
        strict(
            &[],
            &[
                ("name", bounded(1, 200, false)),
                ("description", bounded(0, 10_000, true)),
                ("project", nullable(bounded(1, 200, false))),
                ("tags", tags()),
                ("metadata", json!({"type": "object"})),
                ("context", r("ContextConfig")),
            ],
        ),
    );
    put(
        "SessionEvent",
        obj(
            &["id", "from", "to", "actor", "reason", "at"],
            &[
                ("id", int()),
                ("from", nullable(r("SessionStatus"))),
                ("to", r("SessionStatus")),
                ("actor", string()),
                ("reason", string()),
                ("at", ts()),
            ],
        ),
    );
    put(
        "Node",
        obj(
            &[
                "id",
                "seq",
                "parent_id",
                "kind",
                "role",
                "author",
                "content",
                "created_at",
            ],
            &[
                ("id", id()),
                ("seq", doc("integer", "depth on the path; a page's cursor")),
                ("parent_id", nullable(string())),
                (
                    "merge_parent_id",
                    text("merge nodes: the merged branch's head"),
                ),
                ("kind", r("NodeKind")),
                ("role", r("NodeKind")),
                ("author", nullable(text("user id"))),
                ("content", string()),
                ("data", any()),
                ("tokens", int()),
                ("created_at", ts()),
            ],
        ),
    );
    put(
        "AppendOutcome",
        obj(
            &["nodes", "head", "activated"],
            &[
                ("nodes", array(r("Node"))),
                ("head", string()),
                (
                    "activated",
                    doc("boolean", "this write moved the session to active"),
                ),
            ],
        ),
    );
    put(
        "Branch",
        obj(
            &[
                "name",
                "head",
                "base",
                "status",
                "version",
                "created_by",
                "created_at",
                "updated_at",
            ],
            &[
                ("name", string()),
                ("head", string()),
                ("base", text("the node it forked at")),
                ("status", enumeration(&["open", "merged", "discarded"])),
                ("version", int()),
                ("created_by", nullable(string())),
                ("created_at", ts()),
                ("updated_at", ts()),
            ],
        ),
    );
    put(
        "BranchFrom",
        json!({"description": "exactly one of these; default: the head of the default branch",
        "oneOf": [
            strict(&["branch"], &[("branch", string())]),
            strict(&["node"], &[("node", string())]),
            strict(&["checkpoint"], &[("checkpoint", string())]),
        ]}),
    );
    put(
        "Checkpoint",
        obj(
            &["name", "node", "branch", "auto", "created_by", "created_at"],
            &[
                ("name", string()),
                ("node", string()),
                ("branch", nullable(string())),
                ("auto", boolean()),
                ("created_by", nullable(string())),
                ("created_at", ts()),
            ],
        ),
    );
    put(
        "Restored",
        obj(
            &["branch", "old_head", "new_head", "saved_as"],
            &[
                ("branch", string()),
                ("old_head", string()),
                ("new_head", string()),
                (
                    "saved_as",
                    text(
                        "the checkpoint keeping the old head: a new `before-restore-…` one, or \
                         the one asked for when the branch was already there",
                    ),
                ),
            ],
        ),
    );
    put(
        "ReflogEntry",
        obj(
            &[
                "id", "branch", "old_head", "new_head", "actor", "reason", "at",
            ],
            &[
                ("id", int()),
                ("branch", string()),
                ("old_head", nullable(string())),
                ("new_head", string()),
                ("actor", string()),
                ("reason", string()),
                ("at", ts()),
            ],
        ),
    );
    put("StateEvent", state_event());
    put(
        "ResearchState",
        obj(
            &[
                "materials",
                "discoveries",
                "links",
                "hypotheses",
                "tasks",
                "context",
                "focus",
                "tools",
            ],
            &[
                ("materials", array(r("Material"))),
                ("discoveries", array(r("Discovery"))),
                ("links", array(r("Link"))),
                ("hypotheses", array(r("Hypothesis"))),
                ("tasks", array(r("Task"))),
                ("context", map(any())),
                ("focus", r("Focus")),
                ("tools", map(any())),
            ],
        ),
    );
    put(
        "Material",
        obj(
            &["formula", "first_node", "last_node", "mentions"],
            &[
                ("formula", string()),
                ("data", any()),
                ("first_node", string()),
                ("last_node", string()),
                ("mentions", int()),
            ],
        ),
    );
    put(
        "Discovery",
        obj(
            &[
                "id",
                "type",
                "description",
                "materials",
                "evidence",
                "source",
                "node",
            ],
            &[
                ("id", string()),
                ("type", string()),
                ("description", string()),
                ("materials", array(string())),
                ("evidence", array(text("node id"))),
                ("confidence", number()),
                ("source", enumeration(&["manual", "auto"])),
                ("node", string()),
            ],
        ),
    );
    put(
        "Link",
        obj(
            &["from", "to", "relationship", "node"],
            &[
                ("from", string()),
                ("to", string()),
                ("relationship", string()),
                ("notes", string()),
                ("node", string()),
            ],
        ),
    );
    put(
        "Hypothesis",
        obj(
            &["id", "statement", "status", "node"],
            &[
                ("id", string()),
                ("statement", string()),
                ("status", enumeration(&["open", "supported", "refuted"])),
                ("node", string()),
            ],
        ),
    );
    put(
        "Task",
        obj(
            &["id", "description", "status", "node"],
            &[
                ("id", string()),
                ("description", string()),
                (
                    "status",
                    enumeration(&["pending", "in_progress", "done", "cancelled"]),
                ),
                ("node", string()),
            ],
        ),
    );
    put(
        "Focus",
        obj(
            &["material", "topic"],
            &[
                ("material", nullable(string())),
                ("topic", nullable(string())),
            ],
        ),
    );
    put(
        "Conflict",
        obj(
            &[
                "key",
                "field",
                "base",
                "ours",
                "theirs",
                "can_keep_both",
                "description",
                "subject",
                "base_text",
                "ours_text",
                "theirs_text",
            ],
            &[
                (
                    "key",
                    text("the handle to name it by in `resolutions` (e.g. `hypotheses.<id>`)"),
                ),
                ("field", string()),
                ("base", any()),
                ("ours", any()),
                ("theirs", any()),
                (
                    "can_keep_both",
                    doc("boolean", "whether `both` can settle it"),
                ),
                ("resolution", r("Resolution")),
                (
                    "description",
                    text(
                        "the conflict in words: \"Hypothesis 'X': supported on main, refuted on sodium (was open)\"",
                    ),
                ),
                ("subject", text("what it is about, in words")),
                (
                    "base_text",
                    nullable(text("the common ancestor's version, in words")),
                ),
                (
                    "ours_text",
                    text("the receiving branch's version, in words"),
                ),
                ("theirs_text", text("the merged branch's version, in words")),
            ],
        ),
    );
    put(
        "Resolution",
        json!({"type": "string", "enum": ["ours", "theirs", "both"],
               "description": "how one conflict is settled (`both`: keep both entries, theirs \
                               under `key@branch`)"}),
    );
    put(
        "MergeBody",
        strict(
            &["into"],
            &[
                ("into", string()),
                ("strategy", r("MergeStrategy")),
                (
                    "resolutions",
                    json!({"type": "object", "additionalProperties": r("Resolution"),
                           "maxProperties": 1000,
                           "description": "a resolution per conflict `key`; conflicts not \
                                           named fall back to `strategy` (default `fail`: the \
                                           merge is refused 409 listing the open ones)"}),
                ),
            ],
        ),
    );
    put(
        "MergePreview",
        obj(
            &[
                "from",
                "into",
                "nothing_to_merge",
                "base",
                "conflicts",
                "open",
                "state",
                "changes",
                "summary",
            ],
            &[
                ("from", string()),
                ("into", string()),
                ("nothing_to_merge", boolean()),
                ("base", text("the merge base node")),
                ("conflicts", array(r("Conflict"))),
                (
                    "open",
                    doc(
                        "integer",
                        "conflicts still open: the merge would be refused",
                    ),
                ),
                ("state", r("ResearchState")),
                (
                    "changes",
                    array(text("one change the merge makes to `into`, in words")),
                ),
                ("summary", string()),
            ],
        ),
    );
    put(
        "MergeResult",
        obj(
            &[
                "merged",
                "merge_node",
                "base",
                "head",
                "summary",
                "resolved",
            ],
            &[
                ("merged", doc("boolean", "false: nothing new to merge")),
                ("merge_node", nullable(string())),
                ("base", string()),
                ("head", string()),
                ("summary", string()),
                ("resolved", array(r("Conflict"))),
            ],
        ),
    );
    let keyed = obj(
        &["added", "removed", "changed"],
        &[
            ("added", array(any())),
            ("removed", array(any())),
            (
                "changed",
                array(obj(
                    &["key", "from", "to"],
                    &[("key", string()), ("from", any()), ("to", any())],
                )),
            ),
        ],
    );
    put(
        "DiffResult",
        obj(
            &[
                "from",
                "to",
                "base",
                "only_from",
                "only_to",
                "only_from_total",
                "only_to_total",
                "from_truncated",
                "to_truncated",
                "state",
                "changes",
            ],
            &[
                ("from", string()),
                ("to", string()),
                ("base", text("the common ancestor")),
                ("only_from", array(r("Node"))),
                ("only_to", array(r("Node"))),
                ("only_from_total", int()),
                ("only_to_total", int()),
                ("from_truncated", boolean()),
                ("to_truncated", boolean()),
                (
                    "changes",
                    array(text("one research-state change, in words")),
                ),
                (
                    "state",
                    obj(
                        &[
                            "materials",
                            "discoveries",
                            "links",
                            "hypotheses",
                            "tasks",
                            "context",
                            "tools",
                        ],
                        &[
                            ("materials", keyed.clone()),
                            ("discoveries", keyed.clone()),
                            ("links", keyed.clone()),
                            ("hypotheses", keyed.clone()),
                            ("tasks", keyed.clone()),
                            ("context", keyed.clone()),
                            ("tools", keyed),
                            ("focus", array(r("Focus"))),
                        ],
                    ),
                ),
            ],
        ),
    );
    put(
        "AuditEntry",
        obj(
            &[
                "seq",
                "actor",
                "action",
                "payload",
                "at",
                "prev_hash",
                "hash",
            ],
            &[
                ("seq", int()),
                ("actor", string()),
                ("action", string()),
                ("payload", any()),
                ("at", ts()),
                ("prev_hash", string()),
                (
                    "hash",
                    text("SHA-256 over prev_hash and the entry's canonical JSON"),
                ),
            ],
        ),
    );
    put(
        "AuditVerification",
        obj(
            &["valid", "entries", "first_broken", "reason"],
            &[
                ("valid", boolean()),
                ("entries", int()),
                ("first_broken", nullable(int())),
                ("reason", nullable(string())),
            ],
        ),
    );
    put(
        "Statistics",
        obj(
            &[
                "active_seconds",
                "queries",
                "messages",
                "materials",
                "discoveries",
                "tool_usage",
                "contributions",
                "branches",
                "checkpoints",
            ],
            &[
                ("active_seconds", int()),
                ("queries", int()),
                ("messages", int()),
                ("materials", int()),
                ("discoveries", int()),
                ("tool_usage", map(int())),
                ("contributions", map(map(int()))),
                ("branches", int()),
                ("checkpoints", int()),
            ],
        ),
    );
    put(
        "SessionExport",
        obj(
            &[
                "format",
                "version",
                "exported_at",
                "session",
                "segments",
                "nodes",
                "branches",
                "checkpoints",
                "reflog",
                "merges",
                "snapshots",
                "events",
                "audit",
            ],
            &[
                ("format", enumeration(&["kiln-session"])),
                ("version", int()),
                ("exported_at", ts()),
                ("session", r("Session")),
                ("segments", array(json!({"type": "object"}))),
                ("nodes", array(json!({"type": "object"}))),
                ("branches", array(json!({"type": "object"}))),
                ("checkpoints", array(r("Checkpoint"))),
                ("reflog", array(r("ReflogEntry"))),
                ("merges", array(json!({"type": "object"}))),
                ("snapshots", array(json!({"type": "object"}))),
                ("events", array(r("SessionEvent"))),
                ("audit", array(r("AuditEntry"))),
                (
                    "tracks",
                    json!({"type": "array", "items": {"type": "object"},
                           "description": "metric-track batches with their stored chunks \
                                           (absent when there are none)"}),
                ),
                (
                    "signature",
                    obj(
                        &["algorithm", "key", "digest", "signature"],
                        &[
                            ("algorithm", enumeration(&["ed25519"])),
                            (
                                "key",
                                doc("string", "the signer's public key, 64 hex digits"),
                            ),
                            (
                                "digest",
                                doc(
                                    "string",
                                    "SHA-256 of the canonical JSON (sorted keys, no \
                                     whitespace) of the document without `signature`",
                                ),
                            ),
                            (
                                "signature",
                                doc("string", "ed25519 over the digest, 128 hex digits"),
                            ),
                        ],
                    ),
                ),
            ],
        ),
    );
    put(
        "InstanceKey",
        obj(
            &["algorithm", "public_key", "trusted_keys", "server_keys"],
            &[
                ("algorithm", enumeration(&["ed25519"])),
                ("public_key", doc("string", "64 hex digits")),
                (
                    "trusted_keys",
                    array(doc("string", "another instance's public key")),
                ),
                (
                    "server_keys",
                    array(doc(
                        "string",
                        "the public key of another server sharing this store, trusted as this one's",
                    )),
                ),
            ],
        ),
    );
    let param = strict(
        &["name"],
        &[
            (
                "name",
                text("letters, digits or `_`, not starting with a digit"),
            ),
            ("description", string()),
            ("default", nullable(string())),
            ("required", doc("boolean", "default false")),
        ],
    );
    let placeholders = "`{parameter}` is replaced by the parameter's value as plain text; \
        `{{` is a literal `{`; a `}` is always literal; nothing else is evaluated";
    put(
        "TemplateVisibility",
        json!({"type": "string", "enum": ["private", "shared", "instance"],
               "description": "private: its owner only; shared: its owner and `shared_with`; \
                instance: everyone (set by an administrator)"}),
    );
    put(
        "SessionTemplate",
        obj(
            &[
                "name",
                "ref",
                "built_in",
                "owner",
                "visibility",
                "parameters",
                "session_name",
            ],
            &[
                ("name", string()),
                (
                    "ref",
                    text("names this template unambiguously: `name` (built-in) or `name@owner`"),
                ),
                ("built_in", boolean()),
                (
                    "owner",
                    nullable(text("the owner's user name; null when built in")),
                ),
                ("visibility", nullable(r("TemplateVisibility"))),
                (
                    "shared_with",
                    json!({"type": "array", "items": string(),
                           "description": "user names; shown to the template's owner only"}),
                ),
                ("created_at", nullable(ts())),
                ("updated_at", nullable(ts())),
                ("description", string()),
                ("session_type", r("SessionType")),
                ("tags", array(string())),
                ("project", nullable(string())),
                ("context", nullable(r("ContextConfig"))),
                ("duration_days", nullable(int())),
                ("checkpoint_frequency", nullable(r("CheckpointFrequency"))),
                ("parameters", array(param.clone())),
                ("session_name", text(placeholders)),
                ("session_description", text(placeholders)),
                ("pins", map(text(placeholders))),
                ("focus", nullable(text(placeholders))),
                ("hypotheses", array(text(placeholders))),
                ("tasks", array(text(placeholders))),
            ],
        ),
    );
    put(
        "BatchSpec",
        strict(
            &["request"],
            &[
                (
                    "request",
                    json!({"type": "string", "minLength": 1, "maxLength": 8192, "pattern": "\\S",
                           "description": "`{field}` placeholders, filled from each item; `{{` \
                                           is a literal `{`"}),
                ),
                (
                    "items",
                    json!({"type": "array", "minItems": 1, "maxItems": 1000,
                           "items": {"type": "object", "additionalProperties":
                               {"type": ["string", "number", "boolean"]}},
                           "description": "give `items` or `csv`"}),
                ),
                ("csv", text("CSV whose header row names the fields")),
                (
                    "mode",
                    json!({"type": "string", "enum": ["branches", "shared"],
                           "description": "branches (default): an item per branch; shared: \
                                           all in order on one branch"}),
                ),
                ("concurrency", int_in(1, 16, "items at once (default 4)")),
                (
                    "item_timeout_seconds",
                    int_in(1, 3600, "each item's time budget (default 120)"),
                ),
                (
                    "checkpoint",
                    text("start every item from this checkpoint (default: a new one)"),
                ),
                (
                    "branch",
                    text("start from this branch's head (default: the default branch)"),
                ),
            ],
        ),
    );
    let batch_item = obj(
        &["idx", "item", "request", "status", "attempts"],
        &[
            ("idx", int()),
            ("item", json!({"type": "object"})),
            ("request", string()),
            (
                "status",
                enumeration(&["pending", "running", "done", "failed", "cancelled"]),
            ),
            ("attempts", int()),
            ("branch", nullable(string())),
            ("answer", nullable(string())),
            (
                "numbers",
                nullable(json!({"type": "object",
                                "description": "key numbers of the item's tool results"})),
            ),
            ("error", nullable(string())),
            ("started_at", nullable(ts())),
            ("finished_at", nullable(ts())),
        ],
    );
    let count = || int();
    put(
        "Batch",
        obj(
            &[
                "id",
                "session_id",
                "request",
                "mode",
                "concurrency",
                "status",
                "total",
                "counts",
                "progress",
            ],
            &[
                ("id", string()),
                ("session_id", string()),
                ("user_id", string()),
                ("request", string()),
                ("mode", enumeration(&["branches", "shared"])),
                ("concurrency", int()),
                ("item_timeout_ms", int()),
                ("from_node", string()),
                ("checkpoint", nullable(string())),
                ("status", enumeration(&["running", "done", "cancelled"])),
                ("created_at", ts()),
                ("updated_at", ts()),
                ("finished_at", nullable(ts())),
                ("total", int()),
                (
                    "counts",
                    obj(
                        &["pending", "running", "done", "failed", "cancelled"],
                        &[
                            ("pending", count()),
                            ("running", count()),
                            ("done", count()),
                            ("failed", count()),
                            ("cancelled", count()),
                        ],
                    ),
                ),
                (
                    "progress",
                    json!({"type": "number", "minimum": 0, "maximum": 1}),
                ),
                ("elapsed_seconds", json!({"type": "number", "minimum": 0})),
                ("items", array(batch_item)),
            ],
        ),
    );
    put(
        "Undone",
        obj(
            &["branch", "old_head", "new_head", "saved_as", "undone"],
            &[
                ("branch", string()),
                ("old_head", string()),
                ("new_head", string()),
                (
                    "saved_as",
                    text("the automatic checkpoint keeping the undone turn"),
                ),
                ("undone", text("the question taken back")),
            ],
        ),
    );
    let memory_kind = json!({"type": "string", "enum": ["note", "preference"],
        "description": "note (default) or preference"});
    let memory_text = json!({"type": "string", "minLength": 1, "maxLength": 1000,
        "pattern": NONBLANK_TEXT,
        "description": "1-1000 characters, not blank; no control characters but line breaks \
                        and tabs"});
    put(
        "MemoryEntry",
        obj(
            &[
                "id",
                "kind",
                "content",
                "source",
                "session_id",
                "created_at",
                "updated_at",
            ],
            &[
                ("id", string()),
                ("kind", memory_kind.clone()),
                ("content", string()),
                (
                    "source",
                    json!({"type": "string", "enum": ["user", "agent"],
                           "description": "user, or agent when you asked it to remember"}),
                ),
                (
                    "session_id",
                    nullable(text("the session the agent saved it from")),
                ),
                ("created_at", ts()),
                ("updated_at", ts()),
            ],
        ),
    );
    put(
        "MemoryInput",
        strict(
            &["content"],
            &[
                ("content", memory_text.clone()),
                ("kind", memory_kind.clone()),
            ],
        ),
    );
    put(
        "MemoryPatch",
        strict(&[], &[("content", memory_text), ("kind", memory_kind)]),
    );
    put(
        "SaveTemplate",
        strict(
            &["name", "from_session"],
            &[
                ("name", text("1-64 letters, digits, `.`, `_`, `-` or `/`")),
                ("description", string()),
                (
                    "from_session",
                    text("a session id; you need `manage` on it"),
                ),
                ("visibility", r("TemplateVisibility")),
                (
                    "shared_with",
                    json!({"type": "array", "items": string(),
                           "description": "user names or ids; only with visibility `shared`"}),
                ),
            ],
        ),
    );
    put(
        "TemplatePatch",
        strict(
            &[],
            &[
                ("description", string()),
                ("visibility", r("TemplateVisibility")),
                (
                    "shared_with",
                    json!({"type": "array", "items": string(), "description":
                           "user names or ids, replacing the list; only with visibility `shared`"}),
                ),
                ("parameters", array(param)),
                ("session_name", text(placeholders)),
                ("session_description", text(placeholders)),
                ("pins", map(string())),
                ("focus", nullable(text("null removes the focus"))),
                ("hypotheses", array(string())),
                ("tasks", array(string())),
            ],
        ),
    );
    put(
        "ToolInfo",
        obj(
            &["name", "description", "writes", "parameters"],
            &[
                ("name", string()),
                ("description", string()),
                ("writes", boolean()),
                ("parameters", doc("object", "JSON Schema of the arguments")),
            ],
        ),
    );
    put(
        "ToolCallRecord",
        obj(
            &[
                "id",
                "name",
                "arguments",
                "ok",
                "text",
                "result",
                "call_node",
                "result_node",
            ],
            &[
                ("id", string()),
                ("name", string()),
                ("arguments", any()),
                ("ok", boolean()),
                ("text", string()),
                ("result", any()),
                ("call_node", string()),
                ("result_node", string()),
            ],
        ),
    );
    put(
        "TurnOutcome",
        json!({"type": "object",
        "required": ["session", "branch", "user_node", "answer_node", "answer",
                     "tool_calls", "steps", "model", "head"],
        "properties": {
            "session": string(), "branch": string(), "user_node": string(),
            "answer_node": string(), "answer": string(),
            "tool_calls": array(json!({"type": "object"})),
            "discoveries": array(json!({"type": "object"})),
            "summary_node": nullable(string()), "steps": int(),
            "usage": obj(&[], &[("prompt_tokens", int()), ("completion_tokens", int()),
                                ("calls", int())]),
            "model": string(), "interrupted": boolean(), "budget_exhausted": boolean(),
            "head": string(), "context_tokens": int(),
        }}),
    );
    put(
        "ContextWindow",
        json!({"type": "object",
        "required": ["messages", "parts", "total_tokens", "budget", "over_budget"],
        "properties": {
            "messages": array(r("ChatMessage")),
            "parts": array(obj(&["name", "tokens", "items", "dropped"], &[
                ("name", string()), ("tokens", int()), ("items", int()),
                ("dropped", int()),
            ])),
            "total_tokens": int(), "budget": int(), "over_budget": boolean(),
            "focus": nullable(string()), "recent_materials": array(string()),
            "findings": array(string()), "summary_node": nullable(string()),
            "history_nodes": array(string()),
            "memory": json!({"type": "array", "items": string(),
                             "description": "ids of your memory entries in the window"}),
            "recalled": array(obj(
                &["session_id", "session_name", "node_id", "kind", "text"],
                &[
                    ("session_id", string()),
                    ("session_name", string()),
                    ("node_id", nullable(text("the node that recorded it"))),
                    ("kind", enumeration(&["discovery", "hypothesis", "optimizer"])),
                    ("text", string()),
                ],
            )),
        }}),
    );
    put(
        "ChatMessage",
        obj(
            &["role"],
            &[
                (
                    "role",
                    enumeration(&["system", "user", "assistant", "tool"]),
                ),
                ("content", string()),
                (
                    "tool_calls",
                    array(obj(
                        &["id", "name", "arguments"],
                        &[
                            ("id", string()),
                            ("name", string()),
                            ("arguments", text("the arguments as JSON text")),
                        ],
                    )),
                ),
                ("tool_call_id", string()),
            ],
        ),
    );
    put(
        "Cleared",
        obj(
            &["cleared", "head"],
            &[
                ("cleared", array(text("pin key"))),
                ("head", nullable(string())),
            ],
        ),
    );
    put(
        "Compressed",
        obj(
            &["summary", "tokens_before", "tokens_after"],
            &[
                ("summary", nullable(json!({"type": "object"}))),
                ("tokens_before", int()),
                ("tokens_after", int()),
                ("usage", json!({"type": "object"})),
            ],
        ),
    );
    put(
        "SessionSummary",
        obj(
            &[
                "key_findings",
                "materials_of_interest",
                "open_hypotheses",
                "next_steps",
                "focus",
                "counts",
            ],
            &[
                ("key_findings", array(json!({"type": "object"}))),
                ("materials_of_interest", array(json!({"type": "object"}))),
                ("open_hypotheses", array(string())),
                ("next_steps", array(string())),
                ("focus", r("Focus")),
                ("counts", map(int())),
            ],
        ),
    );
    put(
        "Collaborator",
        obj(
            &[
                "user_id",
                "name",
                "permissions",
                "added_by",
                "added_at",
                "updated_at",
            ],
            &[
                ("user_id", string()),
                ("name", string()),
                ("permissions", array(r("Permission"))),
                ("added_by", nullable(string())),
                ("added_at", ts()),
                ("updated_at", ts()),
            ],
        ),
    );
    put(
        "Contribution",
        obj(
            &[
                "user_id",
                "name",
                "queries",
                "messages",
                "discoveries",
                "materials",
            ],
            &[
                ("user_id", string()),
                ("name", string()),
                ("queries", int()),
                ("messages", int()),
                ("discoveries", int()),
                ("materials", int()),
            ],
        ),
    );
    let share_fields = [
        ("id", string()),
        ("session_id", string()),
        ("node_id", text("the pinned node")),
        ("branch", nullable(string())),
        ("checkpoint", nullable(string())),
        ("created_by", string()),
        ("created_at", ts()),
        ("expires_at", ts()),
        ("max_views", nullable(int())),
        ("views", int()),
        ("revoked_at", nullable(string())),
    ];
    put(
        "ShareLink",
        obj(
            &["id", "session_id", "node_id", "expires_at", "views"],
            &share_fields,
        ),
    );
    let mut created = share_fields.to_vec();
    created.push(("token", text("`ks_…`, shown only in this response")));
    created.push(("path", text("`/s/{token}`")));
    created.push(("url", text("the read-only page")));
    put(
        "CreatedShare",
        obj(&["id", "token", "path", "url", "expires_at"], &created),
    );
    put(
        "SharedView",
        obj(
            &[
                "session",
                "pinned_node",
                "expires_at",
                "views",
                "conversation",
                "older",
            ],
            &[
                (
                    "session",
                    obj(
                        &["name", "description", "type", "project", "tags"],
                        &[
                            ("name", string()),
                            ("description", string()),
                            ("type", r("SessionType")),
                            ("project", nullable(string())),
                            ("tags", array(string())),
                        ],
                    ),
                ),
                ("pinned_node", string()),
                ("branch", nullable(string())),
                ("checkpoint", nullable(string())),
                ("expires_at", ts()),
                ("views", int()),
                ("max_views", nullable(int())),
                (
                    "conversation",
                    array(obj(
                        &["id", "kind", "author", "content", "created_at"],
                        &[
                            ("id", string()),
                            ("kind", r("NodeKind")),
                            ("author", nullable(text("`Author xxxxxx`, stable per link"))),
                            ("content", string()),
                            ("created_at", ts()),
                            ("tool", text("tool calls and results: the tool")),
                            ("brief", text("tool results: the text, or why it failed")),
                        ],
                    )),
                ),
                (
                    "older",
                    nullable(text("pass as `before` for the page before")),
                ),
                ("discoveries", array(r("Discovery"))),
                ("links", array(r("Link"))),
                ("materials", array(r("Material"))),
                ("hypotheses", array(r("Hypothesis"))),
            ],
        ),
    );
    put(
        "SearchPage",
        obj(
            &["items", "next_cursor", "fuzzy"],
            &[
                (
                    "items",
                    array(obj(
                        &["session_id", "session_name", "score", "hits"],
                        &[
                            ("session_id", string()),
                            ("session_name", string()),
                            ("score", number()),
                            (
                                "hits",
                                array(obj(
                                    &["node_id", "kind", "snippet", "score", "branches"],
                                    &[
                                        ("node_id", nullable(string())),
                                        ("kind", string()),
                                        ("snippet", text("HTML-escaped, matches in <b>")),
                                        ("score", number()),
                                        ("created_at", nullable(string())),
                                        ("branches", array(string())),
                                    ],
                                )),
                            ),
                        ],
                    )),
                ),
                ("next_cursor", nullable(string())),
                (
                    "fuzzy",
                    doc("boolean", "no exact match: typo-tolerant results"),
                ),
            ],
        ),
    );
    Value::Object(s)
}

/// The state events, tagged by `kind`.
fn state_event() -> Value {
    let kind = |k: &str| json!({"const": k});
    let ev = |k: &str, required: &[&str], props: &[(&str, Value)]| {
        let mut all = vec![("kind", kind(k))];
        all.extend(props.iter().cloned());
        let mut req = vec!["kind"];
        req.extend(required);
        obj(&req, &all)
    };
    json!({"oneOf": [
        ev("material", &["formula"], &[("formula", string()), ("data", any())]),
        ev("discovery", &["type", "description"], &[
            ("id", string()), ("type", string()), ("description", string()),
            ("materials", array(string())), ("evidence", array(text("node id"))),
            ("confidence", json!({"type": "number", "minimum": 0, "maximum": 1})),
            ("source", enumeration(&["manual", "auto"])),
        ]),
        ev("discovery_link", &["from", "to", "relationship"], &[
            ("from", string()), ("to", string()),
            ("relationship", text("supports, contradicts, refines, extends, derives_from, related_to")),
            ("notes", string()),
        ]),
        ev("hypothesis", &["statement"], &[
            ("id", string()), ("statement", string()),
            ("status", enumeration(&["open", "supported", "refuted"])),
        ]),
        ev("task", &["description"], &[
            ("id", string()), ("description", string()),
            ("status", enumeration(&["pending", "in_progress", "done", "cancelled"])),
        ]),
        ev("context_pin", &["key", "value"], &[("key", string()), ("value", any())]),
        ev("context_clear", &[], &[("key", text("absent: clear every pin"))]),
        ev("focus", &[], &[("material", string()), ("topic", string())]),
        ev("tool_state", &["tool", "state"], &[("tool", string()), ("state", any())]),
    ], "discriminator": {"propertyName": "kind"}})
}
