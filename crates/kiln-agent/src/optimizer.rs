//! The optimizer as a session resource: reads of a branch's `bayesian_optimizer` state (status,
//! experiments, predict, optimum, charts, a CSV preview) that write nothing, and writes that run
//! the tool's own actions through [`Agent::call_tool`], so a route, a script and the agent share
//! one record and every change is a node on the branch (it branches, merges and restores).

use std::collections::BTreeMap;

use kiln_bayesopt::experiment::{CsvReport, read_csv};
use kiln_bayesopt::space::{Inputs, Value as BoValue};
use kiln_bayesopt::{Error as BoError, OptimizerState};
use kiln_session::{Caller, Error, Result};
use kiln_types::ErrorKind;
use serde_json::{Value, json};

use crate::agent::{Agent, ToolCallRecord, seed_for};
use crate::tools::optimizer::NAME;

/// A chart of the optimizer panel.
#[derive(Debug, Clone, PartialEq)]
pub enum Plot {
    /// Best value so far against experiment number.
    Convergence,
    /// The model's mean and ±2σ band along one variable, through the best experiment.
    Dependence {
        /// The variable.
        variable: String,
    },
    /// The model's mean over two variables.
    Map {
        /// Across.
        x: String,
        /// Up.
        y: String,
    },
    /// Leave-one-out predicted against measured.
    Parity,
}

/// A CSV upload read against the branch's space.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CsvUpload {
    /// The column mapping, good rows and per-row errors.
    #[serde(flatten)]
    pub report: CsvReport,
    /// Whether rows were recorded (false for a preview).
    pub committed: bool,
    /// The tool call that recorded them, when rows were recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<ToolCallRecord>,
}

/// A kiln-bayesopt error as the session layer reports it: bad input 400 (per-row errors in
/// `details.rows`), an unknown experiment 404, a state not ready for the action 409.
pub fn optimizer_error(e: BoError) -> Error {
    match e {
        BoError::InvalidExperiments(rows) => Error::new(
            ErrorKind::BadRequest,
            "invalid_experiments",
            BoError::InvalidExperiments(rows.clone()).to_string(),
        )
        .with_details(json!({ "rows": rows })),
        BoError::NotFound(m) => Error::new(ErrorKind::NotFound, "no_such_experiment", m),
        BoError::NoSuchQueued(m) => Error::new(ErrorKind::NotFound, "no_such_queued", m),
        BoError::NoSuchProposal(m) => Error::new(ErrorKind::NotFound, "no_such_proposal", m),
        BoError::QueueState(m) => Error::new(ErrorKind::Conflict, "queue_state", m),
        BoError::MissingState(m) => Error::new(ErrorKind::Conflict, "optimizer_not_ready", m),
        BoError::Numerical(m) => Error::new(
            ErrorKind::BadRequest,
            "model_fit_failed",
            format!("model fit failed: {m}"),
        ),
        BoError::InvalidSpace(_) => {
            Error::new(ErrorKind::BadRequest, "invalid_space", e.to_string())
        }
        other => Error::bad_request(other.to_string()),
    }
}

fn no_optimizer(branch: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        "no_optimizer",
        format!(
            "branch '{branch}' has no optimizer yet: define its space first (PUT …/optimizer/space)"
        ),
    )
}

/// Runs CPU work (a GP fit, a chart) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, BoError> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("the optimizer stopped: {e}")))?
        .map_err(optimizer_error)
}

/// Where an experiment came from ("queue" or "outside_queue") and the point suggested for it
/// (null outside the queue).
fn suggested_for(
    st: &OptimizerState,
    e: &kiln_bayesopt::experiment::Experiment,
) -> (&'static str, Value) {
    match st.queued_for(e) {
        Some(q) => (
            "queue",
            serde_json::to_value(&q.suggested).unwrap_or(Value::Null),
        ),
        None => ("outside_queue", Value::Null),
    }
}

/// Suggested versus actual for every experiment, numbered from 1.
fn provenance(st: &OptimizerState) -> Vec<Value> {
    st.experiments
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let (source, suggested) = suggested_for(st, e);
            let q = st.queued_for(e);
            json!({
                "number": i + 1,
                "source": source,
                "queued": q.map(|q| &q.id),
                "iteration": q.map(|q| q.iteration),
                "strategy": q.map(|q| &q.strategy),
                "suggested": suggested,
                "actual": e.inputs,
                "derived": kiln_bayesopt::derived::values(&st.derived, &e.inputs),
                "output": e.output,
                "excluded": e.excluded,
            })
        })
        .collect()
}

