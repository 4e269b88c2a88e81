//! The experiment-tracking routes of the document (projects and folders, write protection,
//! the notebook resource) and their schemas, kept apart from the rest of the document.

use serde_json::{Value, json};

use super::Op;
use super::schemas::{
    any, array, doc, enumeration, int, map, nullable, number, obj, r, strict, string, tags, text,
};

const NB: &str = "/v1/sessions/{id}/branches/{b}/notebook";

/// A folder path as the routes take it.
fn folder() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 1000,
           "pattern": "^/[^\\u0000-\\u001f\\u007f-\\u009f]*$",
           "description": "a folder path such as `/experiments/2026/jan` (`/` is the top; at \
            most 16 segments of 1-100 bytes, no `.` or `..`)"})
}

pub(super) fn schemas() -> Vec<(&'static str, Value)> {
    let level = || enumeration(&["debug", "info", "warn", "error", "fatal"]);
    let point = || {
        json!({"type": "object", "minProperties": 1, "maxProperties": 32,
               "additionalProperties": {"type": "number"},
               "description": "field → finite number (`step`, `epoch`, `value`, …)"})
    };
    let field_stats = obj(
        &["count", "min", "max", "mean", "last"],
        &[
            ("count", int()),
            ("min", number()),
            ("max", number()),
            ("mean", number()),
            ("last", number()),
        ],
    );
    vec![
        (
            "NotebookSummary",
            obj(
                &[
                    "branch",
                    "log_lines",
                    "params",
                    "param_changes",
                    "tracks",
                    "files",
                ],
                &[
                    ("branch", string()),
                    ("log_lines", int()),
                    ("params", doc("integer", "top-level parameters")),
                    ("param_changes", int()),
                    ("tracks", array(r("NotebookTrack"))),
                    ("files", doc("integer", "files not deleted")),
                ],
            ),
        ),
        (
            "NotebookTrack",
            obj(
                &["name", "points", "batches"],
                &[("name", string()), ("points", int()), ("batches", int())],
            ),
        ),
        (
            "NotebookParams",
            obj(
                &["params"],
                &[(
                    "params",
                    doc("object", "nested, or with dotted keys when `flatten=true`"),
                )],
            ),
        ),
        (
            "NotebookParamChanges",
            obj(
                &["changes"],
                &[(
                    "changes",
                    array(obj(
                        &["at", "by", "key", "new"],
                        &[
                            ("at", text("RFC 3339 time, UTC")),
                            ("by", text("the user id who set it")),
                            ("key", text("the dotted key")),
                            (
                                "old",
                                json!({"description": "the value before; absent when new"}),
                            ),
                            ("new", any()),
                        ],
                    )),
                )],
            ),
        ),
        (
            "NotebookLogLine",
            obj(
                &["at", "level", "message"],
                &[
                    ("at", text("RFC 3339 time, UTC")),
                    ("level", level()),
                    ("message", string()),
                    ("metadata", json!({"type": "object"})),
                ],
            ),
        ),
        (
            "NotebookLogInput",
            strict(
                &["message"],
                &[
                    (
                        "message",
                        json!({"type": "string", "minLength": 1, "maxLength": 10_000}),
                    ),
                    ("level", level()),
                    (
                        "metadata",
                        json!({"type": "object", "description": "structured metadata, at most 16 KiB as JSON"}),
                    ),
                ],
            ),
        ),
        (
            "NotebookLogPage",
            obj(
                &["lines", "total", "offset", "next_offset"],
                &[
                    ("lines", array(r("NotebookLogLine"))),
                    ("total", doc("integer", "lines the filter keeps")),
                    ("offset", int()),
                    ("next_offset", nullable(int())),
                ],
            ),
        ),
        (
            "NotebookPoints",
            strict(
                &[],
                &[
                    (
                        "points",
                        json!({"type": "array", "items": point(), "minItems": 1,
                               "maxItems": 100_000, "description": "one batch (one node on the branch)"}),
                    ),
                    ("point", point()),
                ],
            ),
        ),
        (
            "NotebookTrackPage",
            obj(
                &["track", "total", "offset", "points", "next_offset"],
                &[
                    ("track", string()),
                    ("total", doc("integer", "points on the branch")),
                    ("offset", int()),
                    (
                        "points",
                        array(
                            json!({"type": "object", "additionalProperties": {"type": "number"},
                                     "description": "the point's fields and its `index`"}),
                        ),
                    ),
                    ("next_offset", nullable(int())),
                ],
            ),
        ),
        (
            "NotebookTrackStats",
            obj(
                &["track", "points", "batches", "fields"],
                &[
                    ("track", string()),
                    ("points", int()),
                    ("batches", int()),
                    ("fields", map(field_stats)),
                ],
            ),
        ),
        (
            "NotebookFile",
            obj(
                &["id", "name", "sha256", "bytes", "content_type", "at", "by"],
                &[
                    ("id", string()),
                    ("name", string()),
                    ("sha256", text("SHA-256 of the content, hex")),
                    ("bytes", int()),
                    ("content_type", string()),
                    ("at", text("RFC 3339 time, UTC")),
                    ("by", text("the user id who added it")),
                    ("deleted_at", text("RFC 3339 time, UTC")),
                    ("deleted_by", string()),
                ],
            ),
        ),
        (
            "PutProjectSession",
            strict(
                &[],
                &[
                    ("folder", folder()),
                    (
                        "description",
                        json!({"type": "string", "maxLength": 10_000}),
                    ),
                    ("tags", tags()),
                ],
            ),
        ),
        (
            "FoundSession",
            obj(
                &["session", "created", "duplicates"],
                &[
                    ("session", r("Session")),
                    (
                        "created",
                        doc("boolean", "made by this call (201) or found (200)"),
                    ),
                    (
                        "duplicates",
                        json!({"type": "array", "items": string(),
                               "description": "ids of other sessions of the same owner, \
                                project and name made before names were unique, oldest \
                                first; they keep working"}),
                    ),
                ],
            ),
        ),
        (
            "Project",
            obj(
                &["name", "sessions", "last_activity_at"],
                &[
                    ("name", string()),
                    ("sessions", doc("integer", "sessions of it the caller sees")),
                    ("last_activity_at", text("RFC 3339 time, UTC")),
                ],
            ),
        ),
        (
            "FolderTree",
            obj(
                &["path", "sessions", "folders"],
                &[
                    ("path", string()),
                    ("sessions", array(r("Session"))),
                    ("folders", array(r("FolderTree"))),
                ],
            ),
        ),
        (
            "ProjectTree",
            obj(
                &["project", "tree", "truncated"],
                &[
                    ("project", string()),
                    ("tree", r("FolderTree")),
                    (
                        "truncated",
                        doc("boolean", "the listing stopped at 1,000 sessions"),
                    ),
                ],
            ),
        ),
    ]
}

