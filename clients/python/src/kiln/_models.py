"""Pydantic models of the server's documented shapes, and the operations the client calls.

Response models allow extra fields (a newer server may add some); request models forbid them,
and `tests/test_openapi.py` holds both to `/v1/openapi.json`: every documented response field is
a field here, every request field here is documented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kiln import _html

SessionStatus = Literal["created", "active", "paused", "archived", "resumed"]
SessionType = Literal["interactive", "batch", "research", "collaborative"]
Permission = Literal["read", "comment", "write", "add_materials", "manage", "owner"]
Strategy = Literal["fail", "ours", "theirs", "union"]


class Model(BaseModel):
    """A response shape: unknown fields are kept, not refused."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Request(BaseModel):
    """A request body: only documented fields, sent by their wire names."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# ---------------------------------------------------------------- responses


class Health(Model):
    status: str
    version: str
    reason: str | None = None


class InstanceKey(Model):
    algorithm: str
    public_key: str
    trusted_keys: list[str] = []
    #: Other servers sharing this store (several servers on one PostgreSQL).
    server_keys: list[str] = []


class Session(Model):
    id: str
    owner_id: str
    name: str
    description: str = ""
    session_type: SessionType = "interactive"
    status: SessionStatus
    project: str | None = None
    tags: list[str] = []
    metadata: dict[str, Any] = {}
    config: dict[str, Any] = {}
    template: str | None = None
    default_branch: str = "main"
    version: int
    provenance: str | None = None
    created_at: str
    updated_at: str
    #: When anything last happened in the session (a message, an event, a tool run, a move).
    last_activity_at: str = ""
    #: Its folder in the project (`/experiments/2026/jan`); `/` when the server leaves it out.
    folder: str = "/"
    #: Write-protected: every write is refused (409 session_protected) until unprotected.
    protected: bool = False
    protected_at: str | None = None


class ListedSession(Session):
    shared_with_you: dict[str, Any] | None = None


class FoundSession(Model):
    """`PUT /v1/projects/{project}/sessions/{name}`: the session, made now or found."""

    session: Session
    created: bool
    #: Older sessions of the same owner, project and name; they keep working.
    duplicates: list[str] = []


class Project(Model):
    name: str
    sessions: int
    last_activity_at: str = ""


class FolderTree(Model):
    path: str
    sessions: list[Session] = []
    #: Sub-folders, each `{path, sessions, folders}` (plain data: the shape nests).
    folders: list[dict[str, Any]] = []


class ProjectTree(Model):
    project: str
    tree: FolderTree
    truncated: bool = False


class NotebookTrack(Model):
    name: str
    points: int
    batches: int


class NotebookSummary(Model):
    branch: str
    log_lines: int
    params: int
    param_changes: int
    tracks: list[NotebookTrack] = []
    files: int


class NotebookParams(Model):
    params: dict[str, Any] = {}


class ParamChange(Model):
    at: str
    by: str
    key: str
    old: Any = None
    new: Any = None


class NotebookParamChanges(Model):
    changes: list[ParamChange] = []


class NotebookLogLine(Model):
    at: str
    level: str
    message: str
    metadata: dict[str, Any] | None = None


class NotebookLogPage(Model):
    lines: list[NotebookLogLine] = []
    total: int
    offset: int = 0
    next_offset: int | None = None


class NotebookTrackPage(Model):
    track: str
    total: int
    offset: int = 0
    #: Each point: its fields and its `index` on the branch.
    points: list[dict[str, float]] = []
    next_offset: int | None = None


class NotebookTrackStats(Model):
    track: str
    points: int
    batches: int
    #: Field → {count, min, max, mean, last}.
    fields: dict[str, dict[str, float]] = {}


class NotebookFile(Model):
    id: str
    name: str
    sha256: str
    bytes: int
    content_type: str
    at: str
    by: str
    deleted_at: str | None = None
    deleted_by: str | None = None


class NotebookTracks(Model):
    items: list[NotebookTrack] = []


class NotebookFiles(Model):
    items: list[NotebookFile] = []


class Node(Model):
    id: str
    seq: int
    parent_id: str | None = None
    kind: str
    role: str
    author: str | None = None
    content: str
    data: Any = None
    tokens: int | None = None
    merge_parent_id: str | None = None
    created_at: str


class AppendOutcome(Model):
    nodes: list[Node]
    head: str
    activated: bool


class Branch(Model):
    name: str
    head: str
    base: str
    status: Literal["open", "merged", "discarded"]
    version: int
    created_by: str | None = None
    created_at: str
    updated_at: str


class Checkpoint(Model):
    name: str
    node: str
    branch: str | None = None
    auto: bool
    created_by: str | None = None
    created_at: str


class Restored(Model):
    branch: str
    old_head: str
    new_head: str
    saved_as: str


class MergeConflictItem(Model):
    """One field both branches changed since their base (schema `Conflict`)."""

    field: str
    base: Any = None
    ours: Any = None
    theirs: Any = None
    #: The conflict's handle in a merge's ``resolutions`` and its words.
    key: str = ""
    description: str = ""
    subject: str = ""
    base_text: str | None = None
    ours_text: str = ""
    theirs_text: str = ""
    can_keep_both: bool = False
    #: How the merge settled it (``ours``, ``theirs`` or ``both``); absent while open.
    resolution: str | None = None


class MergeResult(Model):
    merged: bool
    merge_node: str | None = None
    base: str
    head: str
    summary: str
    resolved: list[MergeConflictItem] = []


class Focus(Model):
    material: str | None = None
    topic: str | None = None


class Material(Model):
    formula: str
    data: Any = None
    first_node: str
    last_node: str
    mentions: int


class Discovery(Model):
    id: str
    type: str
    description: str
    materials: list[str] = []
    evidence: list[str] = []
    confidence: float | None = None
    source: str
    node: str


class Hypothesis(Model):
    id: str
    statement: str
    status: str
    node: str


class Task(Model):
    id: str
    description: str
    status: str
    node: str


class Link(Model):
    from_: str = Field(alias="from")
    to: str
    relationship: str
    notes: str | None = None
    node: str


class ResearchState(Model):
    materials: list[Material] = []
    discoveries: list[Discovery] = []
    links: list[Link] = []
    hypotheses: list[Hypothesis] = []
    tasks: list[Task] = []
    context: dict[str, Any] = {}
    focus: Focus = Focus()
    tools: dict[str, Any] = {}

    def _repr_html_(self) -> str:
        return _html.state_html(self)


class DiffResult(Model):
    from_: str = Field(alias="from")
    to: str
    base: str
    only_from: list[Node] = []
    only_to: list[Node] = []
    state: dict[str, Any] = {}
    #: The research-state changes in sentences.
    changes: list[str] = []
    only_from_total: int = 0
    only_to_total: int = 0
    from_truncated: bool = False
    to_truncated: bool = False


class SessionEvent(Model):
    id: int
    from_: SessionStatus | None = Field(default=None, alias="from")
    to: SessionStatus
    actor: str
    reason: str
    at: str


class AuditEntry(Model):
    seq: int
    actor: str
    action: str
    payload: Any = None
    at: str
    prev_hash: str
    hash: str


class AuditVerification(Model):
    valid: bool
    entries: int
    first_broken: int | None = None
    reason: str | None = None


class OptimizerController(Model):
    """An external controller's lock on a branch's optimizer (the token only when taken)."""

    branch: str
    holder: str
    acquired_by: str
    acquired_at: str
    renewed_at: str
    expires_at: str
    token: str | None = None


class OptimizerQueued(Model):
    """One entry of a branch optimizer's experiment queue, with its provenance."""

    id: str
    iteration: int
    strategy: str
    suggested: dict[str, Any]
    status: Literal["queued", "running", "done", "failed"]
    acquisition: dict[str, Any] | None = None
    kernel: str | None = None
    seed: int | None = None
    predicted_mean: float | None = None
    predicted_std: float | None = None
    actual: dict[str, Any] | None = None
    experiment: str | None = None
    reason: str | None = None


