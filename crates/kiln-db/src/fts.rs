//! SQLite FTS5 over node texts: the baseline `kiln bench search` measures the tantivy index
//! against, in the same run on the same corpus. Not used by the service.

use std::time::{Duration, Instant};

use crate::conn::{Dialect, query, query_as};
use crate::{Db, Error, Result};

impl Db {
    /// The FTS5 baseline is SQLite's; on PostgreSQL each call answers `Invalid`.
    fn fts5_here(&self) -> Result<()> {
        match self.dialect() {
            Dialect::Sqlite => Ok(()),
            Dialect::Postgres => Err(Error::Invalid(
                "the FTS5 search baseline runs on SQLite only".into(),
            )),
        }
    }

    /// Builds (or rebuilds) the FTS5 table over every node's content; returns how long it took.
    pub async fn fts5_build(&self) -> Result<Duration> {
        self.fts5_here()?;
        let start = Instant::now();
        let mut w = self.writer().await?;
        // dialect: SQLite FTS5 (virtual table, rowid): the benchmark has no PostgreSQL form (tsvector/GIN would be its own)
        for sql in [
            "DROP TABLE IF EXISTS bench_fts",
            "CREATE VIRTUAL TABLE bench_fts USING fts5(text, session_id UNINDEXED, \
             kind UNINDEXED, tokenize = 'unicode61')",
            "INSERT INTO bench_fts (rowid, text, session_id, kind) \
             SELECT rowid, content, session_id, kind FROM nodes WHERE content <> ''",
        ] {
            query(sql).execute(&mut w.conn).await?;
        }
        Ok(start.elapsed())
    }

    /// Runs one FTS5 query as the service would need it: matches in the sessions `user` may
    /// read (owner or collaborator), optionally of one project and node kind, best first,
    /// with a highlighted snippet; returns how many rows came back (at most `limit`).
    pub async fn fts5_query(
        &self,
        user: &str,
        fts_query: &str,
        project: Option<&str>,
        kind: Option<&str>,
        limit: u32,
    ) -> Result<usize> {
        self.fts5_here()?;
        // dialect: FTS5 MATCH, snippet() and rank: PostgreSQL would use to_tsquery/ts_headline/ts_rank on a tsvector
        let rows: Vec<(i64, String, String)> = query_as(sqlx::AssertSqlSafe(format!(
            "SELECT f.rowid, f.session_id, snippet(bench_fts, 0, '<b>', '</b>', '…', 16) \
             FROM bench_fts f JOIN sessions s ON s.id = f.session_id \
             WHERE bench_fts MATCH $1 \
               AND (s.owner_id = $2 OR EXISTS (SELECT 1 FROM collaborators c \
                    WHERE c.session_id = s.id AND c.user_id = $2 AND (c.perms & 1) = 1)) \
               AND ($3 IS NULL OR s.project = $3) AND ($4 IS NULL OR f.kind = $4) \
             ORDER BY rank LIMIT {}",
            limit.max(1)
        )))
        .bind(fts_query)
        .bind(user)
        .bind(project)
        .bind(kind)
        .fetch_all(&mut *self.read().await?)
        .await?;
        Ok(rows.len())
    }

    /// Drops the FTS5 table.
    pub async fn fts5_drop(&self) -> Result<()> {
        self.fts5_here()?;
        let mut w = self.writer().await?;
        // dialect: FTS5 table: SQLite-only benchmark
        query("DROP TABLE IF EXISTS bench_fts")
            .execute(&mut w.conn)
            .await?;
        Ok(())
    }
}
