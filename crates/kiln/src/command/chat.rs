//! `kiln chat [SESSION]`: a terminal REPL with the research agent. Answers stream in; tool
//! calls and results show compactly; slash commands work the session's branches.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use kiln_agent::{Agent, TurnEvent};
use kiln_session::{BranchFrom, CreateSession, ListQuery, MemoryInput, MemorySource, SessionSort};
use kiln_types::MergeStrategy;
use kiln_types::NodeKind;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use tokio::sync::mpsc;

use super::context::{Cli as _, GlobalArgs, Local, load_config};
use super::markdown;
use super::output::clip;
use crate::command::output::{out, outln};

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// The session (id or unique prefix); a new one is created when omitted.
    pub session: Option<String>,
    /// The branch to start on (default: the session's default branch).
    #[arg(long)]
    pub branch: Option<String>,
}

const HELP: &str = "Type a message and press Enter (end a line with \\ to continue it).
Commands:
  /branch NAME         create a branch here and switch to it
  /switch NAME         switch to another branch
  /branches            list branches
  /checkpoint NAME     checkpoint the current branch
  /restore NAME        restore a checkpoint onto the current branch
  /merge FROM [ours|theirs|union]   merge FROM into the current branch
  /history [N]         the branch's last N turns (5)
  /undo                put the branch back to before the last turn (the turn is kept)
  /clear               start a fresh branch from the beginning (this one is kept)
  /sessions [N|ID]     list your recent sessions, or switch to one
  /checkpoints         this session's checkpoints
  /memory [add TEXT | rm ID]   your memory across sessions
  /context             what the model sees now, with token counts
  /discoveries         discoveries on this branch
  /summary             key findings, materials of interest and next steps
  /compress [KEEP]     summarise the history now, keeping the last KEEP messages (4)
  /help                this text
  /quit                leave";

struct Repl {
    local: Local,
    agent: Agent,
    session: String,
    branch: String,
    /// The sessions `/sessions` listed last, so `/sessions 2` switches to the second.
    listed: Vec<String>,
}

