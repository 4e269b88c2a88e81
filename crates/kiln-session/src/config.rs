//! Configuration: defaults, then `--config FILE`, then `KILN_SECTION__KEY` environment variables.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub database: DatabaseConfig,
    pub llm: LlmConfig,
    pub agent: AgentConfig,
    pub jobs: crate::JobsConfig,
    pub limits: LimitsConfig,
    pub search: SearchConfig,
    pub integrity: IntegrityConfig,
    pub mcp: McpConfig,
}

/// MCP tool servers whose tools sessions may call (`[[mcp.servers]]`; kiln-mcp runs them).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct McpConfig {
    pub servers: Vec<McpServerConfig>,
}

/// One MCP tool server: a command Kiln starts (stdio) or a URL it connects to (streamable
/// HTTP). Its tools appear as `name.tool`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpServerConfig {
    /// The prefix of its tools' names (letters, digits, `_` and `-`).
    pub name: String,
    /// The program to start, speaking MCP on its stdin and stdout (or set `url`).
    pub command: String,
    pub args: Vec<String>,
    /// Extra environment for the program (values are never logged).
    pub env: std::collections::BTreeMap<String, String>,
    /// A streamable-HTTP MCP endpoint instead of a command.
    pub url: String,
    /// Seconds one call (and the start, with listing the tools) may take.
    pub timeout_secs: u64,
    /// User names that may call its tools; empty: every user.
    pub users: Vec<String>,
    /// How long its tools' results are cached per user: `off` (default), `forever`, or a time
    /// (`3600`, `30m`, `12h`, `7d`). Cached results are shared by the user's sessions.
    pub cache: String,
    /// Per tool (its name on the server), overriding `cache`.
    pub cache_tools: std::collections::BTreeMap<String, String>,
}

impl Default for McpServerConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            command: String::new(),
            args: Vec::new(),
            env: Default::default(),
            url: String::new(),
            timeout_secs: 30,
            users: Vec::new(),
            cache: "off".into(),
            cache_tools: Default::default(),
        }
    }
}

impl std::fmt::Debug for McpServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServerConfig")
            .field("name", &self.name)
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("url", &self.url)
            .field("timeout_secs", &self.timeout_secs)
            .field("users", &self.users)
            .field("cache", &self.cache)
            .field("cache_tools", &self.cache_tools)
            .finish()
    }
}

/// Full-text search: bounds on a query and how long one may run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// Longest query, in bytes.
    pub max_query_bytes: usize,
    /// Deepest nesting of parentheses in a query.
    pub max_depth: usize,
    /// Most words in a query (phrase words and prefixes count; AND, OR, NOT do not).
    pub max_terms: usize,
    /// Milliseconds a search (catching the index up, parsing, matching, snippets) may take
    /// before it is stopped and answered 503 `search_timeout`.
    pub deadline_ms: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        let limits = kiln_search::Limits::default();
        Self {
            max_query_bytes: limits.max_bytes,
            max_depth: limits.max_depth,
            max_terms: limits.max_terms,
            deadline_ms: 3000,
        }
    }
}

impl SearchConfig {
    /// The query bounds as kiln-search takes them.
    pub fn limits(&self) -> kiln_search::Limits {
        kiln_search::Limits {
            max_bytes: self.max_query_bytes,
            max_depth: self.max_depth,
            max_terms: self.max_terms,
        }
    }
}

/// What one user may take from a shared server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Expensive requests (agent turns, tool calls, searches, merges, exports, imports) per
    /// user per minute; 0: no limit.
    pub expensive_per_minute: u32,
    /// How many of them may come at once after a quiet spell.
    pub expensive_burst: u32,
    /// Megabytes of messages and events each user may write (their own and their imports);
    /// 0: no quota.
    pub storage_quota_mb: u64,
    /// Megabytes one notebook file may hold (an upload past it is 413 payload_too_large).
    pub max_file_mb: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            expensive_per_minute: 120,
            expensive_burst: 30,
            storage_quota_mb: 1024,
            max_file_mb: 100,
        }
    }
}

