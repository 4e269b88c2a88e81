//! Batch runs: one request template (`"Analyse {formula}"`) and a list of items (or CSV rows)
//! become a batch the agent works through, each item on its own branch from one checkpoint or
//! all in one shared branch. This module checks and stores batches and reports on them; the
//! agent (kiln-agent's `batch.rs`) runs them.

use std::collections::BTreeMap;

use kiln_db::{BatchItemRow, BatchRow, ItemOutcome, NewBatch};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::templates::placeholders;
use crate::{Caller, Error, Result, SessionManager};

/// The most items in one batch.
pub const MAX_BATCH_ITEMS: usize = 1000;
/// The most items run at once.
pub const MAX_BATCH_CONCURRENCY: u32 = 16;
/// The longest per-item time budget, in seconds.
pub const MAX_ITEM_SECONDS: u32 = 3600;
const MAX_REQUEST: usize = 8 * 1024;
const MAX_VALUE: usize = 1024;

/// What a batch is asked to do.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSpec {
    /// The request, with `{field}` placeholders filled from each item (`{{` is a literal `{`).
    pub request: String,
    /// The items: objects of field → text or number.
    #[serde(default)]
    pub items: Option<Vec<Map<String, Value>>>,
    /// Or CSV text whose header row names the fields.
    #[serde(default)]
    pub csv: Option<String>,
    /// `branches` (default: each item on its own branch from the same checkpoint) or `shared`
    /// (all items in order on one branch, each seeing the ones before).
    #[serde(default)]
    pub mode: Option<String>,
    /// Items run at once (1-16, default 4; `shared` runs one at a time).
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Each item's time budget in seconds (1-3600, default 120).
    #[serde(default)]
    pub item_timeout_seconds: Option<u32>,
    /// Start every item from this existing checkpoint (default: a new checkpoint at the head
    /// of `branch`).
    #[serde(default)]
    pub checkpoint: Option<String>,
    /// The branch whose head the items start from (default: the session's default branch).
    #[serde(default)]
    pub branch: Option<String>,
}

/// Items by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BatchCounts {
    pub pending: u32,
    pub running: u32,
    pub done: u32,
    pub failed: u32,
    pub cancelled: u32,
}

/// A batch with its progress and (when asked for) its items.
#[derive(Debug, Clone, Serialize)]
pub struct BatchView {
    #[serde(flatten)]
    pub batch: BatchRow,
    pub total: u32,
    pub counts: BatchCounts,
    /// Share of items finished (done, failed or cancelled), 0 to 1.
    pub progress: f64,
    /// Seconds from creation to the end (or to now, while running).
    pub elapsed_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<BatchItemRow>>,
}

impl BatchView {
    fn new(batch: BatchRow, items: Vec<BatchItemRow>, with_items: bool) -> Self {
        let statuses: Vec<(String, i64)> = items.iter().map(|i| (i.status.clone(), 1)).collect();
        let mut view = Self::counted(batch, &statuses);
        view.items = with_items.then_some(items);
        view
    }

