//! Kiln's built-in tools: materials analyzer, Bayesian optimizer, notebook, session search,
//! and recording and linking discoveries.

mod discovery;
mod materials;
mod notebook;
mod optimizer;
mod search;

pub use discovery::{LinkDiscoveries, RecordDiscovery};
pub use materials::MaterialsAnalyzer;
pub use notebook::{Notebook, attachment_path};
pub use optimizer::BayesianOptimizer;
pub use search::SessionSearch;
