//! The stand-alone audit record of a session (`GET /v1/sessions/{id}/audit/export`), as
//! ALchemist's audit export is: session metadata, the branch optimizer's search space, the data
//! table (suggested versus actual, status, exclusions with their reasons), the decisions of
//! each iteration (locks with who and when), the whole audit log and its chain verification.
//! One JSON document; the Markdown is rendered from it, so the two never disagree. Reads only.

use std::collections::BTreeMap;

use kiln_bayesopt::OptimizerState;
use kiln_bayesopt::report::Table;
use kiln_bayesopt::space::format_number;
use kiln_session::{Caller, Error, Result};
use serde_json::{Value, json};

use crate::agent::Agent;
use crate::tools::optimizer::NAME;

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFormat {
    /// Markdown for people and publications.
    Markdown,
    /// The same record as JSON.
    Json,
}

impl AuditFormat {
    /// Reads `markdown` (or `md`) and `json`; anything else is a 400 naming both.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "markdown" | "md" => Ok(AuditFormat::Markdown),
            "json" => Ok(AuditFormat::Json),
            other => Err(Error::bad_request(format!(
                "unknown audit export format '{other}' (markdown or json)"
            ))),
        }
    }
}

fn inputs_text(v: &Value) -> String {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, x)| match x {
                    Value::String(s) => format!("{k} = {s}"),
                    Value::Number(n) => {
                        format!("{k} = {}", format_number(n.as_f64().unwrap_or(f64::NAN)))
                    }
                    other => format!("{k} = {other}"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The data rows: every experiment, then every queue entry not (yet) an experiment.
fn data_rows(st: &OptimizerState) -> Vec<Value> {
    let mut rows: Vec<Value> = st
        .experiments
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let q = st.queued_for(e);
            json!({
                "number": i + 1,
                "status": if e.excluded.is_some() { "excluded" } else { "measured" },
                "source": if q.is_some() { "queue" } else { "outside_queue" },
                "queued": q.map(|q| &q.id),
                "iteration": q.map(|q| q.iteration),
                "strategy": q.map(|q| &q.strategy),
                "suggested": q.map(|q| &q.suggested),
                "actual": e.inputs,
                "output": e.output,
                "outputs": e.outputs,
                "noise": e.noise,
                "excluded": e.excluded,
            })
        })
        .collect();
    rows.extend(st.queue.iter().filter(|q| q.experiment.is_none()).map(|q| {
        json!({
            "number": null,
            "status": q.status.as_str(),
            "source": "queue",
            "queued": q.id,
            "iteration": q.iteration,
            "strategy": q.strategy,
            "suggested": q.suggested,
            "actual": q.actual,
            "output": null,
            "reason": q.reason,
        })
    }));
    rows
}

impl Agent {
    /// The session's audit record as a JSON value: metadata, the branch's (default: the
    /// session's default branch) optimizer space and data, decisions by iteration, every
    /// audit entry with its actor's name, and the chain verification. Needs read access.
    pub async fn audit_record(
        &self,
        caller: &Caller,
        session: &str,
        branch: Option<&str>,
    ) -> Result<Value> {
        let s = self.manager().session(caller, session).await?;
        let branch = branch.unwrap_or(&s.default_branch).to_owned();
        let state = self.manager().state(caller, session, &branch, None).await?;
        let st = state
            .tools
            .get(NAME)
            .map(|v| serde_json::from_value::<OptimizerState>(v.clone()))
            .transpose()
            .map_err(|e| {
                Error::internal(format!("the stored optimizer state is unreadable: {e}"))
            })?;
        let (entries, verification) = self.manager().audit_verified(caller, session).await?;
        let mut ids: Vec<&str> = entries.iter().map(|e| e.actor.as_str()).collect();
        ids.push(&s.owner_id);
        let names: BTreeMap<String, String> = self
            .manager()
            .db()
            .user_names(ids)
            .await
            .map_err(Error::from)?;
        let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());
        let audit: Vec<Value> = entries
            .iter()
            .map(|e| {
                json!({"seq": e.seq, "at": e.at, "actor": name(&e.actor), "action": e.action,
                       "payload": e.payload, "hash": e.hash})
            })
            .collect();
        // Decisions by iteration: the locks as the chain recorded them (who and when).
        let mut iterations: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
        for e in &entries {
            if e.action != format!("{NAME}.lock") {
                continue;
            }
            let it = e
                .payload
                .get("iteration")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            iterations.entry(it).or_default().push(json!({
                "what": e.payload.get("what"), "actor": name(&e.actor), "at": e.at,
                "notes": e.payload.get("notes"), "seq": e.seq, "hash": e.hash,
                "confirmed_proposal": e.payload.get("confirmed_proposal"),
                "details": e.payload,
            }));
        }
        let iterations: Vec<Value> = iterations
            .into_iter()
            .map(|(i, d)| json!({"iteration": i, "decisions": d}))
            .collect();
        Ok(json!({
            "format": "kiln.audit-record/1",
            "exported_at": kiln_db::now(),
            "session": {
                "id": s.id, "name": s.name, "description": s.description,
                "owner": name(&s.owner_id), "project": s.project, "tags": s.tags,
                "created_at": s.created_at, "last_activity_at": s.last_activity_at,
                "status": s.status,
            },
            "branch": branch,
            "search_space": st.as_ref().map(|st| json!({
                "variables": st.space, "objective": st.objective, "outputs": st.outputs,
                "constraints": st.constraints.iter().map(|c| &c.text).collect::<Vec<_>>(),
            })),
            "data": st.as_ref().map(data_rows).unwrap_or_default(),
            "iterations": iterations,
            "audit": audit,
            "verification": verification,
        }))
    }
}

