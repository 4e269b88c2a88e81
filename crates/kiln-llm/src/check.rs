//! Checking a model server before relying on it: one tool-calling round trip that says, step by
//! step and in words, what worked (the server answered, the model exists, it called a tool, it
//! answered after the tool result); and the bounded probe for a local Ollama server.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::Error;
use crate::model::ChatModel;
use crate::provider::{OpenAiProvider, ProviderConfig};
use crate::types::{ChatMessage, ChatRequest, ToolCall, ToolSpec};

/// The tool the check asks the model to call.
const ECHO_TOOL: &str = "kiln_echo";
/// The word it is asked to pass, and must pass back.
const ECHO_WORD: &str = "kiln";

/// One step of a connection check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckStep {
    /// What was checked, in words ("the server answered").
    pub step: &'static str,
    /// `Some(true)` worked, `Some(false)` failed, `None` not tried (an earlier step failed).
    pub ok: Option<bool>,
    /// What happened, in words.
    pub detail: String,
}

/// What a connection check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionReport {
    /// The base URL and model checked.
    pub base_url: String,
    pub model: String,
    /// The steps, in order.
    pub steps: Vec<CheckStep>,
    /// Whether every step worked.
    pub ok: bool,
}

const SERVER: &str = "the server answered";
const MODEL: &str = "the model exists";
const TOOL: &str = "the model called a tool";
const ANSWER: &str = "the model answered after the tool result";

/// Runs the check against `config` (no retries; `timeout_secs` per request). Never fails: every
/// problem is a step that did not work. No detail carries the API key.
pub async fn check_connection(config: &ProviderConfig) -> ConnectionReport {
    let key = config.resolved_api_key();
    let mut report = ConnectionReport {
        base_url: config.resolved_base_url().unwrap_or_default(),
        model: config.model.trim().to_owned(),
        steps: [SERVER, MODEL, TOOL, ANSWER]
            .into_iter()
            .map(|step| CheckStep {
                step,
                ok: None,
                detail: "not tried: an earlier step failed".into(),
            })
            .collect(),
        ok: false,
    };
    let mut set = |i: usize, ok: bool, detail: String| {
        let detail = match &key {
            Some(key) => detail.replace(key.expose(), "[redacted]"),
            None => detail,
        };
        report.steps[i].ok = Some(ok);
        report.steps[i].detail = detail;
    };
    let config = ProviderConfig {
        max_retries: 0,
        ..config.clone()
    };
    let provider = match OpenAiProvider::new(&config) {
        Ok(p) => p,
        Err(e) => {
            set(0, false, format!("the settings are not usable: {e}"));
            return report;
        }
    };
    // The model list: most servers have one (OpenAI, Ollama, vLLM, llama.cpp); a server without
    // it is judged by the chat call alone.
    let mut model_listed = false;
    let mut available = None;
    match list_models(&config).await {
        Ok(ids) => {
            set(0, true, format!("it lists {} model(s)", ids.len()));
            if ids.iter().any(|id| *id == config.model.trim()) {
                model_listed = true;
                set(1, true, format!("`{}` is among them", config.model.trim()));
            } else {
                let some: Vec<&str> = ids.iter().take(8).map(String::as_str).collect();
                let some = if some.is_empty() {
                    "none".to_owned()
                } else {
                    some.join(", ")
                };
                set(
                    1,
                    false,
                    format!(
                        "`{}` is not among them; the server has: {some}",
                        config.model.trim()
                    ),
                );
                available = Some(some);
            }
        }
        Err(ListError::Unreachable(e)) => {
            let url = config.resolved_base_url().unwrap_or_default();
            set(0, false, format!("no answer from {url}: {e}"));
            return report;
        }
        Err(ListError::Status(status)) => {
            set(
                0,
                true,
                format!("it answered (its model list gave HTTP {status})"),
            );
        }
    }
    let tools = vec![ToolSpec {
        name: ECHO_TOOL.into(),
        description: "Repeats a word back. Used to test that tool calls work.".into(),
        parameters: json!({
            "type": "object",
            "properties": {"word": {"type": "string", "description": "The word to repeat."}},
            "required": ["word"]
        }),
    }];
    let mut messages = vec![
        ChatMessage::system("You are being tested. Follow the instruction exactly."),
        ChatMessage::user(format!(
            "Call the {ECHO_TOOL} tool with word set to \"{ECHO_WORD}\", then, after its \
             result, reply with one short sentence."
        )),
    ];
    let first = provider
        .complete(ChatRequest::new(messages.clone()).with_tools(tools.clone()))
        .await;
    let first = match first {
        Ok(r) => r,
        Err(e) => {
            let (i, mut detail) = chat_failure(&e, &config.model);
            if let (1, Some(some)) = (i, &available) {
                detail.push_str(&format!("; the server has: {some}"));
            }
            set(i, false, detail);
            if i == 2 && !model_listed {
                set(1, true, "the server took a chat request for it".into());
            }
            return report;
        }
    };
    if !model_listed {
        set(
            1,
            true,
            format!("it answered a chat request as `{}`", first.model),
        );
    }
    let Some(call) = first.tool_calls.first().cloned() else {
        let said = first.content.unwrap_or_default();
        set(
            2,
            false,
            format!(
                "it answered in text instead of calling the tool (the model may not support \
                 tool calls): {}",
                clip(&said)
            ),
        );
        return report;
    };
    let args: Value = crate::parse_arguments(&call.arguments)
        .map(|(v, _)| v)
        .unwrap_or(Value::Null);
    if call.name != ECHO_TOOL || args["word"] != ECHO_WORD {
        set(
            2,
            false,
            format!(
                "it called `{}` with {} instead of {ECHO_TOOL} with word \"{ECHO_WORD}\"",
                call.name,
                clip(&call.arguments)
            ),
        );
        return report;
    }
    set(
        2,
        true,
        format!("it called {ECHO_TOOL} with {}", clip(&call.arguments)),
    );
    messages.push(ChatMessage::assistant_tool_calls(
        first.content.clone(),
        vec![ToolCall {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
        }],
    ));
    messages.push(ChatMessage::tool(
        call.id,
        json!({"ok": true, "text": ECHO_WORD}).to_string(),
    ));
    match provider
        .complete(ChatRequest::new(messages).with_tools(tools))
        .await
    {
        Ok(r) => match r.content.filter(|t| !t.trim().is_empty()) {
            Some(text) => set(3, true, format!("it said: {}", clip(&text))),
            None if !r.tool_calls.is_empty() => set(
                3,
                false,
                "it called a tool again instead of answering".into(),
            ),
            None => set(3, false, "its answer was empty".into()),
        },
        Err(e) => set(3, false, chat_failure(&e, &config.model).1),
    }
    report.ok = report.steps.iter().all(|s| s.ok == Some(true));
    report
}

