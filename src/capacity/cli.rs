//! `harness capacity`: flags over the `[capacity]` table, the checks that
//! refuse a search that cannot work before its first trial, the rows as
//! trials end, and the result written even when interrupted.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{search_capacity, search_configurations, table, trial_scenario, CapacityOptions};
use crate::cli::{run_id, say_error, CapacityArgs};
use crate::error::HarnessError;
use crate::report::{html, output};
use crate::run::{MetricsOptions, Signals};
use crate::scenario::{self, Scenario};

/// Flags over the scenario's values, then validation again.
fn apply_overrides(s: &mut Scenario, args: &CapacityArgs) -> Result<(), HarnessError> {
    if let Some(url) = &args.nats_url {
        s.target.url = Some(url.clone());
    }
    if let Some(seed) = args.seed {
        s.load.seed = Some(seed);
    }
    let c = &mut s.capacity;
    macro_rules! set {
        ($($flag:ident),*) => {$(if let Some(v) = args.$flag { c.$flag = v; })*};
    }
    set!(
        start_rate,
        max_rate,
        precision,
        trial,
        warmup,
        max_backlog_growth,
        drain,
        max_schedule_lag,
        max_trials
    );
    if args.common_rate.is_some() {
        c.common_rate = args.common_rate;
    }
    scenario::validate(s).map_err(|invalid| {
        let flag = invalid
            .key
            .strip_prefix("capacity.")
            .map(|k| format!("--{}", k.replace('_', "-")));
        HarnessError::Usage(match flag {
            Some(flag) => format!("{flag} (`{}`): {}", invalid.key, invalid.message),
            None => format!("`{}` is invalid: {}", invalid.key, invalid.message),
        })
    })
}

/// Every variant's trial scenario validates at the lowest and highest
/// rates the search may try: a payload too small for its kind, say, is
/// said now, not after an hour of trials.
fn check_trials(s: &Scenario) -> Result<(), HarnessError> {
    let variants: Vec<_> = if s.variants.is_empty() {
        vec![None]
    } else {
        s.variants.iter().map(Some).collect()
    };
    for variant in variants {
        let mut v = s.clone();
        if let Some(variant) = variant {
            super::apply_variant(&mut v, variant);
        }
        for rate in [
            v.capacity.start_rate.min(v.capacity.max_rate),
            v.capacity.max_rate,
        ] {
            trial_scenario(&v, rate, v.capacity.trial * 2).map_err(|e| {
                let which = variant.map_or(String::new(), |x| {
                    format!("variant `{}`: ", super::variant_name(x))
                });
                HarnessError::Usage(format!("{which}{e}"))
            })?;
        }
    }
    Ok(())
}

fn check_outputs(args: &CapacityArgs) -> Result<(), HarnessError> {
    for (flag, path) in [
        ("--report-json", &args.report_json),
        ("--report-html", &args.report_html),
    ] {
        let Some(path) = path else { continue };
        output::check_writable(path).map_err(|e| {
            HarnessError::Usage(format!(
                "{flag} {}: cannot write there: {e}",
                path.display()
            ))
        })?;
    }
    Ok(())
}

/// Lines on stdout; a closed stdout is no reason to stop a search.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

pub async fn capacity(args: CapacityArgs, signals: Signals) -> Result<i32, HarnessError> {
    let mut s = scenario::load(&args.scenario)?;
    apply_overrides(&mut s, &args)?;
    check_trials(&s)?;
    check_outputs(&args)?;
    crate::logging::hide_secrets(crate::target::secrets(&s.target));
    let options = CapacityOptions {
        file: args.scenario.clone(),
        name: s.name_or_stem(&args.scenario),
        run_id: run_id(args.run_id.as_deref())?,
        seed: s.load.seed,
        progress: crate::progress::Mode::detect(args.quiet),
        metrics: MetricsOptions {
            addr: args.metrics_addr.0,
            ..MetricsOptions::default()
        },
    };
    let c = &s.capacity;
    say(&format!(
        "capacity of {}: trials of {} after a {} warm-up, from {}/s, precision {}%",
        options.name,
        humantime::format_duration(c.trial),
        humantime::format_duration(c.warmup),
        c.start_rate,
        c.precision * 100.0
    ));
    if !s.load.phases.is_empty() {
        say("(the scenario's load phases are replaced by constant-rate trials)");
    }
    if s.variants.is_empty() {
        say(&table::trial_header());
        let result = search_capacity(&s, &options, &signals, &mut |l| say(l)).await;
        write_json(args.report_json.as_deref(), &result);
        if let Some(path) = &args.report_html {
            write_page(path, &result);
        }
        say(&table::render_result(&result));
        return Ok(result.exit_code());
    }
    let result = search_configurations(&s, &options, &signals, &mut |l| say(l)).await;
    write_json(args.report_json.as_deref(), &result);
    if let Some(path) = &args.report_html {
        for (i, v) in result.variants.iter().enumerate() {
            write_page(&numbered(path, i + 1), &v.capacity);
        }
    }
    say(&format!("\n{}", table::render_configurations(&result)));
    if result.interrupted {
        say("interrupted: the result is partial");
    }
    Ok(result.exit_code())
}

fn write_json<T: serde::Serialize>(path: Option<&Path>, result: &T) {
    let Some(path) = path else { return };
    let written = serde_json::to_vec_pretty(result)
        .map_err(std::io::Error::other)
        .and_then(|bytes| output::write_atomically(path, &bytes));
    match written {
        Ok(()) => say(&format!("  result: {}", path.display())),
        Err(e) => say_error(&format!("error: cannot write {}: {e}", path.display())),
    }
}

/// `capacity.html` → `capacity-v2.html`.
fn numbered(path: &Path, n: usize) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or("capacity".into(), |s| s.to_string_lossy());
    let ext = path
        .extension()
        .map_or("html".into(), |e| e.to_string_lossy());
    path.with_file_name(format!("{stem}-v{n}.{ext}"))
}

/// The trials as one page: the sweep chart marks the highest sustainable
/// rate, and the page details the confirmation trial.
fn write_page(path: &Path, result: &super::CapacityResult) {
    let runs: Vec<crate::report::Report> = result
        .trials
        .iter()
        .map(|t| {
            let mut r = t.report.clone();
            // On this page "passed" means sustainable.
            r.passed = t.sustainable;
            r
        })
        .collect();
    let shown = result
        .trials
        .iter()
        .zip(&runs)
        .rev()
        .find(|(t, _)| t.confirmation && t.sustainable)
        .map(|(_, r)| r)
        .or(runs.last());
    let Some(shown) = shown else { return };
    let page = html::Page {
        report: shown,
        baseline: None,
        sweep: if runs.len() >= 2 { &runs } else { &[] },
    };
    match output::write_atomically(path, html::render(&page).as_bytes()) {
        Ok(()) => say(&format!("  page: {}", path.display())),
        Err(e) => say_error(&format!("error: cannot write {}: {e}", path.display())),
    }
}
