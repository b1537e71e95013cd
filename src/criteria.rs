//! Pass/fail criteria: small expressions over the report's figures.
//!
//! A criterion is `<figure> <op> <number>[<unit>]`, such as `lost == 0`,
//! `publish.p99 < 500ms` or `dead_lettered <= 1%`. It is parsed once, when the
//! scenario is validated, into a figure name, an operator and a threshold in
//! the figure's own unit, so a typo fails before any event is sent. The run
//! then evaluates it against a snapshot of the figures ([`crate::figures`]):
//! the final one for the verdict, a live one for `abort_on`.
//! docs/criteria.md is the user-facing description; keep the two in step.

use crate::figures::{self, Figure, Figures, HISTOGRAMS, STATS};

pub use crate::figures::{kind_of, Kind};

const OPERATORS: &str = "<, <=, >, >=, ==, !=";
const TIME_UNITS: &str = "us, µs, ms, s or m";
const SYNTAX: &str = "`<figure> <op> <number>[unit]`, such as `lost == 0` or `publish.p99 < 500ms`";

/// A figure's value with its unit, as people read it: `40`, `98.50%`,
/// `10.00/s`, `7.34 ms`.
pub fn show(name: &str, value: f64) -> String {
    if !value.is_finite() {
        return if value > 0.0 {
            "∞".into()
        } else {
            value.to_string()
        };
    }
    match kind_of(name) {
        Some(Kind::Count) => format!("{value:.0}"),
        Some(Kind::Ratio) => format!("{:.2}%", value * 100.0),
        Some(Kind::Rate) => format!("{value:.2}/s"),
        Some(Kind::Latency) => format!("{value:.2} ms"),
        None if value.fract() == 0.0 && value.abs() < 1e15 => format!("{value:.0}"),
        None => format!("{value:.4}"),
    }
}

/// The catalogue in one line, for the unknown-figure message.
fn catalogue() -> String {
    let mut stats = STATS.to_vec();
    stats.push("count");
    let named: Vec<&str> = figures::CATALOGUE.iter().map(|n| n.name).collect();
    format!(
        "{} and <{}>.<{}>",
        named.join(", "),
        HISTOGRAMS.join("|"),
        stats.join("|")
    )
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(name) => format!(" (did you mean `{name}`?)"),
        None => String::new(),
    }
}

/// A criterion that cannot be parsed. Each message quotes the expression and
/// says what is allowed, since it reaches the user as is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CriteriaError {
    #[error("a criterion is empty: write {SYNTAX}")]
    Empty,
    #[error("criterion `{expression}` does not start with a figure name: write {SYNTAX}")]
    MissingFigure { expression: String },
    #[error(
        "criterion `{expression}` names an unknown figure `{figure}`{}; known figures are {}",
        did_you_mean(.suggestion),
        catalogue()
    )]
    UnknownFigure {
        expression: String,
        figure: String,
        suggestion: Option<String>,
    },
    #[error("criterion `{expression}` needs an operator after `{figure}`: one of {OPERATORS}")]
    MissingOperator { expression: String, figure: String },
    #[error(
        "criterion `{expression}` needs a number after `{operator}`, \
         such as `0`, `0.95`, `1e3` or `1_000`"
    )]
    MissingNumber {
        expression: String,
        operator: String,
    },
    #[error(
        "criterion `{expression}`: `{number}` is not a number; \
         write one such as `0`, `0.95`, `1e3` or `1_000`"
    )]
    BadNumber { expression: String, number: String },
    #[error(
        "criterion `{expression}` has an unknown unit `{unit}`: \
         latencies take {TIME_UNITS}, counts, ratios and rates take `%` or a bare number"
    )]
    UnknownUnit { expression: String, unit: String },
    #[error(
        "criterion `{expression}`: `{figure}` is a latency, so `%` is not allowed; \
         use {TIME_UNITS} (a bare number means milliseconds)"
    )]
    PercentOnLatency { expression: String, figure: String },
    #[error(
        "criterion `{expression}`: `{figure}` is {kind}, not a latency, so the time unit `{unit}` \
         is not allowed; use a bare number or `%`"
    )]
    TimeUnitOnNonLatency {
        expression: String,
        figure: String,
        kind: Kind,
        unit: String,
    },
    #[error(
        "criterion `{expression}` has unexpected text `{rest}` after the threshold: \
         write one comparison per criterion, {SYNTAX}"
    )]
    TrailingInput { expression: String, rest: String },
    #[error(
        "criterion `{expression}`: the threshold for `{figure}` cannot be negative, \
         since figures are never below zero; use 0 or more"
    )]
    Negative { expression: String, figure: String },
    #[error(
        "criterion `{expression}`: `{figure}` is a ratio between 0 and 1, \
         so the threshold must be too; write it as `0.95` or `95%`"
    )]
    RatioOutOfRange { expression: String, figure: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    /// Two-character operators first, so `<=` is not read as `<` then `=`.
    const ALL: [(&'static str, Op); 6] = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];

    /// Exact comparison, `==` included: counts are integers, and a latency
    /// or rate compared for equality is the user's explicit choice.
    fn holds(self, actual: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => actual < threshold,
            Op::Le => actual <= threshold,
            Op::Gt => actual > threshold,
            Op::Ge => actual >= threshold,
            Op::Eq => actual == threshold,
            Op::Ne => actual != threshold,
        }
    }
}

/// The right-hand side, already in the figure's unit.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Threshold {
    Absolute(f64),
    /// A percentage of the figure's base, resolved at evaluation because the
    /// base (scheduled total, target rate) is only known then.
    Percent(f64),
}

