//! Sharing a session with other users: collaborators and their permissions, and what each
//! user contributed. Managers invite, change and remove collaborators; only owners grant or
//! take away manage and owner.

use kiln_db::{Collaborator, Contribution, Membership, User};
use kiln_types::{Permission, Permissions};

use crate::{Caller, Error, Result, Session, SessionManager};

impl SessionManager {
    /// Finds a user by name, or by id.
    pub(crate) async fn find_user(&self, who: &str) -> Result<User> {
        match self.db.user_by_name(who).await {
            Ok(u) => Ok(u),
            Err(kiln_db::Error::NotFound(_)) => match self.db.user(who).await {
                Ok(u) => Ok(u),
                Err(kiln_db::Error::NotFound(_)) => {
                    Err(Error::not_found(format!("user `{who}` not found")))
                }
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Gives `user` (a name or an id) these permissions on the session, replacing any they
    /// had: the seed API's `share_with_user`. Needs manage; granting manage or owner, or
    /// changing someone who holds them, needs owner.
    pub async fn share_with_user(
        &self,
        caller: &Caller,
        session: &str,
        user: &str,
        permissions: Permissions,
    ) -> Result<Collaborator> {
        self.set_collaborator(caller, session, user, permissions, None)
            .await
    }

    /// Adds a collaborator (`already_exists` if they are one) or, with `existing = true`,
    /// changes one (`not_found` if they are not); the rules of [`Self::share_with_user`].
    pub async fn invite(
        &self,
        caller: &Caller,
        session: &str,
        user: &str,
        permissions: Permissions,
        existing: bool,
    ) -> Result<Collaborator> {
        self.set_collaborator(caller, session, user, permissions, Some(existing))
            .await
    }

    async fn set_collaborator(
        &self,
        caller: &Caller,
        session: &str,
        user: &str,
        permissions: Permissions,
        existing: Option<bool>,
    ) -> Result<Collaborator> {
        if permissions.is_empty() {
            return Err(Error::bad_request(
                "give at least one permission (remove the collaborator to take all away)",
            ));
        }
        let (s, held) = self
            .access(caller, session, Permissions::of([Permission::Manage]))
            .await?;
        let target = self.find_user(user).await?;
        if target.id == s.owner_id {
            return Err(Error::bad_request(format!(
                "`{}` owns the session and holds every permission",
                target.name
            )));
        }
        let current = self.db.collaborator(session, &target.id).await?;
        match (existing, &current) {
            (Some(true), None) => {
                return Err(Error::not_found(format!(
                    "`{}` is not a collaborator",
                    target.name
                )));
            }
            (Some(false), Some(_)) => {
                return Err(Error::new(
                    kiln_types::ErrorKind::Conflict,
                    "already_exists",
                    format!(
                        "`{}` is already a collaborator; PATCH to change their permissions",
                        target.name
                    ),
                ));
            }
            _ => {}
        }
        let powerful = |p: Permissions| p.has(Permission::Manage) || p.has(Permission::Owner);
        if (powerful(permissions) || current.as_ref().is_some_and(|c| powerful(c.permissions)))
            && !held.has(Permission::Owner)
        {
            return Err(Error::forbidden(
                "only an owner grants or changes manage and owner permissions",
            ));
        }
        Ok(self
            .db
            .set_collaborator(session, &target.id, permissions, &caller.user_id)
            .await?)
    }

    /// Removes a collaborator. Needs manage (owner if they hold manage or owner); anyone may
    /// remove themselves.
    pub async fn remove_collaborator(
        &self,
        caller: &Caller,
        session: &str,
        user: &str,
    ) -> Result<()> {
        let (_, held) = self
            .access(caller, session, Permissions::of([Permission::Read]))
            .await?;
        let target = self.find_user(user).await?;
        let other = target.id != caller.user_id;
        if other && !held.has(Permission::Manage) {
            return Err(Error::forbidden(
                "removing a collaborator needs the manage permission",
            ));
        }
        let current = self
            .db
            .collaborator(session, &target.id)
            .await?
            .ok_or_else(|| Error::not_found(format!("`{}` is not a collaborator", target.name)))?;
        let powerful = current.permissions.has(Permission::Manage)
            || current.permissions.has(Permission::Owner);
        if other && powerful && !held.has(Permission::Owner) {
            return Err(Error::forbidden(format!(
                "removing `{}` needs the owner permission",
                target.name
            )));
        }
        self.db
            .remove_collaborator(session, &target.id, &caller.user_id)
            .await?;
        Ok(())
    }

    /// Leaves a session someone else added the caller to (their collaborator row goes; the
    /// audit log records it). The owner cannot leave their own session.
    pub async fn leave_session(&self, caller: &Caller, session: &str) -> Result<()> {
        let (s, _) = self
            .access(caller, session, Permissions::of([Permission::Read]))
            .await?;
        if s.owner_id == caller.user_id {
            return Err(Error::new(
                kiln_types::ErrorKind::Conflict,
                "owner_cannot_leave",
                "you own this session: delete it, or archive it, instead of leaving it",
            ));
        }
        if !self
            .db
            .remove_collaborator(session, &caller.user_id, &caller.user_id)
            .await?
        {
            return Err(Error::not_found(
                "you are not a collaborator on this session",
            ));
        }
        Ok(())
    }

    /// For each of `sessions` that someone else owns, how the caller came to it (who added
    /// them, when, with which permissions): the sessions list marks these.
    pub async fn shared_with_caller(
        &self,
        caller: &Caller,
        sessions: &[Session],
    ) -> Result<std::collections::HashMap<String, Membership>> {
        let others: Vec<String> = sessions
            .iter()
            .filter(|s| s.owner_id != caller.user_id)
            .map(|s| s.id.clone())
            .collect();
        Ok(self.db.memberships(&caller.user_id, &others).await?)
    }

    /// Lists the session's collaborators.
    pub async fn collaborators(&self, caller: &Caller, session: &str) -> Result<Vec<Collaborator>> {
        self.readable(caller, session).await?;
        Ok(self.db.collaborators(session).await?)
    }

    /// Counts each user's queries, messages, discoveries and materials in the session.
    pub async fn contributions(&self, caller: &Caller, session: &str) -> Result<Vec<Contribution>> {
        self.readable(caller, session).await?;
        Ok(self.db.contributions(session).await?)
    }

    /// The permissions the caller holds on a session.
    pub async fn permissions(&self, caller: &Caller, session: &str) -> Result<Permissions> {
        Ok(self.session_and_permissions(caller, session).await?.1)
    }

    /// A session the caller may read and the permissions they hold on it, from one access
    /// check.
    pub async fn session_and_permissions(
        &self,
        caller: &Caller,
        session: &str,
    ) -> Result<(kiln_db::Session, Permissions)> {
        self.access(caller, session, Permissions::of([Permission::Read]))
            .await
    }
}
