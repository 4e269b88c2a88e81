//! Read-only share links: created by managers with an expiry and an optional view limit,
//! pinned to a branch head or a checkpoint, shown once, stored as a SHA-256 hash, revocable.
//! Opening one yields the conversation up to the pinned node (a page at a time) and the
//! research state there, with author ids replaced by per-link labels ("Author 3f9a0c").

use chrono::{Duration, Utc};
use kiln_db::{NewShare, ShareLink, ShareRefusal, stamp};
use kiln_types::state::{Discovery, Hypothesis, Link, Material};
use kiln_types::{ErrorKind, NodeKind, Permission, Permissions, SessionType};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Caller, Error, Result, SessionManager, hash_token};

/// Share tokens: this prefix and 64 hex digits (256 random bits).
const TOKEN_PREFIX: &str = "ks_";

/// Longest a link may live.
const MAX_DAYS: u32 = 365;

/// A share link to create.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateShare {
    pub expires_in_days: u32,
    #[serde(default)]
    pub max_views: Option<u32>,
    /// Pin to this branch's head (default: the session's default branch).
    #[serde(default)]
    pub branch: Option<String>,
    /// Or pin to this checkpoint.
    #[serde(default)]
    pub checkpoint: Option<String>,
}

/// A new link: the token is in here and nowhere else, ever.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedShare {
    pub id: String,
    pub token: String,
    /// The page's path (`/s/{token}`); the server prefixes its public URL.
    pub path: String,
    pub expires_at: String,
    #[serde(flatten)]
    pub link: ShareLink,
}

