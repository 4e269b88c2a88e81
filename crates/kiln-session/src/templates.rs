//! Session templates: built-in ones from templates/sessions (embedded), saved ones in the store.
//! A template's texts take plain `{parameter}` placeholders (`placeholders.rs`): nothing in a
//! template is ever evaluated.

mod placeholders;

use std::collections::BTreeMap;

use kiln_db::NewNode;
use kiln_types::state::TaskStatus;
use kiln_types::{CheckpointFrequency, ContextConfig, HypothesisStatus, SessionType, StateEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Caller, CreateSession, Error, Result, Session, SessionManager};

const BUILT_IN: [&str; 2] = [
    include_str!("../../../templates/sessions/materials-discovery.json"),
    include_str!("../../../templates/sessions/quick-chat.json"),
];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TemplateParam {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SessionTemplate {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub session_type: SessionType,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub context: Option<ContextConfig>,
    #[serde(default)]
    pub duration_days: Option<u32>,
    #[serde(default)]
    pub checkpoint_frequency: Option<CheckpointFrequency>,
    #[serde(default)]
    pub parameters: Vec<TemplateParam>,
    pub session_name: String,
    #[serde(default)]
    pub session_description: String,
    #[serde(default)]
    pub pins: BTreeMap<String, String>,
    #[serde(default)]
    pub focus: Option<String>,
    #[serde(default)]
    pub hypotheses: Vec<String>,
    #[serde(default)]
    pub tasks: Vec<String>,
    /// Built in (shipped with Kiln) or saved by a user. Read from input but always set by the
    /// loader (skipping it on input made saved templates, which carry it, fail to parse).
    #[serde(default)]
    pub built_in: bool,
}

fn built_in() -> Vec<SessionTemplate> {
    BUILT_IN
        .iter()
        .filter_map(|t| match serde_json::from_str::<SessionTemplate>(t) {
            Ok(mut t) => {
                t.built_in = true;
                Some(t)
            }
            Err(e) => {
                tracing::error!(error = %e, "built-in session template does not parse");
                None
            }
        })
        .collect()
}

impl SessionTemplate {
    fn render(
        &self,
        params: &BTreeMap<String, String>,
    ) -> Result<impl Fn(&str) -> Result<String> + '_> {
        let mut values = BTreeMap::new();
        for p in &self.parameters {
            match params.get(&p.name).cloned().or_else(|| p.default.clone()) {
                Some(v) => {
                    values.insert(p.name.clone(), v);
                }
                None if p.required => {
                    return Err(Error::bad_request(format!(
                        "template `{}` needs parameter `{}` ({})",
                        self.name, p.name, p.description
                    )));
                }
                // An optional parameter without a value fills in as nothing.
                None => {
                    values.insert(p.name.clone(), String::new());
                }
            }
        }
        if let Some(unknown) = params
            .keys()
            .find(|k| !self.parameters.iter().any(|p| &p.name == *k))
        {
            return Err(Error::bad_request(format!(
                "template `{}` has no parameter `{unknown}`",
                self.name
            )));
        }
        Ok(move |s: &str| {
            placeholders::fill(s, &values)
                .map_err(|e| Error::bad_request(format!("template `{}`: {e}", self.name)))
        })
    }
}

impl SessionManager {
    /// Lists built-in and saved templates.
    pub async fn templates(&self) -> Result<Vec<SessionTemplate>> {
        let mut all = built_in();
        for (name, _, body) in self.db.templates().await? {
            match serde_json::from_value::<SessionTemplate>(body) {
                Ok(mut t) => {
                    t.built_in = false;
                    all.push(t);
                }
                Err(e) => {
                    tracing::warn!(template = %name, error = %e, "saved template does not parse")
                }
            }
        }
        Ok(all)
    }

