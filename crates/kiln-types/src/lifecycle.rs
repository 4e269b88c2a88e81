//! The session lifecycle: statuses and the one table of allowed transitions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Created,
    Active,
    Paused,
    Archived,
    Resumed,
}

impl SessionStatus {
    pub const ALL: [SessionStatus; 5] = [
        SessionStatus::Created,
        SessionStatus::Active,
        SessionStatus::Paused,
        SessionStatus::Archived,
        SessionStatus::Resumed,
    ];

    /// Returns the statuses this one may move to.
    pub fn allowed_targets(self) -> &'static [SessionStatus] {
        use SessionStatus::*;
        match self {
            Created => &[Active],
            Active => &[Paused, Archived],
            Paused => &[Archived, Resumed],
            Archived => &[Resumed],
            Resumed => &[Active, Paused],
        }
    }

    /// Returns whether moving from `self` to `to` is allowed.
    pub fn can_move_to(self, to: SessionStatus) -> bool {
        self.allowed_targets().contains(&to)
    }

    /// Returns whether the session takes new messages and state events in this status.
    pub fn accepts_writes(self) -> bool {
        !matches!(self, SessionStatus::Paused | SessionStatus::Archived)
    }

    /// Returns whether a write in this status first moves the session to `active`.
    pub fn write_activates(self) -> bool {
        matches!(self, SessionStatus::Created | SessionStatus::Resumed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Created => "created",
            SessionStatus::Active => "active",
            SessionStatus::Paused => "paused",
            SessionStatus::Archived => "archived",
            SessionStatus::Resumed => "resumed",
        }
    }
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SessionStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown status `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::SessionStatus::{self, *};

    #[test]
    fn transition_table_matches_the_lifecycle() {
        let allowed = [
            (Created, Active),
            (Active, Paused),
            (Active, Archived),
            (Paused, Archived),
            (Paused, Resumed),
            (Archived, Resumed),
            (Resumed, Active),
            (Resumed, Paused),
        ];
        for from in SessionStatus::ALL {
            for to in SessionStatus::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn only_paused_and_archived_refuse_writes() {
        let refusing: Vec<_> = SessionStatus::ALL
            .into_iter()
            .filter(|s| !s.accepts_writes())
            .collect();
        assert_eq!(refusing, vec![Paused, Archived]);
        assert!(Created.write_activates() && Resumed.write_activates());
        assert!(!Active.write_activates());
    }

    #[test]
    fn statuses_parse_from_their_names() {
        for s in SessionStatus::ALL {
            assert_eq!(s.as_str().parse::<SessionStatus>().unwrap(), s);
        }
        assert!("deleted".parse::<SessionStatus>().is_err());
    }
}
