//! Kiln's built-in tools: materials analyzer, Bayesian optimizer, notebook, session search,
//! and recording and linking discoveries.

mod discovery;
mod materials;
pub mod notebook;
pub(crate) mod optimizer;
mod search;

pub use discovery::{LinkDiscoveries, RecordDiscovery};
pub use materials::MaterialsAnalyzer;
pub use notebook::{Attachment, LogLine, MetricPoint, Notebook, NotebookState, attachment_path};
pub use optimizer::BayesianOptimizer;
pub use search::SessionSearch;
