//! Scenario files: reading, locating errors, validating, applying overrides.
//!
//! `load` turns a TOML file into a validated [`Scenario`]; every error names
//! the file, line, column and key, and says what is allowed.

mod model;
pub mod units;

pub use model::*;
pub use units::ByteSize;
mod error;

pub use error::ScenarioError;