impl Threshold {
    fn resolve(self, base: Option<f64>) -> Option<f64> {
        match self {
            Threshold::Absolute(value) => Some(value),
            // percent * base / 100 rather than (percent / 100) * base keeps
            // whole percentages of whole bases exact: 1% of 1000 is 10.0.
            Threshold::Percent(percent) => base.map(|base| percent * base / 100.0),
        }
    }
}

/// A parsed criterion, ready to evaluate as often as needed.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    expression: String,
    figure: String,
    op: Op,
    threshold: Threshold,
}

/// The verdict on one criterion, as the report shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    /// The figure name, such as `publish.p99`.
    pub name: String,
    pub expression: String,
    /// In the figure's unit (count, ratio 0..1, events/s or milliseconds);
    /// None when the figure is not available.
    pub actual: Option<f64>,
    /// False when the figure is missing or not a number.
    pub passed: bool,
}

impl Criterion {
    /// The text as written, trimmed.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The figure name, such as `publish.p99`.
    pub fn figure(&self) -> &str {
        &self.figure
    }

    pub fn evaluate(&self, figures: &Figures) -> Outcome {
        self.evaluate_figure(figures.get(&self.figure))
    }

    /// The verdict on `figure`, this criterion's figure; None when it is
    /// not available.
    fn evaluate_figure(&self, figure: Option<Figure>) -> Outcome {
        let passed = figure.is_some_and(|figure| {
            // NaN compares false everywhere except `!=`, so rule it out first:
            // a figure that is not a number never passes.
            let threshold = self.threshold.resolve(figure.base);
            threshold.is_some_and(|threshold| {
                !figure.value.is_nan()
                    && !threshold.is_nan()
                    && self.op.holds(figure.value, threshold)
            })
        });
        Outcome {
            name: self.figure.clone(),
            expression: self.expression.clone(),
            actual: figure.map(|figure| figure.value),
            passed,
        }
    }
}

/// Parses `<figure> <op> <number>[<unit>]`; whitespace is optional around
/// the operator and before the unit.
pub fn parse(expression: &str) -> Result<Criterion, CriteriaError> {
    let text = expression.trim();
    if text.is_empty() {
        return Err(CriteriaError::Empty);
    }
    let expression = || text.to_string();
    // The figure runs up to a space or an operator character, so that a
    // misspelt name such as `publish-p99` is reported whole, with a suggestion.
    let end = text
        .find(|c: char| c.is_whitespace() || "<>=!".contains(c))
        .unwrap_or(text.len());
    let (figure, rest) = text.split_at(end);
    if figure.is_empty() {
        return Err(CriteriaError::MissingFigure {
            expression: expression(),
        });
    }
    let kind = kind_of(figure).ok_or_else(|| CriteriaError::UnknownFigure {
        expression: expression(),
        figure: figure.to_string(),
        suggestion: closest(figure),
    })?;
    let (operator, op, rest) = split_operator(text, figure, rest)?;
    let (value, rest) = split_number(text, operator, rest)?;
    let (unit, trailing) = split_unit(rest);
    if !trailing.is_empty() {
        return Err(CriteriaError::TrailingInput {
            expression: expression(),
            rest: rest.trim().to_string(),
        });
    }
    Ok(Criterion {
        expression: expression(),
        figure: figure.to_string(),
        op,
        threshold: threshold(text, figure, kind, value, unit)?,
    })
}