pub async fn run(global: &GlobalArgs, args: ChatArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(global)?;
    let local = Local::open(global).await?;
    let agent = Agent::from_config(local.manager.clone(), &config)
        .context("the [llm] configuration is not usable")?;
    let session = match &args.session {
        Some(spec) => local.session_id(spec).await?,
        None => {
            let s = local
                .manager
                .create_session(
                    &local.caller,
                    CreateSession {
                        // Named after the first request (see title_from_request).
                        name: "chat".to_owned(),
                        metadata: Some(serde_json::json!({"auto_title": "chat"})),
                        ..Default::default()
                    },
                )
                .await
                .cli()?;
            s.id
        }
    };
    let default = local
        .manager
        .session(&local.caller, &session)
        .await
        .cli()?
        .default_branch;
    let branch = args.branch.unwrap_or(default);
    let history = config.storage.data_dir.join("chat_history.txt");
    let resumed = args.session.is_some();
    let mut repl = Repl {
        local,
        agent,
        session,
        branch,
        listed: Vec::new(),
    };
    outln!(
        "Kiln chat — session {} on branch {} (model: {}). /help for commands.",
        repl.session,
        repl.branch,
        repl.agent.model_name()
    );
    if resumed && let Err(e) = repl.recap().await {
        outln!("error: {e:#}");
    }
    let result = repl.run(history).await;
    repl.local.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

impl Repl {
    async fn run(&mut self, history: std::path::PathBuf) -> anyhow::Result<()> {
        let mut editor = DefaultEditor::new().context("could not open the terminal")?;
        let _ = editor.load_history(&history);
        loop {
            let prompt = format!("{}> ", self.branch);
            let (ed, input) = tokio::task::spawn_blocking(move || {
                let mut ed = editor;
                let input = read_input(&mut ed, &prompt);
                (ed, input)
            })
            .await?;
            editor = ed;
            let Some(line) = input? else { break };
            let line = line.trim().to_owned();
            if line.is_empty() {
                continue;
            }
            let _ = editor.add_history_entry(line.as_str());
            if let Some(cmd) = line.strip_prefix('/') {
                match self.command(cmd).await {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => outln!("error: {e:#}"),
                }
            } else if let Err(e) = self.turn(&line).await {
                outln!("error: {e:#}");
            }
        }
        let _ = editor.save_history(&history);
        Ok(())
    }

    async fn turn(&self, message: &str) -> anyhow::Result<()> {
        let (tx, mut rx) = mpsc::channel(64);
        let agent = self.agent.clone();
        let caller = self.local.caller.clone();
        let (session, branch, message) = (
            self.session.clone(),
            self.branch.clone(),
            message.to_owned(),
        );
        let task = tokio::spawn(async move {
            agent
                .run_turn(&caller, &session, &branch, &message, Some(&tx))
                .await
        });
        let mut out = std::io::stdout();
        // The answer's Markdown, rendered a line at a time (a table once it is complete).
        let style = out.is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let mut md = markdown::Stream::new(style);
        while let Some(ev) = rx.recv().await {
            match ev {
                TurnEvent::Token { text } => print!("{}", md.push(&text)),
                TurnEvent::ToolCall {
                    name, arguments, ..
                } => {
                    print!("{}", md.finish());
                    outln!("  → {name} {}", clip(&arguments, 160));
                }
                TurnEvent::ToolResult { ok, text, name, .. } => {
                    // The answer says what came back (tables rendered): printing the result
                    // here too would show everything twice. A failure is shown as it is.
                    if ok {
                        outln!("  ✓ {name}");
                    } else {
                        outln!("  ✗ {name}: {}", clip(first_line(&text), 200));
                    }
                }
                TurnEvent::Summarised { node } => outln!("  (older turns summarised: {node})"),
                TurnEvent::Queued { ahead } => {
                    outln!("  (waiting for {ahead} earlier turn(s) on this branch)");
                }
                TurnEvent::Discovery(d) => {
                    print!("{}", md.finish());
                    outln!("  ★ discovery [{}] {}", d.category, d.description);
                }
                TurnEvent::Started { .. } | TurnEvent::Done(_) | TurnEvent::Error { .. } => {}
            }
            out.flush().ok();
        }
        print!("{}", md.finish());
        task.await?.cli()?;
        Ok(())
    }

    /// The branch's last `n` turns, oldest first: (question, answer) pairs as stored.
    async fn turns(&self, n: usize) -> anyhow::Result<Vec<(String, String)>> {
        let page = self
            .agent
            .manager()
            .messages(
                &self.local.caller,
                &self.session,
                &self.branch,
                Some(400),
                None,
            )
            .await
            .cli()?;
        // Newest first: an answer comes before the question it answers.
        let mut turns = Vec::new();
        let mut answer = String::new();
        for node in &page.items {
            match node.kind {
                NodeKind::Assistant if answer.is_empty() => answer = node.content.clone(),
                NodeKind::User => {
                    turns.push((node.content.clone(), std::mem::take(&mut answer)));
                    if turns.len() == n {
                        break;
                    }
                }
                _ => {}
            }
        }
        turns.reverse();
        Ok(turns)
    }

    /// Prints where the chat is: the session's name, the branch, the focus and the last two
    /// turns.
    async fn recap(&self) -> anyhow::Result<()> {
        let mgr = self.agent.manager();
        let caller = &self.local.caller;
        let s = mgr.session(caller, &self.session).await.cli()?;
        let state = mgr
            .state(caller, &self.session, &self.branch, None)
            .await
            .cli()?;
        let focus = state
            .focus
            .material
            .as_deref()
            .map(|f| format!(", focus {f}"))
            .unwrap_or_default();
        outln!("{} — branch {}{focus}", s.name, self.branch);
        let turns = self.turns(2).await?;
        if turns.is_empty() {
            outln!("  (no turns yet)");
        }
        for (q, a) in turns {
            outln!("  you:  {}", clip(q.trim(), 160));
            if !a.is_empty() {
                outln!("  kiln: {}", clip(first_line(&a), 160));
            }
        }
        Ok(())
    }

    /// Runs a slash command; returns true to quit.
    async fn command(&mut self, cmd: &str) -> anyhow::Result<bool> {
        let mut words = cmd.split_whitespace();
        let name = words.next().unwrap_or("");
        let arg = words.next();
        let mgr = self.agent.manager();
        let caller = &self.local.caller;
        let s = self.session.as_str();
        match (name, arg) {
            ("quit" | "exit" | "q", _) => return Ok(true),
            ("help", _) => outln!("{HELP}"),
            ("branch", Some(new)) => {
                mgr.create_branch(
                    caller,
                    s,
                    new,
                    Some(BranchFrom::Branch(self.branch.clone())),
                )
                .await
                .cli()?;
                self.branch = new.to_owned();
                outln!("created branch {new} and switched to it");
            }
            ("switch", Some(b)) => {
                let branches = mgr.branches(caller, s, false).await.cli()?;
                if !branches.iter().any(|x| x.name == b) {
                    bail!("no branch {b}");
                }
                self.branch = b.to_owned();
                outln!("on branch {b}");
            }
            ("branches", _) => {
                for b in mgr.branches(caller, s, false).await.cli()? {
                    let mark = if b.name == self.branch { "*" } else { " " };
                    outln!("{mark} {} ({})", b.name, b.status);
                }
            }
            ("checkpoint", Some(n)) => {
                let cp = mgr
                    .create_checkpoint(caller, s, n, Some(&self.branch), None)
                    .await
                    .cli()?;
                outln!("checkpoint {} at {}", cp.name, cp.node);
            }
            ("restore", Some(n)) => {
                let r = mgr.restore(caller, s, n, Some(&self.branch)).await.cli()?;
                if r.old_head == r.new_head {
                    outln!("{} is already at {n}: nothing to restore", self.branch);
                } else {
                    outln!(
                        "restored {n} onto {}; the previous head is saved as {}",
                        self.branch,
                        r.saved_as
                    );
                }
            }
            ("merge", Some(from)) => {
                let strategy = match words.next() {
                    None => MergeStrategy::Fail,
                    Some("ours") => MergeStrategy::Ours,
                    Some("theirs") => MergeStrategy::Theirs,
                    Some("union") => MergeStrategy::Union,
                    Some(other) => bail!("unknown strategy {other} (ours, theirs or union)"),
                };
                let m = mgr
                    .merge(caller, s, from, &self.branch, strategy)
                    .await
                    .cli()?;
                if m.merged {
                    outln!("merged {from} into {}: {}", self.branch, m.summary);
                } else {
                    outln!("nothing to merge from {from}");
                }
            }
            ("context", _) => {
                let w = self
                    .agent
                    .context(caller, s, Some(&self.branch))
                    .await
                    .cli()?;
                outln!("context: {} of {} tokens", w.total_tokens, w.budget);
                for p in &w.parts {
                    outln!(
                        "  {:<9} {:>6} tokens  {} item(s){}",
                        p.name,
                        p.tokens,
                        p.items,
                        if p.dropped > 0 {
                            format!(", {} left out", p.dropped)
                        } else {
                            String::new()
                        }
                    );
                }
                if let Some(f) = &w.focus {
                    outln!("  focus: {f}");
                }
                if !w.recent_materials.is_empty() {
                    outln!("  materials: {}", w.recent_materials.join(", "));
                }
            }
            ("summary", _) => {
                let sum = self
                    .agent
                    .session_summary(caller, s, Some(&self.branch))
                    .await
                    .cli()?;
                out!("{}", sum.to_markdown());
            }
            ("compress", keep) => {
                let keep = match keep {
                    Some(k) => k
                        .parse::<u32>()
                        .ok()
                        .filter(|k| *k <= 1000)
                        .ok_or_else(|| anyhow::anyhow!("/compress takes a number up to 1000"))?,
                    None => 4,
                };
                let c = self
                    .agent
                    .compress_history(caller, s, Some(&self.branch), keep)
                    .await
                    .cli()?;
                match c.summary {
                    Some(done) => outln!(
                        "summarised {} messages into {}; context {} -> {} tokens",
                        done.messages,
                        done.node,
                        c.tokens_before,
                        c.tokens_after
                    ),
                    None => outln!("nothing to compress"),
                }
            }
            ("history", n) => {
                let n = match n {
                    Some(k) => k
                        .parse::<usize>()
                        .ok()
                        .filter(|k| (1..=100).contains(k))
                        .ok_or_else(|| anyhow::anyhow!("/history takes a number from 1 to 100"))?,
                    None => 5,
                };
                let turns = self.turns(n).await?;
                if turns.is_empty() {
                    outln!("no turns on {} yet", self.branch);
                }
                for (q, a) in turns {
                    outln!("you:  {}", q.trim());
                    if !a.is_empty() {
                        outln!("kiln: {}\n", a.trim());
                    }
                }
            }
            ("undo", _) => {
                let (r, text) = mgr.undo_turn(caller, s, &self.branch).await.cli()?;
                outln!(
                    "undid \"{}\" on {}; the undone turn is kept as {}",
                    clip(text.trim(), 80),
                    self.branch,
                    r.saved_as
                );
            }
            ("clear", _) => {
                let fresh = mgr.fresh_branch(caller, s).await.cli()?;
                outln!(
                    "on a fresh branch {} from the beginning; {} is kept (/switch {} to go back)",
                    fresh.name,
                    self.branch,
                    self.branch
                );
                self.branch = fresh.name;
            }
            ("sessions", None) => {
                let page = mgr
                    .list_sessions(
                        caller,
                        ListQuery {
                            limit: Some(10),
                            sort: SessionSort::Activity,
                            ..Default::default()
                        },
                    )
                    .await
                    .cli()?;
                self.listed = page.items.iter().map(|x| x.id.clone()).collect();
                for (i, x) in page.items.iter().enumerate() {
                    let mark = if x.id == self.session { "*" } else { " " };
                    outln!(
                        "{mark}{:>2}. {}  ({}, {})  {}",
                        i + 1,
                        x.name,
                        x.status,
                        x.last_activity_at,
                        x.id
                    );
                }
                outln!("/sessions N switches to the Nth");
            }
            ("sessions", Some(which)) => {
                let id = match which.parse::<usize>() {
                    Ok(i) if (1..=self.listed.len()).contains(&i) => self.listed[i - 1].clone(),
                    Ok(_) => bail!("run /sessions first, then /sessions N with a listed number"),
                    Err(_) => self.local.session_id(which).await?,
                };
                let found = mgr.session(caller, &id).await.cli()?;
                self.session = found.id;
                self.branch = found.default_branch;
                self.recap().await?;
            }
            ("checkpoints", _) => {
                let cps = mgr.checkpoints(caller, s).await.cli()?;
                if cps.is_empty() {
                    outln!("no checkpoints yet (/checkpoint NAME makes one)");
                }
                for c in cps {
                    outln!(
                        "{}  {}  {}{}",
                        c.name,
                        c.branch.as_deref().unwrap_or("-"),
                        c.created_at,
                        if c.auto { "  (auto)" } else { "" }
                    );
                }
            }
            ("memory", sub) => {
                let rest = cmd.trim_start().strip_prefix("memory").unwrap_or("").trim();
                match sub {
                    None | Some("list") => {
                        let all = mgr.memory(caller).await.cli()?;
                        if all.is_empty() {
                            outln!("your memory is empty (/memory add TEXT saves a note)");
                        }
                        for e in all {
                            outln!("{}  ({}) {}", e.id, e.kind, e.content);
                        }
                    }
                    Some("add") => {
                        let text = rest.strip_prefix("add").unwrap_or("").trim();
                        let e = mgr
                            .remember(
                                caller,
                                &MemoryInput {
                                    content: text.to_owned(),
                                    kind: None,
                                },
                                MemorySource::User,
                            )
                            .await
                            .cli()?;
                        outln!("saved {}: {}", e.id, e.content);
                    }
                    Some("rm") => {
                        let Some(id) = words.next() else {
                            bail!("/memory rm needs an entry id (see /memory)");
                        };
                        mgr.forget(caller, id).await.cli()?;
                        outln!("deleted {id}");
                    }
                    Some(other) => bail!("unknown /memory {other}: use add TEXT or rm ID"),
                }
            }
            ("discoveries", _) => {
                let st = mgr.state(caller, s, &self.branch, None).await.cli()?;
                if st.discoveries.is_empty() {
                    outln!("no discoveries on {}", self.branch);
                }
                for d in &st.discoveries {
                    let m = if d.materials.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", d.materials.join(", "))
                    };
                    outln!("- [{}] {}{m}  id {}", d.discovery_type, d.description, d.id);
                }
            }
            ("branch" | "switch" | "checkpoint" | "restore" | "merge", None) => {
                bail!("/{name} needs an argument; /help lists the commands")
            }
            _ => bail!("unknown command /{name}; /help lists the commands"),
        }
        Ok(false)
    }
}

/// The first non-blank line of `text`.
fn first_line(text: &str) -> &str {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// Reads one input, joining lines that end with `\`. `None` at end of input.
fn read_input(ed: &mut DefaultEditor, prompt: &str) -> anyhow::Result<Option<String>> {
    let mut text = String::new();
    let mut p = prompt.to_owned();
    loop {
        match ed.readline(&p) {
            Ok(line) => {
                if let Some(head) = line.strip_suffix('\\') {
                    text.push_str(head);
                    text.push('\n');
                    p = "... ".into();
                } else {
                    text.push_str(&line);
                    return Ok(Some(text));
                }
            }
            Err(ReadlineError::Interrupted) => {
                text.clear();
                p = prompt.to_owned();
            }
            Err(ReadlineError::Eof) => {
                return Ok((!text.is_empty()).then_some(text));
            }
            Err(e) => return Err(e).context("could not read input"),
        }
    }
}
