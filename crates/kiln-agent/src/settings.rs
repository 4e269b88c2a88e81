//! The model the agent answers with, swappable while the service runs: the `[llm]` configuration
//! at start, overlaid by what an administrator saved on the settings page (`<data_dir>/llm.json`,
//! mode 0600). Saving builds the new model first, writes the file, then swaps it in, so a bad
//! setting never replaces a working model and a saved one survives a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use kiln_llm::{ChatModel, ConnectionReport, ProviderConfig};
use kiln_session::{Caller, Config, Error, LlmConfig, Result};
use kiln_types::ErrorKind;
use serde::{Deserialize, Serialize};

use crate::setup::provider_config;

/// The settings file in the data directory.
pub const SETTINGS_FILE: &str = "llm.json";

/// What the settings page saved. The key is the only secret; `Debug` hides it.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Saved {
    /// Empty: no model server (the offline planner, unless a key names OpenAI).
    base_url: String,
    model: String,
    /// `None`: the configured key (or `OPENAI_API_KEY`) applies.
    api_key: Option<String>,
}

/// Where the key in use comes from; the key itself is never shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// Saved on the settings page.
    SettingsPage,
    /// `llm.api_key`, `llm.api_key_file` or `KILN_LLM__API_KEY`.
    Configuration,
    /// The `OPENAI_API_KEY` environment variable.
    Environment,
    /// No key: local servers usually need none.
    None,
}

/// The model settings as an administrator sees them: never the key, only whether one is set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSettings {
    /// The model answering now (`offline-planner` without a server).
    pub active_model: String,
    /// The server's base URL, when a provider answers.
    pub base_url: Option<String>,
    /// The model name configured for the server.
    pub model: Option<String>,
    /// Whether an API key is set, and where it comes from.
    pub key_set: bool,
    pub key_source: KeySource,
    /// Whether the settings page's values are in force (else the configuration's).
    pub saved_on_page: bool,
    /// Whether the settings can be saved (an agent built from a configuration can).
    pub editable: bool,
}

/// What the settings page sends.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ModelSettingsUpdate {
    /// Base URL up to `/v1`; empty for none.
    pub base_url: String,
    /// Model name; empty for the default.
    pub model: String,
    /// A new key; empty keeps the one in force.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Forget the key saved on the page (the configured one, if any, applies again).
    #[serde(default)]
    pub clear_key: bool,
}

struct Active {
    model: Arc<dyn ChatModel>,
    provider: Option<ProviderConfig>,
    saved: Option<Saved>,
}

