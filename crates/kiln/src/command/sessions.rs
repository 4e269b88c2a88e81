//! `kiln sessions`: create, list, show, move through the lifecycle, export and import.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use kiln_session::{CreateSession, ListQuery, Session, SessionSort};
use kiln_types::{CheckpointFrequency, ContextConfig, SessionStatus, SessionType};

use super::context::{Cli as _, GlobalArgs, Local, parse_enum};
use super::output::{self, table};
use crate::command::output::{errln, out, outln};

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Create a session and print it.
    New(NewArgs),
    /// List your sessions, newest first.
    List(ListArgs),
    /// Show a session, its branches and statistics.
    Show { session: String },
    /// Mark a created or resumed session active.
    Activate { session: String },
    /// Pause an active or resumed session (it then refuses new messages).
    Pause { session: String },
    /// Resume a paused or archived session.
    Resume { session: String },
    /// Archive an active or paused session.
    Archive { session: String },
    /// Leave a session someone else added you to (with --as USER).
    Leave { session: String },
    /// Export a session as JSON (everything) or as a Markdown report.
    Export(ExportArgs),
    /// Import an exported JSON file as a new session and print its id.
    Import {
        /// The export file, or `-` for standard input.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The session's name.
    pub name: String,
    #[arg(long, default_value = "")]
    pub description: String,
    /// interactive, batch, research or collaborative.
    #[arg(long = "type", default_value = "interactive")]
    pub session_type: SessionType,
    #[arg(long)]
    pub project: Option<String>,
    /// A tag (repeat for several).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Metadata as a JSON object.
    #[arg(long)]
    pub metadata: Option<String>,
    /// Context window settings as a JSON object (max_history, material_memory, …).
    #[arg(long)]
    pub context: Option<String>,
    /// Research sessions: planned length in days.
    #[arg(long)]
    pub duration_days: Option<u32>,
    /// Research sessions: hourly, daily or a cron expression.
    #[arg(long)]
    pub checkpoint_frequency: Option<String>,
    /// A collaborator added with the session, as USER:PERMISSION[+PERMISSION…]
    /// (`bob:read+write`); repeat for each.
    #[arg(long = "member")]
    pub members: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, value_parser = parse_enum::<SessionStatus>)]
    pub status: Option<SessionStatus>,
    #[arg(long)]
    pub project: Option<String>,
    #[arg(long = "type")]
    pub session_type: Option<SessionType>,
    #[arg(long)]
    pub tag: Option<String>,
    /// Only sessions owned by this user name.
    #[arg(long)]
    pub owner: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// The `next_cursor` of a previous page.
    #[arg(long)]
    pub cursor: Option<String>,
    /// Order: `created` (newest first) or `activity` (last activity first).
    #[arg(long, value_parser = parse_enum::<SessionSort>, default_value = "created")]
    pub sort: SessionSort,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    pub session: String,
    #[arg(long, value_enum, default_value = "json")]
    pub format: ExportFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub async fn run(global: &GlobalArgs, cmd: SessionsCommand) -> anyhow::Result<ExitCode> {
    let local = Local::open(global).await?;
    let result = dispatch(&local, cmd).await;
    local.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

async fn dispatch(local: &Local, cmd: SessionsCommand) -> anyhow::Result<()> {
    let (m, caller) = (&local.manager, &local.caller);
    match cmd {
        SessionsCommand::New(args) => {
            let req = create_request(args)?;
            let s = m.create_session(caller, req).await.cli()?;
            print_session(local, &s)
        }
        SessionsCommand::List(args) => list(local, args).await,
        SessionsCommand::Show { session } => show(local, &session).await,
        SessionsCommand::Activate { session } => {
            transition(local, &session, SessionStatus::Active).await
        }
        SessionsCommand::Pause { session } => {
            transition(local, &session, SessionStatus::Paused).await
        }
        SessionsCommand::Resume { session } => {
            transition(local, &session, SessionStatus::Resumed).await
        }
        SessionsCommand::Archive { session } => {
            transition(local, &session, SessionStatus::Archived).await
        }
        SessionsCommand::Leave { session } => {
            let id = local.session_id(&session).await?;
            local
                .manager
                .leave_session(&local.caller, &id)
                .await
                .cli()?;
            errln!("left session {id}");
            Ok(())
        }
        SessionsCommand::Export(args) => export(local, args).await,
        SessionsCommand::Import { file } => import(local, &file).await,
    }
}

fn create_request(args: NewArgs) -> anyhow::Result<CreateSession> {
    let metadata = args
        .metadata
        .map(|m| serde_json::from_str(&m).context("--metadata is not valid JSON"))
        .transpose()?;
    let context: Option<ContextConfig> = args
        .context
        .map(|c| serde_json::from_str(&c).context("--context is not a valid context configuration"))
        .transpose()?;
    let checkpoint_frequency = args
        .checkpoint_frequency
        .map(|f| CheckpointFrequency::try_from(f).map_err(anyhow::Error::msg))
        .transpose()?;
    Ok(CreateSession {
        name: args.name,
        description: args.description,
        session_type: args.session_type,
        project: args.project,
        tags: args.tags,
        metadata,
        context,
        duration_days: args.duration_days,
        checkpoint_frequency,
        template: None,
        members: args
            .members
            .iter()
            .map(|m| member(m))
            .collect::<anyhow::Result<_>>()?,
    })
}

/// Parses `user:read+write` into a member.
fn member(text: &str) -> anyhow::Result<kiln_session::Member> {
    let (user, perms) = text
        .split_once(':')
        .with_context(|| format!("--member takes USER:PERMISSION[+PERMISSION…], not {text:?}"))?;
    let list: Vec<String> = perms.split('+').map(|p| p.trim().to_owned()).collect();
    let permissions = serde_json::from_value(serde_json::json!(list))
        .with_context(|| format!("--member {text}: unknown permission"))?;
    Ok(kiln_session::Member {
        user: user.trim().to_owned(),
        permissions,
    })
}

async fn list(local: &Local, args: ListArgs) -> anyhow::Result<()> {
    let q = ListQuery {
        status: args.status,
        project: args.project,
        session_type: args.session_type,
        tag: args.tag,
        owner: args.owner,
        cursor: args.cursor,
        limit: Some(args.limit),
        sort: args.sort,
    };
    let page = local.manager.list_sessions(&local.caller, q).await.cli()?;
    let shared = local
        .manager
        .shared_with_caller(&local.caller, &page.items)
        .await
        .cli()?;
    if local.json {
        let items: Vec<serde_json::Value> = page
            .items
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                v["shared_with_you"] = serde_json::to_value(shared.get(&s.id)).unwrap_or_default();
                v
            })
            .collect();
        return output::json(&serde_json::json!({"items": items, "next_cursor": page.next_cursor}));
    }
    let rows: Vec<Vec<String>> = page
        .items
        .iter()
        .map(|s| {
            let access = match shared.get(&s.id) {
                None => "owner".to_string(),
                Some(m) => match &m.added_by {
                    Some(by) => format!("shared by {by}"),
                    None => "shared".to_string(),
                },
            };
            vec![
                s.id.clone(),
                output::clip(&s.name, 40),
                s.session_type.to_string(),
                s.status.to_string(),
                s.project.clone().unwrap_or_default(),
                s.tags.join(","),
                access,
                s.updated_at.clone(),
            ]
        })
        .collect();
    out!(
        "{}",
        table(
            &[
                "ID", "NAME", "TYPE", "STATUS", "PROJECT", "TAGS", "ACCESS", "UPDATED"
            ],
            &rows
        )
    );
    if let Some(c) = page.next_cursor {
        errln!("more: --cursor {c}");
    }
    Ok(())
}

