//! `harness merge REPORT...`: the shard reports read, added, judged and
//! written as one run's, the summary on stdout, the exit code.

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
    let paths = [
        &args.report_json,
        &args.report_junit,
        &args.report_html,
        &args.hdr_log,
    ];
    crate::cli::write_and_say(&merged, paths);
    // A shard interrupted is a partial run: the merged verdict fails.
    if merged.passed {
        exit::PASSED
    } else {
        exit::FAILED
    }
}