impl Agent {
    /// The branch's optimizer state, if any, and a seed fixed by the branch head (the same
    /// head gives the same answers). Needs read access; writes nothing.
    async fn optimizer_read(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
    ) -> Result<(Option<OptimizerState>, u64)> {
        let state = self.manager().state(caller, session, branch, None).await?;
        let head = self
            .manager()
            .db()
            .branch(session, branch)
            .await
            .map_err(Error::from)?
            .head;
        let seed = seed_for(session, &head, "optimizer_read");
        let st = state
            .tools
            .get(NAME)
            .map(|v| {
                serde_json::from_value::<OptimizerState>(v.clone()).map_err(|e| {
                    Error::internal(format!("the stored optimizer state is unreadable: {e}"))
                })
            })
            .transpose()?;
        Ok((st, seed))
    }

    async fn optimizer_required(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
    ) -> Result<(OptimizerState, u64)> {
        match self.optimizer_read(caller, session, branch).await? {
            (Some(st), seed) => Ok((st, seed)),
            (None, _) => Err(no_optimizer(branch)),
        }
    }

    /// Status: space, objective and other outputs, counts, best, the stored model's fit, last
    /// suggestions and locks. Writes nothing and fits nothing.
    pub async fn optimizer_status(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
    ) -> Result<Value> {
        let (st, _) = self.optimizer_required(caller, session, branch).await?;
        let controller = self
            .manager()
            .controller_lock(caller, session, branch)
            .await?;
        let active = st.active().count();
        Ok(json!({
            "controller": controller,
            "branch": branch,
            "space": st.space,
            "objective": st.objective,
            "outputs": st.outputs,
            "derived": st.derived,
            "iteration": st.iteration(),
            "n_experiments": st.experiments.len(),
            "n_active": active,
            "n_excluded": st.experiments.len() - active,
            "best": st.best(),
            "model": st.model,
            "model_current": st.model_is_current(),
            "last_suggestions": st.last_suggestions,
            "locks": st.locks,
            "queue": st.queue,
            "provenance": provenance(&st),
            "proposals": st.proposals,
        }))
    }

    /// The experiment queue, oldest first, with each entry's provenance and status.
    pub async fn optimizer_queue(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
    ) -> Result<Value> {
        let (st, _) = self.optimizer_required(caller, session, branch).await?;
        Ok(json!({"items": st.queue}))
    }