/// Export signatures and imports (see ARCHITECTURE.md, "Integrity").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntegrityConfig {
    /// The instance's signing key (the ed25519 secret as 64 hex digits). Empty:
    /// `<data_dir>/instance.key`, generated at first start. Point several instances at one
    /// file to have them sign as one.
    pub key_file: PathBuf,
    /// Public keys (64 hex digits) of other instances whose signed exports import with their
    /// original authors; the instance's own key is always trusted.
    pub trusted_keys: Vec<String>,
    /// Largest session export an import accepts, in bytes (413 `payload_too_large` beyond).
    pub max_import_bytes: usize,
}

impl Default for IntegrityConfig {
    fn default() -> Self {
        Self {
            key_file: PathBuf::new(),
            trusted_keys: Vec::new(),
            max_import_bytes: 16 * 1024 * 1024,
        }
    }
}

/// The agent loop: step budget and discovery detection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Most model calls in one turn (each may ask for several tool calls).
    pub step_budget: u32,
    /// Whether each answer is classified for discoveries.
    pub auto_detect_discoveries: bool,
    /// Detected discoveries below this confidence (0..=1) are not recorded.
    pub min_confidence: f64,
    /// Discovery categories recorded automatically.
    pub discovery_categories: Vec<String>,
    /// Older messages are summarised once at least this many fall out of the window.
    pub summary_batch: u32,
    /// Turns that may wait on one branch behind the one running (more get 429).
    pub turn_queue: u32,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            step_budget: 6,
            auto_detect_discoveries: true,
            min_confidence: 0.6,
            discovery_categories: vec![
                "structure_property".into(),
                "novel_synthesis".into(),
                "stability_insight".into(),
                "phase_relationship".into(),
            ],
            summary_batch: 8,
            turn_queue: 32,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    pub max_body_bytes: usize,
    /// The URL links handed out start with (share links); empty: `http://` + the bound address.
    pub public_url: String,
    /// Most connections open at once; past it, new ones wait in the listen backlog.
    pub max_connections: usize,
    /// Seconds a client has to send a request's line and headers once it started.
    pub header_timeout_secs: u64,
    /// Seconds a connection may sit with no request before it is closed.
    pub idle_timeout_secs: u64,
    /// Seconds a client has to send a whole request body.
    pub body_timeout_secs: u64,
    /// Seconds a response may wait on a client that does not read it.
    pub write_timeout_secs: u64,
    /// Longest request line (method, path and query) in bytes; longer ones get 414.
    pub max_uri_bytes: usize,
    /// Longest request head (request line and headers) in bytes; longer ones get 431.
    pub max_header_bytes: usize,
    /// Seconds a stop waits for requests in flight before it closes their connections.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            max_body_bytes: 2 * 1024 * 1024,
            public_url: String::new(),
            max_connections: 512,
            header_timeout_secs: 10,
            idle_timeout_secs: 60,
            body_timeout_secs: 60,
            write_timeout_secs: 30,
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 32 * 1024,
            shutdown_grace_secs: 10,
        }
    }
}

/// Where the store lives: empty `url` is SQLite in the data directory (the default);
/// `postgres://…` is a PostgreSQL database that several servers may share.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
}

impl DatabaseConfig {
    /// The PostgreSQL URL in force, if any.
    pub fn postgres_url(&self) -> Option<&str> {
        let url = self.url.trim();
        (!url.is_empty()).then_some(url)
    }
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &kiln_db::redact_url(&self.url))
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub busy_timeout_ms: u64,
    pub max_readers: u32,
    pub snapshot_every: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            busy_timeout_ms: 5000,
            max_readers: 8,
            snapshot_every: 32,
        }
    }
}

