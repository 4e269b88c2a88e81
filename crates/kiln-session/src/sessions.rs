//! Session records: create (validated), list, get, update, delete, lifecycle.

use kiln_db::{NewSession, Page, Session, SessionEvent, SessionFilter, SessionPatch, SessionSort};
use kiln_types::Permission;
use kiln_types::session::SessionConfig;
use kiln_types::{CheckpointFrequency, ContextConfig, SessionStatus, SessionType};
use serde::Deserialize;
use serde_json::Value;

use crate::{Caller, Error, Result, SessionManager};

/// What a caller sends to create a session.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub session_type: SessionType,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub context: Option<ContextConfig>,
    #[serde(default)]
    pub duration_days: Option<u32>,
    #[serde(default)]
    pub checkpoint_frequency: Option<CheckpointFrequency>,
    #[serde(default)]
    pub template: Option<String>,
    /// Collaborators added with the session, in the same call (a `collaborative` session's
    /// members): each user (name or id) and their permissions.
    #[serde(default)]
    pub members: Vec<Member>,
}

/// A collaborator named when a session is created.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub user: String,
    pub permissions: kiln_types::Permissions,
}

/// The most members named at creation.
const MAX_MEMBERS: usize = 200;

/// Filters for listing sessions.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub status: Option<SessionStatus>,
    pub project: Option<String>,
    #[serde(alias = "type")]
    pub session_type: Option<SessionType>,
    pub tag: Option<String>,
    pub owner: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
    /// `created` (the default) or `activity` (last activity first).
    #[serde(default)]
    pub sort: SessionSort,
}

/// Fields to change on a session.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateSession {
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default, with = "double_option")]
    pub project: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub metadata: Option<Value>,
    pub context: Option<ContextConfig>,
}

pub(crate) mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

