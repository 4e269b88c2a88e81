//! Kiln's MCP resources (the sessions a caller can read, each with its branches, the research
//! state at a branch head and the Markdown report) and prompts (the session templates).

use kiln_agent::Agent;
use kiln_session::{Caller, Error, ListQuery, Result};
use rmcp::model::{
    GetPromptResult, Prompt, PromptArgument, PromptMessage, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, Role,
};
use serde_json::{Map, Value};

const JSON: &str = "application/json";
const MARKDOWN: &str = "text/markdown";
/// Sessions listed as resources (the newest; the templates reach the others by id).
const LISTED: u32 = 100;

/// What a `kiln://` URI names.
#[derive(Debug, PartialEq)]
enum Uri<'a> {
    Sessions,
    Session(&'a str),
    Branches(&'a str),
    State(&'a str, &'a str),
    Report(&'a str),
}

fn parse(uri: &str) -> Option<Uri<'_>> {
    let rest = uri.strip_prefix("kiln://sessions")?;
    if rest.is_empty() || rest == "/" {
        return Some(Uri::Sessions);
    }
    let rest = rest.strip_prefix('/')?;
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if id.is_empty() {
        return None;
    }
    match tail {
        "" => Some(Uri::Session(id)),
        "branches" => Some(Uri::Branches(id)),
        "report" => Some(Uri::Report(id)),
        t => {
            let branch = t.strip_prefix("branches/")?.strip_suffix("/state")?;
            (!branch.is_empty()).then_some(Uri::State(id, branch))
        }
    }
}

fn json_text(uri: &str, v: &impl serde::Serialize) -> Result<ReadResourceResult> {
    let text =
        serde_json::to_string_pretty(v).map_err(|e| Error::internal(format!("json: {e}")))?;
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type(JSON),
    ]))
}

/// The sessions index and, for the newest sessions, each one's resources.
pub(crate) async fn list(agent: &Agent, caller: &Caller) -> Result<Vec<Resource>> {
    let page = agent
        .manager()
        .list_sessions(
            caller,
            ListQuery {
                limit: Some(LISTED),
                ..Default::default()
            },
        )
        .await?;
    let mut out = vec![
        Resource::new("kiln://sessions", "sessions")
            .with_description("The sessions you can read, newest first")
            .with_mime_type(JSON),
    ];
    for s in page.items {
        let base = format!("kiln://sessions/{}", s.id);
        out.push(
            Resource::new(&base, format!("{} (session)", s.name))
                .with_description(format!("Session {}: settings, status, tags", s.id))
                .with_mime_type(JSON),
        );
        out.push(
            Resource::new(format!("{base}/branches"), format!("{} (branches)", s.name))
                .with_mime_type(JSON),
        );
        out.push(
            Resource::new(
                format!("{base}/branches/{}/state", s.default_branch),
                format!("{} (research state on {})", s.name, s.default_branch),
            )
            .with_mime_type(JSON),
        );
        out.push(
            Resource::new(format!("{base}/report"), format!("{} (report)", s.name))
                .with_description("The session as a Markdown report")
                .with_mime_type(MARKDOWN),
        );
    }
    Ok(out)
}

/// The URI shapes, for sessions the list leaves out and for other branches.
pub(crate) fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("kiln://sessions/{session}", "session").with_mime_type(JSON),
        ResourceTemplate::new("kiln://sessions/{session}/branches", "branches")
            .with_mime_type(JSON),
        ResourceTemplate::new(
            "kiln://sessions/{session}/branches/{branch}/state",
            "research state",
        )
        .with_description("Materials, discoveries, hypotheses, tasks, pins, focus, tool states")
        .with_mime_type(JSON),
        ResourceTemplate::new("kiln://sessions/{session}/report", "report")
            .with_mime_type(MARKDOWN),
    ]
}