class ReflogEntry(Model):
    id: int
    branch: str
    old_head: str | None = None
    new_head: str
    actor: str
    reason: str
    at: str


class Collaborator(Model):
    user_id: str
    name: str
    permissions: list[Permission]
    added_by: str | None = None
    added_at: str
    updated_at: str


class Contribution(Model):
    user_id: str
    name: str
    queries: int
    messages: int
    discoveries: int
    materials: int


class ShareLink(Model):
    id: str
    session_id: str
    node_id: str
    branch: str | None = None
    checkpoint: str | None = None
    created_by: str | None = None
    created_at: str | None = None
    expires_at: str
    max_views: int | None = None
    views: int = 0
    revoked_at: str | None = None


class CreatedShare(Model):
    id: str
    token: str
    path: str
    url: str
    expires_at: str
    session_id: str | None = None
    node_id: str | None = None
    branch: str | None = None
    checkpoint: str | None = None
    created_by: str | None = None
    created_at: str | None = None
    max_views: int | None = None
    views: int = 0
    revoked_at: str | None = None


class SearchHit(Model):
    node_id: str | None = None
    kind: str
    snippet: str
    score: float
    created_at: str | None = None
    branches: list[str] = []


class SearchSession(Model):
    session_id: str
    session_name: str
    score: float
    hits: list[SearchHit] = []