/// The agent's model, replaceable at run time.
pub struct ModelSlot {
    startup: LlmConfig,
    /// The settings file; `None` for an agent given a fixed model (tests, embedders).
    file: Option<PathBuf>,
    active: RwLock<Active>,
    /// One save at a time (read, build, write, swap).
    saving: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ModelSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSlot")
            .field("model", &self.model().name())
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl ModelSlot {
    /// A slot holding `model` for good (no settings file).
    pub fn fixed(model: Arc<dyn ChatModel>) -> Self {
        ModelSlot {
            startup: LlmConfig::default(),
            file: None,
            active: RwLock::new(Active {
                model,
                provider: None,
                saved: None,
            }),
            saving: tokio::sync::Mutex::new(()),
        }
    }

    /// The slot for `config`: its `[llm]` section overlaid by `<data_dir>/llm.json` if saved.
    pub fn load(config: &Config) -> std::result::Result<Self, kiln_llm::Error> {
        let file = config.storage.data_dir.join(SETTINGS_FILE);
        let saved = read_saved(&file)?;
        let (model, provider) = build(&config.llm, saved.as_ref())?;
        Ok(ModelSlot {
            startup: config.llm.clone(),
            file: Some(file),
            active: RwLock::new(Active {
                model,
                provider,
                saved,
            }),
            saving: tokio::sync::Mutex::new(()),
        })
    }

    /// The model answering now.
    pub fn model(&self) -> Arc<dyn ChatModel> {
        self.read(|a| a.model.clone())
    }

    fn read<T>(&self, f: impl FnOnce(&Active) -> T) -> T {
        f(&self.active.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The settings in force.
    pub fn view(&self) -> ModelSettings {
        self.read(|a| {
            let key_source = match (&a.saved, &a.provider) {
                (
                    Some(Saved {
                        api_key: Some(_), ..
                    }),
                    _,
                ) => KeySource::SettingsPage,
                _ if configured_key(&self.startup) => KeySource::Configuration,
                _ if a
                    .provider
                    .as_ref()
                    .is_some_and(|p| p.resolved_api_key().is_some()) =>
                {
                    KeySource::Environment
                }
                _ => KeySource::None,
            };
            ModelSettings {
                active_model: a.model.name().to_owned(),
                base_url: a.provider.as_ref().and_then(|p| p.resolved_base_url().ok()),
                model: a.provider.as_ref().map(|p| p.model.clone()),
                key_set: key_source != KeySource::None,
                key_source,
                saved_on_page: a.saved.is_some(),
                editable: self.file.is_some(),
            }
        })
    }

    /// The provider configuration in force (none for the offline planner).
    pub fn provider(&self) -> Option<ProviderConfig> {
        self.read(|a| a.provider.clone())
    }

    /// Validates `update`, builds its model, saves it (0600) and swaps it in.
    pub async fn save(&self, update: ModelSettingsUpdate) -> Result<ModelSettings> {
        let Some(file) = &self.file else {
            return Err(not_editable());
        };
        let _one = self.saving.lock().await;
        let previous_key = self.read(|a| a.saved.as_ref().and_then(|s| s.api_key.clone()));
        let new_key = update
            .api_key
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty());
        let saved = Saved {
            base_url: update.base_url.trim().to_owned(),
            model: update.model.trim().to_owned(),
            api_key: if update.clear_key {
                None
            } else {
                new_key.or(previous_key)
            },
        };
        if saved.model.chars().count() > 200 || saved.base_url.chars().count() > 2000 {
            return Err(Error::bad_request(
                "the model name (200 characters) or base URL (2000) is too long",
            ));
        }
        let (model, provider) = build(&self.startup, Some(&saved)).map_err(settings_error)?;
        write_saved(file, &saved)?;
        *self.active.write().unwrap_or_else(|p| p.into_inner()) = Active {
            model,
            provider,
            saved: Some(saved),
        };
        Ok(self.view())
    }

    /// Forgets the page's settings: the configuration's apply again.
    pub async fn reset(&self) -> Result<ModelSettings> {
        let Some(file) = &self.file else {
            return Err(not_editable());
        };
        let _one = self.saving.lock().await;
        let (model, provider) = build(&self.startup, None).map_err(settings_error)?;
        match std::fs::remove_file(file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(file, &e)),
        }
        *self.active.write().unwrap_or_else(|p| p.into_inner()) = Active {
            model,
            provider,
            saved: None,
        };
        Ok(self.view())
    }

    /// Runs one tool-calling round trip against the server in force.
    pub async fn test(&self) -> Result<ConnectionReport> {
        match self.provider() {
            Some(p) => Ok(kiln_llm::check_connection(&p).await),
            None => Err(Error::bad_request(
                "no model server is configured: the offline planner answers; save a base URL \
                 and a model first",
            )),
        }
    }
}

/// Only administrators see or change the model settings.
pub(crate) fn require_admin(caller: &Caller) -> Result<()> {
    if caller.is_owner {
        Ok(())
    } else {
        Err(Error::forbidden(
            "only an administrator can see or change the model settings",
        ))
    }
}

fn not_editable() -> Error {
    Error::new(
        ErrorKind::Conflict,
        "settings_not_editable",
        "this agent was given a fixed model; its settings cannot be changed",
    )
}

fn settings_error(e: kiln_llm::Error) -> Error {
    Error::new(
        ErrorKind::BadRequest,
        "invalid_model_settings",
        e.to_string(),
    )
}

fn io_error(file: &Path, e: &std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::StorageFull {
        return Error::new(
            ErrorKind::InsufficientStorage,
            "insufficient_storage",
            "the disk is full: the model settings were not saved",
        );
    }
    Error::internal(format!("could not write {}: {e}", file.display()))
}

/// Whether the configuration gives a key (`api_key`, or the file `api_key_file` names).
fn configured_key(llm: &LlmConfig) -> bool {
    llm.api_key.as_deref().is_some_and(|k| !k.trim().is_empty())
        || llm
            .api_key_file
            .as_ref()
            .is_some_and(|p| !p.as_os_str().is_empty())
}

/// The model and provider configuration for the startup `[llm]` overlaid by `saved`.
fn build(
    startup: &LlmConfig,
    saved: Option<&Saved>,
) -> std::result::Result<(Arc<dyn ChatModel>, Option<ProviderConfig>), kiln_llm::Error> {
    let mut llm = startup.clone();
    if let Some(s) = saved {
        llm.base_url = Some(s.base_url.clone()).filter(|u| !u.is_empty());
        llm.model = Some(s.model.clone()).filter(|m| !m.is_empty());
        if let Some(key) = &s.api_key {
            llm.api_key = Some(key.clone());
        }
    }
    let provider = provider_config(&llm)?;
    let model = kiln_llm::model_from_config(Some(&provider))?;
    let provider = provider.is_configured().then_some(provider);
    Ok((model, provider))
}

fn read_saved(file: &Path) -> std::result::Result<Option<Saved>, kiln_llm::Error> {
    match std::fs::read_to_string(file) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            kiln_llm::Error::Config(format!(
                "{} is not valid (fix it or delete it to use the configuration): {e}",
                file.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(kiln_llm::Error::Config(format!(
            "could not read {}: {e}",
            file.display()
        ))),
    }
}

/// Writes the settings readable by the server's user only, replacing the file atomically.
fn write_saved(file: &Path, saved: &Saved) -> Result<()> {
    use std::io::Write as _;
    let tmp = file.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(saved).map_err(|e| Error::internal(e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut f| {
        // A file left by an older run may have wider permissions: narrow them first.
        #[cfg(unix)]
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, file)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(file, &e));
    }
    Ok(())
}