/// The language model. With no `base_url` and no API key, the offline planner answers.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    /// A file holding the API key (used when `api_key` is unset), so the key stays out of
    /// configuration files and process listings.
    pub api_key_file: Option<PathBuf>,
    pub model: Option<String>,
    pub temperature: Option<f32>,
    pub timeout_secs: Option<u64>,
    pub max_retries: Option<u32>,
    pub retry_base_ms: Option<u64>,
    pub retry_max_ms: Option<u64>,
    /// `host:port` where `serve` looks for an Ollama server when no model is configured, to
    /// say how to use it; empty: do not look.
    pub ollama_probe: String,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            api_key: None,
            api_key_file: None,
            model: None,
            temperature: None,
            timeout_secs: None,
            max_retries: None,
            retry_base_ms: None,
            retry_max_ms: None,
            ollama_probe: "127.0.0.1:11434".into(),
        }
    }
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("api_key_file", &self.api_key_file)
            .field("model", &self.model)
            .field("temperature", &self.temperature)
            .field("timeout_secs", &self.timeout_secs)
            .field("max_retries", &self.max_retries)
            .field("ollama_probe", &self.ollama_probe)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Loads the configuration: built-in defaults, then `file`, then `KILN_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(format!("config file {} does not exist", f.display()));
            }
            fig = fig.merge(Toml::file(f));
        }
        // Only `KILN_SECTION__KEY` names configure: other `KILN_*` variables (KILN_LOG, the
        // benchmarks' and tests' own) are not configuration and must not fail the load.
        let sections = Env::prefixed("KILN_")
            .filter(|key| key.as_str().contains("__"))
            .split("__");
        fig = fig.merge(sections);
        fig.extract()
            .map_err(|e| format!("invalid configuration: {e}"))
    }

    /// Returns the instance's key file: `integrity.key_file`, or `instance.key` in the data
    /// directory.
    pub fn key_path(&self) -> PathBuf {
        if self.integrity.key_file.as_os_str().is_empty() {
            self.storage.data_dir.join("instance.key")
        } else {
            self.integrity.key_file.clone()
        }
    }

    /// Returns the database file inside the data directory.
    pub fn db_path(&self) -> PathBuf {
        self.storage.data_dir.join("kiln.db")
    }
}

#[cfg(test)]
// figment's `Jail` closures must return `figment::Error`, which is large; the size is not ours to choose.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_file_parses_to_the_defaults() {
        // Inside a jail: the environment test below sets KILN_* variables process-wide.
        figment::Jail::expect_with(|_| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
            let c = Config::load(Some(&path)).map_err(|e| e.to_string())?;
            let d = Config::default();
            assert_eq!(c.server.bind, d.server.bind);
            assert_eq!(c.storage.data_dir, d.storage.data_dir);
            assert_eq!(c.storage.snapshot_every, d.storage.snapshot_every);
            assert_eq!(c.server.max_body_bytes, d.server.max_body_bytes);
            assert_eq!(c.search.limits(), d.search.limits());
            assert_eq!(c.search.deadline_ms, d.search.deadline_ms);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k.toml");
        std::fs::write(&f, "[server]\nbnid = \"x\"\n").unwrap();
        assert!(Config::load(Some(&f)).unwrap_err().contains("bnid"));
        assert!(Config::load(Some(&dir.path().join("none.toml"))).is_err());
    }

    #[test]
    fn environment_variables_override_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("k.toml", "[server]\nbind = \"127.0.0.1:7000\"\n")?;
            jail.set_env("KILN_SERVER__BIND", "127.0.0.1:9000");
            jail.set_env("KILN_STORAGE__SNAPSHOT_EVERY", "7");
            let c = Config::load(Some(Path::new("k.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.server.bind, "127.0.0.1:9000");
            assert_eq!(c.storage.snapshot_every, 7);
            Ok(())
        });
    }

    #[test]
    fn other_kiln_variables_are_ignored_and_unknown_sections_refused() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KILN_LOG", "debug");
            jail.set_env("KILN_BENCH_SIZES", "1000");
            jail.set_env("KILN_SERVER__MAX_BODY_BYTES", "1234");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.server.max_body_bytes, 1234);
            jail.set_env("KILN_SERVR__BIND", "127.0.0.1:1");
            let err = Config::load(None).expect_err("a misspelt section is an error");
            assert!(err.contains("servr"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn mcp_servers_parse_and_their_env_values_stay_out_of_debug() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k.toml");
        std::fs::write(
            &f,
            "[[mcp.servers]]\nname = \"units\"\ncommand = \"python3\"\nargs = [\"s.py\"]\n\
             env = { TOKEN = \"s3cret\" }\nusers = [\"alice\"]\n",
        )
        .unwrap();
        let c = Config::load(Some(&f)).unwrap();
        let s = &c.mcp.servers[0];
        assert_eq!((s.name.as_str(), s.timeout_secs), ("units", 30));
        assert_eq!(s.users, ["alice"]);
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn debug_redacts_the_api_key() {
        let c = LlmConfig {
            api_key: Some("sk-secret".into()),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("sk-secret"));
    }
}