class SearchPage(Model):
    items: list[SearchSession]
    next_cursor: str | None = None
    fuzzy: bool


class Statistics(Model):
    active_seconds: int
    queries: int
    messages: int
    materials: int
    discoveries: int
    tool_usage: dict[str, int] = {}
    contributions: dict[str, dict[str, int]] = {}
    branches: int
    checkpoints: int


class SessionSummary(Model):
    key_findings: list[dict[str, Any]] = []
    materials_of_interest: list[dict[str, Any]] = []
    open_hypotheses: list[str] = []
    next_steps: list[str] = []
    focus: Focus = Focus()
    counts: dict[str, int] = {}


class ContextWindow(Model):
    messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    total_tokens: int
    budget: int
    over_budget: bool
    findings: list[str] = []
    focus: str | None = None
    history_nodes: list[str] = []
    recent_materials: list[str] = []
    summary_node: str | None = None
    memory: list[str] = []
    recalled: list[RecallItem] = []


class RecallItem(Model):
    session_id: str
    session_name: str
    node_id: str | None = None
    kind: Literal["discovery", "hypothesis", "optimizer"]
    text: str


class BatchCounts(Model):
    pending: int
    running: int
    done: int
    failed: int
    cancelled: int


class BatchItem(Model):
    idx: int
    item: dict[str, Any]
    request: str
    status: Literal["pending", "running", "done", "failed", "cancelled"]
    attempts: int
    branch: str | None = None
    answer: str | None = None
    numbers: dict[str, Any] | None = None
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class Batch(Model):
    id: str
    session_id: str
    user_id: str | None = None
    request: str
    mode: Literal["branches", "shared"]
    concurrency: int
    item_timeout_ms: int | None = None
    from_node: str | None = None
    checkpoint: str | None = None
    status: Literal["running", "done", "cancelled"]
    created_at: str | None = None
    updated_at: str | None = None
    finished_at: str | None = None
    total: int
    counts: BatchCounts
    progress: float
    elapsed_seconds: float = 0.0
    items: list[BatchItem] | None = None


class MemoryEntry(Model):
    id: str
    kind: Literal["note", "preference"]
    content: str
    source: Literal["user", "agent"]
    session_id: str | None = None
    created_at: str
    updated_at: str


class Cleared(Model):
    cleared: list[str]
    head: str | None = None


class Compressed(Model):
    summary: dict[str, Any] | None = None
    tokens_before: int
    tokens_after: int
    usage: dict[str, Any] = {}


class ToolCallRecord(Model):
    id: str
    name: str
    arguments: Any = None
    ok: bool
    text: str
    result: Any = None
    call_node: str
    result_node: str


class ToolInfo(Model):
    name: str
    description: str
    writes: bool
    parameters: dict[str, Any]


class TurnOutcome(Model):
    session: str
    branch: str
    user_node: str
    answer_node: str
    answer: str
    tool_calls: list[dict[str, Any]] = []
    discoveries: list[dict[str, Any]] = []
    steps: int
    model: str
    head: str
    budget_exhausted: bool = False
    interrupted: bool = False
    context_tokens: int | None = None
    summary_node: str | None = None
    usage: dict[str, Any] = {}


# ---------------------------------------------------------------- requests


class NewSession(Request):
    name: str
    description: str | None = None
    session_type: SessionType | None = None
    project: str | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    checkpoint_frequency: str | None = None
    duration_days: int | None = None
    template: str | None = None
    members: list[dict[str, Any]] | None = None


class SessionPatch(Request):
    name: str | None = None
    description: str | None = None
    project: str | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    context: dict[str, Any] | None = None


class StatusChange(Request):
    status: SessionStatus


class NewBranch(Request):
    name: str
    from_: dict[str, str] | None = Field(default=None, alias="from")


class NewCheckpoint(Request):
    name: str
    branch: str | None = None
    node: str | None = None


