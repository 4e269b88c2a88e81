//! Merges with per-conflict choices, merge previews that write nothing, diffs between any two
//! points in words, and the structural points of the branch tree for drawing it.

use std::collections::BTreeMap;

use kiln_db::{
    BranchGraph, DIFF_CONVERSATION_DEFAULT, DIFF_CONVERSATION_MAX, DiffResult, MergePreview,
    MergeRequest, MergeResult,
};
use kiln_types::{MergeStrategy, Resolution, Resolver};
use serde::Deserialize;

use crate::{Caller, Error, Result, SessionManager};

/// The most per-conflict resolutions one merge accepts.
pub const MAX_RESOLUTIONS: usize = 1000;

/// How a merge settles its conflicts: a resolution per conflict `key`, and a strategy for the
/// conflicts not named (default `fail`: they stay open and the merge is refused).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MergeChoices {
    #[serde(default)]
    pub strategy: MergeStrategy,
    #[serde(default)]
    pub resolutions: BTreeMap<String, Resolution>,
}

impl MergeChoices {
    pub fn strategy(strategy: MergeStrategy) -> Self {
        Self {
            strategy,
            resolutions: BTreeMap::new(),
        }
    }

    fn resolver(&self) -> Result<Resolver> {
        if self.resolutions.len() > MAX_RESOLUTIONS {
            return Err(Error::bad_request(format!(
                "at most {MAX_RESOLUTIONS} resolutions per merge ({} given)",
                self.resolutions.len()
            )));
        }
        Ok(Resolver::new(self.strategy, self.resolutions.clone()))
    }
}

impl SessionManager {
    /// Merges branch `from` into `into`, settling every conflict with the strategy.
    pub async fn merge(
        &self,
        caller: &Caller,
        session: &str,
        from: &str,
        into: &str,
        strategy: MergeStrategy,
    ) -> Result<MergeResult> {
        self.merge_with(
            caller,
            session,
            from,
            into,
            &MergeChoices::strategy(strategy),
        )
        .await
    }

    /// Merges branch `from` into `into`, settling each conflict as `choices` say; refused
    /// (`merge_conflict`, listing the open ones) while any conflict is left open.
    pub async fn merge_with(
        &self,
        caller: &Caller,
        session: &str,
        from: &str,
        into: &str,
        choices: &MergeChoices,
    ) -> Result<MergeResult> {
        let resolver = choices.resolver()?;
        self.writable(caller, session).await?;
        let tools = self.tool_merger.clone();
        Ok(self
            .db
            .merge(MergeRequest {
                session,
                from,
                into,
                resolver: &resolver,
                actor: &caller.user_id,
                tools: tools.as_ref(),
            })
            .await?)
    }

    /// Shows what [`SessionManager::merge_with`] would do with these choices: every conflict
    /// in words, the merged state and the changes to `into`. Writes nothing (no node, audit or
    /// reflog entry); needs the same write access the merge does.
    pub async fn merge_preview(
        &self,
        caller: &Caller,
        session: &str,
        from: &str,
        into: &str,
        choices: &MergeChoices,
    ) -> Result<MergePreview> {
        let resolver = choices.resolver()?;
        self.writable(caller, session).await?;
        let tools = self.tool_merger.clone();
        Ok(self
            .db
            .merge_preview(MergeRequest {
                session,
                from,
                into,
                resolver: &resolver,
                actor: &caller.user_id,
                tools: tools.as_ref(),
            })
            .await?)
    }

    /// Compares two points (branch, checkpoint or node id): the research-state changes in
    /// words and data, the common ancestor, and the newest `limit` conversation nodes on each
    /// side of it (default [`DIFF_CONVERSATION_DEFAULT`], at most [`DIFF_CONVERSATION_MAX`]).
    pub async fn diff(
        &self,
        caller: &Caller,
        session: &str,
        from: &str,
        to: &str,
        limit: Option<usize>,
    ) -> Result<DiffResult> {
        let limit = limit.unwrap_or(DIFF_CONVERSATION_DEFAULT);
        if !(1..=DIFF_CONVERSATION_MAX).contains(&limit) {
            return Err(Error::bad_request(format!(
                "limit must be between 1 and {DIFF_CONVERSATION_MAX}"
            )));
        }
        self.readable(caller, session).await?;
        let tools = self.tool_merger.clone();
        Ok(self
            .db
            .diff(session, from, to, limit, tools.as_ref())
            .await?)
    }

    /// Returns the fork points, heads, merges and checkpoints of a session's branches.
    pub async fn branch_graph(&self, caller: &Caller, session: &str) -> Result<BranchGraph> {
        self.readable(caller, session).await?;
        Ok(self.db.branch_graph(session).await?)
    }
}