    /// A view from the items' counts by status, without the items.
    fn counted(batch: BatchRow, statuses: &[(String, i64)]) -> Self {
        let mut counts = BatchCounts::default();
        for (status, n) in statuses {
            let n = *n as u32;
            match status.as_str() {
                "pending" => counts.pending += n,
                "running" => counts.running += n,
                "done" => counts.done += n,
                "failed" => counts.failed += n,
                _ => counts.cancelled += n,
            }
        }
        let total =
            counts.pending + counts.running + counts.done + counts.failed + counts.cancelled;
        let finished = counts.done + counts.failed + counts.cancelled;
        let start = chrono::DateTime::parse_from_rfc3339(&batch.created_at).ok();
        let end = batch
            .finished_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(chrono::Utc::now);
        let elapsed_seconds = start
            .map(|s| (end - s.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0)
            .unwrap_or(0.0)
            .max(0.0);
        BatchView {
            batch,
            total,
            counts,
            progress: if total == 0 {
                1.0
            } else {
                f64::from(finished) / f64::from(total)
            },
            elapsed_seconds,
            items: None,
        }
    }

    /// Whether the batch has finished (done or cancelled).
    pub fn finished(&self) -> bool {
        self.batch.status != "running"
    }

    /// The results table as CSV: the items' fields, then status, branch, the answer, the key
    /// numbers (one column each, in name order) and the error.
    pub fn to_csv(&self) -> Result<String> {
        let items = self.items.as_deref().unwrap_or_default();
        let mut fields: Vec<String> = Vec::new();
        let mut numbers: Vec<String> = Vec::new();
        for i in items {
            if let Value::Object(o) = &i.item {
                for k in o.keys() {
                    if !fields.contains(k) {
                        fields.push(k.clone());
                    }
                }
            }
            if let Some(Value::Object(o)) = &i.numbers {
                for k in o.keys() {
                    if !numbers.contains(k) {
                        numbers.push(k.clone());
                    }
                }
            }
        }
        numbers.sort();
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<&str> = vec!["item"];
        header.extend(fields.iter().map(String::as_str));
        header.extend(["status", "branch", "answer"]);
        header.extend(numbers.iter().map(String::as_str));
        header.push("error");
        let fail = |e: csv::Error| Error::internal(format!("writing the CSV failed: {e}"));
        w.write_record(&header).map_err(fail)?;
        for i in items {
            let mut row = vec![(i.idx + 1).to_string()];
            for f in &fields {
                row.push(i.item.get(f).map(plain).unwrap_or_default());
            }
            row.push(i.status.clone());
            row.push(i.branch.clone().unwrap_or_default());
            row.push(i.answer.clone().unwrap_or_default());
            for n in &numbers {
                row.push(
                    i.numbers
                        .as_ref()
                        .and_then(|o| o.get(n))
                        .map(plain)
                        .unwrap_or_default(),
                );
            }
            row.push(i.error.clone().unwrap_or_default());
            w.write_record(&row).map_err(fail)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| Error::internal(format!("writing the CSV failed: {e}")))?;
        String::from_utf8(bytes).map_err(|e| Error::internal(e.to_string()))
    }
}

/// A JSON scalar as plain text (a string without quotes).
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The items of a spec as field maps, from `items` or `csv` (exactly one).
fn items_of(spec: &BatchSpec) -> Result<Vec<BTreeMap<String, String>>> {
    let rows: Vec<BTreeMap<String, String>> = match (&spec.items, &spec.csv) {
        (Some(_), Some(_)) => {
            return Err(Error::bad_request("give `items` or `csv`, not both"));
        }
        (None, None) => return Err(Error::bad_request("a batch needs `items` or `csv`")),
        (Some(items), None) => items
            .iter()
            .enumerate()
            .map(|(i, o)| {
                o.iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => Ok((k.clone(), s.clone())),
                        Value::Number(n) => Ok((k.clone(), n.to_string())),
                        Value::Bool(b) => Ok((k.clone(), b.to_string())),
                        _ => Err(Error::bad_request(format!(
                            "item {}: field `{k}` must be text or a number",
                            i + 1
                        ))),
                    })
                    .collect::<Result<BTreeMap<_, _>>>()
            })
            .collect::<Result<_>>()?,
        (None, Some(text)) => {
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            let mut r = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .flexible(false)
                .from_reader(text.as_bytes());
            let header: Vec<String> = r
                .headers()
                .map_err(|e| Error::bad_request(format!("the CSV header cannot be read: {e}")))?
                .iter()
                .map(str::to_owned)
                .collect();
            let mut rows = Vec::new();
            for (i, rec) in r.records().enumerate() {
                let rec = rec.map_err(|e| Error::bad_request(format!("CSV row {}: {e}", i + 2)))?;
                if rec.iter().all(str::is_empty) {
                    continue;
                }
                rows.push(
                    header
                        .iter()
                        .cloned()
                        .zip(rec.iter().map(str::to_owned))
                        .collect(),
                );
            }
            rows
        }
    };
    if rows.is_empty() {
        return Err(Error::bad_request("a batch needs at least one item"));
    }
    if rows.len() > MAX_BATCH_ITEMS {
        return Err(Error::bad_request(format!(
            "a batch has at most {MAX_BATCH_ITEMS} items (this one has {})",
            rows.len()
        )));
    }
    for (i, row) in rows.iter().enumerate() {
        for (k, v) in row {
            if !placeholders::is_name(k) {
                return Err(Error::bad_request(format!(
                    "item {}: `{k}` is not a field name (letters, digits and _)",
                    i + 1
                )));
            }
            if v.len() > MAX_VALUE || v.chars().any(char::is_control) {
                return Err(Error::bad_request(format!(
                    "item {}: field `{k}` must be one line of at most {MAX_VALUE} bytes",
                    i + 1
                )));
            }
        }
    }
    Ok(rows)
}

/// The short tag a batch's branches and checkpoint are named with.
pub fn batch_tag(id: &str) -> String {
    let hex: String = id.chars().filter(char::is_ascii_hexdigit).collect();
    hex[hex.len().saturating_sub(8)..].to_owned()
}

