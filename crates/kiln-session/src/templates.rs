//! Session templates: built-in ones from templates/sessions (embedded, visible to everyone) and
//! saved ones in the store, each owned by a user and private, shared with named users or
//! instance-wide. A template's texts take plain `{parameter}` placeholders (`placeholders.rs`):
//! nothing in a template is ever evaluated.

pub(crate) mod placeholders;

use std::collections::{BTreeMap, BTreeSet};

use kiln_db::{NewNode, NewTemplate, SavedTemplate, TemplateChange, Visibility};
use kiln_types::state::TaskStatus;
use kiln_types::{
    CheckpointFrequency, ContextConfig, ErrorKind, HypothesisStatus, Permission, ResearchState,
    SessionType, StateEvent,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Caller, CreateSession, Error, Result, Session, SessionManager};

const BUILT_IN: [&str; 2] = [
    include_str!("../../../templates/sessions/materials-discovery.json"),
    include_str!("../../../templates/sessions/quick-chat.json"),
];

/// The longest template text (a name, a pin, a task …) and the longest text after filling.
const MAX_TEXT: usize = 64 * 1024;
/// The longest parameter value.
const MAX_VALUE: usize = 4 * 1024;
/// The most parameters, pins, hypotheses or tasks a template has.
const MAX_PARAMETERS: usize = 32;
const MAX_ITEMS: usize = 1000;
/// The most users a template is shared with.
const MAX_SHARED: usize = 200;
/// The longest description of a template or a parameter.
const MAX_DESCRIPTION: usize = 2000;

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

/// What a template says: the session settings and the texts, as the built-in files and the
/// store hold them. The texts (`session_name`, `session_description`, pin values, `focus`,
/// `hypotheses`, `tasks`) take `{parameter}` placeholders; `{{` is a literal `{`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
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
}

/// A template as a caller sees it: its body plus where it comes from and who sees it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SessionTemplate {
    #[serde(flatten)]
    pub body: TemplateBody,
    /// Names this template whatever else shares its name: the name of a built-in template,
    /// `name@owner` for a saved one.
    #[serde(rename = "ref")]
    pub reference: String,
    pub built_in: bool,
    /// The owner's user name (none for built-in templates).
    pub owner: Option<String>,
    /// Who sees it (none for built-in templates, which everyone sees).
    pub visibility: Option<Visibility>,
    /// The users it is shared with: shown to its owner only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_with: Option<Vec<String>>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// Saves a session as a template (`POST /v1/templates`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveTemplate {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub from_session: String,
    #[serde(default)]
    pub visibility: Visibility,
    /// User names (or ids); only with `visibility: shared`.
    #[serde(default)]
    pub shared_with: Vec<String>,
}

/// Changes to a saved template; a field left out stays as it is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplatePatch {
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
    /// Replaces the list; only with `visibility: shared` (now or in this patch).
    pub shared_with: Option<Vec<String>>,
    pub parameters: Option<Vec<TemplateParam>>,
    pub session_name: Option<String>,
    pub session_description: Option<String>,
    pub pins: Option<BTreeMap<String, String>>,
    /// `null` removes the focus.
    #[serde(default, with = "crate::sessions::double_option")]
    pub focus: Option<Option<String>>,
    pub hypotheses: Option<Vec<String>>,
    pub tasks: Option<Vec<String>>,
}

fn built_in() -> Vec<TemplateBody> {
    BUILT_IN
        .iter()
        .filter_map(|t| match serde_json::from_str::<TemplateBody>(t) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(error = %e, "built-in session template does not parse");
                None
            }
        })
        .collect()
}

fn built_in_view(body: TemplateBody) -> SessionTemplate {
    SessionTemplate {
        reference: body.name.clone(),
        body,
        built_in: true,
        owner: None,
        visibility: None,
        shared_with: None,
        created_at: None,
        updated_at: None,
    }
}