/// What a share link shows.
#[derive(Debug, Clone, Serialize)]
pub struct SharedView {
    pub session: SharedSession,
    /// The node the link is pinned to, and where it was taken from.
    pub pinned_node: String,
    pub branch: Option<String>,
    pub checkpoint: Option<String>,
    pub expires_at: String,
    pub views: i64,
    pub max_views: Option<i64>,
    /// The newest messages up to the pinned node (or before the cursor asked for), oldest
    /// first, at most [`SHARE_PAGE`].
    pub conversation: Vec<SharedNode>,
    /// Cursor for the messages before these (`?before=`), if any.
    pub older: Option<String>,
    pub discoveries: Vec<Discovery>,
    pub links: Vec<Link>,
    pub materials: Vec<Material>,
    pub hypotheses: Vec<Hypothesis>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SharedSession {
    pub name: String,
    pub description: String,
    #[serde(rename = "type")]
    pub session_type: SessionType,
    pub project: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SharedNode {
    pub id: String,
    pub kind: kiln_types::NodeKind,
    /// "Author 3f9a0c": a label derived from the link and the user, the same on every page
    /// of one link and different across links; none for the agent.
    pub author: Option<String>,
    pub content: String,
    pub created_at: String,
    /// Tool calls and results: the tool's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Tool results: the result's one-line text, or why the call failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brief: Option<String>,
}

fn new_share_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// Whether `token` has the shape of a share token (checked before any lookup).
pub fn is_share_token_shape(token: &str) -> bool {
    token.len() == TOKEN_PREFIX.len() + 64
        && token.starts_with(TOKEN_PREFIX)
        && token[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Messages per page of a shared view.
pub const SHARE_PAGE: u32 = 200;

/// An author's label on a shared view: stable for one link (so pages agree), unlinkable across
/// links, and no user id or name.
fn anonymous_author(link_hash: &[u8], user: &str) -> String {
    let mut h = Sha256::new();
    h.update(link_hash);
    h.update(user.as_bytes());
    format!("Author {}", hex::encode(&h.finalize()[..3]))
}

fn unknown() -> Error {
    Error::new(
        ErrorKind::NotFound,
        "share_not_found",
        "no such share link, or it is no longer valid",
    )
}

impl SessionManager {
    /// Creates a share link (needs manage). The token is returned once.
    pub async fn create_share(
        &self,
        caller: &Caller,
        session: &str,
        req: CreateShare,
    ) -> Result<CreatedShare> {
        let s = self.require(caller, session, Permission::Manage).await?;
        if !(1..=MAX_DAYS).contains(&req.expires_in_days) {
            return Err(Error::bad_request(format!(
                "expires_in_days must be between 1 and {MAX_DAYS}"
            )));
        }
        if req.max_views == Some(0) {
            return Err(Error::bad_request("max_views must be at least 1"));
        }
        if req.branch.is_some() && req.checkpoint.is_some() {
            return Err(Error::bad_request(
                "pin the link to a branch or to a checkpoint, not both",
            ));
        }
        let (node, branch) = match &req.checkpoint {
            Some(cp) => (self.db.checkpoint(session, cp).await?.node, None),
            None => {
                let b = req.branch.clone().unwrap_or(s.default_branch);
                (self.db.branch(session, &b).await?.head, Some(b))
            }
        };
        let token = new_share_token();
        let id = kiln_types::NodeId::new().to_string();
        let now = Utc::now();
        let expires_at = stamp(now + Duration::days(i64::from(req.expires_in_days)));
        let link = self
            .db
            .create_share(&NewShare {
                id: &id,
                session,
                token_hash: &hash_token(&token),
                node: &node,
                branch: branch.as_deref(),
                checkpoint: req.checkpoint.as_deref(),
                created_by: &caller.user_id,
                created_at: &stamp(now),
                expires_at: &expires_at,
                max_views: req.max_views.map(i64::from),
            })
            .await?;
        Ok(CreatedShare {
            id,
            path: format!("/s/{token}"),
            token,
            expires_at,
            link,
        })
    }

    /// Lists a session's share links (needs manage); tokens are never shown again.
    pub async fn shares(&self, caller: &Caller, session: &str) -> Result<Vec<ShareLink>> {
        self.access_to_read(caller, session, Permissions::of([Permission::Manage]))
            .await?;
        Ok(self.db.shares(session).await?)
    }

    /// Revokes a share link (needs manage).
    pub async fn revoke_share(
        &self,
        caller: &Caller,
        session: &str,
        id: &str,
    ) -> Result<ShareLink> {
        self.require(caller, session, Permission::Manage).await?;
        Ok(self
            .db
            .revoke_share(session, id, &caller.user_id, &stamp(Utc::now()))
            .await?)
    }

    /// Whether a bearer token is a share token (the server answers 403 "read-only" to it).
    pub async fn is_share_token(&self, token: &str) -> Result<bool> {
        if !is_share_token_shape(token) {
            return Ok(false);
        }
        Ok(self
            .db
            .is_live_share_token(&hash_token(token), &stamp(Utc::now()))
            .await?)
    }

    /// Opens a share link and counts the view (every page is a view). A malformed, unknown,
    /// revoked or expired token, or one past its view limit, gets the same 404
    /// `share_not_found`: a dead link tells its holder nothing a guessed one would not.
    /// `before` pages back through the conversation.
    pub async fn open_share(&self, token: &str, before: Option<&str>) -> Result<SharedView> {
        // `?before=` is no cursor.
        let before = before
            .filter(|b| !b.is_empty())
            .map(|b| {
                b.parse::<i64>()
                    .map_err(|_| Error::bad_request("before must be a cursor from `older`"))
            })
            .transpose()?;
        if !is_share_token_shape(token) {
            return Err(unknown());
        }
        let hash = hash_token(token);
        let link = match self.db.use_share(&hash, &stamp(Utc::now())).await? {
            Ok(link) => link,
            Err(ShareRefusal::Unknown | ShareRefusal::Expired | ShareRefusal::ViewsUsedUp) => {
                return Err(unknown());
            }
        };
        // The row was found by its hash; compare it again without a data-dependent early exit.
        if !bool::from(link.token_hash.as_slice().ct_eq(hash.as_slice())) {
            return Err(unknown());
        }
        let s = self.db.session(&link.session_id).await?;
        let state = self
            .db
            .state_at_node(&link.session_id, &link.node_id)
            .await?;
        let mut page = self
            .db
            .path_messages(&link.session_id, &link.node_id, SHARE_PAGE, before)
            .await?;
        page.items.reverse();
        let conversation = page
            .items
            .into_iter()
            .map(|n| {
                let author = n
                    .author
                    .as_deref()
                    .map(|a| anonymous_author(&link.token_hash, a));
                let tool = match n.kind {
                    NodeKind::ToolCall | NodeKind::ToolResult => n
                        .data
                        .as_ref()
                        .and_then(|d| d.get("name"))
                        .and_then(|v| v.as_str())
                        .map(str::to_owned),
                    _ => None,
                };
                let brief = (n.kind == NodeKind::ToolResult).then(|| n.readable_text());
                SharedNode {
                    id: n.id,
                    kind: n.kind,
                    author,
                    content: n.content,
                    created_at: n.created_at,
                    tool,
                    brief,
                }
            })
            .collect();
        Ok(SharedView {
            session: SharedSession {
                name: s.name,
                description: s.description,
                session_type: s.session_type,
                project: s.project,
                tags: s.tags,
            },
            pinned_node: link.node_id,
            branch: link.branch,
            checkpoint: link.checkpoint,
            expires_at: link.expires_at,
            views: link.views,
            max_views: link.max_views,
            conversation,
            older: page.next_cursor,
            discoveries: state.discoveries,
            links: state.links,
            materials: state.materials,
            hypotheses: state.hypotheses,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_of_hex_with_a_prefix() {
        let t = new_share_token();
        assert!(is_share_token_shape(&t), "{t}");
        assert_ne!(t, new_share_token());
        assert!(!is_share_token_shape(&t[..t.len() - 1]));
        assert!(!is_share_token_shape(&t.to_uppercase()));
        assert!(!is_share_token_shape(&format!("kiln_{}", &t[3..])));
        assert!(!is_share_token_shape(""));
    }
}
