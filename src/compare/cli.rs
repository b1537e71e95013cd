//! `harness compare BASELINE CURRENT`: flags over the `[compare]` table,
//! the table on stdout, the JSON beside it, the exit code.

use std::io::Write;

use super::{compare as judge, render, Subject};
use crate::cli::{say_error, CompareArgs};
use crate::error::exit;

pub fn compare(args: &CompareArgs) -> i32 {
    let (baseline, current) = match (Subject::read(&args.baseline), Subject::read(&args.current)) {
        (Ok(b), Ok(c)) => (b, c),
        (Err(e), _) | (_, Err(e)) => {
            say_error(&format!("error: {e}"));
            return exit::USAGE;
        }
    };
    let mut t = current.tolerances();
    if let Some(v) = args.latency_tolerance {
        t.latency = v;
    }
    if let Some(v) = args.latency_floor {
        t.latency_floor = v;
    }
    if let Some(v) = args.rate_tolerance {
        t.rate = v;
    }
    if let Some(v) = args.msr_tolerance {
        t.msr = v;
    }
    for (flag, v) in [
        ("--latency-tolerance", t.latency),
        ("--rate-tolerance", t.rate),
        ("--msr-tolerance", t.msr),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            say_error(&format!(
                "error: {flag} {v}: use a share of 0 or more (0.25 is 25%)"
            ));
            return exit::USAGE;
        }
    }
    let names = (
        args.baseline.display().to_string(),
        args.current.display().to_string(),
    );
    let comparison = match judge(
        &baseline,
        &current,
        &t,
        (&names.0, &names.1),
        args.allow_mismatch,
    ) {
        Ok(c) => c,
        Err(e) => {
            say_error(&format!("error: {e}"));
            return exit::USAGE;
        }
    };
    if let Some(path) = &args.json {
        let written = serde_json::to_vec_pretty(&comparison)
            .map_err(std::io::Error::other)
            .and_then(|bytes| crate::report::output::write_atomically(path, &bytes));
        if let Err(e) = written {
            say_error(&format!("error: cannot write {}: {e}", path.display()));
            return exit::USAGE;
        }
    }
    let _ = write!(std::io::stdout().lock(), "{}", render(&comparison));
    comparison.exit_code()
}