/// A saved template as `caller` sees it.
fn saved_view(caller: &Caller, t: SavedTemplate) -> Result<SessionTemplate> {
    let mut body: TemplateBody = serde_json::from_value(t.body).map_err(|e| {
        tracing::error!(template = %t.id, error = %e, "saved template does not parse");
        Error::internal("a saved template is unreadable")
    })?;
    // The row's name and description are the template's; the body's copies follow them.
    body.name = t.name.clone();
    body.description = t.description;
    let mine = t.owner_id == caller.user_id;
    Ok(SessionTemplate {
        body,
        reference: format!("{}@{}", t.name, t.owner),
        built_in: false,
        owner: Some(t.owner),
        visibility: Some(t.visibility),
        shared_with: mine.then_some(t.shared_with),
        created_at: Some(t.created_at),
        updated_at: Some(t.updated_at),
    })
}

/// What a name resolved to.
enum Found {
    BuiltIn(TemplateBody),
    Saved(SavedTemplate),
}

/// A template's texts, filled.
struct Filled {
    name: String,
    description: String,
    events: Vec<StateEvent>,
}

fn too_long(field: &str, text: &str, max: usize) -> Result<()> {
    if text.len() > max {
        return Err(Error::bad_request(format!(
            "{field} is longer than {max} bytes"
        )));
    }
    Ok(())
}

