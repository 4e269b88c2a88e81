//! `user_memory`: the researcher's memory across sessions, for when they ask the agent to
//! remember something ("remember that I work at 1 atm"), to say what it remembers, or to forget
//! an entry. The entries belong to the researcher (never the session), so every session of
//! theirs sees them and nobody else does; the tool call and result are recorded on the session
//! like any other.

use futures::future::BoxFuture;
use kiln_session::{MemoryInput, MemorySource};
use serde_json::{Value, json};

use crate::relevance;
use crate::tool::{Tool, ToolContext, ToolError, ToolOutput, only_keys, opt_str_arg, str_arg};

/// The user memory tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserMemory;

/// The tool's name.
pub const NAME: &str = "user_memory";

fn session_error(e: kiln_session::Error) -> ToolError {
    match e.kind {
        kiln_types::ErrorKind::BadRequest => ToolError::InvalidArguments(e.message),
        kiln_types::ErrorKind::NotFound => ToolError::InvalidArguments(e.message),
        _ => ToolError::Failed(e.message),
    }
}

impl Tool for UserMemory {
    fn name(&self) -> &str {
        NAME
    }

    fn description(&self) -> &str {
        "The researcher's memory across all their sessions (notes and preferences such as \
         \"I work at 1 atm unless I say otherwise\"). Use action \"remember\" only when they \
         ask you to remember something, \"list\" to say what is remembered, \"forget\" with the \
         entry's id or words to delete one."
    }

    fn writes(&self) -> bool {
        false
    }

    fn schema(&self) -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["action"],
            "properties": {
                "action": {"type": "string", "enum": ["remember", "list", "forget"]},
                "content": {"type": "string", "description": "remember: the text to keep; forget: words of the entry"},
                "kind": {"type": "string", "enum": ["note", "preference"]},
                "id": {"type": "string", "description": "forget: the entry's id"}
            }
        })
    }

    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            only_keys(&args, &["action", "content", "kind", "id"])?;
            let m = &ctx.manager;
            match str_arg(&args, "action")? {
                "remember" => {
                    let input = MemoryInput {
                        content: str_arg(&args, "content")?.to_owned(),
                        kind: opt_str_arg(&args, "kind")?.map(str::to_owned),
                    };
                    let saved = m
                        .remember(
                            &ctx.caller,
                            &input,
                            MemorySource::Agent {
                                session: &ctx.session,
                            },
                        )
                        .await
                        .map_err(session_error)?;
                    Ok(ToolOutput::new(
                        format!(
                            "Saved to your memory ({}): \"{}\". Every session of yours will \
                             see it; edit or delete it with /memory or on the settings page.",
                            saved.kind, saved.content
                        ),
                        json!({"entry": saved}),
                    ))
                }
                "list" => {
                    let all = m.memory(&ctx.caller).await.map_err(session_error)?;
                    let text = if all.is_empty() {
                        "Your memory is empty. Say \"remember that …\" to keep a note or \
                         preference for all your sessions."
                            .to_owned()
                    } else {
                        let lines: Vec<String> = all
                            .iter()
                            .map(|e| format!("- ({}) {}", e.kind, e.content))
                            .collect();
                        format!("Your memory ({} entries):\n{}", all.len(), lines.join("\n"))
                    };
                    Ok(ToolOutput::new(text, json!({"entries": all})))
                }
                "forget" => {
                    let all = m.memory(&ctx.caller).await.map_err(session_error)?;
                    let entry = match (opt_str_arg(&args, "id")?, opt_str_arg(&args, "content")?) {
                        (Some(id), _) => all.iter().find(|e| e.id == id),
                        (None, Some(words)) => {
                            // The entry sharing the most of the words, if it shares any.
                            let q = relevance::terms(words);
                            all.iter()
                                .map(|e| (relevance::score(&q, &e.content), e))
                                .filter(|(s, _)| *s > 0.0)
                                .max_by(|a, b| a.0.total_cmp(&b.0))
                                .map(|(_, e)| e)
                        }
                        (None, None) => {
                            return Err(ToolError::InvalidArguments(
                                "forget needs the entry's `id` or some of its words in `content`"
                                    .into(),
                            ));
                        }
                    };
                    let Some(entry) = entry else {
                        return Err(ToolError::InvalidArguments(
                            "no entry of your memory matches that".into(),
                        ));
                    };
                    m.forget(&ctx.caller, &entry.id)
                        .await
                        .map_err(session_error)?;
                    Ok(ToolOutput::new(
                        format!("Removed from your memory: \"{}\".", entry.content),
                        json!({"forgotten": entry}),
                    ))
                }
                other => Err(ToolError::InvalidArguments(format!(
                    "unknown action `{other}`: use remember, list or forget"
                ))),
            }
        })
    }
}
