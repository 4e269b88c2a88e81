//! Bayesian optimisation for Kiln: search spaces, experiments, initial designs, Gaussian
//! processes, acquisitions, and the pure action API behind the `bayesian_optimizer` tool.
//!
//! The session tool drives everything through [`apply`]:
//!
//! ```
//! use kiln_bayesopt::apply;
//! use serde_json::json;
//!
//! let space = json!({"action": "define_space",
//!     "variables": [{"name": "temp", "type": "real", "bounds": [100, 300], "unit": "°C"},
//!                   {"name": "solvent", "type": "categorical", "categories": ["water", "ethanol"]}],
//!     "objective": {"name": "yield", "goal": "maximize"}});
//! let state = apply(None, &space, 0)?.state;
//! let rows = json!({"action": "add_experiments", "csv": "temp,solvent,yield\n150,water,0.41\n250,ethanol,0.72\n200,water,0.55\n"});
//! let state = apply(Some(state), &rows, 0)?.state;
//! let next = apply(Some(state), &json!({"action": "suggest", "strategy": "qEI", "q": 2}), 7)?;
//! assert_eq!(next.result["suggestions"].as_array().map(Vec::len), Some(2));
//! let locked = apply(Some(next.state), &json!({"action": "lock", "what": "acquisition"}), 7)?;
//! assert!(locked.lock.is_some());
//! # Ok::<(), kiln_bayesopt::Error>(())
//! ```

pub mod acquisition;
pub mod action;
pub mod alchemist;
pub mod constraint;
pub mod derived;
pub mod design;
pub mod error;
pub mod experiment;
pub mod figures;
pub mod gp;
pub mod kernel;
pub mod lbfgs;
pub mod linalg;
pub mod merge;
pub mod model;
pub mod optimize;
pub mod plot;
pub mod queue;
pub mod report;
pub mod space;
pub mod special;
pub mod state;

pub use action::{ActionOutcome, apply, tool_schema};
pub use error::{Error, Result, RowError};
pub use merge::{Choice, ConflictItem, MergeConflict, Merged, merge, merge_with};
pub use queue::{QueueStatus, QueuedExperiment};
pub use state::{LockDetails, LockProposal, LockRecord, Objective, OptimizerState};