impl SessionManager {
    /// Checks and stores a batch; the agent runs it. Needs write on an active session. Items
    /// start from `checkpoint`, or from a new checkpoint `batch-<tag>` at the head of `branch`.
    pub async fn create_batch(
        &self,
        caller: &Caller,
        session: &str,
        spec: &BatchSpec,
    ) -> Result<BatchRow> {
        let s = self.writable(caller, session).await?;
        let request = spec.request.trim();
        if request.is_empty() || request.len() > MAX_REQUEST {
            return Err(Error::bad_request(format!(
                "`request` must be 1 to {MAX_REQUEST} bytes"
            )));
        }
        placeholders::names(request).map_err(Error::bad_request)?;
        let mode = match spec.mode.as_deref() {
            None | Some("branches") => "branches",
            Some("shared") => "shared",
            Some(other) => {
                return Err(Error::bad_request(format!(
                    "unknown mode `{other}`: use branches or shared"
                )));
            }
        };
        let concurrency = spec.concurrency.unwrap_or(4);
        if !(1..=MAX_BATCH_CONCURRENCY).contains(&concurrency) {
            return Err(Error::bad_request(format!(
                "concurrency must be 1 to {MAX_BATCH_CONCURRENCY}"
            )));
        }
        let seconds = spec.item_timeout_seconds.unwrap_or(120);
        if !(1..=MAX_ITEM_SECONDS).contains(&seconds) {
            return Err(Error::bad_request(format!(
                "item_timeout_seconds must be 1 to {MAX_ITEM_SECONDS}"
            )));
        }
        let rows = items_of(spec)?;
        let mut items = Vec::with_capacity(rows.len());
        for (i, row) in rows.into_iter().enumerate() {
            let filled = placeholders::fill(request, &row)
                .map_err(|e| Error::bad_request(format!("item {}: {e}", i + 1)))?;
            let fields: Map<String, Value> = row
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            items.push((Value::Object(fields), filled));
        }
        let id = kiln_types::NodeId::new().to_string();
        let (checkpoint, from_node) = match &spec.checkpoint {
            Some(name) => {
                let found = self
                    .checkpoints(caller, session)
                    .await?
                    .into_iter()
                    .find(|c| &c.name == name)
                    .ok_or_else(|| Error::not_found(format!("checkpoint `{name}` not found")))?;
                (found.name, found.node)
            }
            None => {
                let branch = spec.branch.as_deref().unwrap_or(&s.default_branch);
                let cp = self
                    .create_checkpoint(
                        caller,
                        session,
                        &format!("batch-{}", batch_tag(&id)),
                        Some(branch),
                        None,
                    )
                    .await?;
                (cp.name, cp.node)
            }
        };
        Ok(self
            .db
            .insert_batch(&NewBatch {
                session_id: session,
                id: &id,
                user_id: &caller.user_id,
                request,
                mode,
                concurrency: if mode == "shared" { 1 } else { concurrency },
                item_timeout_ms: u64::from(seconds) * 1000,
                from_node: &from_node,
                checkpoint: Some(&checkpoint),
                items: &items,
            })
            .await?)
    }

    /// A batch with its progress, and its items when `with_items`.
    pub async fn batch(
        &self,
        caller: &Caller,
        session: &str,
        id: &str,
        with_items: bool,
    ) -> Result<BatchView> {
        self.readable(caller, session).await?;
        let batch = self.db.batch(session, id).await?;
        let items = self.db.batch_items(session, id).await?;
        Ok(BatchView::new(batch, items, with_items))
    }

    /// A session's batches, newest first (at most 50), without their items.
    pub async fn batches(&self, caller: &Caller, session: &str) -> Result<Vec<BatchView>> {
        self.readable(caller, session).await?;
        let mut out = Vec::new();
        for b in self.db.batches(session, 50).await? {
            let counts = self.db.batch_status_counts(session, &b.id).await?;
            out.push(BatchView::counted(b, &counts));
        }
        Ok(out)
    }

    /// Cancels a running batch (needs write): pending items will not run and a running one is
    /// stopped by its runner within a second. Cancelling a finished batch is a 409.
    pub async fn cancel_batch(
        &self,
        caller: &Caller,
        session: &str,
        id: &str,
    ) -> Result<BatchView> {
        self.writable(caller, session).await?;
        let batch = self.db.batch(session, id).await?;
        if !self.db.cancel_batch(session, id).await? {
            return Err(Error::new(
                kiln_types::ErrorKind::Conflict,
                "batch_finished",
                format!("batch {id} is already {}", batch.status),
            ));
        }
        self.batch(caller, session, id, false).await
    }

    // The runner's side: no permission checks beyond the ones the turns themselves make.

    /// Takes the next pending item of a running batch.
    pub async fn claim_batch_item(&self, session: &str, id: &str) -> Result<Option<BatchItemRow>> {
        Ok(self.db.claim_batch_item(session, id).await?)
    }

