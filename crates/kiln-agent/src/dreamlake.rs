//! Import of a Dreamlake local session folder (`session.json`, `parameters.json`,
//! `logs/logs.jsonl`, `tracks/<name>/data.jsonl` or `tracks/<name>.jsonl`, `files/` with
//! `.files_metadata.json`) into a Kiln session found or made by workspace (project) and name.
//! Every piece goes through the notebook's own actions, so the import is a handful of nodes on
//! the session's default branch, like a script logging the same things would leave.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_session::{Caller, Error, PutSession, Result, normalize_folder};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::agent::Agent;

/// Log lines per recorded node.
const LOG_CHUNK: usize = 10_000;
/// Points per recorded batch.
const TRACK_CHUNK: usize = 100_000;

/// What an import did, and what it could not carry over.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DreamlakeReport {
    pub session: String,
    pub project: String,
    pub name: String,
    /// Whether the session was made by the import (else the points were added to it).
    pub created: bool,
    pub params: usize,
    pub log_lines: usize,
    /// Track name → points imported.
    pub tracks: BTreeMap<String, usize>,
    pub files: usize,
    /// Whether the session was write-protected at the end, as the folder said.
    pub protected: bool,
    /// What did not map, one line each.
    pub skipped: Vec<String>,
}

fn bad(m: impl Into<String>) -> Error {
    Error::bad_request(m)
}

async fn read_json(path: &Path) -> Result<Option<Value>> {
    match tokio::fs::read(path).await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| bad(format!("{} is not JSON: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(bad(format!("could not read {}: {e}", path.display()))),
    }
}

/// The lines of a JSONL file, each parsed (a bad line is reported, not fatal).
async fn read_jsonl(path: &Path, skipped: &mut Vec<String>) -> Result<Vec<Value>> {
    let text = match tokio::fs::read_to_string(path).await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(bad(format!("could not read {}: {e}", path.display()))),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(v) => out.push(v),
            Err(_) => skipped.push(format!("{} line {}: not JSON", path.display(), i + 1)),
        }
    }
    Ok(out)
}

/// A path under `root` (after resolving links), or `None` when it escapes it.
fn inside(root: &Path, path: &Path) -> Option<PathBuf> {
    let p = path.canonicalize().ok()?;
    p.starts_with(root).then_some(p)
}

/// Every track file under `tracks/`: `<name>/data.jsonl` (current) or `<name>.jsonl` (older).
fn track_files(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if path.is_dir() {
            let nested = format!("{prefix}{name}");
            if path.join("data.jsonl").is_file() {
                out.push((nested.clone(), path.join("data.jsonl")));
            }
            track_files(&path, &format!("{nested}/"), out);
        } else if let Some(stem) = name.strip_suffix(".jsonl")
            && name != "data.jsonl"
        {
            out.push((format!("{prefix}{stem}"), path));
        }
    }
}

/// A Dreamlake data point's numeric fields; the others are named in `dropped`.
fn numeric_fields(data: &Map<String, Value>, dropped: &mut BTreeMap<String, usize>) -> Value {
    let mut point = Map::new();
    for (k, v) in data {
        match v.as_f64().filter(|x| x.is_finite()) {
            Some(x) if !v.is_boolean() => {
                point.insert(k.clone(), json!(x));
            }
            _ => *dropped.entry(k.clone()).or_default() += 1,
        }
    }
    Value::Object(point)
}

impl Agent {
    /// Imports a Dreamlake local session folder as the caller (see the module docs). The
    /// project is the folder's workspace unless `project` is given.
    pub async fn import_dreamlake(
        &self,
        caller: &Caller,
        dir: &Path,
        project: Option<&str>,
    ) -> Result<DreamlakeReport> {
        let root = dir
            .canonicalize()
            .map_err(|e| bad(format!("cannot open {}: {e}", dir.display())))?;
        let meta = read_json(&root.join("session.json"))
            .await?
            .unwrap_or(Value::Null);
        let text = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_owned);
        let name = text("name")
            .or_else(|| root.file_name().map(|n| n.to_string_lossy().into_owned()))
            .ok_or_else(|| bad("the folder has no name"))?;
        let project = project
            .map(str::to_owned)
            .or_else(|| text("workspace"))
            .or_else(|| {
                root.parent()
                    .and_then(Path::file_name)
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .ok_or_else(|| bad("no workspace: give a project"))?;
        let mut report = DreamlakeReport {
            project: project.clone(),
            name: name.clone(),
            ..Default::default()
        };
        let folder = match text("folder") {
            Some(f) => match normalize_folder(&format!("/{}", f.trim_start_matches('/'))) {
                Ok(f) => Some(f),
                Err(e) => {
                    report.skipped.push(format!("folder: {}", e.message));
                    None
                }
            },
            None => None,
        };
        let tags = meta.get("tags").and_then(Value::as_array).map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        });
        if meta.get("metadata").is_some_and(|m| !m.is_null()) {
            report
                .skipped
                .push("session metadata: Kiln sessions made by name carry none".into());
        }
        let found = self
            .manager()
            .put_project_session(
                caller,
                &project,
                &name,
                PutSession {
                    folder,
                    description: text("description"),
                    tags,
                },
            )
            .await?;
        report.session = found.session.id.clone();
        report.created = found.created;
        let (session, branch) = (
            found.session.id.clone(),
            found.session.default_branch.clone(),
        );
        if found.session.protected {
            return Err(Error::protected());
        }

