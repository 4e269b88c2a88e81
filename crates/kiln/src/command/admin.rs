//! `kiln admin`: online backups of the database and restoring one (with the server stopped).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use kiln_session::SessionManager;

use super::context::{self, Cli as _, GlobalArgs};
use crate::command::output::{errln, outln};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Write a consistent copy of the database (VACUUM INTO), safe while the server runs.
    Backup {
        /// Where to write it (default: <data_dir>/backups/kiln-<time>.db).
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// Replace the database with a backup. Stop the server first. The current database is
    /// kept as kiln.db.before-restore-<time>; the search index is rebuilt on next use.
    Restore { file: PathBuf },
}

pub async fn run(global: &GlobalArgs, cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AdminCommand::Backup { to } => {
            let (_, mgr) = context::open(global).await?;
            let file = match to {
                Some(f) => {
                    if f.exists() {
                        bail!("{} exists; choose a new file", f.display());
                    }
                    mgr.db()
                        .backup_to(&f)
                        .await
                        .map_err(kiln_session::Error::from)
                        .cli()?;
                    f
                }
                None => {
                    let dir = mgr.backup_dir();
                    mgr.backup(&dir, chrono::Utc::now(), u32::MAX).await.cli()?
                }
            };
            mgr.close().await;
            outln!("{}", file.display());
        }
        AdminCommand::Restore { file } => {
            if !file.is_file() {
                bail!("{} is not a file", file.display());
            }
            let config = context::load_config(global)?;
            let db = config.db_path();
            let dir = config.storage.data_dir.clone();
            std::fs::create_dir_all(&dir)?;
            let staged = dir.join("kiln.db.restoring");
            std::fs::copy(&file, &staged)
                .with_context(|| format!("could not copy {}", file.display()))?;
            // Open the copy as a store: it must be a Kiln database (migrations bring an older
            // one up to date) with its users intact.
            let mut check = config.clone();
            check.storage.data_dir = dir.join("restore-check");
            std::fs::create_dir_all(&check.storage.data_dir)?;
            std::fs::rename(&staged, check.db_path())?;
            let probe = SessionManager::open(&check).await;
            let users = match &probe {
                Ok(m) => m.db().count_users().await.ok(),
                Err(_) => None,
            };
            if let Ok(m) = &probe {
                m.close().await;
            }
            drop(probe);
            let Some(users) = users else {
                let _ = std::fs::remove_dir_all(&check.storage.data_dir);
                bail!("{} is not a Kiln database", file.display());
            };
            if db.exists() {
                let kept = dir.join(format!(
                    "kiln.db.before-restore-{}",
                    chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
                ));
                std::fs::rename(&db, &kept)?;
                for suffix in ["-wal", "-shm"] {
                    let mut side = db.clone().into_os_string();
                    side.push(suffix);
                    let _ = std::fs::remove_file(PathBuf::from(side));
                }
                errln!("the previous database is kept as {}", kept.display());
            }
            std::fs::rename(check.db_path(), &db)?;
            let _ = std::fs::remove_dir_all(&check.storage.data_dir);
            // The index is rebuilt from the restored database at next start. Its directory
            // is emptied, not removed: it may be a mount point or a symlink to a volume.
            if let Ok(entries) = std::fs::read_dir(dir.join("search")) {
                for entry in entries.flatten() {
                    let p = entry.path();
                    let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
                }
            }
            outln!("restored {} ({users} users)", file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
