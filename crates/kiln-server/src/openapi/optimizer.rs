//! The optimizer routes of the document (`/v1/sessions/{id}/branches/{b}/optimizer/…`) and
//! their schemas, kept apart from the rest of the document.

use serde_json::{Value, json};

use super::Op;
use super::schemas::{
    array, boolean, doc, enumeration, int, int_in, map, nonblank, nullable, number, obj, r, strict,
    string, text,
};

const BASE: &str = "/v1/sessions/{id}/branches/{b}/optimizer";

/// A real, integer or categorical variable as the space takes it.
fn variable() -> Value {
    let scalar = json!({"oneOf": [number(), string()]});
    strict(
        &["name", "type"],
        &[
            (
                "name",
                nonblank(200, "the variable's name, the key in experiment inputs"),
            ),
            ("type", enumeration(&["real", "integer", "categorical"])),
            (
                "bounds",
                json!({"type": "array", "items": number(), "minItems": 2, "maxItems": 2,
                       "description": "[lower, upper] for real and integer variables"}),
            ),
            (
                "categories",
                json!({"type": "array", "items": scalar, "minItems": 2,
                       "description": "the levels of a categorical variable"}),
            ),
            (
                "log",
                doc("boolean", "search a positive real variable on a log scale"),
            ),
            ("unit", string()),
            ("description", string()),
            (
                "precision",
                doc(
                    "number",
                    "real variables: the step a lab can set (> 0); suggestions and designs are \
                     rounded to it (unset: 1 for °C, K, min, s, rpm; 0.1 for h; else about three \
                     significant figures across the range)",
                ),
            ),
        ],
    )
}

fn output_spec() -> Value {
    strict(
        &["name"],
        &[
            ("name", nonblank(200, "the column name")),
            ("unit", string()),
        ],
    )
}

