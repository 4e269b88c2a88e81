//! `notebook`: a lab notebook on the branch (Dreamlake-style): log lines with a level,
//! parameters set and read, metric tracks appended and read, and file attachments stored
//! content-addressed under the data directory. The notebook is one tool state, so it branches
//! with the session and merges line by line, point by point.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use kiln_types::StateEvent;
use kiln_types::state::words::{self, ConflictWords};
use kiln_types::state::{Conflict, Resolution, Resolver, ToolMerge};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::tool::{
    Tool, ToolContext, ToolError, ToolOutput, ToolView, ViewChart, ViewTable, opt_str_arg, str_arg,
};

/// The tool's name.
pub const NAME: &str = "notebook";
/// Largest log line, in bytes.
const MAX_LINE: usize = 10_000;
/// Largest attachment, in bytes.
const MAX_ATTACHMENT: usize = 1024 * 1024;
const LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LogLine {
    /// When it was written (RFC 3339, UTC).
    pub at: String,
    /// debug, info, warn or error.
    pub level: String,
    /// The text.
    pub message: String,
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
}

/// The notebook tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct Notebook;

/// Returns where an attachment with this digest is stored.
pub fn attachment_path(data_dir: &Path, sha256: &str) -> PathBuf {
    data_dir
        .join("attachments")
        .join(sha256.get(..2).unwrap_or("00"))
        .join(sha256)
}

fn bad(message: impl Into<String>) -> ToolError {
    ToolError::InvalidArguments(message.into())
}

fn load(ctx: &ToolContext) -> Result<NotebookState, ToolError> {
    match ctx.tool_state(NAME) {
        None => Ok(NotebookState::default()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| ToolError::Failed(format!("the stored notebook is unreadable: {e}"))),
    }
}

async fn store_attachment(dir: &Path, content: &[u8]) -> Result<String, ToolError> {
    let sha = hex::encode(Sha256::digest(content));
    let path = attachment_path(dir, &sha);
    if tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Ok(sha);
    }
    let parent = path.parent().unwrap_or(dir);
    let fail =
        |e: std::io::Error| ToolError::Failed(format!("could not store the attachment: {e}"));
    tokio::fs::create_dir_all(parent).await.map_err(fail)?;
    // Write then rename: a crash never leaves a partial file under the final name.
    let tmp = parent.join(format!("{sha}.tmp-{}", std::process::id()));
    tokio::fs::write(&tmp, content).await.map_err(fail)?;
    tokio::fs::rename(&tmp, &path).await.map_err(fail)?;
    Ok(sha)
}

impl Tool for Notebook {
    fn expensive(&self) -> bool {
        false
    }

    fn name(&self) -> &str {
        NAME
    }

    fn description(&self) -> &str {
        "The session's lab notebook: log a line (action log), set or get parameters \
         (set_params, get_params), append to or read a metric track (log_metric, read_metric), \
         attach a text file (attach), or list everything (list)."
    }

    fn schema(&self) -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["action"],
            "properties": {
                "action": {"type": "string", "enum": ["log", "set_params", "get_params", "log_metric", "read_metric", "attach", "list"]},
                "message": {"type": "string", "description": "log: the line"},
                "level": {"type": "string", "enum": LEVELS, "description": "log: default info"},
                "params": {"type": "object", "description": "set_params: name → value"},
                "name": {"type": "string", "description": "log_metric/read_metric: the track; attach: the file name"},
                "value": {"type": "number", "description": "log_metric: the value"},
                "step": {"type": "integer", "minimum": 0, "description": "log_metric: default next step"},
                "content": {"type": "string", "description": "attach: the file's text"},
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
                    if !LEVELS.contains(&level.as_str()) {
                        return Err(bad(format!("`level` must be one of {}", LEVELS.join(", "))));
                    }
                    let line = LogLine {
                        at: kiln_db::now(),
                        level: level.clone(),
                        message: message.clone(),
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
                    if params.is_empty() {
                        return Err(bad("`params` must not be empty"));
                    }
                    for (k, v) in params {
                        nb.params.insert(k.clone(), v.clone());
                    }
                    let names: Vec<&String> = params.keys().collect();
                    ToolOutput::new(
                        format!(
                            "Set {} parameter(s): {}",
                            names.len(),
                            names
                                .iter()
                                .map(|k| format!("{k}={}", params[*k]))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        json!({"params": nb.params}),
                    )
                }
                "get_params" => {
                    let text = if nb.params.is_empty() {
                        "No parameters set.".to_owned()
                    } else {
                        nb.params
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    return Ok(ToolOutput::new(text, json!({"params": nb.params})));
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
                    let sha256 = store_attachment(&ctx.data_dir, content.as_bytes()).await?;
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
                        "Notebook: {} log line(s), {} parameter(s), metric tracks [{}], {} attachment(s).",
                        nb.log.len(),
                        nb.params.len(),
                        nb.metrics.keys().cloned().collect::<Vec<_>>().join(", "),
                        nb.attachments.len()
                    );
                    let value = serde_json::to_value(&nb).unwrap_or(Value::Null);
                    return Ok(ToolOutput::new(text, value));
                }
                other => {
                    return Err(bad(format!(
                        "unknown action `{other}`: expected log, set_params, get_params, log_metric, read_metric, attach or list"
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
    out.log.sort();
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