class BranchOnly(Request):
    """Restore and recover: which branch (default: the session's default branch)."""

    branch: str | None = None


class MergeRequest(Request):
    into: str
    strategy: Strategy | None = None


class NewMessage(Request):
    role: str
    content: str
    expected_head: str | None = None


class MaterialEvent(Request):
    kind: Literal["material"] = "material"
    formula: str
    data: Any = None
    expected_head: str | None = None


class DiscoveryEvent(Request):
    kind: Literal["discovery"] = "discovery"
    type: str
    description: str
    id: str | None = None
    materials: list[str] | None = None
    evidence: list[str] | None = None
    confidence: float | None = None
    source: Literal["manual", "auto"] | None = None
    expected_head: str | None = None


class HypothesisEvent(Request):
    kind: Literal["hypothesis"] = "hypothesis"
    statement: str
    id: str | None = None
    status: Literal["open", "supported", "refuted"] | None = None
    expected_head: str | None = None


class TaskEvent(Request):
    kind: Literal["task"] = "task"
    description: str
    id: str | None = None
    status: Literal["pending", "in_progress", "done", "cancelled"] | None = None
    expected_head: str | None = None


class Query(Request):
    message: str
    branch: str | None = None


class ToolCall(Request):
    arguments: dict[str, Any]
    branch: str | None = None


class NewCollaborator(Request):
    user: str
    permissions: list[Permission]


class CollaboratorPatch(Request):
    permissions: list[Permission]


class NewShare(Request):
    expires_in_days: int
    max_views: int | None = None
    branch: str | None = None
    checkpoint: str | None = None


class PinItem(Request):
    kind: str
    content: str
    name: str | None = None
    branch: str | None = None


class Compress(Request):
    keep_recent: int | None = None
    branch: str | None = None


class BatchSpec(Request):
    request: str
    items: list[dict[str, Any]] | None = None
    csv: str | None = None
    mode: Literal["branches", "shared"] | None = None
    concurrency: int | None = None
    item_timeout_seconds: int | None = None
    checkpoint: str | None = None
    branch: str | None = None


class MemoryInput(Request):
    content: str
    kind: Literal["note", "preference"] | None = None


class MemoryPatch(Request):
    content: str | None = None
    kind: Literal["note", "preference"] | None = None


class PutProjectSession(Request):
    folder: str | None = None
    description: str | None = None
    tags: list[str] | None = None


class NotebookLogInput(Request):
    message: str
    level: str | None = None
    metadata: dict[str, Any] | None = None


class NotebookPoints(Request):
    points: list[dict[str, float]] | None = None
    point: dict[str, float] | None = None


# ---------------------------------------------------------------- operations


@dataclass(frozen=True)
class Op:
    """One documented operation: its OpenAPI id, method, path, body and answer models."""

    method: str
    path: str
    request: type[Request] | tuple[type[Request], ...] | None = None
    response: type[Model] | None = None
    paged: bool = False


S = "/v1/sessions/{id}"
B = S + "/branches/{b}"
NB = B + "/notebook"

