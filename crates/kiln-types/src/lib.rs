//! Kiln's domain vocabulary: ids, the session lifecycle, session settings, node kinds and the
//! research state (its fold, three-way merge and diff). Pure: no IO, no async.

pub mod access;
pub mod error;
pub mod ids;
pub mod lifecycle;
pub mod node;
pub mod session;
pub mod state;
pub mod text;

pub use access::{Permission, Permissions};
pub use error::ErrorKind;
pub use ids::{MemoryId, NodeId, SessionId, UserId};
pub use lifecycle::SessionStatus;
pub use node::{NodeKind, Role};
pub use session::{CheckpointFrequency, ContextConfig, SessionType};
pub use state::{
    Conflict, HypothesisStatus, MergeStrategy, ResearchState, Resolution, ResolutionError,
    Resolver, StateDiff, StateEvent, TaskStatus,
};
pub use text::clip;