/// Which step a failed chat call fails, and why in words.
fn chat_failure(e: &Error, model: &str) -> (usize, String) {
    match e {
        Error::Transport(_) | Error::Timeout(_) => (0, format!("no answer: {e}")),
        Error::Provider { status: 404, .. } => (
            1,
            format!("the server does not know the model `{}`: {e}", model.trim()),
        ),
        Error::Provider {
            status: 401 | 403, ..
        } => (0, format!("the server refused the API key: {e}")),
        _ => (2, format!("the chat request failed: {e}")),
    }
}

fn clip(text: &str) -> String {
    const MAX: usize = 200;
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

enum ListError {
    Unreachable(String),
    Status(u16),
}

/// `GET {base}/models`: the ids listed.
async fn list_models(config: &ProviderConfig) -> Result<Vec<String>, ListError> {
    let base = config
        .resolved_base_url()
        .map_err(|e| ListError::Unreachable(e.to_string()))?;
    let client = openai_reqwest::Client::builder()
        .timeout(config.timeout())
        .build()
        .map_err(|e| ListError::Unreachable(e.to_string()))?;
    let mut request = client.get(format!("{base}/models"));
    if let Some(key) = config.resolved_api_key() {
        request = request.bearer_auth(key.expose());
    }
    let response = request
        .send()
        .await
        .map_err(|e| ListError::Unreachable(without_url(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(ListError::Status(status.as_u16()));
    }
    let body: Value = response
        .json()
        .await
        .map_err(|_| ListError::Status(status.as_u16()))?;
    Ok(body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect())
}

/// A reqwest error in words (its URL is already in the report).
fn without_url(e: &openai_reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut cause = String::new();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind} ({cause})")
    }
}

/// Asks `addr` (`host:port`) whether an Ollama server answers there, within `within`; returns
/// the models it has (possibly none), or `None` when nothing answers like Ollama.
pub async fn probe_ollama(addr: &str, within: Duration) -> Option<Vec<String>> {
    let client = openai_reqwest::Client::builder()
        .timeout(within)
        .connect_timeout(within)
        .build()
        .ok()?;
    let response = tokio::time::timeout(within, async {
        let response = client
            .get(format!("http://{addr}/api/tags"))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json::<Value>().await.ok()
    })
    .await
    .ok()??;
    let models = response.get("models")?.as_array()?;
    Some(
        models
            .iter()
            .filter_map(|m| m["name"].as_str().or(m["model"].as_str()))
            .map(str::to_owned)
            .collect(),
    )
}
