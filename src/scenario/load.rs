//! Reading a scenario file: TOML into the model, then validation; every
//! error carries the file, line, column and key.

use std::path::{Path, PathBuf};

use super::locate::{key_at, line_column, locate};
use super::validate::{validate, Invalid};
use super::{Scenario, ScenarioError};

/// Reads, parses and validates a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        key: String::new(),
        message: format!("cannot read the scenario: {e}"),
    })?;
    parse(&text, path)
}

/// Parses and validates scenario text; `file` names it in errors.
pub fn parse(text: &str, file: &Path) -> Result<Scenario, ScenarioError> {
    let scenario: Scenario = toml::from_str(text).map_err(|e| from_toml(&e, text, file))?;
    validate(&scenario).map_err(|invalid| at_key(invalid, text, file))?;
    Ok(scenario)
}

/// A serde or syntax error, placed by its span.
fn from_toml(error: &toml::de::Error, text: &str, file: &Path) -> ScenarioError {
    let offset = error.span().map_or(0, |span| span.start);
    let (line, column) = line_column(text, offset);
    let key = error
        .span()
        .and_then(|_| key_at(text, offset))
        .unwrap_or_default();
    ScenarioError {
        file: PathBuf::from(file),
        line,
        column,
        key,
        message: explain(error.message()),
    }
}

/// toml's messages, made to say what is allowed where they do not already.
fn explain(message: &str) -> String {
    let message = message.trim_end_matches('\n');
    if message.contains("invalid type: string") && message.contains("Duration") {
        return format!("{message}; write a duration such as \"500ms\", \"30s\" or \"5m\"");
    }
    message.replace(
        "expected a duration",
        "expected a duration such as \"500ms\", \"30s\" or \"5m\"",
    )
}

/// A validation error, placed where its key is written (or its nearest
/// written ancestor: the value may be a default or come from the command line).
fn at_key(invalid: Invalid, text: &str, file: &Path) -> ScenarioError {
    let (line, column) = locate(text, &invalid.key).unwrap_or((1, 1));
    ScenarioError {
        file: PathBuf::from(file),
        line,
        column,
        key: invalid.key,
        message: invalid.message,
    }
}

impl Scenario {
    /// The scenario's `name`, else its file's stem.
    pub fn name_or_stem(&self, file: &Path) -> String {
        self.name.clone().unwrap_or_else(|| {
            file.file_stem()
                .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned())
        })
    }
}
