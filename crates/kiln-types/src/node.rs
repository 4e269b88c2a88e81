//! Node kinds on the conversation tree and message roles.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a node on the tree records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// The session's first node; every branch descends from it.
    Root,
    User,
    Assistant,
    System,
    ToolCall,
    ToolResult,
    Summary,
    Merge,
    Note,
    // State events.
    Material,
    Discovery,
    DiscoveryLink,
    Hypothesis,
    Task,
    ContextPin,
    ContextClear,
    Focus,
    ToolState,
}

impl NodeKind {
    pub const ALL: [NodeKind; 18] = [
        NodeKind::Root,
        NodeKind::User,
        NodeKind::Assistant,
        NodeKind::System,
        NodeKind::ToolCall,
        NodeKind::ToolResult,
        NodeKind::Summary,
        NodeKind::Merge,
        NodeKind::Note,
        NodeKind::Material,
        NodeKind::Discovery,
        NodeKind::DiscoveryLink,
        NodeKind::Hypothesis,
        NodeKind::Task,
        NodeKind::ContextPin,
        NodeKind::ContextClear,
        NodeKind::Focus,
        NodeKind::ToolState,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Root => "root",
            NodeKind::User => "user",
            NodeKind::Assistant => "assistant",
            NodeKind::System => "system",
            NodeKind::ToolCall => "tool_call",
            NodeKind::ToolResult => "tool_result",
            NodeKind::Summary => "summary",
            NodeKind::Merge => "merge",
            NodeKind::Note => "note",
            NodeKind::Material => "material",
            NodeKind::Discovery => "discovery",
            NodeKind::DiscoveryLink => "discovery_link",
            NodeKind::Hypothesis => "hypothesis",
            NodeKind::Task => "task",
            NodeKind::ContextPin => "context_pin",
            NodeKind::ContextClear => "context_clear",
            NodeKind::Focus => "focus",
            NodeKind::ToolState => "tool_state",
        }
    }

    /// Returns whether nodes of this kind change the research state (merge nodes do too).
    pub fn is_state(self) -> bool {
        matches!(
            self,
            NodeKind::Merge
                | NodeKind::Material
                | NodeKind::Discovery
                | NodeKind::DiscoveryLink
                | NodeKind::Hypothesis
                | NodeKind::Task
                | NodeKind::ContextPin
                | NodeKind::ContextClear
                | NodeKind::Focus
                | NodeKind::ToolState
        )
    }

    /// Returns whether nodes of this kind are part of the conversation a reader sees.
    pub fn is_message(self) -> bool {
        matches!(
            self,
            NodeKind::User
                | NodeKind::Assistant
                | NodeKind::System
                | NodeKind::ToolCall
                | NodeKind::ToolResult
                | NodeKind::Summary
                | NodeKind::Merge
                | NodeKind::Note
        )
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NodeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown node kind `{s}`"))
    }
}

/// Who speaks in a message appended through the messages API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
    System,
    Note,
    ToolCall,
    ToolResult,
    Summary,
}

impl Role {
    pub fn kind(self) -> NodeKind {
        match self {
            Role::User => NodeKind::User,
            Role::Assistant => NodeKind::Assistant,
            Role::System => NodeKind::System,
            Role::Note => NodeKind::Note,
            Role::ToolCall => NodeKind::ToolCall,
            Role::ToolResult => NodeKind::ToolResult,
            Role::Summary => NodeKind::Summary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_partition() {
        for k in NodeKind::ALL {
            assert_eq!(k.as_str().parse::<NodeKind>().unwrap(), k);
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert!(NodeKind::Merge.is_state() && NodeKind::Merge.is_message());
        assert!(!NodeKind::Root.is_state() && !NodeKind::Root.is_message());
        assert!(NodeKind::Discovery.is_state() && !NodeKind::Discovery.is_message());
    }
}
