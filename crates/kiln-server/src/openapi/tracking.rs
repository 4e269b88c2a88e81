//! The experiment-tracking routes of the document (projects and folders, write protection,
//! the notebook resource) and their schemas, kept apart from the rest of the document.

use serde_json::{Value, json};

use super::Op;
use super::schemas::{array, doc, obj, r, strict, string, tags, text};

/// A folder path as the routes take it.
fn folder() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 1000, "pattern": "^/",
           "description": "a folder path such as `/experiments/2026/jan` (`/` is the top; at \
            most 16 segments of 1-100 bytes, no `.` or `..`)"})
}

pub(super) fn schemas() -> Vec<(&'static str, Value)> {
    vec![
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
        .query("folder", folder(), false)
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
    ]
}