        // Parameters: Dreamlake keeps them flattened; dotted keys nest again here.
        if let Some(doc) = read_json(&root.join("parameters.json")).await? {
            let data = doc.get("data").cloned().unwrap_or(doc);
            if let Some(params) = data.as_object().filter(|p| !p.is_empty()) {
                self.notebook_write(
                    caller,
                    &session,
                    &branch,
                    json!({"action": "set_params", "params": params}),
                )
                .await?;
                report.params = params.len();
            }
        }

        // Logs, with their own times, in chunks.
        let mut lines = Vec::new();
        for v in read_jsonl(&root.join("logs").join("logs.jsonl"), &mut report.skipped).await? {
            let mut metadata = v
                .get("metadata")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if let Some(seq) = v.get("sequenceNumber") {
                metadata.insert("dreamlake_seq".into(), seq.clone());
            }
            let line = json!({"at": v.get("timestamp"), "level": v.get("level"),
                              "message": v.get("message"), "metadata": metadata});
            match crate::tools::notebook::logs::imported_line(&line) {
                Ok(_) => lines.push(line),
                Err(e) => report.skipped.push(format!("log line: {e}")),
            }
        }
        for chunk in lines.chunks(LOG_CHUNK) {
            self.notebook_write(
                caller,
                &session,
                &branch,
                json!({"action": "log_lines", "lines": chunk}),
            )
            .await?;
            report.log_lines += chunk.len();
        }

        // Tracks: numeric fields kept, in index order, in batches.
        let mut files = Vec::new();
        track_files(&root.join("tracks"), "", &mut files);
        for (track, path) in files {
            if let Err(e) = kiln_session::check_track_name(&track) {
                report.skipped.push(format!("track {track}: {}", e.message));
                continue;
            }
            let mut rows = read_jsonl(&path, &mut report.skipped).await?;
            rows.sort_by_key(|r| r.get("index").and_then(Value::as_u64).unwrap_or(u64::MAX));
            let mut dropped = BTreeMap::new();
            let points: Vec<Value> = rows
                .iter()
                .filter_map(|r| r.get("data").and_then(Value::as_object))
                .map(|d| numeric_fields(d, &mut dropped))
                .filter(|p| p.as_object().is_some_and(|o| !o.is_empty()))
                .collect();
            for (field, n) in dropped {
                report.skipped.push(format!(
                    "track {track}: field `{field}` is not a number in {n} point(s)"
                ));
            }
            for chunk in points.chunks(TRACK_CHUNK) {
                self.notebook_write(
                    caller,
                    &session,
                    &branch,
                    json!({"action": "append_track", "name": track, "points": chunk}),
                )
                .await?;
            }
            if !points.is_empty() {
                report.tracks.insert(track, points.len());
            }
        }

        // Files: the ones not deleted, streamed from disk, checked against their checksum.
        let listed = read_json(&root.join("files").join(".files_metadata.json")).await?;
        let entries = listed
            .as_ref()
            .and_then(|l| l.get("files"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for f in entries {
            let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            let (id, filename, prefix) = (s("id"), s("filename"), s("path"));
            if f.get("deletedAt").is_some_and(|d| !d.is_null()) {
                report
                    .skipped
                    .push(format!("file {filename}: deleted in Dreamlake"));
                continue;
            }
            let prefix = prefix.trim_matches('/');
            let mut path = root.join("files");
            if !prefix.is_empty() {
                path = path.join(prefix);
            }
            let Some(path) = inside(&root, &path.join(&id).join(&filename)) else {
                report
                    .skipped
                    .push(format!("file {filename}: missing, or outside the folder"));
                continue;
            };
            let shown = if prefix.is_empty() {
                filename.clone()
            } else {
                format!("{prefix}/{filename}")
            };
            let content_type = match s("contentType") {
                t if t.is_empty() => "application/octet-stream".to_owned(),
                t => t,
            };
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(|e| bad(format!("could not read {}: {e}", path.display())))?;
            let stream = futures::stream::unfold(file, |mut file| async move {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 64 * 1024];
                match file.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok::<_, std::io::Error>(buf), file))
                    }
                    Err(e) => Some((Err(e), file)),
                }
            });
            let call = self
                .notebook_upload(
                    caller,
                    &session,
                    &branch,
                    &shown,
                    &content_type,
                    Box::pin(stream),
                )
                .await?;
            let stored = call.result["file"]["sha256"].as_str().unwrap_or("");
            let claimed = s("checksum");
            let claimed = claimed.trim_start_matches("sha256:");
            if !claimed.is_empty() && claimed != stored {
                report.skipped.push(format!(
                    "file {shown}: its checksum does not match the content (imported as found)"
                ));
            }
            report.files += 1;
        }

        if meta.get("write_protected").and_then(Value::as_bool) == Some(true) {
            self.manager().set_protected(caller, &session, true).await?;
            report.protected = true;
        }
        Ok(report)
    }
}
