//! `kiln migrate --to postgres://…`: copies this data directory's SQLite store and its stored
//! content (notebook files, attachments) into a PostgreSQL database and checks the copy
//! (counts and content per table, every audit and node hash chain, every blob, a sample of
//! sessions replayed). The server must be stopped; a failed run leaves the target unchanged.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use kiln_session::files::Content;
use kiln_session::{ServeLock, TransferOptions, redact_url};

use super::context::{self, Cli as _, GlobalArgs};
use crate::command::output::{errln, outln};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The PostgreSQL database to copy into (`postgres://user:password@host:port/db`; also
    /// read from KILN_MIGRATE_TO, so the password stays out of the process list).
    #[arg(
        long,
        env = "KILN_MIGRATE_TO",
        value_name = "URL",
        hide_env_values = true
    )]
    pub to: String,
    /// Overwrite a target that already holds data (emptied in the same transaction).
    #[arg(long)]
    pub replace: bool,
    /// How many sessions (spread over all) to read back whole from PostgreSQL, replaying
    /// their states from their events and comparing them with SQLite's.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub check_states: usize,
}

pub async fn run(global: &GlobalArgs, args: MigrateArgs) -> anyhow::Result<ExitCode> {
    if !(args.to.starts_with("postgres://") || args.to.starts_with("postgresql://")) {
        bail!("--to takes a PostgreSQL URL (postgres://user@host:port/database)");
    }
    let config = context::load_config(global)?;
    if !config.db_path().is_file() {
        bail!(
            "{} holds no Kiln database; nothing to migrate",
            config.storage.data_dir.display()
        );
    }
    // No server may write while the snapshot is taken: what it wrote later would be missing.
    let _lock = ServeLock::acquire(&config.storage.data_dir).cli()?;
    let (_, manager) = context::open(global).await?;
    let target = redact_url(&args.to);
    errln!("copying {} into {target}", config.db_path().display());
    // Large tables report every 100,000 rows; the summary table follows at the end.
    let mut shown = (String::new(), 0i64);
    let report = manager
        .db()
        .copy_to_postgres(
            &args.to,
            TransferOptions {
                replace: args.replace,
                content: [Content::Files, Content::Attachments]
                    .map(|k| (k.dir().to_owned(), config.storage.data_dir.join(k.dir())))
                    .into(),
                state_sample: args.check_states,
            },
            |table, rows| {
                if shown.0 != table {
                    shown = (table.to_string(), 0);
                }
                if rows - shown.1 >= 100_000 {
                    shown.1 = rows;
                    errln!("  {table}: {rows} rows");
                }
            },
        )
        .await
        .map_err(kiln_session::Error::from)
        .cli()
        .with_context(|| format!("the copy into {target} failed; the target is unchanged"))?;
    manager.close().await;
    if global.json {
        super::output::json(&report)?;
    } else {
        outln!(
            "{:<24} {:>10} {:>10}  content",
            "table",
            "sqlite",
            "postgres"
        );
        for t in &report.tables {
            outln!(
                "{:<24} {:>10} {:>10}  {}",
                t.table,
                t.rows_sqlite,
                t.rows_postgres,
                if t.same_content { "same" } else { "DIFFERENT" }
            );
        }
        outln!(
            "sessions: {}; audit chains valid: {}; node chains valid: {}; chains that verify \
             differently: {}",
            report.sessions,
            report.audit_chains_valid,
            report.node_chains_valid,
            report.chain_mismatches.len()
        );
        for c in &report.content {
            outln!(
                "{:<24} {:>10} {:>10}  {} ({} bytes)",
                format!("content: {}", c.kind),
                c.on_disk,
                c.in_postgres,
                if c.same_content { "same" } else { "DIFFERENT" },
                c.bytes
            );
            for d in &c.damaged {
                outln!("  damaged on disk (its content does not match its name; not copied): {d}");
            }
        }
        outln!(
            "sessions read back and replayed: {}; differing: {}",
            report.states_checked,
            report.state_mismatches.len()
        );
        for m in &report.state_mismatches {
            outln!("  {m}");
        }
        outln!(
            "copied in {:.1} s, checked in {:.1} s",
            report.copy_seconds,
            report.check_seconds
        );
    }
    if report.verified() {
        outln!("verified: {target} holds everything");
        Ok(ExitCode::SUCCESS)
    } else {
        errln!("the copy does not match: see the rows marked above");
        Ok(ExitCode::FAILURE)
    }
}