/// Checks a text field: not blank when `required`, at most `max` characters (as the API
/// document's `maxLength` counts them), and no control characters (a multi-line field may hold
/// line breaks and tabs; nothing may hold NUL).
pub(crate) fn check_text(field: &str, v: &str, max: usize, required: bool) -> Result<()> {
    if required && v.trim().is_empty() {
        return Err(Error::bad_request(format!("{field} must not be empty")));
    }
    if v.len() > max && v.chars().count() > max {
        return Err(Error::bad_request(format!(
            "{field} is longer than {max} characters"
        )));
    }
    let multi_line = field == "description";
    if v.chars()
        .any(|c| c.is_control() && !(multi_line && matches!(c, '\n' | '\r' | '\t')))
    {
        return Err(Error::bad_request(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

pub(crate) fn check_tags(tags: &[String]) -> Result<()> {
    if tags.len() > 50 {
        return Err(Error::bad_request("at most 50 tags"));
    }
    for t in tags {
        if t.trim().is_empty() || t.chars().count() > 64 {
            let shown: String = t.chars().take(64).filter(|c| !c.is_control()).collect();
            return Err(Error::bad_request(format!(
                "tag `{shown}` must be 1-64 characters, not blank"
            )));
        }
        check_text("tag", t, 64, true)?;
    }
    Ok(())
}

fn check_metadata(m: &Value) -> Result<()> {
    if !m.is_object() {
        return Err(Error::bad_request("metadata must be a JSON object"));
    }
    if m.to_string().len() > 64 * 1024 {
        return Err(Error::bad_request("metadata is larger than 64 KiB"));
    }
    Ok(())
}

/// Checks a cron expression (5 fields, or 6 with seconds).
pub(crate) fn check_cron(expr: &str) -> Result<()> {
    use croner::parser::{CronParser, Seconds};
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(expr)
        .map(|_| ())
        .map_err(|e| {
            Error::bad_request(format!(
                "checkpoint_frequency `{expr}` is not a valid cron expression: {e}"
            ))
        })
}

impl CreateSession {
    /// Validates the request and builds the stored configuration.
    pub(crate) fn validate(&self) -> Result<SessionConfig> {
        check_text("name", &self.name, 200, true)?;
        check_text("description", &self.description, 10_000, false)?;
        if let Some(p) = &self.project {
            check_text("project", p, 200, true)?;
        }
        check_tags(&self.tags)?;
        if let Some(m) = &self.metadata {
            check_metadata(m)?;
        }
        if let Some(t) = &self.template {
            check_text("template", t, 200, true)?;
        }
        let context = self.context.clone().unwrap_or_default();
        context.validate().map_err(Error::bad_request)?;
        match self.duration_days {
            None if self.session_type == SessionType::Research => {
                return Err(Error::bad_request(
                    "research sessions require duration_days",
                ));
            }
            Some(0) => return Err(Error::bad_request("duration_days must be at least 1")),
            Some(d) if d > 3650 => {
                return Err(Error::bad_request("duration_days must be at most 3650"));
            }
            _ => {}
        }
        match &self.checkpoint_frequency {
            None if self.session_type == SessionType::Research => {
                return Err(Error::bad_request(
                    "research sessions require checkpoint_frequency (hourly, daily or a cron expression)",
                ));
            }
            Some(CheckpointFrequency::Cron(c)) => check_cron(c)?,
            _ => {}
        }
        Ok(SessionConfig {
            context,
            duration_days: self.duration_days,
            checkpoint_frequency: self.checkpoint_frequency.clone(),
        })
    }
}

/// Checks an imported session's fields with exactly the rules creating it would apply: the
/// same function ([`CreateSession::validate`]), on the same fields.
pub(crate) fn check_imported(s: &Session) -> Result<()> {
    let req = CreateSession {
        name: s.name.clone(),
        description: s.description.clone(),
        session_type: s.session_type,
        project: s.project.clone(),
        tags: s.tags.clone(),
        metadata: Some(s.metadata.clone()),
        context: Some(s.config.context.clone()),
        duration_days: s.config.duration_days,
        checkpoint_frequency: s.config.checkpoint_frequency.clone(),
        template: s.template.clone(),
        members: Vec::new(),
    };
    req.validate()
        .map(|_| ())
        .map_err(|e| Error::bad_request(format!("import: session {}", e.message)))
}

impl SessionManager {
    /// Creates a session owned by the caller.
    pub async fn create_session(&self, caller: &Caller, req: CreateSession) -> Result<Session> {
        let config = req.validate()?;
        // Members are checked before anything is stored: a bad one refuses the whole call.
        if req.members.len() > MAX_MEMBERS {
            return Err(Error::bad_request(format!(
                "at most {MAX_MEMBERS} members at creation"
            )));
        }
        let mut members = Vec::with_capacity(req.members.len());
        for m in &req.members {
            let user = self.find_user(&m.user).await?;
            if user.id == caller.user_id {
                return Err(Error::bad_request(format!(
                    "`{}` creates the session and owns it: leave them out of members",
                    user.name
                )));
            }
            if members.iter().any(|(id, _): &(String, _)| *id == user.id) {
                return Err(Error::bad_request(format!(
                    "`{}` is named twice in members",
                    user.name
                )));
            }
            if m.permissions.is_empty() {
                return Err(Error::bad_request(format!(
                    "give `{}` at least one permission",
                    user.name
                )));
            }
            members.push((user.id, m.permissions));
        }
        let new = NewSession {
            owner_id: caller.user_id.clone(),
            name: req.name.trim().to_string(),
            description: req.description,
            session_type: req.session_type,
            project: req.project,
            tags: req.tags,
            metadata: req
                .metadata
                .unwrap_or_else(|| Value::Object(Default::default())),
            config,
            template: req.template,
            folder: "/".into(),
        };
        let session = self.db.create_session(new, &caller.user_id).await?;
        for (user, permissions) in members {
            self.db
                .set_collaborator(&session.id, &user, permissions, &caller.user_id)
                .await?;
        }
        Ok(session)
    }

    pub async fn session(&self, caller: &Caller, id: &str) -> Result<Session> {
        self.readable(caller, id).await
    }

    /// Lists the caller's sessions with filters, newest first.
    pub async fn list_sessions(&self, caller: &Caller, q: ListQuery) -> Result<Page<Session>> {
        let owner = match &q.owner {
            Some(name) => match self.db.user_by_name(name).await {
                Ok(u) => Some(u.id),
                Err(kiln_db::Error::NotFound(_)) => {
                    return Ok(Page {
                        items: vec![],
                        next_cursor: None,
                    });
                }
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let filter = SessionFilter {
            visible_to: Some(caller.user_id.clone()),
            owner,
            status: q.status,
            project: q.project,
            session_type: q.session_type,
            tag: q.tag,
            cursor: q.cursor,
            limit: q.limit.unwrap_or(50),
            sort: q.sort,
        };
        Ok(self.db.sessions(&filter).await?)
    }

    /// Updates a session; with `if_version`, a stale version is refused field by field.
    pub async fn update_session(
        &self,
        caller: &Caller,
        id: &str,
        req: UpdateSession,
        if_version: Option<i64>,
    ) -> Result<Session> {
        let current = self.writable(caller, id).await?;
        if let Some(n) = &req.name {
            check_text("name", n, 200, true)?;
        }
        if let Some(d) = &req.description {
            check_text("description", d, 10_000, false)?;
        }
        if let Some(Some(p)) = &req.project {
            check_text("project", p, 200, true)?;
        }
        if let Some(t) = &req.tags {
            check_tags(t)?;
        }
        if let Some(m) = &req.metadata {
            check_metadata(m)?;
        }
        let config = match req.context {
            Some(ctx) => {
                ctx.validate().map_err(Error::bad_request)?;
                Some(SessionConfig {
                    context: ctx,
                    ..current.config.clone()
                })
            }
            None => None,
        };
        let patch = SessionPatch {
            name: req.name,
            description: req.description,
            project: req.project,
            tags: req.tags,
            metadata: req.metadata,
            config,
        };
        Ok(self
            .db
            .update_session(id, &patch, if_version, &caller.user_id)
            .await?)
    }

    /// Names a session after its first request when it was created without a name of its own
    /// (`metadata.auto_title` holds the placeholder it was given: `kiln chat`, the web's "new
    /// session"). A session renamed before its first request keeps the name it was given.
    pub async fn title_from_request(&self, caller: &Caller, id: &str, request: &str) -> Result<()> {
        let s = self.readable(caller, id).await?;
        let Some(placeholder) = s.metadata.get("auto_title").and_then(Value::as_str) else {
            return Ok(());
        };
        let mut metadata = s.metadata.clone();
        if let Some(m) = metadata.as_object_mut() {
            m.remove("auto_title");
        }
        let title = title_of(request);
        let patch = SessionPatch {
            name: (s.name == placeholder && !title.is_empty()).then_some(title),
            metadata: Some(metadata),
            ..Default::default()
        };
        self.db
            .update_session(id, &patch, None, &caller.user_id)
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, caller: &Caller, id: &str) -> Result<()> {
        self.require(caller, id, Permission::Owner).await?;
        self.db.delete_session(id).await?;
        if let Ok(mut t) = self.tallies.lock() {
            t.remove(id);
        }
        Ok(())
    }

    /// Moves a session through its lifecycle.
    pub async fn set_status(
        &self,
        caller: &Caller,
        id: &str,
        to: SessionStatus,
    ) -> Result<Session> {
        self.require(caller, id, Permission::Manage).await?;
        Ok(self
            .db
            .set_status(id, to, &caller.user_id, "requested")
            .await?)
    }

    pub async fn session_events(&self, caller: &Caller, id: &str) -> Result<Vec<SessionEvent>> {
        self.readable(caller, id).await?;
        Ok(self.db.session_events(id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn research_sessions_need_a_duration_and_a_valid_schedule() {
        let mut req = CreateSession {
            name: "r".into(),
            session_type: SessionType::Research,
            ..Default::default()
        };
        assert!(
            req.validate()
                .unwrap_err()
                .message
                .contains("duration_days")
        );
        req.duration_days = Some(30);
        assert!(
            req.validate()
                .unwrap_err()
                .message
                .contains("checkpoint_frequency")
        );
        req.checkpoint_frequency = Some(CheckpointFrequency::Cron("61 * * * *".into()));
        assert!(req.validate().unwrap_err().message.contains("cron"));
        req.checkpoint_frequency = Some(CheckpointFrequency::Cron("0 */6 * * *".into()));
        assert!(req.validate().is_ok());
        req.checkpoint_frequency = Some(CheckpointFrequency::Daily);
        assert_eq!(req.validate().unwrap().duration_days, Some(30));
    }

    #[test]
    fn names_tags_and_metadata_are_checked() {
        let req = CreateSession {
            name: "  ".into(),
            ..Default::default()
        };
        assert!(req.validate().is_err());
        let req = CreateSession {
            name: "x".into(),
            tags: vec!["".into()],
            ..Default::default()
        };
        assert!(req.validate().is_err());
        let req = CreateSession {
            name: "x".into(),
            metadata: Some(serde_json::json!([1])),
            ..Default::default()
        };
        assert!(req.validate().unwrap_err().message.contains("object"));
    }
}

/// A short title from a request: its words (lines joined), without a leading "please", cut at
/// a word before 60 characters, first letter upper-case.
pub fn title_of(request: &str) -> String {
    const MAX: usize = 60;
    let words: Vec<&str> = request.split_whitespace().collect();
    let words = match words.first() {
        Some(w) if w.trim_end_matches(',').eq_ignore_ascii_case("please") => &words[1..],
        _ => &words[..],
    };
    let mut title = String::new();
    for w in words {
        if title.chars().count() + w.chars().count() + 1 > MAX {
            title.push('…');
            break;
        }
        if !title.is_empty() {
            title.push(' ');
        }
        title.push_str(w);
    }
    if title.is_empty() {
        // One word longer than the limit.
        title = words.first().map_or("", |w| w).chars().take(MAX).collect();
    }
    let mut chars = title.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => title,
    }
}

#[cfg(test)]
mod title_tests {
    use super::title_of;

    #[test]
    fn a_title_is_the_request_cut_at_a_word() {
        assert_eq!(title_of("analyse LiFePO4"), "Analyse LiFePO4");
        assert_eq!(
            title_of("  please, compare LiCoO2\nvs LiFePO4"),
            "Compare LiCoO2 vs LiFePO4"
        );
        let long = title_of(
            "what would replace cobalt in LiNi0.8Mn0.1Co0.1O2 without losing capacity at high voltage",
        );
        assert!(long.ends_with('…') && long.chars().count() <= 61, "{long}");
        assert!(long.starts_with("What would replace cobalt"), "{long}");
        assert_eq!(title_of("\n\n"), "");
    }
}