/// The schemas the optimizer routes refer to.
pub(super) fn schemas() -> Vec<(&'static str, Value)> {
    let inputs = || map(json!({"oneOf": [number(), string()]}));
    vec![
        (
            "OptimizerSpace",
            strict(
                &["variables"],
                &[
                    (
                        "variables",
                        json!({"type": "array", "minItems": 1, "items": variable()}),
                    ),
                    (
                        "objective",
                        strict(
                            &["name", "goal"],
                            &[
                                ("name", nonblank(200, "the optimised output")),
                                (
                                    "goal",
                                    enumeration(&[
                                        "maximize", "minimize", "max", "min", "maximise",
                                        "minimise",
                                    ]),
                                ),
                                ("unit", string()),
                            ],
                        ),
                    ),
                    (
                        "constraints",
                        json!({"type": "array", "items": string(),
                               "description": "linear input constraints over real and integer variables, such as `x1 + x2 <= 1` or `2*temp - time >= 10`; designs, suggestions and the optimum keep to them (kept from before when left out)"}),
                    ),
                    (
                        "outputs",
                        json!({"type": "array", "items": output_spec(),
                               "description": "other measured outputs, recorded with each experiment and not optimised"}),
                    ),
                    (
                        "derived",
                        json!({"type": "array", "maxItems": 32,
                               "description": "derived variables: quantities computed from the inputs (`li / (li + na)`, `temperature * time`) and shown beside them, with each experiment and suggestion; not modelled (kept from before when left out)",
                               "items": {"type": "object", "required": ["name", "expression"],
                                         "additionalProperties": false,
                                         "properties": {
                                             "name": {"type": "string", "minLength": 1, "pattern": "\\S"},
                                             "expression": {"type": "string", "minLength": 1, "maxLength": 500},
                                             "unit": {"type": "string"}}}}),
                    ),
                ],
            ),
        ),
        (
            "OptimizerExperimentInput",
            json!({"type": "object", "description": "`{inputs, output, noise?, outputs?}`, or flat: the variables by name, `output` (or the objective's name), `noise` and the other outputs by name"}),
        ),
        (
            "OptimizerExperiment",
            obj(
                &["inputs", "output", "number", "key"],
                &[
                    (
                        "number",
                        int_in(
                            1,
                            i64::MAX,
                            "the experiment's number in the record (PATCH …/experiments/{n})",
                        ),
                    ),
                    ("key", text("the row's identity across edits and branches")),
                    ("inputs", inputs()),
                    ("output", number()),
                    ("noise", number()),
                    ("outputs", map(number())),
                    (
                        "excluded",
                        text("why the model leaves it out; absent when it is used"),
                    ),
                    (
                        "edits",
                        array(obj(
                            &["reason", "before"],
                            &[
                                ("reason", string()),
                                ("before", doc("object", "changed fields' earlier values")),
                            ],
                        )),
                    ),
                    ("id", string()),
                    (
                        "queued",
                        text("the queue entry the row completed; absent outside the queue"),
                    ),
                    ("source", enumeration(&["queue", "outside_queue"])),
                    (
                        "suggested",
                        nullable(doc(
                            "object",
                            "the point the queue suggested (null for results recorded outside the queue); `inputs` are what was run",
                        )),
                    ),
                    (
                        "derived",
                        doc("object", "the derived variables' values for these inputs"),
                    ),
                ],
            ),
        ),
        (
            "AlchemistSession",
            obj(
                &["search_space"],
                &[
                    ("version", string()),
                    (
                        "metadata",
                        doc(
                            "object",
                            "session_id, name, created_at, last_modified, description, tags, author",
                        ),
                    ),
                    (
                        "search_space",
                        obj(
                            &["variables"],
                            &[(
                                "variables",
                                array(doc(
                                    "object",
                                    "name, type (real, integer, categorical), min and max or values, unit, description",
                                )),
                            )],
                        ),
                    ),
                    (
                        "experiments",
                        doc(
                            "object",
                            "`data`: rows of the variables, Output, Noise, Iteration and Reason",
                        ),
                    ),
                    (
                        "staged_experiments",
                        array(doc(
                            "object",
                            "a queued point: the variables, reason, status",
                        )),
                    ),
                    (
                        "objective_metadata",
                        doc("object", "`Output`: label, unit, goal"),
                    ),
                    (
                        "outputs",
                        array(doc("object", "other recorded outputs (Kiln)")),
                    ),
                    ("constraints", array(string())),
                    (
                        "model",
                        nullable(doc("object", "backend, kernel, hyperparameters")),
                    ),
                    (
                        "last_suggestions",
                        nullable(doc("object", "strategy, parameters, points")),
                    ),
                    ("config", doc("object", "goal, random_state, …")),
                    (
                        "audit_log",
                        doc(
                            "object",
                            "`entries`: timestamp, entry_type (data_locked, model_locked, acquisition_locked), parameters, hash, notes",
                        ),
                    ),
                ],
            ),
        ),
        (
            "OptimizerController",
            obj(
                &[
                    "branch",
                    "holder",
                    "acquired_by",
                    "acquired_at",
                    "renewed_at",
                    "expires_at",
                ],
                &[
                    ("branch", string()),
                    (
                        "holder",
                        text("who drives the optimizer (the name the controller gave)"),
                    ),
                    ("acquired_by", text("the user whose token took the lock")),
                    ("acquired_at", text("since when (RFC 3339)")),
                    ("renewed_at", string()),
                    ("expires_at", text("when it lapses unless renewed")),
                    (
                        "token",
                        text(
                            "only in the answer that takes the lock: send it as Kiln-Lock-Token; the server keeps only its hash",
                        ),
                    ),
                ],
            ),
        ),
        (
            "OptimizerQueued",
            obj(
                &["id", "iteration", "strategy", "suggested", "status"],
                &[
                    (
                        "id",
                        text("the entry's id (q + 10 hex digits), stable across branches"),
                    ),
                    ("iteration", int()),
                    (
                        "strategy",
                        text("EI, PI, UCB, qEI, design:lhs/sobol/random, or manual"),
                    ),
                    (
                        "acquisition",
                        doc("object", "the acquisition and its parameters, as suggested"),
                    ),
                    ("kernel", enumeration(&["matern52", "rbf"])),
                    ("seed", int()),
                    ("suggested", inputs()),
                    ("predicted_mean", number()),
                    ("predicted_std", number()),
                    (
                        "status",
                        enumeration(&["queued", "running", "done", "failed"]),
                    ),
                    (
                        "actual",
                        doc(
                            "object",
                            "the inputs run, where they differ from the suggestion",
                        ),
                    ),
                    (
                        "experiment",
                        text("the recorded experiment's key, once done"),
                    ),
                    ("reason", text("why it failed")),
                ],
            ),
        ),
        (
            "OptimizerStatus",
            obj(
                &[
                    "branch",
                    "space",
                    "objective",
                    "outputs",
                    "iteration",
                    "n_experiments",
                    "n_active",
                    "n_excluded",
                    "best",
                    "model",
                    "model_current",
                    "last_suggestions",
                    "locks",
                    "queue",
                    "provenance",
                    "controller",
                    "proposals",
                ],
                &[
                    ("branch", string()),
                    ("space", array(doc("object", "a variable"))),
                    (
                        "objective",
                        obj(
                            &["name", "goal"],
                            &[("name", string()), ("goal", string()), ("unit", string())],
                        ),
                    ),
                    (
                        "outputs",
                        array(obj(&["name"], &[("name", string()), ("unit", string())])),
                    ),
                    ("iteration", int()),
                    ("n_experiments", int()),
                    ("n_active", doc("integer", "experiments the model uses")),
                    ("n_excluded", int()),
                    (
                        "best",
                        nullable(doc("object", "the best experiment the model uses")),
                    ),
                    (
                        "model",
                        nullable(doc(
                            "object",
                            "the stored fit: hyperparameters, LOO metrics (cv), data fingerprint",
                        )),
                    ),
                    (
                        "model_current",
                        doc(
                            "boolean",
                            "whether the stored fit is of the experiments as they are",
                        ),
                    ),
                    (
                        "last_suggestions",
                        nullable(doc("object", "strategy, params and points")),
                    ),
                    ("locks", array(doc("object", "a locked decision"))),
                    ("queue", array(r("OptimizerQueued"))),
                    (
                        "proposals",
                        array(doc(
                            "object",
                            "a lock the agent proposed, waiting for a person: id, iteration, what, notes and what it records",
                        )),
                    ),
                    ("controller", nullable(r("OptimizerController"))),
                    (
                        "derived",
                        array(doc("object", "a derived variable: name, expression, unit")),
                    ),
                    (
                        "provenance",
                        array(obj(
                            &["number", "source", "suggested", "actual", "output"],
                            &[
                                ("number", int()),
                                ("source", enumeration(&["queue", "outside_queue"])),
                                ("queued", nullable(string())),
                                ("iteration", nullable(int())),
                                ("strategy", nullable(string())),
                                ("suggested", nullable(inputs())),
                                ("actual", inputs()),
                                ("derived", map(number())),
                                ("output", number()),
                                ("excluded", nullable(string())),
                            ],
                        )),
                    ),
                ],
            ),
        ),
        (
            "OptimizerPrediction",
            obj(
                &["inputs", "mean", "std", "objective"],
                &[
                    ("inputs", inputs()),
                    ("mean", number()),
                    ("std", number()),
                    ("objective", string()),
                    ("goal", string()),
                ],
            ),
        ),
        (
            "OptimizerCsvUpload",
            obj(
                &["columns", "rows", "errors", "committed"],
                &[
                    (
                        "columns",
                        array(obj(
                            &["column", "role"],
                            &[
                                ("column", string()),
                                (
                                    "role",
                                    enumeration(&[
                                        "variable",
                                        "objective",
                                        "output",
                                        "noise",
                                        "unknown",
                                    ]),
                                ),
                            ],
                        )),
                    ),
                    (
                        "rows",
                        array(obj(
                            &["row", "line", "experiment"],
                            &[
                                ("row", int()),
                                ("line", int()),
                                (
                                    "experiment",
                                    doc("object", "the experiment the row becomes"),
                                ),
                            ],
                        )),
                    ),
                    ("errors", array(r("OptimizerRowError"))),
                    (
                        "committed",
                        doc("boolean", "whether the good rows were recorded"),
                    ),
                    ("call", r("ToolCallRecord")),
                ],
            ),
        ),
        (
            "OptimizerRowError",
            obj(
                &["row", "field", "message"],
                &[
                    (
                        "row",
                        doc("integer", "zero-based index among the data rows"),
                    ),
                    ("line", doc("integer", "one-based line in the upload")),
                    ("field", nullable(string())),
                    ("message", string()),
                ],
            ),
        ),
    ]
}