impl TemplateBody {
    /// Every text with the field it is in, for checks and messages.
    fn texts(&self) -> Vec<(String, &str)> {
        let mut out = vec![
            ("session_name".to_string(), self.session_name.as_str()),
            (
                "session_description".to_string(),
                self.session_description.as_str(),
            ),
        ];
        out.extend(
            self.pins
                .iter()
                .map(|(k, v)| (format!("pins.{k}"), v.as_str())),
        );
        out.extend(self.focus.iter().map(|f| ("focus".to_string(), f.as_str())));
        out.extend(
            self.hypotheses
                .iter()
                .enumerate()
                .map(|(i, h)| (format!("hypotheses[{i}]"), h.as_str())),
        );
        out.extend(
            self.tasks
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("tasks[{i}]"), t.as_str())),
        );
        out
    }

    /// Checks the parameters, the sizes and every text's placeholders: each must name a
    /// declared parameter, so a saved template always fills.
    fn check(&self) -> Result<()> {
        if self.parameters.len() > MAX_PARAMETERS {
            return Err(Error::bad_request(format!(
                "a template has at most {MAX_PARAMETERS} parameters"
            )));
        }
        let mut declared = BTreeSet::new();
        for p in &self.parameters {
            if !placeholders::is_name(&p.name) {
                return Err(Error::bad_request(format!(
                    "parameter name `{}` must be 1-{} letters, digits or `_`, not starting with a \
                     digit",
                    p.name,
                    placeholders::MAX_NAME
                )));
            }
            if !declared.insert(p.name.as_str()) {
                return Err(Error::bad_request(format!(
                    "parameter `{}` is declared twice",
                    p.name
                )));
            }
            too_long("a parameter description", &p.description, MAX_DESCRIPTION)?;
            if let Some(d) = &p.default {
                too_long(&format!("the default of `{}`", p.name), d, MAX_VALUE)?;
            }
        }
        for (what, n) in [
            ("pins", self.pins.len()),
            ("hypotheses", self.hypotheses.len()),
            ("tasks", self.tasks.len()),
        ] {
            if n > MAX_ITEMS {
                return Err(Error::bad_request(format!(
                    "a template has at most {MAX_ITEMS} {what}"
                )));
            }
        }
        if let Some(k) = self
            .pins
            .keys()
            .find(|k| k.trim().is_empty() || k.len() > 200)
        {
            return Err(Error::bad_request(format!(
                "pin key `{k}` must be 1-200 bytes"
            )));
        }
        if self.session_name.trim().is_empty() {
            return Err(Error::bad_request("session_name must not be empty"));
        }
        for (field, text) in self.texts() {
            too_long(&field, text, MAX_TEXT)?;
            let names = placeholders::names(text)
                .map_err(|e| Error::bad_request(format!("{field}: {e}")))?;
            if let Some(unknown) = names.iter().find(|n| !declared.contains(*n)) {
                return Err(Error::bad_request(format!(
                    "{field}: `{{{unknown}}}` names no parameter of this template (declare it \
                     in `parameters`, or write `{{{{{unknown}}}` for the literal text)"
                )));
            }
        }
        Ok(())
    }

    /// Fills the texts with `params` (each parameter given, or its default) and builds the
    /// state events the new session starts with; checks everything before anything is created.
    fn fill(&self, params: &BTreeMap<String, String>) -> Result<Filled> {
        if let Some(unknown) = params
            .keys()
            .find(|k| !self.parameters.iter().any(|p| &p.name == *k))
        {
            return Err(Error::bad_request(format!(
                "template `{}` has no parameter `{unknown}`",
                self.name
            )));
        }
        let mut values = BTreeMap::new();
        for p in &self.parameters {
            match params.get(&p.name).or(p.default.as_ref()) {
                Some(v) => {
                    too_long(&format!("parameter `{}`", p.name), v, MAX_VALUE)?;
                    values.insert(p.name.clone(), v.clone());
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
        let fill = |field: &str, text: &str| -> Result<String> {
            let out = placeholders::fill(text, &values).map_err(|e| {
                Error::bad_request(format!("template `{}`, {field}: {e}", self.name))
            })?;
            too_long(&format!("{field} once filled"), &out, MAX_TEXT)?;
            Ok(out)
        };
        let mut events = Vec::new();
        for (k, v) in &self.pins {
            events.push(StateEvent::ContextPin {
                key: k.clone(),
                value: Value::String(fill(&format!("pins.{k}"), v)?),
            });
        }
        if let Some(f) = &self.focus {
            let material = fill("focus", f)?;
            if !material.trim().is_empty() {
                events.push(StateEvent::Focus {
                    material: Some(material),
                    topic: None,
                });
            }
        }
        for (i, h) in self.hypotheses.iter().enumerate() {
            events.push(StateEvent::Hypothesis {
                id: None,
                statement: fill(&format!("hypotheses[{i}]"), h)?,
                status: HypothesisStatus::Open,
            });
        }
        for (i, t) in self.tasks.iter().enumerate() {
            events.push(StateEvent::Task {
                id: None,
                description: fill(&format!("tasks[{i}]"), t)?,
                status: TaskStatus::Pending,
            });
        }
        let empty = ResearchState::default();
        for e in &events {
            e.validate(&empty).map_err(|e| {
                Error::bad_request(format!("template `{}` once filled: {e}", self.name))
            })?;
        }
        Ok(Filled {
            name: fill("session_name", &self.session_name)?,
            description: fill("session_description", &self.session_description)?,
            events,
        })
    }
}

impl SessionManager {
    /// Lists the templates the caller sees: built-in ones, then saved ones by name and owner
    /// (their own, those shared with them, instance-wide ones).
    pub async fn templates(&self, caller: &Caller) -> Result<Vec<SessionTemplate>> {
        let mut all: Vec<SessionTemplate> = built_in().into_iter().map(built_in_view).collect();
        for t in self
            .db
            .visible_templates(&caller.user_id, None, None)
            .await?
        {
            // One unreadable row (logged) does not hide the others.
            if let Ok(view) = saved_view(caller, t) {
                all.push(view);
            }
        }
        Ok(all)
    }

    /// Shows one template the caller sees, by name or `name@owner`.
    pub async fn template(&self, caller: &Caller, name: &str) -> Result<SessionTemplate> {
        match self.find_template(caller, name).await? {
            Found::BuiltIn(body) => Ok(built_in_view(body)),
            Found::Saved(t) => saved_view(caller, t),
        }
    }

    /// Resolves a template name for the caller. `name@owner` names one saved template. A plain
    /// name is looked for, in order, among the caller's own templates, those shared with them,
    /// instance-wide ones and built-in ones; two of one kind (shared by two users) is an
    /// ambiguity the caller settles with `name@owner`. A template the caller does not see is
    /// "not found", exactly like one that does not exist.
    async fn find_template(&self, caller: &Caller, name: &str) -> Result<Found> {
        let not_found = || Error::not_found(format!("template `{name}` not found"));
        if let Some((template, owner)) = name.split_once('@') {
            return self
                .db
                .visible_templates(&caller.user_id, Some(template), Some(owner))
                .await?
                .into_iter()
                .next()
                .map(Found::Saved)
                .ok_or_else(not_found);
        }
        let saved = self
            .db
            .visible_templates(&caller.user_id, Some(name), None)
            .await?;
        let rank = |t: &SavedTemplate| {
            if t.owner_id == caller.user_id {
                0
            } else if t.visibility == Visibility::Shared {
                1
            } else {
                2
            }
        };
        for tier in 0..3 {
            let mut hits = saved.iter().filter(|t| rank(t) == tier);
            match (hits.next(), hits.next()) {
                (Some(t), None) => return Ok(Found::Saved(t.clone())),
                (Some(_), Some(_)) => {
                    let refs: Vec<String> = saved
                        .iter()
                        .filter(|t| rank(t) == tier)
                        .map(|t| format!("{}@{}", t.name, t.owner))
                        .collect();
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        "ambiguous_template",
                        format!(
                            "`{name}` names {} templates: {}; name one of them",
                            refs.len(),
                            refs.join(", ")
                        ),
                    )
                    .with_details(json!({"refs": refs})));
                }
                (None, _) => {}
            }
        }
        built_in()
            .into_iter()
            .find(|t| t.name == name)
            .map(Found::BuiltIn)
            .ok_or_else(not_found)
    }

    /// Resolves a template the caller may change: a saved one they own. One they do not see
    /// is "not found"; one they see but do not own (or a built-in one) is forbidden.
    async fn own_template(&self, caller: &Caller, name: &str) -> Result<SavedTemplate> {
        match self.find_template(caller, name).await? {
            Found::BuiltIn(_) => Err(Error::forbidden(format!(
                "template `{name}` is built in and cannot be changed"
            ))),
            Found::Saved(t) if t.owner_id == caller.user_id => Ok(t),
            Found::Saved(t) => Err(Error::forbidden(format!(
                "template `{}@{}` belongs to {}; only its owner may change it",
                t.name, t.owner, t.owner
            ))),
        }
    }

    /// Checks that the caller may give a template this visibility: instance-wide needs an
    /// administrator.
    fn may_publish(caller: &Caller, visibility: Visibility) -> Result<()> {
        if visibility == Visibility::Instance && !caller.is_owner {
            return Err(Error::forbidden(
                "only an administrator may make a template instance-wide",
            ));
        }
        Ok(())
    }

    /// The ids of the users a template is shared with (names or ids), checked; the caller is
    /// left out (sharing with yourself changes nothing). A list needs visibility `shared`.
    async fn share_ids(
        &self,
        caller: &Caller,
        visibility: Visibility,
        users: &[String],
    ) -> Result<Vec<String>> {
        if visibility != Visibility::Shared && !users.is_empty() {
            return Err(Error::bad_request("shared_with needs visibility `shared`"));
        }
        if users.len() > MAX_SHARED {
            return Err(Error::bad_request(format!(
                "a template is shared with at most {MAX_SHARED} users"
            )));
        }
        let mut ids = Vec::new();
        for who in users {
            let user = self.find_user(who).await?;
            if user.id != caller.user_id && !ids.contains(&user.id) {
                ids.push(user.id);
            }
        }
        Ok(ids)
    }

    /// Creates a session from a template with parameters; seeds its pins, focus, hypotheses
    /// and tasks on the default branch. Everything is filled and checked first, so a refused
    /// template creates nothing.
    pub async fn create_from_template(
        &self,
        caller: &Caller,
        name: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<Session> {
        let view = self.template(caller, name).await?;
        let t = &view.body;
        let filled = t.fill(params)?;
        let req = CreateSession {
            name: filled.name,
            description: filled.description,
            session_type: t.session_type,
            project: t.project.clone(),
            tags: t.tags.clone(),
            metadata: Some(json!({"template_parameters": params})),
            context: t.context.clone(),
            duration_days: t.duration_days,
            checkpoint_frequency: t.checkpoint_frequency.clone(),
            template: Some(view.reference.clone()),
            members: Vec::new(),
        };
        let session = self.create_session(caller, req).await?;
        if !filled.events.is_empty() {
            let author = Some(caller.user_id.clone());
            let nodes = filled
                .events
                .into_iter()
                .map(|e| NewNode::event(e, author.clone()))
                .collect();
            if let Err(e) = self
                .db
                .append(
                    &session.id,
                    &session.default_branch,
                    nodes,
                    None,
                    &caller.user_id,
                )
                .await
            {
                // Not left half made: the session goes with the seeding that failed.
                if let Err(d) = self.db.delete_session(&session.id).await {
                    tracing::error!(session = %session.id, error = %d, "could not remove a half-made session");
                }
                return Err(e.into());
            }
        }
        self.readable(caller, &session.id).await
    }

    /// Saves a session's settings and open research state as a new template owned by the
    /// caller, who must manage the session. Its texts are the session's, escaped so they fill
    /// to themselves; it has no parameters until its owner adds them.
    pub async fn save_as_template(
        &self,
        caller: &Caller,
        req: SaveTemplate,
    ) -> Result<SessionTemplate> {
        let s = self
            .require(caller, &req.from_session, Permission::Manage)
            .await?;
        if built_in().iter().any(|t| t.name == req.name) {
            return Err(Error::new(
                ErrorKind::Conflict,
                "already_exists",
                format!("template `{}` is built in", req.name),
            ));
        }
        too_long("description", &req.description, MAX_DESCRIPTION)?;
        Self::may_publish(caller, req.visibility)?;
        let shared = self
            .share_ids(caller, req.visibility, &req.shared_with)
            .await?;
        let state = self.db.head_state(&s.id, &s.default_branch).await?;
        let esc = placeholders::escape;
        let body = TemplateBody {
            name: req.name.clone(),
            description: req.description.clone(),
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
        };
        body.check()?;
        let saved = self
            .db
            .insert_template(&NewTemplate {
                owner_id: &caller.user_id,
                name: &req.name,
                description: &req.description,
                visibility: req.visibility,
                body: &serde_json::to_value(&body)?,
                shared_with: &shared,
            })
            .await?;
        saved_view(caller, saved)
    }

    /// Changes a template the caller owns: description, visibility and who it is shared with,
    /// parameters and texts (checked together, so it still fills).
    pub async fn update_template(
        &self,
        caller: &Caller,
        name: &str,
        patch: TemplatePatch,
    ) -> Result<SessionTemplate> {
        let current = self.own_template(caller, name).await?;
        let id = current.id;
        let visibility = patch.visibility.unwrap_or(current.visibility);
        if visibility != current.visibility {
            Self::may_publish(caller, visibility)?;
        }
        let shared_with = match &patch.shared_with {
            Some(users) => Some(self.share_ids(caller, visibility, users).await?),
            // A template that is not shared has no list: leaving `shared` forgets it, so going
            // back later shares with nobody by surprise.
            None if visibility != Visibility::Shared => Some(Vec::new()),
            None => None,
        };
        if let Some(d) = &patch.description {
            too_long("description", d, MAX_DESCRIPTION)?;
        }
        let view = saved_view(caller, current)?;
        let mut body = view.body;
        if let Some(d) = &patch.description {
            body.description.clone_from(d);
        }
        if let Some(p) = patch.parameters {
            body.parameters = p;
        }
        if let Some(v) = patch.session_name {
            body.session_name = v;
        }
        if let Some(v) = patch.session_description {
            body.session_description = v;
        }
        if let Some(v) = patch.pins {
            body.pins = v;
        }
        if let Some(v) = patch.focus {
            body.focus = v;
        }
        if let Some(v) = patch.hypotheses {
            body.hypotheses = v;
        }
        if let Some(v) = patch.tasks {
            body.tasks = v;
        }
        body.check()?;
        let change = TemplateChange {
            description: patch.description,
            visibility: patch.visibility,
            body: Some(serde_json::to_value(&body)?),
            shared_with,
        };
        let saved = self
            .db
            .update_template(id, &caller.user_id, &change)
            .await?;
        saved_view(caller, saved)
    }

    /// Deletes a template the caller owns. Sessions made from it keep everything they got.
    pub async fn delete_template(&self, caller: &Caller, name: &str) -> Result<()> {
        let t = self.own_template(caller, name).await?;
        Ok(self.db.delete_template(t.id, &caller.user_id).await?)
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

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn built_in_templates_parse_check_and_fill() {
        let all = built_in();
        assert_eq!(all.len(), BUILT_IN.len());
        for t in &all {
            t.check()
                .unwrap_or_else(|e| panic!("{}: {}", t.name, e.message));
        }
        let t = all
            .iter()
            .find(|t| t.name == "materials-discovery")
            .unwrap();
        let f = t.fill(&params(&[("material", "LiFePO4")])).unwrap();
        assert_eq!(f.name, "LiFePO4 discovery: ionic conductivity");
        assert_eq!(
            f.description,
            "Discovery workflow for LiFePO4 (battery cathodes), optimising ionic conductivity."
        );
        assert!(f.events.contains(&StateEvent::Focus {
            material: Some("LiFePO4".into()),
            topic: None
        }));
        let missing = t.fill(&BTreeMap::new()).err().unwrap();
        assert!(missing.message.contains("material"), "{}", missing.message);
        let unknown = t
            .fill(&params(&[("material", "X"), ("colour", "red")]))
            .err()
            .unwrap();
        assert!(unknown.message.contains("colour"), "{}", unknown.message);
        let chat = all.iter().find(|t| t.name == "quick-chat").unwrap();
        assert_eq!(
            chat.fill(&BTreeMap::new()).unwrap().name,
            "Chat: materials questions"
        );
    }

    #[test]
    fn values_are_text_and_texts_are_checked() {
        let mut t = built_in()
            .into_iter()
            .find(|t| t.name == "materials-discovery")
            .unwrap();
        // A value with template syntax in it is inserted as it is.
        let f = t
            .fill(&params(&[("material", "{{ 7*7 }} {property}")]))
            .unwrap();
        assert_eq!(f.name, "{{ 7*7 }} {property} discovery: ionic conductivity");
        // An empty required value that would leave a hypothesis empty is refused up front.
        t.hypotheses = vec!["{material}".into()];
        assert!(t.fill(&params(&[("material", " ")])).is_err());
        for (field, text, says) in [
            ("tasks", "{unknown}", "`{unknown}` names no parameter"),
            ("tasks", "{ material }", "starts no `{parameter}`"),
            ("session_name", " ", "must not be empty"),
        ] {
            let mut bad = t.clone();
            match field {
                "tasks" => bad.tasks = vec![text.into()],
                _ => bad.session_name = text.into(),
            }
            let e = bad.check().err().unwrap();
            assert!(e.message.contains(says), "{text}: {}", e.message);
        }
        let mut twice = t.clone();
        twice.parameters.push(twice.parameters[0].clone());
        assert!(twice.check().err().unwrap().message.contains("twice"));
        let mut badname = t.clone();
        badname.parameters[0].name = "9lives".into();
        assert!(badname.check().is_err());
        let mut long = t.clone();
        long.tasks = vec!["x".repeat(MAX_TEXT + 1)];
        assert!(long.check().err().unwrap().message.contains("longer"));
        let big = "y".repeat(MAX_VALUE + 1);
        assert!(t.fill(&params(&[("material", &big)])).is_err());
    }
}