    pub async fn template(&self, name: &str) -> Result<SessionTemplate> {
        self.templates()
            .await?
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| Error::not_found(format!("template `{name}` not found")))
    }

    /// Creates a session from a template with parameters; seeds its pins, focus, hypotheses
    /// and tasks on the default branch.
    pub async fn create_from_template(
        &self,
        caller: &Caller,
        name: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<Session> {
        let t = self.template(name).await?;
        let r = t.render(params)?;
        // Everything is filled first, so a template that does not fill creates nothing.
        let mut nodes = Vec::new();
        for (k, v) in &t.pins {
            nodes.push(StateEvent::ContextPin {
                key: k.clone(),
                value: Value::String(r(v)?),
            });
        }
        if let Some(f) = &t.focus {
            nodes.push(StateEvent::Focus {
                material: Some(r(f)?),
                topic: None,
            });
        }
        for h in &t.hypotheses {
            nodes.push(StateEvent::Hypothesis {
                id: None,
                statement: r(h)?,
                status: HypothesisStatus::Open,
            });
        }
        for task in &t.tasks {
            nodes.push(StateEvent::Task {
                id: None,
                description: r(task)?,
                status: TaskStatus::Pending,
            });
        }
        let req = CreateSession {
            name: r(&t.session_name)?,
            description: r(&t.session_description)?,
            session_type: t.session_type,
            project: t.project.clone(),
            tags: t.tags.clone(),
            metadata: Some(serde_json::json!({"template_parameters": params})),
            context: t.context.clone(),
            duration_days: t.duration_days,
            checkpoint_frequency: t.checkpoint_frequency.clone(),
            template: Some(t.name.clone()),
        };
        let session = self.create_session(caller, req).await?;
        let author = Some(caller.user_id.clone());
        if !nodes.is_empty() {
            let nodes = nodes
                .into_iter()
                .map(|e| NewNode::event(e, author.clone()))
                .collect();
            self.db
                .append(
                    &session.id,
                    &session.default_branch,
                    nodes,
                    None,
                    &caller.user_id,
                )
                .await?;
        }
        self.readable(caller, &session.id).await
    }

    /// Saves a session's settings and open research state as a new template. Its texts are the
    /// session's, escaped so they fill to themselves.
    pub async fn save_as_template(
        &self,
        caller: &Caller,
        session: &str,
        name: &str,
        description: &str,
    ) -> Result<SessionTemplate> {
        let s = self.readable(caller, session).await?;
        if built_in().iter().any(|t| t.name == name) {
            return Err(Error::new(
                kiln_types::ErrorKind::Conflict,
                "already_exists",
                format!("template `{name}` is built in"),
            ));
        }
        let state = self.db.head_state(session, &s.default_branch).await?;
        let esc = placeholders::escape;
        let t = SessionTemplate {
            name: name.to_string(),
            description: description.to_string(),
            session_type: s.session_type,
            tags: s.tags.clone(),
            project: s.project.clone(),
            context: Some(s.config.context.clone()),
            duration_days: s.config.duration_days,
            checkpoint_frequency: s.config.checkpoint_frequency.clone(),
            parameters: vec![],
            session_name: esc(&s.name),
            session_description: esc(&s.description),
            pins: state
                .context
                .iter()
                .map(|(k, v)| (k.clone(), esc(v.as_str().unwrap_or(&v.to_string()))))
                .collect(),
            focus: state.focus.material.as_deref().map(esc),
            hypotheses: state
                .hypotheses
                .iter()
                .filter(|h| h.status == HypothesisStatus::Open)
                .map(|h| esc(&h.statement))
                .collect(),
            tasks: state
                .tasks
                .iter()
                .filter(|t| t.status == TaskStatus::Pending)
                .map(|t| esc(&t.description))
                .collect(),
            built_in: false,
        };
        self.db
            .save_template(
                name,
                description,
                &serde_json::to_value(&t)?,
                &caller.user_id,
            )
            .await?;
        Ok(t)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::internal(format!("json: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_parse_and_fill() {
        let all = built_in();
        assert_eq!(all.len(), BUILT_IN.len());
        let t = all
            .iter()
            .find(|t| t.name == "materials-discovery")
            .unwrap();
        let params = BTreeMap::from([("material".to_string(), "LiFePO4".to_string())]);
        let r = t.render(&params).unwrap();
        assert_eq!(
            r(&t.session_name).unwrap(),
            "LiFePO4 discovery: ionic conductivity"
        );
        assert!(
            t.render(&BTreeMap::new())
                .err()
                .unwrap()
                .message
                .contains("material")
        );
        let bad = BTreeMap::from([("colour".to_string(), "red".to_string())]);
        assert!(t.render(&bad).err().is_some());
        // A value with template syntax in it goes in as it is.
        let odd = BTreeMap::from([("material".to_string(), "{{ 7*7 }} {property}".to_string())]);
        let r = t.render(&odd).unwrap();
        assert_eq!(
            r(&t.session_name).unwrap(),
            "{{ 7*7 }} {property} discovery: ionic conductivity"
        );
        assert!(r("{unknown}").is_err());
        assert!(r("{ material }").is_err());
    }
}
