//! `session_search`: finds earlier messages, tool results and findings on the current branch,
//! through the same full-text search as `GET /v1/search` (kiln-search), limited to this session
//! and to the nodes this branch's path reaches.

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
         hypotheses, materials) for words; returns the best matches with their node ids."
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
                "limit": {"type": "integer", "minimum": 1, "maximum": 50}
            }
        })
    }

    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            only_keys(&args, &["query", "limit"])?;
            let query = str_arg(&args, "query")?;
            let limit = match args.get("limit") {
                None | Some(Value::Null) => 10,
                Some(v) => v.as_u64().filter(|n| (1..=50).contains(n)).ok_or_else(|| {
                    ToolError::InvalidArguments("`limit` must be an integer from 1 to 50".into())
                })? as usize,
            };
            let params = kiln_session::SearchParams {
                q: query.to_string(),
                session: Some(ctx.session.clone()),
                per_session: Some(20),
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
            let mut hits: Vec<(f64, Value)> = page
                .items
                .into_iter()
                .flat_map(|s| s.hits)
                .filter(|h| h.node_id.is_none() || h.branches.contains(&ctx.branch))
                .map(|h| {
                    let score = f64::from(h.score);
                    let text = snippet(&kiln_session::snippet_text(&h.snippet, "", ""));
                    (
                        score,
                        json!({"kind": h.kind, "node": h.node_id, "score": score,
                                   "at": h.created_at, "text": text}),
                    )
                })
                .collect();
            hits.sort_by(|a, b| b.0.total_cmp(&a.0));
            let total = hits.len();
            hits.truncate(limit);
            let text = if hits.is_empty() {
                format!("No match for \"{query}\" on branch {}.", ctx.branch)
            } else {
                let lines: Vec<String> = hits
                    .iter()
                    .map(|(_, h)| {
                        format!(
                            "- [{}] {}",
                            h["kind"].as_str().unwrap_or(""),
                            h["text"].as_str().unwrap_or("")
                        )
                    })
                    .collect();
                format!(
                    "{total} match(es) for \"{query}\" on branch {}; the best:\n{}",
                    ctx.branch,
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
