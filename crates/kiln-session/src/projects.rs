//! Sessions by project and name (find or create), folders listed as a tree, and write
//! protection (protect / unprotect, owner only).

use std::collections::BTreeMap;

use kiln_db::{Found, NewSession, Project, Session};
use kiln_types::{Permission, Permissions, SessionType};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sessions::{check_tags, check_text};
use crate::{Caller, Error, Result, SessionManager};

/// The deepest folder path, in segments.
const MAX_FOLDER_DEPTH: usize = 16;

/// What `PUT /v1/projects/{project}/sessions/{name}` takes; used only when the session is made.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutSession {
    /// The folder, such as `/experiments/2026/jan` (default `/`).
    #[serde(default)]
    pub folder: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// A folder of a project with its sessions and sub-folders.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FolderTree {
    /// The folder's path (`/` is the top).
    pub path: String,
    /// The sessions directly in it, by name.
    pub sessions: Vec<Session>,
    /// Its sub-folders, by path.
    pub folders: Vec<FolderTree>,
}

/// A project's folder listing.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectTree {
    pub project: String,
    /// The folder asked for and everything below it.
    pub tree: FolderTree,
    /// Whether the listing was cut at [`kiln_db::MAX_FOLDER_SESSIONS`] sessions.
    pub truncated: bool,
}

/// Returns a folder path in its one spelling: `/` or `/a/b` (no trailing, doubled or relative
/// segments, no control characters, at most 16 segments of 1–100 bytes).
pub fn normalize_folder(raw: &str) -> Result<String> {
    let bad = |why: &str| Error::bad_request(format!("folder `{}` {why}", raw.escape_debug()));
    if !raw.starts_with('/') {
        return Err(bad("must start with `/`"));
    }
    check_text("folder", raw, 1000, true)?;
    let segments: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
    if segments.len() > MAX_FOLDER_DEPTH {
        return Err(bad("is deeper than 16 folders"));
    }
    for s in &segments {
        if *s == "." || *s == ".." {
            return Err(bad("must not contain `.` or `..`"));
        }
        if s.len() > 100 || s.trim() != *s {
            return Err(bad(
                "has a segment longer than 100 bytes or with surrounding spaces",
            ));
        }
    }
    Ok(format!("/{}", segments.join("/")))
}

/// Builds the tree under `root` from sessions sorted by folder.
fn tree_of(root: &str, sessions: Vec<Session>) -> FolderTree {
    let mut by_folder: BTreeMap<String, Vec<Session>> = BTreeMap::new();
    for s in sessions {
        by_folder.entry(s.folder.clone()).or_default().push(s);
    }
    build(root, &mut by_folder)
}

fn build(path: &str, by_folder: &mut BTreeMap<String, Vec<Session>>) -> FolderTree {
    let sessions = by_folder.remove(path).unwrap_or_default();
    let prefix = if path == "/" {
        "/".to_owned()
    } else {
        format!("{path}/")
    };
    // The direct children: the first segment below `path` of every deeper folder.
    let mut children: Vec<String> = by_folder
        .keys()
        .filter_map(|f| f.strip_prefix(&prefix))
        .filter_map(|rest| rest.split('/').next())
        .map(|seg| format!("{prefix}{seg}"))
        .collect();
    children.sort();
    children.dedup();
    FolderTree {
        path: path.to_owned(),
        sessions,
        folders: children.iter().map(|c| build(c, by_folder)).collect(),
    }
}

impl SessionManager {
    /// Returns the caller's session of that project and name, making it (in `folder`, with
    /// the description and tags given) when there is none. Names are unique per owner and
    /// project on this route; older duplicates are reported, never merged or hidden.
    pub async fn put_project_session(
        &self,
        caller: &Caller,
        project: &str,
        name: &str,
        req: PutSession,
    ) -> Result<Found> {
        check_text("project", project, 200, true)?;
        check_text("name", name, 200, true)?;
        let folder = normalize_folder(req.folder.as_deref().unwrap_or("/"))?;
        let description = req.description.unwrap_or_default();
        check_text("description", &description, 10_000, false)?;
        let tags = req.tags.unwrap_or_default();
        check_tags(&tags)?;
        let new = NewSession {
            owner_id: caller.user_id.clone(),
            name: name.trim().to_owned(),
            description,
            session_type: SessionType::Interactive,
            project: Some(project.trim().to_owned()),
            tags,
            metadata: Value::Object(Default::default()),
            config: Default::default(),
            template: None,
            folder,
        };
        Ok(self.db.find_or_create(new, &caller.user_id).await?)
    }

    /// The projects whose sessions the caller sees.
    pub async fn projects(&self, caller: &Caller) -> Result<Vec<Project>> {
        Ok(self.db.projects(&caller.user_id).await?)
    }

    /// A project's sessions the caller sees under `folder` (default `/`), as a tree.
    pub async fn project_tree(
        &self,
        caller: &Caller,
        project: &str,
        folder: Option<&str>,
    ) -> Result<ProjectTree> {
        check_text("project", project, 200, true)?;
        let folder = normalize_folder(folder.filter(|f| !f.is_empty()).unwrap_or("/"))?;
        let mut sessions = self
            .db
            .folder_sessions(&caller.user_id, project, &folder)
            .await?;
        let truncated = sessions.len() as i64 > kiln_db::MAX_FOLDER_SESSIONS;
        sessions.truncate(kiln_db::MAX_FOLDER_SESSIONS as usize);
        Ok(ProjectTree {
            project: project.to_owned(),
            tree: tree_of(&folder, sessions),
            truncated,
        })
    }

    /// Protects a session from every write, or lifts the protection (the owner only; a
    /// collaborator, even a manager, gets 403).
    pub async fn set_protected(&self, caller: &Caller, id: &str, on: bool) -> Result<Session> {
        self.access_to_read(caller, id, Permissions::of([Permission::Owner]))
            .await?;
        Ok(self.db.set_protected(id, on, &caller.user_id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_have_one_spelling_and_refuse_escapes() {
        assert_eq!(normalize_folder("/").unwrap(), "/");
        assert_eq!(
            normalize_folder("/experiments//2026/jan/").unwrap(),
            "/experiments/2026/jan"
        );
        for bad in ["experiments", "/a/../b", "/a/./b", "/a\u{0}b", "/ a"] {
            assert!(normalize_folder(bad).is_err(), "{bad:?}");
        }
        let deep = "/a".repeat(17);
        assert!(normalize_folder(&deep).is_err());
    }

    #[test]
    fn a_tree_nests_folders_under_their_parents() {
        let s = |folder: &str, name: &str| {
            let mut v: Session = serde_json::from_value(serde_json::json!({
                "id": name, "owner_id": "u", "name": name, "description": "",
                "session_type": "interactive", "status": "created", "project": "p",
                "tags": [], "metadata": {}, "config": {}, "template": null,
                "default_branch": "main", "version": 1, "created_at": "", "updated_at": ""
            }))
            .unwrap();
            v.folder = folder.into();
            v
        };
        let t = tree_of(
            "/",
            vec![
                s("/", "top"),
                s("/exp", "e"),
                s("/exp/2026/jan", "j"),
                s("/other", "o"),
            ],
        );
        assert_eq!(t.sessions[0].name, "top");
        let paths: Vec<&str> = t.folders.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["/exp", "/other"]);
        assert_eq!(t.folders[0].folders[0].path, "/exp/2026");
        assert_eq!(t.folders[0].folders[0].folders[0].sessions[0].name, "j");
    }
}
