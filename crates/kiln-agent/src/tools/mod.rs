//! Kiln's built-in tools: materials analyzer, Bayesian optimizer, notebook, session search,
//! recording and linking discoveries, and the researcher's memory across sessions.

mod discovery;
mod materials;
mod memory;
pub mod notebook;
pub(crate) mod optimizer;
mod search;

pub use discovery::{LinkDiscoveries, RecordDiscovery};
pub use materials::MaterialsAnalyzer;
pub use memory::UserMemory;
pub use notebook::{Attachment, LogLine, MetricPoint, Notebook, NotebookState, attachment_path};
pub use optimizer::BayesianOptimizer;
pub use search::SessionSearch;