pub(super) fn operations() -> Vec<Op> {
    vec![
        Op::new(
            "GET",
            "/v1/projects",
            "projects",
            "The projects whose sessions the caller sees, with how many",
        )
        .ok(
            200,
            obj(
                &["items", "next_cursor"],
                &[
                    ("items", array(r("Project"))),
                    ("next_cursor", json!({"type": "null"})),
                ],
            ),
        ),
        Op::new(
            "GET",
            "/v1/projects/{project}/sessions",
            "projects",
            "A project's sessions in a folder and below, as a tree of folders",
        )
        .query(
            "folder",
            json!({"type": "string", "maxLength": 1000,
                   "pattern": "^(/[^\\u0000-\\u001f\\u007f-\\u009f]*)?$",
                   "description": "a folder path such as `/experiments/2026/jan`; empty or `/`: \
                                   the whole project"}),
            false,
        )
        .ok(200, r("ProjectTree")),
        Op::new(
            "PUT",
            "/v1/projects/{project}/sessions/{name}",
            "projects",
            "Find the caller's session of this project and name, or make it (201) in the folder \
             given; names are unique per owner and project here, older duplicates are listed",
        )
        .optional_body(r("PutProjectSession"))
        .ok(200, r("FoundSession"))
        .also(201),
        Op::new(
            "POST",
            "/v1/sessions/{id}/protect",
            "sessions",
            "Write-protect a session (owner only): every write is 409 `session_protected` \
             until it is unprotected",
        )
        .ok(200, r("Session")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/unprotect",
            "sessions",
            "Lift a session's write protection (owner only)",
        )
        .ok(200, r("Session")),
        Op::new(
            "GET",
            NB,
            "notebook",
            "The branch's notebook at a glance: counts, tracks with their sizes (writes nothing)",
        )
        .ok(200, r("NotebookSummary")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/branches/{b}/notebook/params",
            "notebook",
            "Parameters, nested or flattened to dotted keys (writes nothing)",
        )
        .query("flatten", doc("boolean", "dotted keys (`model.lr`)"), false)
        .ok(200, r("NotebookParams")),
        Op::new(
            "PATCH",
            "/v1/sessions/{id}/branches/{b}/notebook/params",
            "notebook",
            "Set parameters: the body is merged in (objects key by key, dotted names nest); one \
             node on the branch, each changed leaf in the history",
        )
        .body(json!({"type": "object", "minProperties": 1}))
        .ok(200, r("ToolCallRecord")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/branches/{b}/notebook/params/history",
            "notebook",
            "Every parameter change on the branch: who, when, old → new (writes nothing)",
        )
        .ok(200, r("NotebookParamChanges")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/branches/{b}/notebook/logs",
            "notebook",
            "Log lines, oldest first, filtered by least level, time range and one metadata \
             key=value (writes nothing)",
        )
        .query(
            "level",
            enumeration(&["debug", "info", "warn", "error", "fatal"]),
            false,
        )
        .query(
            "since",
            json!({"anyOf": [{"type": "string", "format": "date-time"},
                             {"type": "string", "maxLength": 0}],
                   "description": "RFC 3339: lines at or after (empty: no bound)"}),
            false,
        )
        .query(
            "until",
            json!({"anyOf": [{"type": "string", "format": "date-time"},
                             {"type": "string", "maxLength": 0}],
                   "description": "RFC 3339: lines before (empty: no bound)"}),
            false,
        )
        .query(
            "meta",
            json!({"type": "string", "pattern": "^([^=]+=[\\s\\S]*)?$",
                   "description": "`key=value`: lines whose metadata has it"}),
            false,
        )
        .query(
            "offset",
            json!({"type": "integer", "minimum": 0, "maximum": 1_000_000_000_000_000_u64}),
            false,
        )
        .query(
            "limit",
            json!({"type": "integer", "minimum": 0, "maximum": 1_000_000_000_000_000_u64, "description": "at most 1000"}),
            false,
        )
        .ok(200, r("NotebookLogPage")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/branches/{b}/notebook/logs",
            "notebook",
            "Log a line with a level and structured metadata (one node on the branch)",
        )
        .body(r("NotebookLogInput"))
        .ok(200, r("ToolCallRecord")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/branches/{b}/notebook/tracks",
            "notebook",
            "The branch's metric tracks with their sizes (writes nothing)",
        )
        .ok(
            200,
            obj(&["items"], &[("items", array(r("NotebookTrack")))]),
        ),
        Op::new(
            "POST",
            "/v1/sessions/{id}/branches/{b}/notebook/tracks/{track}",
            "notebook",
            "Append one point or a batch (any numeric fields) to a track: one node on the \
             branch naming the stored batch",
        )
        .body(r("NotebookPoints"))
        .ok(200, r("ToolCallRecord")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/branches/{b}/notebook/tracks/{track}",
            "notebook",
            "A page of a track's points in the branch's order, by index (`offset`) and \
             optionally by step range (writes nothing)",
        )
        .query(
            "offset",
            json!({"type": "integer", "minimum": 0, "maximum": 1_000_000_000_000_000_u64}),
            false,
        )
        .query(
            "limit",
            json!({"type": "integer", "minimum": 0, "maximum": 1_000_000_000_000_000_u64, "description": "default 1000, at most 10000"}),
            false,
        )
        .query("step_min", number(), false)
        .query("step_max", number(), false)
        .ok(200, r("NotebookTrackPage")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/branches/{b}/notebook/tracks/{track}/stats",
            "notebook",
            "Count, min, max, mean and last of every field of a track (writes nothing)",
        )
        .ok(200, r("NotebookTrackStats")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/branches/{b}/notebook/files",
            "notebook",
            "The branch's files that are not deleted (writes nothing)",
        )
        .ok(200, obj(&["items"], &[("items", array(r("NotebookFile")))])),
        Op::new(
            "POST",
            "/v1/sessions/{id}/branches/{b}/notebook/files",
            "notebook",
            "Upload a file: the raw body, its Content-Type the file's; streamed to disk and \
             hashed, at most `[limits] max_file_mb`, counted in the quota; one node on the branch",
        )
        .query(
            "name",
            json!({"type": "string", "minLength": 1, "maxLength": 255}),
            true,
        )
        .text_body(
            "application/octet-stream",
            "the file's bytes (any media type; an empty body is an empty file)",
        )
        .body_may_be_empty()
        .ok(200, r("ToolCallRecord")),
        Op::new(
            "GET",
            "/v1/sessions/{id}/branches/{b}/notebook/files/{file}",
            "notebook",
            "Download a file, streamed, with the content type it was uploaded with and its \
             length",
        )
        .ok_as(
            "*/*",
            json!({"type": "string", "format": "binary"}),
        ),
        Op::new(
            "DELETE",
            "/v1/sessions/{id}/branches/{b}/notebook/files/{file}",
            "notebook",
            "Delete a file on the branch: the node records the deletion; the content is kept \
             until purged",
        )
        .ok(200, r("ToolCallRecord")),
        Op::new(
            "POST",
            "/v1/sessions/{id}/branches/{b}/notebook/files/{file}/purge",
            "notebook",
            "Purge a deleted file's content (the session's owner only): removed from the data \
             directory unless another session holds the same content; an audit entry; the \
             branch keeps the record and a download answers 410. 409 `file_not_deleted` \
             before a delete",
        )
        .ok(
            200,
            json!({"type": "object", "required": ["file", "removed"], "properties": {
                "file": {"type": "object"},
                "removed": {"type": "boolean",
                            "description": "false when another session holds the content"}}}),
        ),
    ]
}
