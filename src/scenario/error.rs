//! Scenario errors: each names the file, line, column and key.

use std::fmt;
use std::path::PathBuf;

/// A scenario that cannot be read, parsed or validated. Exits 2.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no place in the file (unreadable file).
    pub line: usize,
    pub column: usize,
    /// Dotted key path, e.g. `load.rate`; empty when no key is involved.
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}