    /// Records the branch an item runs on.
    pub async fn set_batch_item_branch(
        &self,
        session: &str,
        id: &str,
        idx: u32,
        branch: &str,
    ) -> Result<()> {
        Ok(self
            .db
            .set_batch_item_branch(session, id, idx, branch)
            .await?)
    }

    /// Records how an item ended.
    pub async fn finish_batch_item(
        &self,
        session: &str,
        id: &str,
        idx: u32,
        outcome: &ItemOutcome,
    ) -> Result<()> {
        Ok(self.db.finish_batch_item(session, id, idx, outcome).await?)
    }

    /// Marks the batch done when nothing is left; true once it is finished.
    pub async fn settle_batch(&self, session: &str, id: &str) -> Result<bool> {
        Ok(self.db.settle_batch(session, id).await?)
    }

    /// The batch's status as stored (`running`, `done`, `cancelled`).
    pub async fn batch_status(&self, session: &str, id: &str) -> Result<String> {
        Ok(self.db.batch(session, id).await?.status)
    }

    /// Batches left running by a stopped server, their running items back to pending, each
    /// with the caller who started it.
    pub async fn resume_batches(&self) -> Result<Vec<(Caller, BatchRow)>> {
        let mut out = Vec::new();
        for b in self.db.resume_batches().await? {
            match self.db.user(&b.user_id).await {
                Ok(u) => out.push((
                    Caller {
                        user_id: u.id.clone(),
                        name: u.name.clone(),
                        is_owner: u.is_owner,
                        client: None,
                    },
                    b,
                )),
                Err(e) => tracing::warn!(batch = %b.id, "the batch's user is gone: {e}"),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> BatchSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn items_come_from_json_or_csv_and_bad_ones_are_named() {
        let rows = items_of(&spec(json!({"request": "x", "items": [
            {"formula": "LiFePO4", "t": 700}, {"formula": "LiCoO2", "t": 650.5}]})))
        .unwrap();
        assert_eq!(rows[1]["t"], "650.5");
        let rows = items_of(&spec(json!({"request": "x",
            "csv": "\u{feff}formula, note\nLiFePO4,\"olivine, cheap\"\n\nNaCl,salt\n"})))
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["note"], "olivine, cheap");
        for (bad, says) in [
            (json!({"request": "x"}), "needs `items` or `csv`"),
            (json!({"request": "x", "items": []}), "at least one item"),
            (
                json!({"request": "x", "items": [{"f": {"a": 1}}]}),
                "item 1: field `f`",
            ),
            (
                json!({"request": "x", "items": [{"bad name": "a"}]}),
                "not a field name",
            ),
            (json!({"request": "x", "csv": "a,b\n1\n"}), "CSV row 2"),
            (
                json!({"request": "x", "items": [{"a": "1"}], "csv": "a\n1"}),
                "not both",
            ),
        ] {
            let e = items_of(&spec(bad.clone())).unwrap_err();
            assert!(e.message.contains(says), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn the_results_table_has_a_column_per_field_and_number() {
        let item = |idx: u32, f: &str, status: &str, numbers: Option<Value>| BatchItemRow {
            idx,
            item: json!({"formula": f}),
            request: format!("Analyse {f}"),
            status: status.into(),
            attempts: 1,
            branch: Some(format!("batch-x-{idx}")),
            answer: Some(format!("{f}: fine, \"quoted\"")),
            numbers,
            error: None,
            started_at: None,
            finished_at: None,
        };
        let view = BatchView::new(
            BatchRow {
                session_id: "s".into(),
                id: "b".into(),
                user_id: "u".into(),
                request: "Analyse {formula}".into(),
                mode: "branches".into(),
                concurrency: 2,
                item_timeout_ms: 1000,
                from_node: "n".into(),
                checkpoint: None,
                status: "running".into(),
                created_at: "2026-12-04T10:00:00Z".into(),
                updated_at: "2026-12-04T10:00:00Z".into(),
                finished_at: None,
            },
            vec![
                item(0, "LiFePO4", "done", Some(json!({"molar_mass": 157.755}))),
                item(1, "Xx9", "failed", None),
                item(2, "NaCl", "pending", None),
            ],
            true,
        );
        assert_eq!(view.counts.done, 1);
        assert!((view.progress - 2.0 / 3.0).abs() < 1e-9);
        let csv = view.to_csv().unwrap();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next().unwrap(),
            "item,formula,status,branch,answer,molar_mass,error"
        );
        assert_eq!(
            lines.next().unwrap(),
            "1,LiFePO4,done,batch-x-0,\"LiFePO4: fine, \"\"quoted\"\"\",157.755,"
        );
    }
}
