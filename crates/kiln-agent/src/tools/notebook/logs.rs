//! Notebook log lines: levels debug < info < warn < error < fatal, structured metadata, and
//! the filtered read (minimum level, time range, one metadata key = value), newest last.

use serde_json::{Value, json};

use super::{LogLine, bad};
use crate::tool::ToolError;

/// The levels, least severe first.
pub const LEVELS: [&str; 5] = ["debug", "info", "warn", "error", "fatal"];
/// The most lines one read returns.
pub const MAX_READ: usize = 1000;

/// A level's rank, or a typed refusal naming the levels.
pub fn rank(level: &str) -> Result<usize, ToolError> {
    LEVELS
        .iter()
        .position(|l| *l == level)
        .ok_or_else(|| bad(format!("`level` must be one of {}", LEVELS.join(", "))))
}

/// What a log read keeps.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// The least severe level kept.
    pub level: Option<String>,
    /// Lines at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Lines before this time.
    pub until: Option<String>,
    /// A metadata key and the value it must have (`run=3`: a string, or the JSON text of a
    /// number or boolean).
    pub meta: Option<(String, String)>,
    /// Skip this many matching lines (oldest first).
    pub offset: usize,
    /// At most this many (default and ceiling [`MAX_READ`]).
    pub limit: Option<usize>,
}

fn check_time(field: &str, t: &str) -> Result<(), ToolError> {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|_| ())
        .map_err(|_| bad(format!("`{field}` must be an RFC 3339 time, not `{t}`")))
}

fn meta_matches(line: &LogLine, key: &str, want: &str) -> bool {
    match line.metadata.as_ref().and_then(|m| m.get(key)) {
        Some(Value::String(s)) => s == want,
        Some(v) => serde_json::from_str::<Value>(want).is_ok_and(|w| w == *v),
        None => false,
    }
}

/// The lines `f` keeps, oldest first, as `{lines, total, offset, next_offset}`.
pub fn read(log: &[LogLine], f: &LogFilter) -> Result<Value, ToolError> {
    let min = f.level.as_deref().map(rank).transpose()?.unwrap_or(0);
    for (field, t) in [("since", &f.since), ("until", &f.until)] {
        if let Some(t) = t {
            check_time(field, t)?;
        }
    }
    // Stored times are UTC with a fixed width, so they compare as text; a filter time in
    // another offset is brought to UTC first.
    let utc = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|d| kiln_db::stamp(d.with_timezone(&chrono::Utc)))
            .unwrap_or_default()
    };
    let since = f.since.as_deref().map(utc);
    let until = f.until.as_deref().map(utc);
    let kept: Vec<&LogLine> = log
        .iter()
        .filter(|l| rank(&l.level).unwrap_or(0) >= min)
        .filter(|l| since.as_ref().is_none_or(|s| l.at >= *s))
        .filter(|l| until.as_ref().is_none_or(|u| l.at < *u))
        .filter(|l| f.meta.as_ref().is_none_or(|(k, v)| meta_matches(l, k, v)))
        .collect();
    let limit = f.limit.unwrap_or(MAX_READ).clamp(1, MAX_READ);
    let page: Vec<&LogLine> = kept.iter().skip(f.offset).take(limit).copied().collect();
    let end = f.offset + page.len();
    Ok(json!({
        "lines": page,
        "total": kept.len(),
        "offset": f.offset,
        "next_offset": (end < kept.len()).then_some(end),
    }))
}

/// A line given with its own time (an import): `at` RFC 3339 (kept in UTC), a known level
/// (default info), a message of at most 10,000 bytes, metadata an object of at most 16 KiB.
pub fn imported_line(v: &Value) -> Result<LogLine, String> {
    let at = v
        .get("at")
        .and_then(Value::as_str)
        .ok_or("`at` is required")?;
    let at = chrono::DateTime::parse_from_rfc3339(at)
        .map(|d| kiln_db::stamp(d.with_timezone(&chrono::Utc)))
        .map_err(|_| format!("`at` must be an RFC 3339 time, not `{at}`"))?;
    let level = v.get("level").and_then(Value::as_str).unwrap_or("info");
    if !LEVELS.contains(&level) {
        return Err(format!("`level` must be one of {}", LEVELS.join(", ")));
    }
    let message = v
        .get("message")
        .and_then(Value::as_str)
        .ok_or("`message` is required")?;
    if message.trim().is_empty() || message.len() > 10_000 {
        return Err("`message` must be 1-10,000 bytes".into());
    }
    let metadata = match v.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) if m.is_empty() => None,
        Some(Value::Object(m)) if Value::Object(m.clone()).to_string().len() <= 16 * 1024 => {
            Some(m.clone())
        }
        Some(_) => return Err("`metadata` must be an object of at most 16 KiB".into()),
    };
    Ok(LogLine {
        at,
        level: level.to_owned(),
        message: message.trim().to_owned(),
        metadata,
    })
}
