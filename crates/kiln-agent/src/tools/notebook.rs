//! `notebook`: a lab notebook on the branch (Dreamlake-style): log lines with a level and
//! metadata, nested parameters with their history, metric tracks (points in kiln-db, batches
//! named here), and files stored content-addressed under the data directory. The notebook is
//! one tool state, so it branches with the session and merges line by line, batch by batch.
//! The HTTP resource (`…/branches/{b}/notebook/…`) calls the same functions as these actions.

pub mod files;
pub mod logs;
pub mod params;
pub mod tracks;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use kiln_types::StateEvent;
use kiln_types::state::words::{self, ConflictWords};
use kiln_types::state::{Conflict, Resolution, Resolver, ToolMerge};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::tool::{
    Tool, ToolContext, ToolError, ToolOutput, ToolView, ViewChart, ViewTable, opt_str_arg, str_arg,
};

/// The tool's name.
pub const NAME: &str = "notebook";
/// Largest log line, in bytes.
const MAX_LINE: usize = 10_000;
/// Largest attachment, in bytes.
const MAX_ATTACHMENT: usize = 1024 * 1024;
use logs::LEVELS;
/// Largest metadata of a log line, as JSON.
const MAX_METADATA: usize = 16 * 1024;

/// One log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// When it was written (RFC 3339, UTC).
    pub at: String,
    /// debug, info, warn, error or fatal.
    pub level: String,
    /// The text.
    pub message: String,
    /// Structured metadata (an object), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, Value>>,
}

/// One point of a metric track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// The step (0, 1, 2 … by default).
    pub step: u64,
    /// The value.
    pub value: f64,
}

/// An attachment: the file lives at `attachments/<sha256[..2]>/<sha256>` in the data dir.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Attachment {
    /// The name given.
    pub name: String,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Media type (default text/plain).
    pub media_type: String,
}

/// The notebook as kept on the branch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NotebookState {
    /// Log lines, oldest first.
    pub log: Vec<LogLine>,
    /// Parameters by name.
    pub params: BTreeMap<String, Value>,
    /// Metric tracks by name.
    pub metrics: BTreeMap<String, Vec<MetricPoint>>,
    /// Attachments, in the order added.
    pub attachments: Vec<Attachment>,
    /// Every parameter leaf that changed, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub param_history: Vec<params::ParamChange>,
    /// Metric tracks by name: the stored batches this branch sees, in append order.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tracks: BTreeMap<String, Vec<tracks::BatchRef>>,
    /// Files, in the order added (deleted ones marked, not removed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<files::FileEntry>,
}

/// The notebook tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct Notebook;

/// Returns where an attachment with this digest is on this server's disk (on a shared store
/// a cache: read it through `SessionManager::content`).
pub fn attachment_path(data_dir: &Path, sha256: &str) -> PathBuf {
    kiln_session::files::content_path(data_dir, kiln_session::files::Content::Attachments, sha256)
}

pub(crate) fn bad(message: impl Into<String>) -> ToolError {
    ToolError::InvalidArguments(message.into())
}

fn load(ctx: &ToolContext) -> Result<NotebookState, ToolError> {
    from_state(ctx.tool_state(NAME))
}

/// The notebook in a branch's tool state (empty when the branch has none).
pub fn from_state(v: Option<&Value>) -> Result<NotebookState, ToolError> {
    match v {
        None => Ok(NotebookState::default()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| ToolError::Failed(format!("the stored notebook is unreadable: {e}"))),
    }
}

/// A non-negative integer argument, if given.
fn opt_u64(args: &Value, key: &str) -> Result<Option<u64>, ToolError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(format!("`{key}` must be a non-negative integer"))),
    }
}

/// A number argument, if given.
fn opt_f64(args: &Value, key: &str) -> Result<Option<f64>, ToolError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| bad(format!("`{key}` must be a number"))),
    }
}

/// The step range of a track read: both ends or neither (one end alone is open).
pub fn step_range(lo: Option<f64>, hi: Option<f64>) -> Option<(f64, f64)> {
    match (lo, hi) {
        (None, None) => None,
        (lo, hi) => Some((lo.unwrap_or(f64::MIN), hi.unwrap_or(f64::MAX))),
    }
}