/// The record as Markdown.
pub fn audit_markdown(r: &Value) -> String {
    let s = &r["session"];
    let str_of = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let mut out = format!("# Audit record: {}\n\n## Session\n\n", str_of(&s["name"]));
    for (label, key) in [
        ("Session", "id"),
        ("Owner", "owner"),
        ("Project", "project"),
        ("Status", "status"),
        ("Created", "created_at"),
        ("Last activity", "last_activity_at"),
    ] {
        if let Some(v) = s[key].as_str().filter(|v| !v.is_empty()) {
            out.push_str(&format!("- {label}: {v}\n"));
        }
    }
    if let Some(tags) = s["tags"].as_array().filter(|t| !t.is_empty()) {
        let tags: Vec<String> = tags.iter().map(str_of).collect();
        out.push_str(&format!("- Tags: {}\n", tags.join(", ")));
    }
    out.push_str(&format!(
        "- Branch: {}\n- Exported: {}\n",
        str_of(&r["branch"]),
        str_of(&r["exported_at"])
    ));
    if let Some(d) = s["description"].as_str().filter(|d| !d.is_empty()) {
        out.push_str(&format!("\n{d}\n"));
    }
    out.push_str("\n## Search space\n\n");
    match r["search_space"].as_object() {
        None => out.push_str("_No optimizer on this branch._\n"),
        Some(space) => {
            if let Ok(sp) = serde_json::from_value::<kiln_bayesopt::space::SearchSpace>(
                space["variables"].clone(),
            ) {
                out.push_str(&kiln_bayesopt::report::space_table(&sp));
            }
            let o = &space["objective"];
            out.push_str(&format!(
                "\nObjective: {} **{}**{}\n",
                str_of(&o["goal"]),
                str_of(&o["name"]),
                o["unit"]
                    .as_str()
                    .map(|u| format!(" ({u})"))
                    .unwrap_or_default()
            ));
            if let Some(c) = space["constraints"].as_array().filter(|c| !c.is_empty()) {
                let c: Vec<String> = c.iter().map(str_of).collect();
                out.push_str(&format!("\nConstraints: {}\n", c.join("; ")));
            }
        }
    }
    out.push_str("\n## Data\n\n");
    let data = r["data"].as_array().cloned().unwrap_or_default();
    if data.is_empty() {
        out.push_str("_No experiments._\n");
    } else {
        let columns = [
            "#",
            "Iteration",
            "Source",
            "Status",
            "Suggested",
            "Actual",
            "Output",
            "Excluded / reason",
        ];
        let rows = data
            .iter()
            .map(|d| {
                let num = |k: &str| d[k].as_u64().map(|n| n.to_string()).unwrap_or_default();
                let source = match (d["source"].as_str(), d["strategy"].as_str()) {
                    (Some("queue"), Some(st)) => format!("queue {} ({st})", str_of(&d["queued"])),
                    _ => "outside the queue".into(),
                };
                let suggested = inputs_text(&d["suggested"]);
                let actual = inputs_text(&d["actual"]);
                vec![
                    num("number"),
                    num("iteration"),
                    source,
                    str_of(&d["status"]),
                    if suggested.is_empty() {
                        "–".into()
                    } else {
                        suggested.clone()
                    },
                    if actual == suggested && !actual.is_empty() {
                        "as suggested".into()
                    } else {
                        actual
                    },
                    d["output"].as_f64().map(format_number).unwrap_or_default(),
                    d["excluded"]
                        .as_str()
                        .or(d["reason"].as_str())
                        .unwrap_or("")
                        .to_owned(),
                ]
            })
            .collect();
        out.push_str(
            &Table {
                columns: columns.map(String::from).to_vec(),
                rows,
            }
            .markdown(),
        );
    }
    out.push_str("\n## Decisions by iteration\n\n");
    let iterations = r["iterations"].as_array().cloned().unwrap_or_default();
    if iterations.is_empty() {
        out.push_str("_No locked decisions._\n");
    }
    for it in &iterations {
        out.push_str(&format!("### Iteration {}\n\n", it["iteration"]));
        for d in it["decisions"].as_array().into_iter().flatten() {
            let details = &d["details"];
            let what = str_of(&d["what"]);
            let recorded = match what.as_str() {
                "data" => format!(
                    "{} experiments, fingerprint {}",
                    details["n_experiments"],
                    str_of(&details["data_fingerprint"])
                ),
                "model" => format!(
                    "{} kernel on {} experiments, LOO RMSE {}",
                    str_of(&details["kernel"]),
                    details["n_experiments"],
                    details["cv"]["rmse"]
                        .as_f64()
                        .map(format_number)
                        .unwrap_or_default()
                ),
                "acquisition" => {
                    let points: Vec<String> = details["points"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| inputs_text(&p["inputs"]))
                        .collect();
                    format!(
                        "{} point(s) by {}: {}",
                        points.len(),
                        str_of(&details["strategy"]),
                        points.join("; ")
                    )
                }
                _ => String::new(),
            };
            out.push_str(&format!(
                "- **{what}** locked by {} at {}{}: {recorded}",
                str_of(&d["actor"]),
                str_of(&d["at"]),
                d["confirmed_proposal"]
                    .as_str()
                    .map(|p| format!(" (confirming the agent's proposal {p})"))
                    .unwrap_or_default(),
            ));
            if let Some(n) = d["notes"].as_str().filter(|n| !n.is_empty()) {
                out.push_str(&format!(" — {}", n.replace('\n', " ")));
            }
            out.push_str(&format!(
                " (entry {}, hash {})\n",
                d["seq"],
                &str_of(&d["hash"]).chars().take(16).collect::<String>()
            ));
        }
        out.push('\n');
    }
    let v = &r["verification"];
    out.push_str("## Audit chain\n\n");
    if v["valid"].as_bool() == Some(true) {
        out.push_str(&format!(
            "Verified: {} entries, the hash chain is intact.\n",
            v["entries"]
        ));
    } else {
        out.push_str(&format!(
            "**Not verified**: the chain breaks at entry {} ({}).\n",
            v["first_broken"],
            str_of(&v["reason"])
        ));
    }
    let audit = r["audit"].as_array().cloned().unwrap_or_default();
    if !audit.is_empty() {
        out.push_str("\n## Audit log\n\n");
        let rows = audit
            .iter()
            .map(|e| {
                vec![
                    e["seq"].to_string(),
                    str_of(&e["at"]),
                    str_of(&e["actor"]),
                    str_of(&e["action"]),
                    str_of(&e["hash"]).chars().take(16).collect(),
                ]
            })
            .collect();
        out.push_str(
            &Table {
                columns: ["Entry", "At", "Actor", "Action", "Hash"]
                    .map(String::from)
                    .to_vec(),
                rows,
            }
            .markdown(),
        );
    }
    out
}

fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Agent {
    /// The branch's optimizer as an ALchemist session file: its space, experiments (with
    /// `Iteration` and `Reason` from the queue), staged queue, model, last suggestions and the
    /// locks as ALchemist audit entries (time from Kiln's chain, ALchemist's hash). Reads only.
    pub async fn optimizer_export_alchemist(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
    ) -> Result<Value> {
        let s = self.manager().session(caller, session).await?;
        let st = self.manager().state(caller, session, branch, None).await?;
        let st: OptimizerState = st
            .tools
            .get(NAME)
            .map(|v| serde_json::from_value(v.clone()))
            .transpose()
            .map_err(|e| Error::internal(format!("the stored optimizer state is unreadable: {e}")))?
            .ok_or_else(|| {
                Error::new(
                    kiln_types::ErrorKind::NotFound,
                    "no_optimizer",
                    format!("branch '{branch}' has no optimizer yet"),
                )
            })?;
        let entries = self.manager().audit(caller, session).await?;
        let times: Vec<String> = entries
            .iter()
            .filter(|e| e.action == format!("{NAME}.lock"))
            .map(|e| e.at.clone())
            .collect();
        // The chain's lock entries are of every branch; they line up with this branch's locks
        // only when it holds them all, else the times are left out rather than guessed.
        let times = if times.len() == st.locks.len() {
            times
        } else {
            Vec::new()
        };
        let meta = kiln_bayesopt::alchemist::AlchemistMetadata {
            session_id: s.id.clone(),
            name: s.name.clone(),
            created_at: s.created_at.clone(),
            last_modified: s.last_activity_at.clone(),
            description: s.description.clone(),
            tags: s.tags.clone(),
            author: None,
        };
        Ok(kiln_bayesopt::alchemist::to_alchemist(
            &st,
            &meta,
            &times,
            &sha256_hex,
        ))
    }

    /// A new session from an ALchemist session file: the optimizer state on its default branch
    /// (one state node), and each ALchemist audit entry appended to Kiln's chain as
    /// `alchemist.<entry_type>` with `imported: true` and ALchemist's hash kept as
    /// `original_hash`. What Kiln does not keep is listed in `metadata.alchemist.dropped`.
    pub async fn import_alchemist(
        &self,
        caller: &Caller,
        bytes: &[u8],
    ) -> Result<kiln_session::Session> {
        let invalid =
            |m: String| Error::new(kiln_types::ErrorKind::BadRequest, "invalid_alchemist", m);
        let file: Value = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("not an ALchemist session file (JSON): {e}")))?;
        let imp = kiln_bayesopt::alchemist::from_alchemist(&file)
            .map_err(|e| invalid(format!("not an ALchemist session file Kiln can read: {e}")))?;
        let name = Some(imp.metadata.name.trim())
            .filter(|n| !n.is_empty())
            .unwrap_or("ALchemist import")
            .to_owned();
        let req = kiln_session::CreateSession {
            name,
            description: imp.metadata.description.clone(),
            tags: imp.metadata.tags.clone(),
            metadata: Some(json!({"alchemist": {
                "session_id": imp.metadata.session_id, "created_at": imp.metadata.created_at,
                "last_modified": imp.metadata.last_modified, "author": imp.metadata.author,
                "dropped": imp.dropped,
            }})),
            ..Default::default()
        };
        let s = self.manager().create_session(caller, req).await?;
        let state = serde_json::to_value(&imp.state).map_err(|e| Error::internal(e.to_string()))?;
        self.manager()
            .append_event(
                caller,
                &s.id,
                &s.default_branch,
                kiln_session::EventInput {
                    event: kiln_types::StateEvent::ToolState {
                        tool: NAME.to_owned(),
                        state,
                    },
                    expected_head: None,
                },
            )
            .await?;
        for e in &imp.audit {
            let payload = json!({
                "imported": true, "source": "alchemist", "entry_type": e.entry_type,
                "timestamp": e.timestamp, "notes": e.notes, "parameters": e.parameters,
                "original_hash": e.hash,
                "hash_verifies": kiln_bayesopt::alchemist::entry_hash(&e.parameters, &sha256_hex) == e.hash,
            });
            self.manager()
                .record_audit(
                    caller,
                    &s.id,
                    &format!("alchemist.{}", e.entry_type),
                    &payload,
                )
                .await?;
        }
        self.manager().session(caller, &s.id).await
    }
}
