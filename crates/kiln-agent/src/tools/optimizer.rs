//! `bayesian_optimizer`: kiln-bayesopt as a session tool. Its whole state (space, experiments,
//! fitted model, suggestions, locks) is one tool state on the branch, so it branches,
//! checkpoints and merges with the session; locks also go to the session's audit log.

use futures::future::BoxFuture;
use kiln_bayesopt::Choice;
use kiln_bayesopt::merge::{inputs_text, objective_text, space_text};
use kiln_bayesopt::space::format_number;
use kiln_bayesopt::{Error as BoError, OptimizerState};
use kiln_types::StateEvent;
use kiln_types::state::words::ConflictWords;
use kiln_types::state::{Conflict, Resolution, Resolver, ToolMerge};
use serde_json::{Value, json};

use crate::tool::{Tool, ToolContext, ToolError, ToolOutput, ToolView, ViewChart, ViewTable};

/// The tool's name.
pub const NAME: &str = "bayesian_optimizer";

/// The Bayesian optimizer tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct BayesianOptimizer;

fn to_tool_error(e: BoError) -> ToolError {
    match e {
        BoError::Numerical(m) => ToolError::Failed(format!("model fit failed: {m}")),
        BoError::InvalidExperiments(rows) => ToolError::InvalidArguments(format!(
            "{} invalid experiment row(s), nothing added: {}",
            rows.len(),
            rows.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )),
        // The tool error says "invalid arguments" itself: pass the inner text only.
        BoError::InvalidArguments(m) => ToolError::InvalidArguments(m),
        BoError::QueueState(m) | BoError::NoSuchQueued(m) => ToolError::Failed(m),
        other => ToolError::InvalidArguments(other.to_string()),
    }
}

/// Whether an action can change the branch's optimizer (everything but the reads).
pub fn changes_state(action: &str) -> bool {
    !matches!(
        action,
        "status" | "predict" | "optimum" | "confirm_lock" | "reject_lock"
    )
}

fn load(ctx: &ToolContext) -> Result<Option<OptimizerState>, ToolError> {
    ctx.tool_state(NAME)
        .map(|v| {
            serde_json::from_value(v.clone()).map_err(|e| {
                ToolError::Failed(format!("the stored optimizer state is unreadable: {e}"))
            })
        })
        .transpose()
}

/// Fewest experiments in use for the model charts on the page.
pub const VIEW_MIN_EXPERIMENTS: usize = 3;
/// Most experiments in use for which the page draws model charts (a LOO pass is O(n³)); past
/// it the charts are a request away (`GET …/optimizer/plots/{kind}.svg`).
pub const VIEW_MAX_EXPERIMENTS: usize = 200;
/// Most variables the page draws the model along (one chart each).
pub const VIEW_MAX_VARIABLES: usize = 6;
/// Points along each of the page's model lines.
const VIEW_GRID: usize = 41;

/// The model along each variable and the LOO parity chart, for the page. A page view never
/// fits a model: the charts are drawn only from a stored model that is current (fitted to the
/// experiments as they are, which suggest, predict and lock leave), so their cost is a few
/// hundred predictions and one LOO pass.
fn model_charts(mut st: OptimizerState) -> Vec<ViewChart> {
    let n = st.active().count();
    if !(VIEW_MIN_EXPERIMENTS..=VIEW_MAX_EXPERIMENTS).contains(&n) || !st.model_is_current() {
        return Vec::new();
    }
    let names: Vec<String> = st
        .space
        .variables()
        .iter()
        .take(VIEW_MAX_VARIABLES)
        .map(|v| v.name.clone())
        .collect();
    let mut charts = Vec::new();
    for name in names {
        if let Ok(svg) = kiln_bayesopt::figures::dependence_svg(&mut st, &name, Some(VIEW_GRID), 0)
        {
            charts.push(ViewChart {
                title: format!("Model along {name}"),
                svg,
            });
        }
    }
    if let Ok(svg) = kiln_bayesopt::figures::parity_svg(&mut st, 0) {
        charts.push(ViewChart {
            title: "Leave-one-out: predicted vs measured".into(),
            svg,
        });
    }
    charts
}