/// The parameters, nested or with dotted keys.
pub fn get_params(nb: &NotebookState, flatten: bool) -> ToolOutput {
    let shown = if flatten {
        params::flatten(&nb.params)
    } else {
        nb.params.clone()
    };
    let text = if shown.is_empty() {
        "No parameters set.".to_owned()
    } else {
        shown
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    ToolOutput::new(text, json!({"params": shown}))
}

/// An upload's content from the tool's arguments: `content` (text) or `content_base64`.
fn file_content(args: &Value) -> Result<Vec<u8>, ToolError> {
    use base64::Engine;
    match (
        opt_str_arg(args, "content")?,
        opt_str_arg(args, "content_base64")?,
    ) {
        (Some(t), None) => Ok(t.as_bytes().to_vec()),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .map_err(|e| bad(format!("`content_base64` is not base64: {e}"))),
        _ => Err(bad("give `content` (text) or `content_base64`")),
    }
}

impl Tool for Notebook {
    fn expensive(&self) -> bool {
        false
    }

    fn name(&self) -> &str {
        NAME
    }

    fn description(&self) -> &str {
        "The session's lab notebook: log a line with a level and metadata (log) and read \
         the log filtered (read_log); set parameters, nested objects merged (set_params), read \
         them (get_params, flatten for dotted keys) and their history (param_history); append \
         points with any numeric fields to a metric track (append_track), read a range \
         (read_track) or its stats (track_stats); add a file (upload_file), list \
         (list_files) or delete one (delete_file); list everything (list). log_metric, \
         read_metric and attach are the older small tracks and text attachments."
    }

    fn schema(&self) -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["action"],
            "properties": {
                "action": {"type": "string", "enum": ["log", "log_lines", "read_log", "set_params", "get_params", "param_history", "append_track", "read_track", "track_stats", "upload_file", "record_file", "list_files", "delete_file", "log_metric", "read_metric", "attach", "list"]},
                "message": {"type": "string", "description": "log: the line"},
                "level": {"type": "string", "enum": LEVELS, "description": "log: default info; read_log: the least severe level kept"},
                "metadata": {"type": "object", "description": "log: structured metadata"},
                "lines": {"type": "array", "items": {"type": "object"}, "description": "log_lines: lines kept with their own times (an import): {at, level, message, metadata}"},
                "since": {"type": "string", "description": "read_log: RFC 3339, lines at or after"},
                "until": {"type": "string", "description": "read_log: RFC 3339, lines before"},
                "meta_key": {"type": "string", "description": "read_log: keep lines whose metadata has this key…"},
                "meta_value": {"type": "string", "description": "read_log: …with this value"},
                "params": {"type": "object", "description": "set_params: name → value; objects merge, dotted names nest"},
                "flatten": {"type": "boolean", "description": "get_params: dotted keys"},
                "name": {"type": "string", "description": "tracks: the track; files: the file name"},
                "points": {"type": "array", "items": {"type": "object"}, "description": "append_track: points, each field → number (step, epoch, value, …)"},
                "point": {"type": "object", "description": "append_track: one point"},
                "offset": {"type": "integer", "minimum": 0, "description": "read_track/read_log: first index"},
                "limit": {"type": "integer", "minimum": 1, "description": "read_track (≤ 10000) / read_log (≤ 1000)"},
                "step_min": {"type": "number", "description": "read_track: steps from"},
                "step_max": {"type": "number", "description": "read_track: steps to"},
                "id": {"type": "string", "description": "delete_file: the file's id"},
                "content_base64": {"type": "string", "description": "upload_file: the content (base64)"},
                "content_type": {"type": "string", "description": "upload_file: default application/octet-stream"},
                "sha256": {"type": "string", "description": "record_file: a stored upload's digest"},
                "bytes": {"type": "integer", "minimum": 0, "description": "record_file: its size"},
                "value": {"type": "number", "description": "log_metric: the value"},
                "step": {"type": "integer", "minimum": 0, "description": "log_metric: default next step"},
                "content": {"type": "string", "description": "attach / upload_file: the file's text"},
                "media_type": {"type": "string", "description": "attach: default text/plain"}
            }
        })
    }

    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let action = str_arg(&args, "action")?;
            let mut nb = load(ctx)?;
            let output = match action {
                "log" => {
                    let message = str_arg(&args, "message")?.trim().to_owned();
                    if message.len() > MAX_LINE {
                        return Err(bad(format!("`message` is longer than {MAX_LINE} bytes")));
                    }
                    let level = opt_str_arg(&args, "level")?.unwrap_or("info").to_owned();
                    logs::rank(&level)?;
                    let metadata = match args.get("metadata") {
                        None | Some(Value::Null) => None,
                        Some(Value::Object(m)) if m.is_empty() => None,
                        Some(Value::Object(m)) => {
                            if Value::Object(m.clone()).to_string().len() > MAX_METADATA {
                                return Err(bad("`metadata` is larger than 16 KiB"));
                            }
                            Some(m.clone())
                        }
                        Some(_) => return Err(bad("`metadata` must be an object")),
                    };
                    let line = LogLine {
                        at: kiln_db::now(),
                        level: level.clone(),
                        message: message.clone(),
                        metadata,
                    };
                    nb.log.push(line.clone());
                    ToolOutput::new(
                        format!("Logged to the notebook ({level}): {message}"),
                        json!({"line": line, "lines": nb.log.len()}),
                    )
                }
                "set_params" => {
                    let Some(params) = args.get("params").and_then(Value::as_object) else {
                        return Err(bad("`params` must be an object of name → value"));
                    };
                    let changes = params::set_nested(
                        &mut nb.params,
                        params,
                        &kiln_db::now(),
                        &ctx.caller.user_id,
                    )?;
                    let text = if changes.is_empty() {
                        "No parameter changed.".to_owned()
                    } else {
                        format!(
                            "Set {} parameter(s): {}",
                            changes.len(),
                            changes
                                .iter()
                                .map(|c| format!("{}={}", c.key, c.new))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    nb.param_history.extend(changes.iter().cloned());
                    ToolOutput::new(text, json!({"params": nb.params, "changes": changes}))
                }
                "get_params" => {
                    let flat = args
                        .get("flatten")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    return Ok(get_params(&nb, flat));
                }
                "param_history" => {
                    let text = format!("{} parameter change(s).", nb.param_history.len());
                    return Ok(ToolOutput::new(text, json!({"changes": nb.param_history})));
                }
                "log_lines" => {
                    let Some(lines) = args.get("lines").and_then(Value::as_array) else {
                        return Err(bad("`lines` must be an array of {at, level, message}"));
                    };
                    if lines.is_empty() || lines.len() > 10_000 {
                        return Err(bad("`lines` holds 1 to 10,000 lines"));
                    }
                    let mut added = Vec::with_capacity(lines.len());
                    for (i, l) in lines.iter().enumerate() {
                        let line =
                            logs::imported_line(l).map_err(|e| bad(format!("line {i}: {e}")))?;
                        added.push(line);
                    }
                    let n = added.len();
                    nb.log.extend(added);
                    nb.log.sort_by(|a, b| a.at.cmp(&b.at));
                    ToolOutput::new(
                        format!("Added {n} log line(s) with their own times."),
                        json!({"added": n, "lines": nb.log.len()}),
                    )
                }
                "read_log" => {
                    let meta = match (
                        opt_str_arg(&args, "meta_key")?,
                        opt_str_arg(&args, "meta_value")?,
                    ) {
                        (Some(k), Some(v)) => Some((k.to_owned(), v.to_owned())),
                        (None, None) => None,
                        _ => return Err(bad("give both `meta_key` and `meta_value`")),
                    };
                    let filter = logs::LogFilter {
                        level: opt_str_arg(&args, "level")?.map(str::to_owned),
                        since: opt_str_arg(&args, "since")?.map(str::to_owned),
                        until: opt_str_arg(&args, "until")?.map(str::to_owned),
                        meta,
                        offset: opt_u64(&args, "offset")?.unwrap_or(0) as usize,
                        limit: opt_u64(&args, "limit")?.map(|l| l as usize),
                    };
                    let v = logs::read(&nb.log, &filter)?;
                    let text = format!("{} matching log line(s).", v["total"]);
                    return Ok(ToolOutput::new(text, v));
                }
                "append_track" => {
                    let name = str_arg(&args, "name")?.to_owned();
                    let points: Vec<Value> = match (args.get("points"), args.get("point")) {
                        (Some(Value::Array(p)), None) => p.clone(),
                        (None, Some(p)) => vec![p.clone()],
                        _ => {
                            return Err(bad(
                                "give `points` (an array of objects) or one `point` (an object)",
                            ));
                        }
                    };
                    let batch = tracks::append(
                        &ctx.manager,
                        &ctx.caller,
                        &ctx.session,
                        &mut nb,
                        &name,
                        &points,
                    )
                    .await?;
                    let total: u64 = nb.tracks[&name].iter().map(|r| r.count).sum();
                    ToolOutput::new(
                        format!(
                            "Appended {} point(s) to track {name} ({total} in all).",
                            batch.count
                        ),
                        json!({"track": name, "batch": batch.batch, "count": batch.count, "total": total}),
                    )
                }
                "read_track" => {
                    let name = str_arg(&args, "name")?;
                    let range = tracks::TrackRange {
                        offset: opt_u64(&args, "offset")?.unwrap_or(0),
                        limit: opt_u64(&args, "limit")?,
                        steps: step_range(opt_f64(&args, "step_min")?, opt_f64(&args, "step_max")?),
                    };
                    let v = tracks::read(&ctx.manager, &ctx.caller, &ctx.session, &nb, name, range)
                        .await?;
                    let text = format!(
                        "{name}: {} of {} point(s) from index {}.",
                        v["points"].as_array().map_or(0, Vec::len),
                        v["total"],
                        v["offset"]
                    );
                    return Ok(ToolOutput::new(text, v));
                }
                "track_stats" => {
                    let name = str_arg(&args, "name")?;
                    let v =
                        tracks::stats(&ctx.manager, &ctx.caller, &ctx.session, &nb, name).await?;
                    let text = format!("{name}: {} point(s); stats per field.", v["points"]);
                    return Ok(ToolOutput::new(text, v));
                }
                "upload_file" | "record_file" => {
                    let name = str_arg(&args, "name")?.to_owned();
                    let content_type = opt_str_arg(&args, "content_type")?
                        .unwrap_or("application/octet-stream")
                        .to_owned();
                    files::check_meta(&name, &content_type)?;
                    let (sha256, bytes) = if action == "record_file" {
                        let sha = str_arg(&args, "sha256")?.to_owned();
                        let Some(path) = ctx.manager.file_content(&sha).await? else {
                            return Err(bad("`sha256` names no stored upload"));
                        };
                        let size = tokio::fs::metadata(&path).await.map_or(0, |m| m.len());
                        (sha, size)
                    } else {
                        let content = file_content(&args)?;
                        let limit = ctx.manager.max_file_bytes();
                        if content.len() as u64 > limit {
                            return Err(files::too_large(limit).into());
                        }
                        ctx.manager
                            .reserve_file_bytes(&ctx.caller, content.len() as u64)?;
                        let chunks = futures::stream::iter([Ok::<_, std::io::Error>(content)]);
                        ctx.manager.store_file(chunks, limit).await?
                    };
                    let entry = files::record(
                        &mut nb,
                        &name,
                        &sha256,
                        bytes,
                        &content_type,
                        &kiln_db::now(),
                        &ctx.caller.user_id,
                    );
                    ToolOutput::new(
                        format!("Added file {name} ({bytes} bytes, id {}).", entry.id),
                        json!({"file": entry}),
                    )
                }
                "list_files" => {
                    let live: Vec<&files::FileEntry> =
                        nb.files.iter().filter(|f| f.deleted_at.is_none()).collect();
                    let text = format!("{} file(s).", live.len());
                    return Ok(ToolOutput::new(text, json!({"files": live})));
                }
                "delete_file" => {
                    let id = str_arg(&args, "id")?;
                    let entry = files::delete(&mut nb, id, &kiln_db::now(), &ctx.caller.user_id)?;
                    ToolOutput::new(
                        format!("Deleted file {} (content kept until purged).", entry.name),
                        json!({"file": entry}),
                    )
                }
                "log_metric" => {
                    let name = str_arg(&args, "name")?.to_owned();
                    let value = args
                        .get("value")
                        .and_then(Value::as_f64)
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| bad("`value` must be a finite number"))?;
                    let track = nb.metrics.entry(name.clone()).or_default();
                    let step = match args.get("step") {
                        None | Some(Value::Null) => track.last().map_or(0, |p| p.step + 1),
                        Some(v) => v
                            .as_u64()
                            .ok_or_else(|| bad("`step` must be a non-negative integer"))?,
                    };
                    track.retain(|p| p.step != step);
                    track.push(MetricPoint { step, value });
                    track.sort_by_key(|p| p.step);
                    ToolOutput::new(
                        format!("{name}[{step}] = {value}"),
                        json!({"name": name, "step": step, "value": value, "points": track.len()}),
                    )
                }
                "read_metric" => {
                    let name = str_arg(&args, "name")?;
                    let Some(track) = nb.metrics.get(name) else {
                        return Err(bad(format!(
                            "no metric `{name}` (tracks: {})",
                            nb.metrics.keys().cloned().collect::<Vec<_>>().join(", ")
                        )));
                    };
                    let last = track.last().map(|p| p.value);
                    return Ok(ToolOutput::new(
                        format!(
                            "{name}: {} point(s), last {}",
                            track.len(),
                            last.map_or("none".into(), |v| v.to_string())
                        ),
                        json!({"name": name, "points": track}),
                    ));
                }
                "attach" => {
                    let name = str_arg(&args, "name")?.to_owned();
                    let content = args
                        .get("content")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("`content` (string) is required"))?;
                    if content.len() > MAX_ATTACHMENT {
                        return Err(bad(format!(
                            "the attachment is larger than {MAX_ATTACHMENT} bytes"
                        )));
                    }
                    let media_type = opt_str_arg(&args, "media_type")?
                        .unwrap_or("text/plain")
                        .to_owned();
                    let sha256 = ctx
                        .manager
                        .store_content(
                            kiln_session::files::Content::Attachments,
                            content.as_bytes(),
                        )
                        .await?;
                    let att = Attachment {
                        name: name.clone(),
                        sha256: sha256.clone(),
                        bytes: content.len() as u64,
                        media_type,
                    };
                    if !nb.attachments.contains(&att) {
                        nb.attachments.push(att.clone());
                    }
                    ToolOutput::new(
                        format!(
                            "Attached {name} ({} bytes, sha256 {})",
                            content.len(),
                            &sha256[..12]
                        ),
                        json!({"attachment": att}),
                    )
                }
                "list" => {
                    let text = format!(
                        "Notebook: {} log line(s), {} parameter(s), metric tracks [{}], {} attachment(s), {} file(s).",
                        nb.log.len(),
                        nb.params.len(),
                        nb.metrics
                            .keys()
                            .chain(nb.tracks.keys())
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", "),
                        nb.attachments.len(),
                        nb.files.iter().filter(|f| f.deleted_at.is_none()).count()
                    );
                    let value = serde_json::to_value(&nb).unwrap_or(Value::Null);
                    return Ok(ToolOutput::new(text, value));
                }
                other => {
                    return Err(bad(format!(
                        "unknown action `{other}`: expected log, read_log, set_params, get_params, param_history, append_track, read_track, track_stats, upload_file, list_files, delete_file, log_metric, read_metric, attach or list"
                    )));
                }
            };
            let state = serde_json::to_value(&nb).map_err(|e| ToolError::Failed(e.to_string()))?;
            Ok(output.with_event(StateEvent::ToolState {
                tool: NAME.to_owned(),
                state,
            }))
        })
    }

    fn view(&self, state: &Value) -> Option<ToolView> {
        let nb: NotebookState = serde_json::from_value(state.clone()).ok()?;
        let mut view = ToolView {
            summary: format!(
                "{} log line(s), {} parameter(s), {} metric track(s), {} attachment(s)",
                nb.log.len(),
                nb.params.len(),
                nb.metrics.len(),
                nb.attachments.len()
            ),
            ..Default::default()
        };
        if !nb.params.is_empty() {
            view.tables.push(ViewTable {
                caption: "Parameters".into(),
                columns: vec!["Name".into(), "Value".into()],
                rows: nb
                    .params
                    .iter()
                    .map(|(k, v)| vec![k.clone(), v.to_string()])
                    .collect(),
            });
        }
        if !nb.log.is_empty() {
            // The newest 50 lines, newest first.
            view.tables.push(ViewTable {
                caption: "Log (newest first)".into(),
                columns: vec!["At".into(), "Level".into(), "Message".into()],
                rows: nb
                    .log
                    .iter()
                    .rev()
                    .take(50)
                    .map(|l| vec![l.at.clone(), l.level.clone(), l.message.clone()])
                    .collect(),
            });
        }
        if !nb.attachments.is_empty() {
            view.tables.push(ViewTable {
                caption: "Attachments".into(),
                columns: vec!["Name".into(), "Bytes".into(), "Type".into()],
                rows: nb
                    .attachments
                    .iter()
                    .map(|a| vec![a.name.clone(), a.bytes.to_string(), a.media_type.clone()])
                    .collect(),
            });
        }
        for (name, points) in &nb.metrics {
            let pts: Vec<(f64, f64)> = points.iter().map(|p| (p.step as f64, p.value)).collect();
            view.charts.push(ViewChart {
                title: name.clone(),
                svg: kiln_bayesopt::plot::line_svg(name, "step", name, &pts),
            });
        }
        Some(view)
    }

    fn merge(
        &self,
        base: Option<&Value>,
        ours: &Value,
        theirs: &Value,
        resolver: &Resolver,
    ) -> Option<ToolMerge> {
        let parse = |v: &Value| serde_json::from_value::<NotebookState>(v.clone()).ok();
        let (o, t) = (parse(ours)?, parse(theirs)?);
        let b = base.and_then(parse).unwrap_or_default();
        let (state, conflicts) = merge_with(&b, o, t, resolver);
        Some(ToolMerge {
            state: serde_json::to_value(state).unwrap_or(Value::Null),
            conflicts,
        })
    }
}