async fn show(local: &Local, spec: &str) -> anyhow::Result<()> {
    let id = local.session_id(spec).await?;
    let (m, caller) = (&local.manager, &local.caller);
    let s = m.session(caller, &id).await.cli()?;
    let branches = m.branches(caller, &id, true).await.cli()?;
    let stats = m.statistics(caller, &id).await.cli()?;
    if local.json {
        return output::json(&serde_json::json!({
            "session": s, "branches": branches, "statistics": stats,
        }));
    }
    print_fields(&s);
    let rows: Vec<Vec<String>> = branches
        .iter()
        .map(|b| vec![b.name.clone(), b.status.clone(), b.head.clone()])
        .collect();
    outln!(
        "\n{}",
        table(&["BRANCH", "STATUS", "HEAD"], &rows).trim_end()
    );
    outln!(
        "\nmessages {}  queries {}  materials {}  discoveries {}  checkpoints {}  active {}s",
        stats.messages,
        stats.queries,
        stats.materials,
        stats.discoveries,
        stats.checkpoints,
        stats.active_seconds
    );
    Ok(())
}

async fn transition(local: &Local, spec: &str, to: SessionStatus) -> anyhow::Result<()> {
    let id = local.session_id(spec).await?;
    let s = local
        .manager
        .set_status(&local.caller, &id, to)
        .await
        .cli()
        .with_context(|| format!("could not move session {id} to {to}"))?;
    if local.json {
        return output::json(&s);
    }
    outln!("session {} is now {}", s.id, s.status);
    Ok(())
}