OPS: dict[str, Op] = {
    "get_health": Op("GET", "/v1/health", None, Health),
    "get_instance_key": Op("GET", "/v1/instance/key", None, InstanceKey),
    "get_tools": Op("GET", "/v1/tools", None, ToolInfo, paged=True),
    "get_search": Op("GET", "/v1/search", None, SearchPage),
    "post_sessions_id_batches": Op("POST", S + "/batches", BatchSpec, Batch),
    "get_sessions_id_batches": Op("GET", S + "/batches", None, Batch, paged=True),
    "get_sessions_id_batches_batch": Op("GET", S + "/batches/{batch}", None, Batch),
    "post_sessions_id_batches_batch_cancel": Op("POST", S + "/batches/{batch}/cancel", None, Batch),
    "get_sessions_id_batches_batch_results_csv": Op("GET", S + "/batches/{batch}/results.csv"),
    "get_me_memory": Op("GET", "/v1/me/memory", None, MemoryEntry, paged=True),
    "post_me_memory": Op("POST", "/v1/me/memory", MemoryInput, MemoryEntry),
    "patch_me_memory_id": Op("PATCH", "/v1/me/memory/{id}", MemoryPatch, MemoryEntry),
    "delete_me_memory_id": Op("DELETE", "/v1/me/memory/{id}"),
    "get_sessions": Op("GET", "/v1/sessions", None, ListedSession, paged=True),
    "post_sessions": Op("POST", "/v1/sessions", NewSession, Session),
    "post_sessions_import": Op("POST", "/v1/sessions/import", None, Session),
    "get_sessions_id": Op("GET", S, None, Session),
    "patch_sessions_id": Op("PATCH", S, SessionPatch, Session),
    "delete_sessions_id": Op("DELETE", S),
    "post_sessions_id_status": Op("POST", S + "/status", StatusChange, Session),
    "get_sessions_id_events": Op("GET", S + "/events", None, SessionEvent, paged=True),
    "get_sessions_id_audit": Op("GET", S + "/audit", None, AuditEntry, paged=True),
    "get_sessions_id_audit_verify": Op("GET", S + "/audit/verify", None, AuditVerification),
    "get_sessions_id_reflog": Op("GET", S + "/reflog", None, ReflogEntry, paged=True),
    "get_sessions_id_branches": Op("GET", S + "/branches", None, Branch, paged=True),
    "post_sessions_id_branches": Op("POST", S + "/branches", NewBranch, Branch),
    "get_sessions_id_branches_b_optimizer": Op("GET", B + "/optimizer"),
    "patch_sessions_id_branches_b_optimizer_experiments_n": Op(
        "PATCH", B + "/optimizer/experiments/{n}"
    ),
    "get_sessions_id_branches_b_optimizer_optimum": Op("GET", B + "/optimizer/optimum"),
    "get_sessions_id_branches_b_optimizer_queue": Op(
        "GET", B + "/optimizer/queue", None, OptimizerQueued, paged=True
    ),
    "post_sessions_id_branches_b_optimizer_queue": Op(
        "POST", B + "/optimizer/queue", None, ToolCallRecord
    ),
    "post_sessions_id_branches_b_optimizer_queue_q_start": Op(
        "POST", B + "/optimizer/queue/{q}/start", None, ToolCallRecord
    ),
    "post_sessions_id_branches_b_optimizer_queue_q_complete": Op(
        "POST", B + "/optimizer/queue/{q}/complete", None, ToolCallRecord
    ),
    "post_sessions_id_branches_b_optimizer_queue_q_fail": Op(
        "POST", B + "/optimizer/queue/{q}/fail", None, ToolCallRecord
    ),
    "post_sessions_id_branches_b_optimizer_lock": Op(
        "POST", B + "/optimizer/lock", None, OptimizerController
    ),
    "post_sessions_id_branches_b_optimizer_lock_renew": Op(
        "POST", B + "/optimizer/lock/renew", None, OptimizerController
    ),
    "delete_sessions_id_branches_b_optimizer_lock": Op(
        "DELETE", B + "/optimizer/lock", None, OptimizerController
    ),
    "post_sessions_id_branches_b_optimizer_locks_p_confirm": Op(
        "POST", B + "/optimizer/locks/{p}/confirm", None, ToolCallRecord
    ),
    "get_sessions_id_audit_export": Op("GET", S + "/audit/export"),
    "get_sessions_id_branches_b_optimizer_export": Op("GET", B + "/optimizer/export"),
    "get_sessions_id_branches_b_optimizer_plots_file": Op("GET", B + "/optimizer/plots/{file}"),
    "post_sessions_id_branches_b_discard": Op("POST", B + "/discard", None, Branch),
    "post_sessions_id_branches_b_reopen": Op("POST", B + "/reopen", None, Branch),
    "post_sessions_id_branches_b_merge": Op("POST", B + "/merge", MergeRequest, MergeResult),
    "get_sessions_id_branches_b_messages": Op("GET", B + "/messages", None, Node, paged=True),
    "post_sessions_id_branches_b_messages": Op("POST", B + "/messages", NewMessage, AppendOutcome),
    "post_sessions_id_branches_b_events": Op(
        "POST",
        B + "/events",
        (MaterialEvent, DiscoveryEvent, HypothesisEvent, TaskEvent),
        AppendOutcome,
    ),
    "get_sessions_id_branches_b_state": Op("GET", B + "/state", None, ResearchState),
    "get_sessions_id_checkpoints": Op("GET", S + "/checkpoints", None, Checkpoint, paged=True),
    "post_sessions_id_checkpoints": Op("POST", S + "/checkpoints", NewCheckpoint, Checkpoint),
    "post_sessions_id_checkpoints_name_restore": Op(
        "POST", S + "/checkpoints/{name}/restore", BranchOnly, Restored
    ),
    "post_sessions_id_recover": Op("POST", S + "/recover", BranchOnly, Restored),
    "get_sessions_id_diff": Op("GET", S + "/diff", None, DiffResult),
    "post_sessions_id_query": Op("POST", S + "/query", Query, TurnOutcome),
    "post_sessions_id_tools_tool": Op("POST", S + "/tools/{tool}", ToolCall, ToolCallRecord),
    "get_sessions_id_context": Op("GET", S + "/context", None, ContextWindow),
    "post_sessions_id_context_items": Op("POST", S + "/context/items", PinItem, AppendOutcome),
    "delete_sessions_id_context_items": Op("DELETE", S + "/context/items", None, Cleared),
    "post_sessions_id_context_compress": Op("POST", S + "/context/compress", Compress, Compressed),
    "get_sessions_id_summary": Op("GET", S + "/summary", None, SessionSummary),
    "get_sessions_id_statistics": Op("GET", S + "/statistics", None, Statistics),
    "get_sessions_id_contributions": Op(
        "GET", S + "/contributions", None, Contribution, paged=True
    ),
    "get_sessions_id_collaborators": Op(
        "GET", S + "/collaborators", None, Collaborator, paged=True
    ),
    "post_sessions_id_collaborators": Op(
        "POST", S + "/collaborators", NewCollaborator, Collaborator
    ),
    "patch_sessions_id_collaborators_user": Op(
        "PATCH", S + "/collaborators/{user}", CollaboratorPatch, Collaborator
    ),
    "delete_sessions_id_collaborators_user": Op("DELETE", S + "/collaborators/{user}"),
    "post_sessions_id_leave": Op("POST", S + "/leave"),
    "get_sessions_id_shares": Op("GET", S + "/shares", None, ShareLink, paged=True),
    "post_sessions_id_shares": Op("POST", S + "/shares", NewShare, CreatedShare),
    "delete_sessions_id_shares_share": Op("DELETE", S + "/shares/{share}", None, ShareLink),
    "get_sessions_id_export": Op("GET", S + "/export"),
    "get_projects": Op("GET", "/v1/projects", None, Project, paged=True),
    "get_projects_project_sessions": Op(
        "GET", "/v1/projects/{project}/sessions", None, ProjectTree
    ),
    "put_projects_project_sessions_name": Op(
        "PUT", "/v1/projects/{project}/sessions/{name}", PutProjectSession, FoundSession
    ),
    "post_sessions_id_protect": Op("POST", S + "/protect", None, Session),
    "post_sessions_id_unprotect": Op("POST", S + "/unprotect", None, Session),
    "get_sessions_id_branches_b_notebook": Op("GET", NB, None, NotebookSummary),
    "get_sessions_id_branches_b_notebook_params": Op("GET", NB + "/params", None, NotebookParams),
    "patch_sessions_id_branches_b_notebook_params": Op(
        "PATCH", NB + "/params", None, ToolCallRecord
    ),
    "get_sessions_id_branches_b_notebook_params_history": Op(
        "GET", NB + "/params/history", None, NotebookParamChanges
    ),
    "get_sessions_id_branches_b_notebook_logs": Op("GET", NB + "/logs", None, NotebookLogPage),
    "post_sessions_id_branches_b_notebook_logs": Op(
        "POST", NB + "/logs", NotebookLogInput, ToolCallRecord
    ),
    "get_sessions_id_branches_b_notebook_tracks": Op(
        "GET", NB + "/tracks", None, NotebookTracks
    ),
    "get_sessions_id_branches_b_notebook_tracks_track": Op(
        "GET", NB + "/tracks/{track}", None, NotebookTrackPage
    ),
    "post_sessions_id_branches_b_notebook_tracks_track": Op(
        "POST", NB + "/tracks/{track}", NotebookPoints, ToolCallRecord
    ),
    "get_sessions_id_branches_b_notebook_tracks_track_stats": Op(
        "GET", NB + "/tracks/{track}/stats", None, NotebookTrackStats
    ),
    "get_sessions_id_branches_b_notebook_files": Op("GET", NB + "/files", None, NotebookFiles),
    "post_sessions_id_branches_b_notebook_files": Op("POST", NB + "/files", None, ToolCallRecord),
    "get_sessions_id_branches_b_notebook_files_file": Op("GET", NB + "/files/{file}"),
    "delete_sessions_id_branches_b_notebook_files_file": Op(
        "DELETE", NB + "/files/{file}", None, ToolCallRecord
    ),
}