/// Reads one resource, with the caller's access.
pub(crate) async fn read(agent: &Agent, caller: &Caller, uri: &str) -> Result<ReadResourceResult> {
    let mgr = agent.manager();
    match parse(uri) {
        None => Err(Error::not_found(format!(
            "no resource `{}` (see resources/templates/list)",
            kiln_types::clip(uri, 200)
        ))),
        Some(Uri::Sessions) => json_text(
            uri,
            &mgr.list_sessions(
                caller,
                ListQuery {
                    limit: Some(200),
                    ..Default::default()
                },
            )
            .await?,
        ),
        Some(Uri::Session(id)) => json_text(uri, &mgr.session(caller, id).await?),
        Some(Uri::Branches(id)) => json_text(uri, &mgr.branches(caller, id, false).await?),
        Some(Uri::State(id, branch)) => json_text(uri, &mgr.state(caller, id, branch, None).await?),
        Some(Uri::Report(id)) => {
            let text = mgr.export_markdown(caller, id).await?;
            Ok(ReadResourceResult::new(vec![
                ResourceContents::text(text, uri).with_mime_type(MARKDOWN),
            ]))
        }
    }
}

/// The templates the caller can see, as prompts.
pub(crate) async fn prompts(agent: &Agent, caller: &Caller) -> Result<Vec<Prompt>> {
    let templates = agent.manager().templates(caller).await?;
    Ok(templates
        .into_iter()
        .map(|t| {
            let args: Vec<PromptArgument> = t
                .body
                .parameters
                .iter()
                .map(|p| {
                    PromptArgument::new(&p.name)
                        .with_description(&p.description)
                        .with_required(p.required && p.default.is_none())
                })
                .collect();
            let description = format!(
                "Start a session from the template `{}`: {}",
                t.reference, t.body.description
            );
            Prompt::new(t.reference, Some(description), Some(args))
        })
        .collect())
}

/// One template as a prompt: what the session will hold, and the `create_session` call that
/// makes it.
pub(crate) async fn prompt(
    agent: &Agent,
    caller: &Caller,
    name: &str,
    args: Map<String, Value>,
) -> Result<GetPromptResult> {
    let t = agent.manager().template(caller, name).await?;
    let mut values = serde_json::Map::new();
    for (k, v) in args {
        let Some(p) = t.body.parameters.iter().find(|p| p.name == k) else {
            return Err(Error::bad_request(format!(
                "template `{name}` has no parameter `{k}`"
            )));
        };
        let v = match v {
            Value::String(s) => s,
            other => other.to_string(),
        };
        values.insert(p.name.clone(), Value::String(v));
    }
    if let Some(p) = t
        .body
        .parameters
        .iter()
        .find(|p| p.required && p.default.is_none() && !values.contains_key(&p.name))
    {
        return Err(Error::bad_request(format!(
            "template `{name}` needs the parameter `{}`",
            p.name
        )));
    }
    let fill = |text: &str| {
        let mut out = text.to_owned();
        for p in &t.body.parameters {
            let v = values
                .get(&p.name)
                .and_then(Value::as_str)
                .or(p.default.as_deref())
                .unwrap_or("");
            out = out.replace(&format!("{{{}}}", p.name), v);
        }
        out
    };
    let mut text = format!(
        "Start a Kiln research session from the template `{}`.\n\n{}\n\nCall the \
         `create_session` tool with {}.\n\nThe session will be called \"{}\".",
        t.reference,
        t.body.description,
        serde_json::json!({"template": t.reference, "parameters": values}),
        fill(&t.body.session_name),
    );
    if let Some(focus) = &t.body.focus {
        text.push_str(&format!("\nFocus: {}", fill(focus)));
    }
    for h in &t.body.hypotheses {
        text.push_str(&format!("\nHypothesis: {}", fill(h)));
    }
    for task in &t.body.tasks {
        text.push_str(&format!("\nTask: {}", fill(task)));
    }
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description(format!("Session template `{}`", t.reference)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_what_they_read() {
        let cases = [
            ("kiln://sessions", Some(Uri::Sessions)),
            ("kiln://sessions/abc", Some(Uri::Session("abc"))),
            ("kiln://sessions/abc/branches", Some(Uri::Branches("abc"))),
            (
                "kiln://sessions/abc/branches/main/state",
                Some(Uri::State("abc", "main")),
            ),
            (
                "kiln://sessions/abc/branches/idea/x/state",
                Some(Uri::State("abc", "idea/x")),
            ),
            ("kiln://sessions/abc/report", Some(Uri::Report("abc"))),
            ("kiln://sessions/abc/branches//state", None),
            ("kiln://sessions/abc/other", None),
            ("kiln://sessions//report", None),
            ("file:///etc/passwd", None),
            ("kiln://sessionsX", None),
        ];
        for (uri, want) in cases {
            assert_eq!(parse(uri), want, "{uri}");
        }
    }
}
