//! The notebook as a session resource: reads of a branch's notebook (parameters, history, logs,
//! tracks, stats, files) that write nothing, and writes that run the `notebook` tool's own
//! actions through [`Agent::call_tool`], so a route, a script and the agent share one record and
//! every change is a node on the branch. Reads call the same functions the tool's actions do.

use std::path::PathBuf;

use kiln_session::{Caller, Error, Result};
use serde_json::{Value, json};

use crate::agent::{Agent, ToolCallRecord, tool_error};
use crate::tool::ToolError;
use crate::tools::notebook::files::{self, FileEntry};
use crate::tools::notebook::logs::{self, LogFilter};
use crate::tools::notebook::tracks::{self, TrackRange};
use crate::tools::notebook::{NAME, NotebookState, from_state, get_params};

fn err(e: ToolError) -> Error {
    tool_error(&e)
}

impl Agent {
    /// The branch's notebook (empty when it has none). Needs read access; writes nothing.
    pub async fn notebook(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
    ) -> Result<NotebookState> {
        let state = self.manager().state(caller, session, branch, None).await?;
        from_state(state.tools.get(NAME)).map_err(err)
    }

    /// A summary: counts, parameter names, tracks with their sizes, live files.
    pub async fn notebook_summary(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
    ) -> Result<Value> {
        let nb = self.notebook(caller, session, branch).await?;
        Ok(json!({
            "branch": branch,
            "log_lines": nb.log.len(),
            "params": nb.params.len(),
            "param_changes": nb.param_history.len(),
            "tracks": track_list(&nb),
            "files": nb.files.iter().filter(|f| f.deleted_at.is_none()).count(),
        }))
    }

    /// The parameters, nested or flattened to dotted keys.
    pub async fn notebook_params(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        flatten: bool,
    ) -> Result<Value> {
        let nb = self.notebook(caller, session, branch).await?;
        Ok(get_params(&nb, flatten).data)
    }

    /// Every parameter change on the branch, oldest first.
    pub async fn notebook_param_history(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
    ) -> Result<Value> {
        let nb = self.notebook(caller, session, branch).await?;
        Ok(json!({"changes": nb.param_history}))
    }

    /// Log lines the filter keeps, oldest first, paginated.
    pub async fn notebook_logs(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        filter: &LogFilter,
    ) -> Result<Value> {
        let nb = self.notebook(caller, session, branch).await?;
        logs::read(&nb.log, filter).map_err(err)
    }

    /// The branch's tracks with their point and batch counts.
    pub async fn notebook_tracks(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
    ) -> Result<Value> {
        let nb = self.notebook(caller, session, branch).await?;
        Ok(json!({"items": track_list(&nb)}))
    }

    /// A page of a track's points.
    pub async fn notebook_track(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        name: &str,
        range: TrackRange,
    ) -> Result<Value> {
        let nb = self.notebook(caller, session, branch).await?;
        tracks::read(self.manager(), caller, session, &nb, name, range)
            .await
            .map_err(err)
    }

    /// A track's stats per field.
    pub async fn notebook_track_stats(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        name: &str,
    ) -> Result<Value> {
        let nb = self.notebook(caller, session, branch).await?;
        tracks::stats(self.manager(), caller, session, &nb, name)
            .await
            .map_err(err)
    }

    /// The branch's files that are not deleted.
    pub async fn notebook_files(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
    ) -> Result<Vec<FileEntry>> {
        let nb = self.notebook(caller, session, branch).await?;
        Ok(nb
            .files
            .into_iter()
            .filter(|f| f.deleted_at.is_none())
            .collect())
    }

    /// A file on the branch and where its content is.
    pub async fn notebook_file(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        id: &str,
    ) -> Result<(FileEntry, Option<PathBuf>)> {
        let nb = self.notebook(caller, session, branch).await?;
        let f = files::find(&nb, id).map_err(err)?.clone();
        let path = self.manager().file_content(&f.sha256).await?;
        Ok((f, path))
    }

    /// Purges a deleted file's content (the owner only): the blob is removed from the data
    /// directory unless another session holds the same content, and the purge is an audit
    /// entry. The branch keeps the file's record; downloading it then answers 410. Returns
    /// whether the content was removed.
    pub async fn notebook_purge(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        id: &str,
    ) -> Result<(FileEntry, bool)> {
        let perms = self.manager().permissions(caller, session).await?;
        if !perms.has(kiln_types::Permission::Owner) {
            return Err(Error::forbidden(
                "only the session's owner purges a file's content",
            ));
        }
        let nb = self.notebook(caller, session, branch).await?;
        let Some(f) = nb.files.iter().find(|f| f.id == id).cloned() else {
            return Err(Error::new(
                kiln_types::ErrorKind::NotFound,
                "no_such_file",
                format!("no file `{id}` on this branch"),
            ));
        };
        if f.deleted_at.is_none() {
            return Err(Error::new(
                kiln_types::ErrorKind::Conflict,
                "file_not_deleted",
                format!(
                    "delete `{}` first; purging removes a deleted file's content",
                    f.name
                ),
            ));
        }
        let shared = self
            .manager()
            .content_used_elsewhere(session, &f.sha256)
            .await?;
        let removed = if shared {
            false
        } else {
            self.manager().remove_file_content(&f.sha256).await?
        };
        self.manager()
            .record_audit(
                caller,
                session,
                "notebook.file.purge",
                &json!({"file": f.id, "name": f.name, "sha256": f.sha256, "branch": branch,
                        "removed": removed, "kept_for_other_sessions": shared}),
            )
            .await?;
        Ok((f, removed))
    }

    /// Runs one notebook action as a recorded tool call on the branch (write access first: a
    /// reader learns nothing from a validation error).
    pub async fn notebook_write(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        args: Value,
    ) -> Result<ToolCallRecord> {
        self.manager().active_session(caller, session).await?;
        self.call_tool(caller, session, Some(branch), NAME, args)
            .await
    }

    /// Stores an upload as it streams (hashed, refused past `[limits] max_file_mb`), counts it
    /// in the caller's quota, then names it on the branch with the `record_file` action.
    pub async fn notebook_upload<S, B, E>(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        name: &str,
        content_type: &str,
        body: S,
    ) -> Result<ToolCallRecord>
    where
        S: futures::Stream<Item = std::result::Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        self.manager().active_session(caller, session).await?;
        self.manager()
            .db()
            .branch(session, branch)
            .await
            .map_err(Error::from)?;
        files::check_meta(name, content_type).map_err(err)?;
        let limit = self.manager().max_file_bytes();
        let (sha256, bytes) = self.manager().store_file(body, limit).await?;
        self.manager().reserve_file_bytes(caller, bytes)?;
        self.call_tool(
            caller,
            session,
            Some(branch),
            NAME,
            json!({"action": "record_file", "name": name, "content_type": content_type,
                   "sha256": sha256, "bytes": bytes}),
        )
        .await
    }
}

fn track_list(nb: &NotebookState) -> Vec<Value> {
    nb.tracks
        .iter()
        .map(|(name, refs)| {
            json!({"name": name, "points": refs.iter().map(|r| r.count).sum::<u64>(),
                   "batches": refs.len()})
        })
        .collect()
}