/// Reads the operator; returns its symbol, itself and what follows.
fn split_operator<'a>(
    text: &str,
    figure: &str,
    rest: &'a str,
) -> Result<(&'static str, Op, &'a str), CriteriaError> {
    let rest = rest.trim_start();
    Op::ALL
        .into_iter()
        .find(|(symbol, _)| rest.starts_with(symbol))
        .map(|(symbol, op)| (symbol, op, &rest[symbol.len()..]))
        .ok_or_else(|| CriteriaError::MissingOperator {
            expression: text.to_string(),
            figure: figure.to_string(),
        })
}

/// Reads a number such as `0.95`, `1e3`, `1_000` or `-2`; returns it and
/// what follows.
fn split_number<'a>(
    text: &str,
    operator: &str,
    rest: &'a str,
) -> Result<(f64, &'a str), CriteriaError> {
    let rest = rest.trim_start();
    let sign = usize::from(rest.starts_with(['+', '-']));
    let body = &rest[sign..];
    let mantissa = body
        .find(|c: char| !(c.is_ascii_digit() || c == '_' || c == '.'))
        .unwrap_or(body.len());
    if !body[..mantissa].contains(|c: char| c.is_ascii_digit()) {
        return Err(CriteriaError::MissingNumber {
            expression: text.to_string(),
            operator: operator.to_string(),
        });
    }
    let end = sign + mantissa + exponent_len(&body[mantissa..]);
    let number = &rest[..end];
    let value = number
        .replace('_', "")
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite())
        .ok_or_else(|| CriteriaError::BadNumber {
            expression: text.to_string(),
            number: number.to_string(),
        })?;
    Ok((value, &rest[end..]))
}

/// Length of an exponent such as `e3` or `E-2` at the start of `text`, or 0.
fn exponent_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    if !matches!(bytes.first(), Some(b'e' | b'E')) {
        return 0;
    }
    let sign = usize::from(matches!(bytes.get(1), Some(b'+' | b'-')));
    let digits = bytes[1 + sign..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        0
    } else {
        1 + sign + digits
    }
}

/// Splits the unit (letters or `%`) from whatever follows it, trimmed.
fn split_unit(rest: &str) -> (&str, &str) {
    let rest = rest.trim_start();
    let end = rest
        .find(|c: char| !(c.is_alphabetic() || c == '%'))
        .unwrap_or(rest.len());
    (&rest[..end], rest[end..].trim())
}

/// A latency threshold in milliseconds; None for a unit that is not a time.
fn to_millis(value: f64, unit: &str) -> Option<f64> {
    match unit {
        "" | "ms" => Some(value),
        // U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU look the same.
        "us" | "µs" | "μs" => Some(value / 1000.0),
        "s" => Some(value * 1000.0),
        "m" => Some(value * 60_000.0),
        _ => None,
    }
}

/// Turns the number and unit into a threshold in the figure's unit.
fn threshold(
    text: &str,
    figure: &str,
    kind: Kind,
    value: f64,
    unit: &str,
) -> Result<Threshold, CriteriaError> {
    let expression = text.to_string();
    let figure = figure.to_string();
    if value < 0.0 {
        return Err(CriteriaError::Negative { expression, figure });
    }
    let unit_text = unit.to_string();
    let threshold = match (kind, unit, to_millis(value, unit)) {
        (Kind::Latency, _, Some(millis)) => Threshold::Absolute(millis),
        (Kind::Latency, "%", None) => {
            return Err(CriteriaError::PercentOnLatency { expression, figure })
        }
        (_, "", _) => Threshold::Absolute(value),
        (Kind::Ratio, "%", _) => Threshold::Absolute(value / 100.0),
        (Kind::Count | Kind::Rate, "%", _) => Threshold::Percent(value),
        (Kind::Count | Kind::Ratio | Kind::Rate, _, Some(_)) => {
            return Err(CriteriaError::TimeUnitOnNonLatency {
                expression,
                figure,
                kind,
                unit: unit_text,
            })
        }
        (_, _, None) => {
            return Err(CriteriaError::UnknownUnit {
                expression,
                unit: unit_text,
            })
        }
    };
    if kind == Kind::Ratio && matches!(threshold, Threshold::Absolute(ratio) if ratio > 1.0) {
        return Err(CriteriaError::RatioOutOfRange { expression, figure });
    }
    Ok(threshold)
}

/// The catalogued name closest to a misspelt one, if any is close enough to
/// be a plausible typo rather than a different word.
fn closest(name: &str) -> Option<String> {
    let name = name.to_lowercase();
    let limit = (name.chars().count() / 3).max(2);
    figures::names()
        .map(|known| (edit_distance(&name, &known), known))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests;
