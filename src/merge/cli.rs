//! `harness merge REPORT...`: the shard reports read, added, judged and
//! written as one run's, the summary on stdout, the exit code.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{say_error, MergeArgs};
use crate::error::exit;
use crate::report::Report;

pub fn merge(args: &MergeArgs) -> i32 {
    let mut reports = Vec::new();
    for path in &args.reports {
        match Report::read_json(path) {
            Ok(report) => reports.push((path.display().to_string(), report)),
            Err(e) => {
                say_error(&format!("error: {e}"));
                return exit::USAGE;
            }
        }
    }
    let Some(merged) = super::merge(reports) else {
        say_error(
            "error: none of these is a shard's report: merge adds the reports of \
             `harness run --shard K/N --report-json ...`",
        );
        return exit::USAGE;
    };
    type Writer = fn(&Report, &Path) -> std::io::Result<()>;
    let outputs: [(&Option<PathBuf>, Writer); 4] = [
        (&args.report_json, Report::write_json),
        (&args.report_junit, Report::write_junit),
        (&args.report_html, Report::write_html),
        (&args.hdr_log, Report::write_hdr_logs),
    ];
    let mut said = Vec::new();
    for (path, write) in outputs {
        let Some(path) = path else { continue };
        match write(&merged, path) {
            Ok(()) => said.push(format!("  report: {}", path.display())),
            Err(e) => {
                let _ = std::fs::remove_file(path);
                say_error(&format!("error: cannot write {}: {e}", path.display()));
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{}", crate::report::summary::render(&merged));
    for line in said {
        let _ = writeln!(out, "{line}");
    }
    // A shard interrupted is a partial run: the merged verdict fails.
    if merged.passed {
        exit::PASSED
    } else {
        exit::FAILED
    }
}
