//! `session_search`: finds earlier messages, tool results and findings on the current branch,
//! through the same full-text search as `GET /v1/search` (kiln-search), limited to this session
//! and to the nodes this branch's path reaches — or, with `scope: "all"`, across every session
//! the caller can read (the same access rules as `GET /v1/search`).

use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::tool::{Tool, ToolContext, ToolError, ToolOutput, clip, only_keys, str_arg};

/// The session search tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionSearch;

/// A hit's text as shown: trimmed, at most 240 characters.
fn snippet(text: &str) -> String {
    clip(text.trim(), 240)
}

impl Tool for SessionSearch {
    fn name(&self) -> &str {
        "session_search"
    }

    fn description(&self) -> &str {
        "Search this session's branch (messages, tool results, summaries, discoveries, \
         hypotheses, materials) for words, or with scope \"all\" every session the researcher \
         can read; returns the best matches with their node ids."
    }

    fn writes(&self) -> bool {
        false
    }

    fn schema(&self) -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["query"],
            "properties": {
                "query": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 50},
                "scope": {"type": "string", "enum": ["session", "all"], "description": "session (default): this branch of this session; all: every session the researcher can read"}
            }
        })
    }

    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            only_keys(&args, &["query", "limit", "scope"])?;
            let everywhere = match args.get("scope") {
                None | Some(Value::Null) => false,
                Some(v) => match v.as_str() {
                    Some("session") => false,
                    Some("all") => true,
                    _ => {
                        return Err(ToolError::InvalidArguments(
                            "`scope` must be \"session\" or \"all\"".into(),
                        ));
                    }
                },
            };
            let query = str_arg(&args, "query")?;
            let limit = match args.get("limit") {
                None | Some(Value::Null) => 10,
                Some(v) => v.as_u64().filter(|n| (1..=50).contains(n)).ok_or_else(|| {
                    ToolError::InvalidArguments("`limit` must be an integer from 1 to 50".into())
                })? as usize,
            };
            let params = kiln_session::SearchParams {
                q: query.to_string(),
                session: (!everywhere).then(|| ctx.session.clone()),
                per_session: Some(if everywhere { 5 } else { 20 }),
                ..Default::default()
            };
            let page = ctx
                .manager
                .search_sessions(&ctx.caller, params)
                .await
                .map_err(|e| match e.kind {
                    kiln_types::ErrorKind::BadRequest => ToolError::InvalidArguments(e.message),
                    _ => ToolError::Failed(e.message),
                })?;
            // Hits on this branch's path (a node other branches reach is on it too), and the
            // session's own name and description.
            // In this session: hits on this branch's path (a node other branches reach is on
            // it too), and the session's own name and description. Everywhere: every hit.
            let mut hits: Vec<(f64, Value)> = page
                .items
                .into_iter()
                .flat_map(|s| {
                    let (id, name) = (s.session_id, s.session_name);
                    s.hits
                        .into_iter()
                        .map(move |h| (id.clone(), name.clone(), h))
                })
                .filter(|(_, _, h)| {
                    everywhere || h.node_id.is_none() || h.branches.contains(&ctx.branch)
                })
                .map(|(session, name, h)| {
                    let score = f64::from(h.score);
                    let text = snippet(&kiln_session::snippet_text(&h.snippet, "", ""));
                    (
                        score,
                        json!({"kind": h.kind, "node": h.node_id, "score": score,
                               "at": h.created_at, "text": text,
                               "session": session, "session_name": name}),
                    )
                })
                .collect();
            hits.sort_by(|a, b| b.0.total_cmp(&a.0));
            let total = hits.len();
            hits.truncate(limit);
            let place = if everywhere {
                "in your sessions".to_owned()
            } else {
                format!("on branch {}", ctx.branch)
            };
            let text = if hits.is_empty() {
                format!("No match for \"{query}\" {place}.")
            } else {
                let lines: Vec<String> = hits
                    .iter()
                    .map(|(_, h)| {
                        let kind = h["kind"].as_str().unwrap_or("");
                        let text = h["text"].as_str().unwrap_or("");
                        match h["session_name"].as_str().filter(|_| everywhere) {
                            Some(name) => format!("- {name} [{kind}] {text}"),
                            None => format!("- [{kind}] {text}"),
                        }
                    })
                    .collect();
                format!(
                    "{total} match(es) for \"{query}\" {place}; the best:\n{}",
                    lines.join("\n")
                )
            };
            let results: Vec<Value> = hits.into_iter().map(|(_, h)| h).collect();
            Ok(ToolOutput::new(
                text,
                json!({"query": query, "total": total, "results": results}),
            ))
        })
    }
}