async fn export(local: &Local, args: ExportArgs) -> anyhow::Result<()> {
    let id = local.session_id(&args.session).await?;
    let text = match args.format {
        ExportFormat::Json => {
            let doc = local.manager.export_json(&local.caller, &id).await.cli()?;
            serde_json::to_string_pretty(&doc)? + "\n"
        }
        ExportFormat::Markdown => local
            .manager
            .export_markdown(&local.caller, &id)
            .await
            .cli()?,
    };
    match args.output {
        Some(path) => {
            std::fs::write(&path, text)
                .with_context(|| format!("could not write {}", path.display()))?;
            errln!("exported session {id} to {}", path.display());
        }
        // A file format: exact when piped or redirected, cleaned only for a terminal.
        None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => out!("{text}"),
        None => print!("{text}"),
    }
    Ok(())
}

async fn import(local: &Local, file: &PathBuf) -> anyhow::Result<()> {
    let text = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("could not read standard input")?;
        s
    } else {
        std::fs::read_to_string(file)
            .with_context(|| format!("could not read {}", file.display()))?
    };
    if text.trim().is_empty() {
        bail!("{} is empty", file.display());
    }
    let doc: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", file.display()))?;
    let s = local
        .manager
        .import(&local.caller, &doc)
        .await
        .cli()
        .with_context(|| format!("could not import {}", file.display()))?;
    if local.json {
        return output::json(&s);
    }
    outln!("{}", s.id);
    errln!("imported as session {} ({})", s.id, s.name);
    Ok(())
}

fn print_session(local: &Local, s: &Session) -> anyhow::Result<()> {
    if local.json {
        return output::json(s);
    }
    print_fields(s);
    Ok(())
}

fn print_fields(s: &Session) {
    let rows = [
        ("id", s.id.clone()),
        ("name", s.name.clone()),
        ("description", s.description.clone()),
        ("type", s.session_type.to_string()),
        ("status", s.status.to_string()),
        ("project", s.project.clone().unwrap_or_default()),
        ("tags", s.tags.join(", ")),
        ("default branch", s.default_branch.clone()),
        ("version", s.version.to_string()),
        ("created", s.created_at.clone()),
        ("updated", s.updated_at.clone()),
    ];
    for (k, v) in rows {
        outln!("{k:<15} {v}");
    }
}
