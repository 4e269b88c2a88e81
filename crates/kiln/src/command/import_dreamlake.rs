//! `kiln import-dreamlake DIR`: a Dreamlake local session folder becomes (or is added to) the
//! Kiln session of its workspace and name, through the notebook's own actions.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use kiln_agent::{Agent, Registry};
use kiln_llm::OfflinePlanner;

use super::context::{Cli as _, GlobalArgs, Local, load_config};

#[derive(Debug, Args)]
pub struct ImportDreamlakeArgs {
    /// The session folder (`.dreamlake/<workspace>/<session>`).
    pub dir: PathBuf,
    /// The Kiln project (default: the folder's workspace).
    #[arg(long)]
    pub project: Option<String>,
}

pub async fn run(global: &GlobalArgs, args: ImportDreamlakeArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(global)?;
    let local = Local::open(global).await?;
    // The notebook's actions need no model: the offline planner stands in.
    let agent = Agent::new(
        local.manager.clone(),
        Arc::new(OfflinePlanner::new()),
        Registry::builtin(),
        config.agent.clone(),
    );
    let report = agent
        .import_dreamlake(&local.caller, &args.dir, args.project.as_deref())
        .await
        .cli()?;
    if local.json {
        super::output::json(&report)?;
    } else {
        println!(
            "{} session {} ({} / {}): {} parameter(s), {} log line(s), {} track(s) with {} point(s), {} file(s){}",
            if report.created { "made" } else { "added to" },
            report.session,
            report.project,
            report.name,
            report.params,
            report.log_lines,
            report.tracks.len(),
            report.tracks.values().sum::<usize>(),
            report.files,
            if report.protected {
                ", write-protected"
            } else {
                ""
            }
        );
        for s in &report.skipped {
            println!("  not imported: {s}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
