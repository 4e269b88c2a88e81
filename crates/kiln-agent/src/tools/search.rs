//! `session_search`: finds earlier messages, tool results and findings on the current branch.
//! A lexical scan of the branch (newest first, bounded) and its research state; the tantivy
//! index of issue #5 replaces the scan behind the same arguments.

use futures::future::BoxFuture;
use kiln_types::NodeKind;
use serde_json::{Value, json};

use crate::relevance::{score, terms};
use crate::tool::{Tool, ToolContext, ToolError, ToolOutput, clip, only_keys, str_arg};

/// How many nodes of the branch are scanned, newest first.
const SCAN_LIMIT: usize = 5_000;

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
            let q = terms(query);
            if q.is_empty() {
                return Err(ToolError::InvalidArguments(
                    "the query has no searchable words".into(),
                ));
            }
            let mut hits: Vec<(f64, Value)> = Vec::new();
            for d in &ctx.state.discoveries {
                let s = score(
                    &q,
                    &format!(
                        "{} {} {}",
                        d.discovery_type,
                        d.description,
                        d.materials.join(" ")
                    ),
                );
                if s > 0.0 {
                    hits.push((s, json!({"kind": "discovery", "id": d.id, "node": d.node, "score": s, "text": snippet(&d.description)})));
                }
            }
            for h in &ctx.state.hypotheses {
                let s = score(&q, &h.statement);
                if s > 0.0 {
                    hits.push((s, json!({"kind": "hypothesis", "id": h.id, "score": s, "text": snippet(&h.statement)})));
                }
            }
            for m in &ctx.state.materials {
                let s = score(&q, &m.formula);
                if s > 0.0 {
                    hits.push((s, json!({"kind": "material", "node": m.last_node, "score": s, "text": m.formula})));
                }
            }
            let mut before: Option<String> = None;
            let mut scanned = 0usize;
            while scanned < SCAN_LIMIT {
                let page = ctx
                    .manager
                    .messages(
                        &ctx.caller,
                        &ctx.session,
                        &ctx.branch,
                        Some(500),
                        before.as_deref(),
                    )
                    .await
                    .map_err(|e| ToolError::Failed(e.message.clone()))?;
                scanned += page.items.len();
                for n in &page.items {
                    if n.kind == NodeKind::ToolCall {
                        continue;
                    }
                    let s = score(&q, &n.content);
                    if s > 0.0 {
                        hits.push((s, json!({"kind": n.kind.as_str(), "node": n.id, "score": s, "at": n.created_at, "text": snippet(&n.content)})));
                    }
                }
                match page.next_cursor {
                    Some(c) => before = Some(c),
                    None => break,
                }
            }
            // Best first; among equals, the order found (findings first, then newest nodes).
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
                json!({"query": query, "total": total, "scanned_nodes": scanned, "results": results}),
            ))
        })
    }
}
