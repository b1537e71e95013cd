//! Scenario files: reading, locating errors, validating.
//!
//! `load` turns a TOML file into a validated [`Scenario`]; every error names
//! the file, line, column and key, and says what is allowed. `validate`
//! runs again after command-line overrides.

mod error;
mod load;
mod locate;
mod model;
pub mod units;
mod validate;

pub use error::ScenarioError;
pub use load::{load, parse};
pub use locate::locate;
pub use model::*;
pub use units::ByteSize;
pub(crate) use validate::{bounds, require};
pub use validate::{subject_matches, validate, Invalid};
