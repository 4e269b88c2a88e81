//! Route groups, one module each.

pub mod agent;
pub mod batch_page;
pub mod batches;
pub mod collaborators;
pub mod diff_page;
pub mod health;
pub mod history;
pub mod instance;
pub mod live;
pub mod mcp;
pub mod memory;
pub mod memory_page;
pub mod notebook;
pub mod optimizer;
pub mod projects;
pub mod search;
pub mod session_page;
pub mod sessions;
pub mod settings_page;
pub mod shares;
pub mod templates;
pub mod tree;
pub mod web;
