//! Collaborator permissions: what a user may do in someone else's session, as a small bit set
//! with its implications expanded (write implies comment, add_materials and read; every
//! permission implies read; owner implies everything).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One permission a collaborator can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// See the session: conversation, branches, state, exports, search hits.
    Read,
    /// Add notes to the conversation.
    Comment,
    /// Chat with the agent, run tools, append, branch, checkpoint, restore, merge.
    Write,
    /// Record materials (and the focus) in the research state.
    AddMaterials,
    /// Lifecycle (pause, resume, archive), share links, inviting collaborators.
    Manage,
    /// Everything, including granting manage or owner and deleting the session.
    Owner,
}

impl Permission {
    pub const ALL: [Permission; 6] = [
        Permission::Read,
        Permission::Comment,
        Permission::Write,
        Permission::AddMaterials,
        Permission::Manage,
        Permission::Owner,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Comment => "comment",
            Permission::Write => "write",
            Permission::AddMaterials => "add_materials",
            Permission::Manage => "manage",
            Permission::Owner => "owner",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// This permission with everything it implies.
    fn implied(self) -> u32 {
        use Permission::*;
        let also = match self {
            Read => 0,
            Comment | AddMaterials | Manage => Read.bit(),
            Write => Read.bit() | Comment.bit() | AddMaterials.bit(),
            Owner => Self::ALL.iter().map(|p| p.bit()).fold(0, |a, b| a | b),
        };
        self.bit() | also
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown permission `{s}`; expected one of read, comment, write, \
                     add_materials, manage, owner"
                )
            })
    }
}

/// A set of permissions, implications included. Stored as its bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions(u32);

impl Permissions {
    /// No access at all.
    pub const NONE: Permissions = Permissions(0);

    /// Everything (the session's owner).
    pub fn owner() -> Self {
        Permissions(Permission::Owner.implied())
    }

    /// The set holding `perms` and everything they imply.
    pub fn of(perms: impl IntoIterator<Item = Permission>) -> Self {
        Permissions(perms.into_iter().fold(0, |acc, p| acc | p.implied()))
    }

    /// The set stored as `bits` (unknown bits are dropped, implications re-expanded).
    pub fn from_bits(bits: i64) -> Self {
        Self::of(
            Permission::ALL
                .into_iter()
                .filter(|p| bits & i64::from(p.bit()) != 0),
        )
    }

    pub fn bits(self) -> i64 {
        i64::from(self.0)
    }

    pub fn has(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    /// Holds every permission of `other`.
    pub fn covers(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The permissions held, smallest first.
    pub fn list(self) -> Vec<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|p| self.has(*p))
            .collect()
    }
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Permissions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.list().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Permissions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Permissions::of(Vec::<Permission>::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    #[test]
    fn implications_expand() {
        let w = Permissions::of([Write]);
        assert!(w.has(Read) && w.has(Comment) && w.has(AddMaterials));
        assert!(!w.has(Manage) && !w.has(Owner));
        let m = Permissions::of([Manage]);
        assert_eq!(m.list(), [Read, Manage]);
        assert_eq!(Permissions::owner().list(), Permission::ALL);
        assert!(Permissions::owner().covers(w));
        assert!(!w.covers(m));
        assert!(Permissions::of([]).is_empty());
    }

    #[test]
    fn bits_round_trip_and_names_parse() {
        for p in Permission::ALL {
            let set = Permissions::of([p]);
            assert_eq!(Permissions::from_bits(set.bits()), set);
            assert_eq!(p.as_str().parse::<Permission>(), Ok(p));
        }
        assert!("admin".parse::<Permission>().is_err());
        let json = serde_json::to_string(&Permissions::of([Comment])).unwrap();
        assert_eq!(json, r#"["read","comment"]"#);
        let back: Permissions = serde_json::from_str(r#"["write"]"#).unwrap();
        assert!(back.has(Comment));
        assert!(serde_json::from_str::<Permissions>(r#"["root"]"#).is_err());
    }
}