/// The optimizer operations.
pub(super) fn operations() -> Vec<Op> {
    vec![
        Op::new("GET", BASE, "optimizer", "The branch's optimizer: space, objective, counts, best, stored model fit (writes nothing)")
            .ok(200, r("OptimizerStatus")),
        Op::new("PUT", "/v1/sessions/{id}/branches/{b}/optimizer/space", "optimizer",
            "Define or edit the space, objective and other recorded outputs (kept experiments must fit; a change is audited as bayesian_optimizer.config)")
            .body(r("OptimizerSpace"))
            .ok(200, r("ToolCallRecord")),
        Op::new("GET", "/v1/sessions/{id}/branches/{b}/optimizer/experiments", "optimizer", "Every recorded experiment, excluded ones included (writes nothing)")
            .ok(200, obj(&["items"], &[("items", array(r("OptimizerExperiment")))])),
        Op::new("POST", "/v1/sessions/{id}/branches/{b}/optimizer/experiments", "optimizer",
            "Record one or many experiments; all or nothing, 400 `invalid_experiments` with `details.rows`")
            .body(strict(&["experiments"], &[("experiments", json!({"type": "array", "minItems": 1, "items": r("OptimizerExperimentInput")}))]))
            .ok(200, r("ToolCallRecord")),
        Op::new("POST", "/v1/sessions/{id}/branches/{b}/optimizer/experiments/csv", "optimizer",
            "Upload experiments as CSV text (header: variables, the objective or `output`, `noise`, other outputs). `preview=true` writes nothing and returns the column mapping, good rows and per-row errors; otherwise rows are recorded only when none is bad (or with `skip_invalid=true`, the good ones), else 400 with `details.rows`")
            .query("preview", boolean(), false)
            .query("skip_invalid", boolean(), false)
            .text_body("text/csv", "CSV text with a header row")
            .ok(200, r("OptimizerCsvUpload")),
        Op::new("PATCH", "/v1/sessions/{id}/branches/{b}/optimizer/experiments/{n}", "optimizer",
            "Correct or exclude experiment n (from 1) with a reason; never deleted, the earlier values stay in its edits; audited as bayesian_optimizer.experiment")
            .body(strict(
                &["reason"],
                &[
                    ("reason", nonblank(2000, "why")),
                    ("output", number()),
                    ("noise", nullable(number())),
                    ("inputs", map(json!({"oneOf": [number(), string()]}))),
                    ("outputs", map(nullable(number()))),
                    ("exclude", doc("boolean", "true: out of the model, kept in the record; false: used again")),
                ],
            ))
            .ok(200, r("ToolCallRecord")),
        Op::new("POST", "/v1/sessions/{id}/branches/{b}/optimizer/suggest", "optimizer",
            "Suggest the next experiments (an initial design below two experiments); recorded with the suggestion; a new strategy or kernel is audited; no body: one EI point")
            .optional_body(strict(
                &[],
                &[
                    ("strategy", enumeration(&["EI", "PI", "UCB", "qEI"])),
                    ("q", int_in(1, 50, "number of points")),
                    ("beta", doc("number", "UCB exploration weight (default 2)")),
                    ("xi", doc("number", "EI/PI margin in output units (default 0)")),
                    ("batch", enumeration(&["believer", "liar"])),
                    ("kernel", enumeration(&["matern52", "rbf"])),
                    ("refit", boolean()),
                ],
            ))
            .ok(200, r("ToolCallRecord")),
        Op::new("POST", "/v1/sessions/{id}/branches/{b}/optimizer/locks", "optimizer",
            "Lock the data, the model or the last suggestions (or `points` chosen outside Kiln) into the audit log for this iteration")
            .body(strict(
                &["what"],
                &[
                    ("what", enumeration(&["data", "model", "acquisition"])),
                    ("notes", string()),
                    ("kernel", enumeration(&["matern52", "rbf"])),
                    ("refit", boolean()),
                    (
                        "points",
                        json!({"type": "array", "minItems": 1, "items": map(json!({"oneOf": [number(), string()]})),
                               "description": "acquisition: points chosen outside Kiln to record (strategy `external`) instead of the last suggestions"}),
                    ),
                    (
                        "propose",
                        doc("boolean", "record it as a proposal another person confirms (…/locks/{p}/confirm) rather than a lock"),
                    ),
                ],
            ))
            .ok(200, r("ToolCallRecord")),
        Op::new("POST", "/v1/sessions/{id}/branches/{b}/optimizer/locks/{p}/confirm", "optimizer",
            "A person with write access confirms lock proposal p (the agent's locks are proposals unless the session's `metadata.optimizer.confirm_locks` is false): it becomes a lock of the current iteration, audited as bayesian_optimizer.lock with the confirming person as actor; 404 `no_such_proposal`")
            .optional_body(strict(&[], &[("notes", string())]))
            .ok(200, r("ToolCallRecord")),
        Op::new("POST", "/v1/sessions/{id}/branches/{b}/optimizer/locks/{p}/reject", "optimizer",
            "A person rejects lock proposal p with a reason (audited as bayesian_optimizer.lock_rejected); 404 `no_such_proposal`")
            .body(strict(&["reason"], &[("reason", nonblank(2000, "why"))]))
            .ok(200, r("ToolCallRecord")),
        Op::new("GET", "/v1/sessions/{id}/branches/{b}/optimizer/queue", "optimizer",
            "The experiment queue, oldest first, finished entries included, each with its provenance (writes nothing)")
            .ok(200, obj(&["items"], &[("items", array(r("OptimizerQueued")))])),
        Op::new("POST", "/v1/sessions/{id}/branches/{b}/optimizer/queue", "optimizer",
            "Queue the last suggestions (no body), or `points` chosen by hand (strategy `manual`); a suggestion already queued is skipped. 409 `optimizer_not_ready` without suggestions")
            .optional_body(strict(
                &[],
                &[(
                    "points",
                    json!({"type": "array", "minItems": 1, "items": map(json!({"oneOf": [number(), string()]}))}),
                )],
            ))
            .ok(200, r("ToolCallRecord")),
        Op::new("POST", "/v1/sessions/{id}/branches/{b}/optimizer/queue/{q}/start", "optimizer",
            "Mark queued entry q running; 404 `no_such_queued`, 409 `queue_state` unless it is queued")
            .ok(200, r("ToolCallRecord")),
        Op::new("POST", "/v1/sessions/{id}/branches/{b}/optimizer/queue/{q}/complete", "optimizer",
            "Record queued entry q's measurement as an experiment that names it: `output`, other `outputs`, `noise`, and `inputs` where the run differed from the suggestion (both are kept); 409 `queue_state` once it is done or failed")
            .body(strict(
                &["output"],
                &[
                    ("output", number()),
                    ("inputs", map(json!({"oneOf": [number(), string()]}))),
                    ("outputs", map(number())),
                    ("noise", number()),
                ],
            ))
            .ok(200, r("ToolCallRecord")),
        Op::new("POST", "/v1/sessions/{id}/branches/{b}/optimizer/queue/{q}/fail", "optimizer",
            "Give up on queued entry q, with a reason; 409 `queue_state` once it is done or failed")
            .body(strict(&["reason"], &[("reason", nonblank(2000, "why"))]))
            .ok(200, r("ToolCallRecord")),
        Op::new("GET", "/v1/sessions/{id}/branches/{b}/optimizer/export", "optimizer",
            "The branch's optimizer as an ALchemist session file (`format=alchemist`): space, experiments with Iteration and Reason, staged queue, model, last suggestions and the locks as ALchemist audit entries (Kiln's record of each rides along as `kiln_lock`, so an import gives the same state back); writes nothing")
            .query("format", enumeration(&["alchemist"]), true)
            .ok(200, r("AlchemistSession")),
        Op::new("GET", "/v1/sessions/{id}/branches/{b}/optimizer/lock", "optimizer",
            "The branch's external-controller lock, null when none is live (writes nothing)")
            .ok(200, obj(&["controller"], &[("controller", nullable(r("OptimizerController")))])),
        Op::new("POST", "/v1/sessions/{id}/branches/{b}/optimizer/lock", "optimizer",
            "Take the external-controller lock for `holder` for `ttl_seconds` (default 300, at most 86400): the answer's `token` is shown once; while the lock is live only requests carrying it as `Kiln-Lock-Token` change the optimizer (others get 409 `optimizer_controlled` naming the holder and expiry). 409 `optimizer_controlled` while another holds it. Audited as bayesian_optimizer.controller.acquire")
            .body(strict(
                &["holder"],
                &[
                    ("holder", nonblank(200, "the controller's name, shown as “driven by”")),
                    ("ttl_seconds", int_in(1, 86_400, "seconds until it lapses unless renewed (default 300)")),
                ],
            ))
            .ok(200, r("OptimizerController")),
        Op::new("POST", "/v1/sessions/{id}/branches/{b}/optimizer/lock/renew", "optimizer",
            "Move the expiry of the lock the `Kiln-Lock-Token` header proves to `ttl_seconds` from now (no node, no audit entry); 404 `no_controller_lock` once it expired or was released, 409 when another holds it")
            .optional_body(strict(
                &[],
                &[("ttl_seconds", int_in(1, 86_400, "seconds from now (default 300)"))],
            ))
            .ok(200, r("OptimizerController")),
        Op::new("DELETE", "/v1/sessions/{id}/branches/{b}/optimizer/lock", "optimizer",
            "Give up the lock the `Kiln-Lock-Token` header proves (audited as bayesian_optimizer.controller.release), or with `force=true` break whatever lock is held (audited as ….break, with who did it)")
            .query("force", boolean(), false)
            .ok(200, r("OptimizerController")),
        Op::new("GET", "/v1/sessions/{id}/branches/{b}/optimizer/predict", "optimizer",
            "The model's mean and std at one point, one query parameter per variable (`?temp=200&time=3`); writes nothing")
            .ok(200, r("OptimizerPrediction")),
        Op::new("GET", "/v1/sessions/{id}/branches/{b}/optimizer/optimum", "optimizer",
            "The model's best predicted point (writes nothing)")
            .ok(200, r("OptimizerPrediction")),
        Op::new("GET", "/v1/sessions/{id}/branches/{b}/optimizer/plots/{file}", "optimizer",
            "A chart as SVG (role=img, title, desc), writes nothing: `convergence.svg`; `dependence.svg?variable=` (the model's mean ±2σ along one variable through the best experiment, experiments as dots); `map.svg?x=&y=` (the mean over two real or integer variables, experiments drawn on it); `parity.svg` (leave-one-out predicted vs measured)")
            .query("variable", string(), false)
            .query("x", string(), false)
            .query("y", string(), false)
            .query("grid", int_in(2, 80, "points per axis (default 61 for a line, 30 for a map)"), false)
            .ok_as("image/svg+xml", text("an SVG document")),
    ]
}
