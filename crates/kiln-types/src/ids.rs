//! Typed UUIDv7 identifiers for sessions, nodes and users, stored as hyphenated text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Returns a new time-ordered (v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// Identifies a session.
    SessionId
);
id_type!(
    /// Identifies a node on a session's conversation tree.
    NodeId
);
id_type!(
    /// Identifies a user.
    UserId
);
id_type!(
    /// Identifies an entry of a user's memory.
    MemoryId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_sort_by_creation() {
        let a = NodeId::new();
        let b = NodeId::new();
        assert_eq!(a.to_string().parse::<NodeId>().unwrap(), a);
        assert!(a < b, "v7 ids are time ordered");
        assert!("not-a-uuid".parse::<SessionId>().is_err());
    }
}