/// Three-way merge: log lines, metric points and attachments are unioned; a parameter both
/// sides changed to different values is a conflict.
#[cfg(test)]
fn merge(
    base: &NotebookState,
    ours: NotebookState,
    theirs: NotebookState,
) -> Result<NotebookState, Vec<Conflict>> {
    let (state, conflicts) = merge_with(base, ours, theirs, &Resolver::default());
    if conflicts.is_empty() {
        Ok(state)
    } else {
        Err(conflicts)
    }
}

/// Merges as [`merge`] does, settling each parameter conflict as the resolver picks (one
/// side's value: a parameter holds one value, so `both` cannot apply); open ones keep ours.
pub fn merge_with(
    base: &NotebookState,
    ours: NotebookState,
    theirs: NotebookState,
    resolver: &Resolver,
) -> (NotebookState, Vec<Conflict>) {
    let mut out = ours;
    let mut conflicts = Vec::new();
    for (k, tv) in &theirs.params {
        let bv = base.params.get(k);
        match out.params.get(k) {
            None => {
                // Ours deleted it (or never had it): take theirs unless theirs is the base.
                if bv != Some(tv) {
                    out.params.insert(k.clone(), tv.clone());
                }
            }
            Some(ov) if ov == tv => {}
            Some(ov) => {
                if bv == Some(ov) {
                    out.params.insert(k.clone(), tv.clone());
                } else if bv != Some(tv) {
                    let mut c = Conflict::new(
                        format!("tools.{NAME}.params.{k}"),
                        [bv.cloned(), Some(ov.clone()), Some(tv.clone())],
                        false,
                        ConflictWords {
                            subject: format!("Notebook parameter '{}'", words::short(k)),
                            base: bv.map(words::value_text),
                            ours: words::value_text(ov),
                            theirs: words::value_text(tv),
                        },
                    );
                    c.resolution = resolver.pick(&c);
                    if c.resolution == Some(Resolution::Theirs) {
                        out.params.insert(k.clone(), tv.clone());
                    }
                    conflicts.push(c);
                }
            }
        }
    }
    for line in theirs.log {
        if !out.log.contains(&line) {
            out.log.push(line);
        }
    }
    out.log
        .sort_by(|a, b| (&a.at, &a.level, &a.message).cmp(&(&b.at, &b.level, &b.message)));
    for c in theirs.param_history {
        if !out.param_history.contains(&c) {
            out.param_history.push(c);
        }
    }
    out.param_history
        .sort_by(|a, b| (&a.at, &a.key).cmp(&(&b.at, &b.key)));
    for (name, refs) in theirs.tracks {
        tracks::union(out.tracks.entry(name).or_default(), &refs);
    }
    files::union(&mut out.files, theirs.files);
    for (name, points) in theirs.metrics {
        let track = out.metrics.entry(name).or_default();
        for p in points {
            if !track.contains(&p) {
                track.push(p);
            }
        }
        track.sort_by(|a, b| a.step.cmp(&b.step).then(a.value.total_cmp(&b.value)));
    }
    for a in theirs.attachments {
        if !out.attachments.contains(&a) {
            out.attachments.push(a);
        }
    }
    (out, conflicts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at: &str, m: &str) -> LogLine {
        LogLine {
            at: at.into(),
            level: "info".into(),
            message: m.into(),
            metadata: None,
        }
    }

    #[test]
    fn view_has_a_chart_per_metric_track_and_the_newest_log_line_first() {
        let mut nb = NotebookState::default();
        nb.log.push(line("1", "first"));
        nb.log.push(line("2", "second"));
        nb.params.insert("t".into(), json!(600));
        let point = |step, value| MetricPoint { step, value };
        nb.metrics
            .insert("yield".into(), vec![point(0, 0.5), point(1, 0.7)]);
        nb.metrics.insert("loss".into(), vec![point(0, 2.0)]);
        let view = Notebook.view(&serde_json::to_value(&nb).unwrap()).unwrap();
        let titles: Vec<&str> = view.charts.iter().map(|c| c.title.as_str()).collect();
        assert_eq!(titles, ["loss", "yield"]);
        assert_eq!(view.charts[1].svg.matches("<circle").count(), 2);
        let log = view
            .tables
            .iter()
            .find(|t| t.caption.starts_with("Log"))
            .unwrap();
        assert_eq!(log.rows[0][2], "second");
        assert!(
            view.summary
                .starts_with("2 log line(s), 1 parameter(s), 2 metric track(s)")
        );
        assert!(Notebook.view(&json!("not a notebook")).is_none());
    }

    #[test]
    fn merge_unions_lines_and_points_and_flags_parameter_conflicts() {
        let mut base = NotebookState::default();
        base.log.push(line("1", "start"));
        base.params.insert("t".into(), json!(600));
        let mut ours = base.clone();
        ours.log.push(line("2", "ours"));
        ours.metrics.insert(
            "yield".into(),
            vec![MetricPoint {
                step: 0,
                value: 0.5,
            }],
        );
        let mut theirs = base.clone();
        theirs.log.push(line("3", "theirs"));
        theirs.metrics.insert(
            "yield".into(),
            vec![MetricPoint {
                step: 1,
                value: 0.7,
            }],
        );
        theirs.params.insert("t".into(), json!(650));
        let m = merge(&base, ours.clone(), theirs.clone()).unwrap();
        assert_eq!(m.log.len(), 3);
        assert_eq!(m.params["t"], json!(650), "only theirs changed t");
        assert_eq!(m.metrics["yield"].len(), 2);

        ours.params.insert("t".into(), json!(700));
        let err = merge(&base, ours, theirs).unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].field, "tools.notebook.params.t");
        assert_eq!(err[0].ours, Some(json!(700)));
        assert_eq!(err[0].theirs, Some(json!(650)));
    }
}