    /// Every recorded experiment, numbered from 1, excluded ones with their reason.
    pub async fn optimizer_experiments(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
    ) -> Result<Value> {
        let (st, _) = self.optimizer_required(caller, session, branch).await?;
        let items: Vec<Value> = st
            .experiments
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
                v["number"] = json!(i + 1);
                v["key"] = json!(e.key());
                let (source, suggested) = suggested_for(&st, e);
                v["source"] = json!(source);
                v["suggested"] = suggested;
                v["derived"] = json!(kiln_bayesopt::derived::values(&st.derived, &e.inputs));
                v
            })
            .collect();
        Ok(json!({"items": items}))
    }

    /// The model's mean and std at one point given as variable name → text value. Writes
    /// nothing (a stale model is refitted in memory only).
    pub async fn optimizer_predict(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        point: BTreeMap<String, String>,
    ) -> Result<Value> {
        let (mut st, seed) = self.optimizer_required(caller, session, branch).await?;
        if point.is_empty() {
            return Err(Error::bad_request(
                "name the point in the query, one parameter per variable (?temp=200&time=3)",
            ));
        }
        let inputs: Inputs = point
            .into_iter()
            .map(|(k, v)| (k, BoValue::Text(v)))
            .collect();
        blocking(move || {
            let raw = st
                .space
                .parse_inputs(&inputs)
                .map_err(|(f, m)| BoError::InvalidPoint(format!("{}: {m}", f.unwrap_or_default())))?;
            let model = st.surrogate(None, false, seed)?;
            let p = model.predict(&raw);
            Ok(json!({"inputs": st.space.to_inputs(&raw), "mean": p.mean, "std": p.std, "objective": st.objective.name}))
        })
        .await
    }

    /// The model's best predicted point. Writes nothing.
    pub async fn optimizer_optimum(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
    ) -> Result<Value> {
        let (mut st, seed) = self.optimizer_required(caller, session, branch).await?;
        blocking(move || {
            let p = kiln_bayesopt::action::optimum(&mut st, seed)?;
            Ok(json!({"inputs": p.inputs, "mean": p.mean, "std": p.std, "objective": st.objective.name, "goal": st.objective.goal}))
        })
        .await
    }

    /// One chart as SVG. Writes nothing.
    pub async fn optimizer_plot(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        plot: Plot,
        grid: Option<usize>,
    ) -> Result<String> {
        let (mut st, seed) = self.optimizer_required(caller, session, branch).await?;
        blocking(move || match plot {
            Plot::Convergence => Ok(kiln_bayesopt::plot::state_convergence_svg(&st)),
            Plot::Dependence { variable } => {
                kiln_bayesopt::figures::dependence_svg(&mut st, &variable, grid, seed)
            }
            Plot::Map { x, y } => kiln_bayesopt::figures::map_svg(&mut st, &x, &y, grid, seed),
            Plot::Parity => kiln_bayesopt::figures::parity_svg(&mut st, seed),
        })
        .await
    }

    /// Runs one optimizer action as a recorded tool call on the branch. Actions that only
    /// check their input (define_space, add_experiments, edit_experiment) are tried on the
    /// current state first, so a refusal is typed (per-row errors, 404 for an unknown row)
    /// rather than a tool error; then the tool runs and records it.
    /// While an external controller holds the branch, only a request carrying its token
    /// (`controller_token`) changes it: others get 409 `optimizer_controlled`.
    pub async fn optimizer_write(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        args: Value,
        controller_token: Option<&str>,
    ) -> Result<ToolCallRecord> {
        // Write access first: a reader learns nothing from a validation error.
        self.manager().active_session(caller, session).await?;
        let action = args.get("action").and_then(Value::as_str).unwrap_or("");
        if crate::tools::optimizer::changes_state(action) {
            self.manager()
                .check_controller(session, branch, controller_token)
                .await?;
        }
        let (st, _) = self.optimizer_read(caller, session, branch).await?;
        if st.is_none() && action != "define_space" {
            return Err(no_optimizer(branch));
        }
        if matches!(
            action,
            "define_space"
                | "add_experiments"
                | "edit_experiment"
                | "queue"
                | "start"
                | "complete"
                | "fail"
                | "confirm_lock"
                | "reject_lock"
        ) {
            let probe = args.clone();
            blocking(move || kiln_bayesopt::apply(st, &probe, 0).map(|_| ())).await?;
        }
        self.call_tool_as(caller, session, Some(branch), NAME, args, controller_token)
            .await
    }

    /// Reads CSV text against the branch's space. A preview writes nothing. Otherwise the
    /// good rows are recorded when there are no bad ones, or when `skip_invalid`; else 400
    /// with every bad row in `details.rows`.
    pub async fn optimizer_csv(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        text: String,
        preview: bool,
        skip_invalid: bool,
        controller_token: Option<&str>,
    ) -> Result<CsvUpload> {
        if !preview {
            self.manager().active_session(caller, session).await?;
            self.manager()
                .check_controller(session, branch, controller_token)
                .await?;
        }
        let (st, _) = self.optimizer_required(caller, session, branch).await?;
        let report = read_csv(&text, &st.space, &st.objective.name, &st.output_names())
            .map_err(optimizer_error)?;
        if preview {
            return Ok(CsvUpload {
                report,
                committed: false,
                call: None,
            });
        }
        if !report.errors.is_empty() && !skip_invalid {
            let n = report.errors.len();
            return Err(Error::new(
                ErrorKind::BadRequest,
                "invalid_experiments",
                format!(
                    "{n} invalid row(s), nothing recorded: fix them, or send skip_invalid=true to record the {} good row(s)",
                    report.rows.len()
                ),
            )
            .with_details(json!({"rows": report.errors, "columns": report.columns})));
        }
        if report.rows.is_empty() {
            return Err(Error::bad_request("the upload has no good rows to record"));
        }
        let rows: Vec<Value> = report
            .rows
            .iter()
            .map(|r| serde_json::to_value(&r.experiment).unwrap_or(Value::Null))
            .collect();
        let call = self
            .call_tool_as(
                caller,
                session,
                Some(branch),
                NAME,
                json!({"action": "add_experiments", "experiments": rows}),
                controller_token,
            )
            .await?;
        Ok(CsvUpload {
            report,
            committed: true,
            call: Some(call),
        })
    }
}
