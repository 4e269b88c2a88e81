//! What every command shares: the global flags, loading the configuration, opening the
//! SessionManager on the data directory, acting as a local user, and naming sessions.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use kiln_session::{Caller, Config, ListQuery, SessionManager};
use serde::de::DeserializeOwned;

/// Flags accepted by every subcommand.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Configuration file (TOML) layered over the defaults; KILN_SECTION__KEY variables win.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory holding kiln.db (overrides storage.data_dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The store's PostgreSQL database (overrides database.url; KILN_DATABASE__URL also sets
    /// it). Without it the store is SQLite in the data directory.
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Act as this user instead of the local owner.
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Loads the configuration: defaults, then `--config`, then `KILN_*`, then `--data-dir`.
pub fn load_config(global: &GlobalArgs) -> anyhow::Result<Config> {
    let mut config = Config::load(global.config.as_deref()).map_err(|e| anyhow!(e))?;
    if let Some(dir) = &global.data_dir {
        config.storage.data_dir = dir.clone();
    }
    if let Some(url) = &global.database_url {
        config.database.url = url.clone();
    }
    Ok(config)
}

/// Loads the configuration and opens the SessionManager on its data directory.
pub async fn open(global: &GlobalArgs) -> anyhow::Result<(Config, SessionManager)> {
    let config = load_config(global)?;
    let manager = SessionManager::open(&config).await.with_context(|| {
        format!(
            "could not open the data directory {}",
            config.storage.data_dir.display()
        )
    })?;
    Ok((config, manager))
}

/// An opened manager and the local user the command acts as.
#[derive(Debug)]
pub struct Local {
    pub manager: SessionManager,
    pub caller: Caller,
    pub json: bool,
}

impl Local {
    /// Opens the data directory and acts as `--as USER` or the local owner.
    pub async fn open(global: &GlobalArgs) -> anyhow::Result<Self> {
        let (_, manager) = open(global).await?;
        let caller = match manager.local_caller(global.as_user.as_deref()).await {
            Ok(c) => c,
            // Users were added (`kiln user add`) before any owner existed: create the local
            // owner now; `kiln user token owner` issues it a token for HTTP use.
            Err(e) if global.as_user.is_none() && e.code == "not_found" => {
                manager.add_user("owner", true).await.cli()?;
                manager.local_caller(Some("owner")).await.cli()?
            }
            Err(e) => {
                return Err(e).cli().with_context(|| match &global.as_user {
                    Some(u) => format!("could not act as user `{u}`"),
                    None => "could not find the local owner".to_string(),
                });
            }
        };
        Ok(Self {
            manager,
            caller,
            json: global.json,
        })
    }

    /// Returns the id of the caller's session named by a full id or a unique id prefix.
    pub async fn session_id(&self, spec: &str) -> anyhow::Result<String> {
        let spec = spec.trim();
        if spec.is_empty() {
            bail!("a session id must not be empty");
        }
        if spec.len() == 36 {
            return Ok(spec.to_string());
        }
        let mut matches = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .manager
                .list_sessions(
                    &self.caller,
                    ListQuery {
                        cursor,
                        limit: Some(200),
                        ..Default::default()
                    },
                )
                .await
                .cli()?;
            matches.extend(
                page.items
                    .into_iter()
                    .filter(|s| s.id.starts_with(spec))
                    .map(|s| s.id),
            );
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        match matches.len() {
            0 => bail!("session {spec} not found"),
            1 => Ok(matches.remove(0)),
            n => bail!("session prefix {spec} is ambiguous: it matches {n} sessions"),
        }
    }

    /// Flushes the WAL and closes the store.
    pub async fn close(self) {
        self.manager.close().await;
    }
}

/// Turns a SessionManager error into a CLI error that names its stable code and details.
pub trait Cli<T> {
    fn cli(self) -> anyhow::Result<T>;
}

impl<T> Cli<T> for kiln_session::Result<T> {
    fn cli(self) -> anyhow::Result<T> {
        self.map_err(|e| {
            let mut msg = format!("{} [{}]", e.message, e.code);
            if let Some(conflicts) = e.details.as_ref().and_then(|d| d.get("conflicts")) {
                for c in conflicts.as_array().into_iter().flatten() {
                    let text = |k: &str| c.get(k).and_then(|f| f.as_str()).unwrap_or("?");
                    msg.push_str(&format!("\n  {} [{}]", text("description"), text("key")));
                }
            }
            anyhow!(msg)
        })
    }
}

/// Parses a snake_case enum value the way the HTTP API spells it (a clap value parser).
pub fn parse_enum<T: DeserializeOwned>(s: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("`{s}` is not a valid value"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_types::{MergeStrategy, Role};

    #[test]
    fn enums_parse_as_the_api_spells_them() {
        assert_eq!(parse_enum::<Role>("tool_call"), Ok(Role::ToolCall));
        assert_eq!(
            parse_enum::<MergeStrategy>("union"),
            Ok(MergeStrategy::Union)
        );
        assert!(parse_enum::<Role>("robot").unwrap_err().contains("robot"));
    }

    #[test]
    fn data_dir_flag_overrides_the_configuration() {
        let g = GlobalArgs {
            data_dir: Some(PathBuf::from("/tmp/kiln-x")),
            ..Default::default()
        };
        let c = load_config(&g).unwrap();
        assert_eq!(c.storage.data_dir, PathBuf::from("/tmp/kiln-x"));
        assert_eq!(c.db_path(), PathBuf::from("/tmp/kiln-x/kiln.db"));
    }
}