impl Tool for BayesianOptimizer {
    fn name(&self) -> &str {
        NAME
    }

    fn description(&self) -> &str {
        "Bayesian optimisation of experiments (Gaussian process, EI/PI/UCB, batches): define \
         the search space and objective, add measured experiments, suggest the next ones, \
         predict, show status, lock decisions into the audit log, and queue suggestions as \
         experiments to start, complete (measured outputs, actual inputs) or fail."
    }

    fn schema(&self) -> Value {
        kiln_bayesopt::tool_schema()
    }

    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let before = load(ctx)?;
            let seed = ctx.seed;
            let action = args
                .get("action")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            // Locks are human decisions: the model's are proposals a person confirms when the
            // session asks for that (the default), and only a person settles a proposal.
            let mut args = args;
            if ctx.by_model {
                if matches!(action.as_str(), "confirm_lock" | "reject_lock") {
                    return Err(ToolError::InvalidArguments(
                        "only a person with write access confirms or rejects a proposed lock (the optimizer tab, or POST …/optimizer/locks/{p}/confirm)".into(),
                    ));
                }
                if action == "lock"
                    && ctx
                        .manager
                        .locks_need_confirmation(&ctx.session)
                        .await
                        .map_err(|e| ToolError::Failed(e.message))?
                {
                    args["propose"] = json!(true);
                }
            }
            // While an external controller holds the branch, only its token changes it.
            if changes_state(&action) {
                ctx.manager
                    .check_controller(&ctx.session, &ctx.branch, ctx.controller_token.as_deref())
                    .await
                    .map_err(|e| ToolError::Failed(e.message))?;
            }
            let prior = before.clone();
            // Fitting a GP is CPU work (milliseconds to a second): off the async workers.
            let outcome =
                tokio::task::spawn_blocking(move || kiln_bayesopt::apply(prior, &args, seed))
                    .await
                    .map_err(|e| ToolError::Failed(format!("the optimizer stopped: {e}")))?
                    .map_err(to_tool_error)?;
            let mut output = ToolOutput::new(outcome.text, outcome.result);
            if before.as_ref() != Some(&outcome.state) {
                let state = serde_json::to_value(&outcome.state)
                    .map_err(|e| ToolError::Failed(e.to_string()))?;
                output.events.push(StateEvent::ToolState {
                    tool: NAME.to_owned(),
                    state,
                });
            }
            for (kind, payload) in outcome.audit {
                output.audit.push((format!("{NAME}.{kind}"), payload));
            }
            if let Some(lock) = outcome.lock {
                let mut payload = serde_json::to_value(&lock).unwrap_or(Value::Null);
                if let Some(p) = output.data.get("proposal") {
                    // A confirmed proposal: the confirming person is the entry's actor.
                    payload["confirmed_proposal"] = p.clone();
                }
                output.audit.push((format!("{NAME}.lock"), payload));
            }
            if let Some(obj) = output.data.as_object_mut() {
                obj.entry("action").or_insert(json!(action));
            }
            Ok(output)
        })
    }

    fn report(&self, state: &Value) -> Option<String> {
        let st: OptimizerState = serde_json::from_value(state.clone()).ok()?;
        let mut out = format!(
            "#### Search space\n\n{}\n#### Data ({} experiments)\n\n{}\n#### Iterations\n\n{}",
            kiln_bayesopt::report::space_table(&st.space),
            st.experiments.len(),
            kiln_bayesopt::report::data_table(&st),
            kiln_bayesopt::report::iteration_account(&st),
        );
        if st.experiments.len() >= 2 {
            // Inline SVG: Markdown renderers that allow HTML draw it; others show the tables.
            out.push_str(&format!(
                "\n#### Convergence\n\n{}\n",
                kiln_bayesopt::plot::state_convergence_svg(&st)
            ));
        }
        if let Some(last) = &st.last_suggestions {
            out.push_str(&format!(
                "\n#### Latest suggestions ({})\n\n",
                last.strategy
            ));
            for p in &last.points {
                let xs: Vec<String> = p.inputs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                out.push_str(&format!("- {}\n", xs.join(", ")));
            }
        }
        Some(out)
    }

    fn view(&self, state: &Value) -> Option<ToolView> {
        let st: OptimizerState = serde_json::from_value(state.clone()).ok()?;
        let table = |caption: String, t: kiln_bayesopt::report::Table| ViewTable {
            caption,
            columns: t.columns,
            rows: t.rows,
        };
        let goal = st.objective.goal.as_str();
        let mut view = ToolView {
            summary: format!(
                "{goal} {} over {} variable(s); {} experiment(s), {} locked decision(s)",
                st.objective.name,
                st.space.variables().len(),
                st.experiments.len(),
                st.locks.len()
            ),
            tables: vec![
                table(
                    "Search space".into(),
                    kiln_bayesopt::report::space_rows(&st.space),
                ),
                table(
                    format!("Data ({} experiments, ★ best)", st.experiments.len()),
                    kiln_bayesopt::report::data_rows(&st),
                ),
            ],
            charts: Vec::new(),
        };
        if let Some(last) = &st.last_suggestions {
            view.tables.push(table(
                format!("Latest suggestions ({})", last.strategy),
                kiln_bayesopt::report::suggestion_rows(&st.space, &last.points),
            ));
        }
        if !st.queue.is_empty() {
            view.tables.push(table(
                format!("Queue ({} entries)", st.queue.len()),
                kiln_bayesopt::report::queue_rows(&st),
            ));
        }
        if !st.locks.is_empty() {
            // What each locked decision recorded, in words.
            let rows = st
                .locks
                .iter()
                .map(|l| {
                    let (what, recorded) = match &l.details {
                        kiln_bayesopt::LockDetails::Data {
                            n_experiments,
                            data_fingerprint,
                            ..
                        } => (
                            "data",
                            format!("{n_experiments} experiments, fingerprint {data_fingerprint}"),
                        ),
                        kiln_bayesopt::LockDetails::Model {
                            kernel,
                            cv,
                            n_experiments,
                            ..
                        } => (
                            "model",
                            format!(
                                "{kernel:?} kernel on {n_experiments} experiments, LOO RMSE {:.3}",
                                cv.rmse
                            ),
                        ),
                        kiln_bayesopt::LockDetails::Acquisition {
                            strategy, points, ..
                        } => (
                            "acquisition",
                            format!("{} point(s) by {strategy}", points.len()),
                        ),
                    };
                    vec![
                        l.iteration.to_string(),
                        what.to_owned(),
                        recorded,
                        l.notes.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            view.tables.push(ViewTable {
                caption: "Locked decisions".into(),
                columns: vec![
                    "Iteration".into(),
                    "Locked".into(),
                    "Recorded".into(),
                    "Notes".into(),
                ],
                rows,
            });
        }
        if !st.experiments.is_empty() {
            view.charts.push(ViewChart {
                title: "Convergence".into(),
                svg: kiln_bayesopt::plot::state_convergence_svg(&st),
            });
        }
        view.charts.extend(model_charts(st));
        Some(view)
    }

    fn merge(
        &self,
        base: Option<&Value>,
        ours: &Value,
        theirs: &Value,
        resolver: &Resolver,
    ) -> Option<ToolMerge> {
        let parse = |v: &Value| serde_json::from_value::<OptimizerState>(v.clone());
        let (Ok(o), Ok(t)) = (parse(ours), parse(theirs)) else {
            return None;
        };
        let b = base.and_then(|v| parse(v).ok());
        let conflict = |c: &kiln_bayesopt::ConflictItem| {
            Conflict::new(
                format!("tools.{NAME}.{}", c.key),
                [
                    Some(c.base.clone()),
                    Some(c.ours.clone()),
                    Some(c.theirs.clone()),
                ],
                c.can_keep_both,
                ConflictWords {
                    subject: c.subject.clone(),
                    base: c.base_text.clone(),
                    ours: c.ours_text.clone(),
                    theirs: c.theirs_text.clone(),
                },
            )
        };
        let choose = |c: &kiln_bayesopt::ConflictItem| {
            resolver.pick(&conflict(c)).map(|r| match r {
                Resolution::Ours => Choice::Ours,
                Resolution::Theirs => Choice::Theirs,
                Resolution::Both => Choice::Both,
            })
        };
        let merged = kiln_bayesopt::merge_with(b.as_ref(), &o, &t, &choose);
        Some(ToolMerge {
            state: serde_json::to_value(merged.state).unwrap_or(Value::Null),
            conflicts: merged
                .conflicts
                .iter()
                .map(|(c, pick)| {
                    let mut out = conflict(c);
                    out.field = format!("tools.{NAME}.{}", c.field);
                    out.resolution = pick.map(|p| match p {
                        Choice::Ours => Resolution::Ours,
                        Choice::Theirs => Resolution::Theirs,
                        Choice::Both => Resolution::Both,
                    });
                    out
                })
                .collect(),
        })
    }

    fn describe_change(&self, from: Option<&Value>, to: Option<&Value>) -> Option<Vec<String>> {
        let parse = |v: Option<&Value>| {
            v.and_then(|v| serde_json::from_value::<OptimizerState>(v.clone()).ok())
        };
        let (f, t) = (parse(from), parse(to));
        let mut out = Vec::new();
        match (&f, &t) {
            (None, Some(t)) => out.push(format!(
                "Optimizer set up: {}, {}.",
                objective_text(&t.objective),
                space_text(&t.space)
            )),
            (Some(_), None) => out.push("Optimizer state removed.".to_string()),
            (Some(f), Some(t)) => {
                if f.space != t.space {
                    out.push(format!(
                        "Optimizer search space: {} → {}.",
                        space_text(&f.space),
                        space_text(&t.space)
                    ));
                }
                if f.objective != t.objective {
                    out.push(format!(
                        "Optimizer objective: {} → {}.",
                        objective_text(&f.objective),
                        objective_text(&t.objective)
                    ));
                }
            }
            (None, None) => return None,
        }
        let none = Vec::new();
        let (fe, te) = (
            f.as_ref().map_or(&none, |s| &s.experiments),
            t.as_ref().map_or(&none, |s| &s.experiments),
        );
        for e in te.iter().filter(|e| !fe.contains(e)) {
            out.push(format!(
                "Optimizer experiment at {}: measured {}.",
                inputs_text(&e.inputs),
                format_number(e.output)
            ));
        }
        for e in fe.iter().filter(|e| !te.contains(e)) {
            out.push(format!(
                "Optimizer experiment at {} (measured {}) removed.",
                inputs_text(&e.inputs),
                format_number(e.output)
            ));
        }
        if let (Some(f), Some(t)) = (&f, &t) {
            for q in &t.queue {
                let was = f.queue.iter().find(|p| p.id == q.id);
                if was.map(|p| p.status) != Some(q.status) {
                    out.push(format!(
                        "Optimizer queued experiment {} ({}, iteration {}) at {}: {}.",
                        q.id,
                        q.strategy,
                        q.iteration,
                        inputs_text(&q.suggested),
                        q.status.as_str()
                    ));
                }
            }
        }
        if let (Some(f), Some(t)) = (&f, &t)
            && t.locks.len() > f.locks.len()
        {
            out.push(format!(
                "Optimizer: {} new lock(s) recorded.",
                t.locks.len() - f.locks.len()
            ));
        }
        Some(out)
    }
}
