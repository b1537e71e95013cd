//! The live status while a run goes on: a redrawn line on a terminal, or a
//! plain line every few seconds without one (CI logs, pipes).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One look at the run.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub phase: &'static str,
    pub elapsed: Duration,
    pub total: Duration,
    pub sent: u64,
    pub published: u64,
    pub processed: u64,
    pub dead_lettered: u64,
    pub failed: u64,
    pub in_flight: u64,
    pub backlog: Option<u64>,
    /// Events/s sent over the last interval.
    pub rate: f64,
    pub target_rate: f64,
    pub end_to_end_p99_ms: f64,
    pub success_rate: f64,
    /// The faults under way.
    pub faults: Vec<&'static str>,
}

impl Snapshot {
    fn line(&self) -> String {
        let remaining = self.total.saturating_sub(self.elapsed);
        format!(
            "{} {}/{} (-{}) · sent {} · acked {} · processed {} · dlq {} · failed {} · in flight {} · backlog {} · {:.1}/{:.1} ev/s · e2e p99 {:.1}ms · success {:.2}%",
            self.phase,
            clock(self.elapsed),
            clock(self.total),
            clock(remaining),
            self.sent,
            self.published,
            self.processed,
            self.dead_lettered,
            self.failed,
            self.in_flight,
            self.backlog.map_or("?".into(), |b| b.to_string()),
            self.rate,
            self.target_rate,
            self.end_to_end_p99_ms,
            self.success_rate * 100.0,
        ) + &self.fault_note()
    }

    fn fault_note(&self) -> String {
        if self.faults.is_empty() {
            String::new()
        } else {
            format!(" · FAULT {}", self.faults.join(", "))
        }
    }
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// How to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A redrawn bar (a terminal, CI unset).
    Bar,
    /// A plain line every `every` (no terminal, or CI set).
    Lines {
        every: Duration,
    },
    Quiet,
}

impl Mode {
    pub fn detect(quiet: bool) -> Mode {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() && !ci {
            Mode::Bar
        } else {
            Mode::Lines {
                every: Duration::from_secs(5),
            }
        }
    }
}

pub struct Progress {
    mode: Mode,
    bar: Option<ProgressBar>,
    last_line: Option<Instant>,
}

impl Progress {
    pub fn new(mode: Mode, total: Duration) -> Progress {
        let bar = (mode == Mode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total.as_millis() as u64),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            bar.set_style(
                ProgressStyle::with_template("{bar:24.cyan/blue} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            mode,
            bar,
            last_line: None,
        }
    }

    pub fn update(&mut self, snapshot: &Snapshot) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Bar => {
                if let Some(bar) = &self.bar {
                    bar.set_position(snapshot.elapsed.as_millis() as u64);
                    bar.set_message(snapshot.line());
                }
            }
            Mode::Lines { every } => {
                let due = self.last_line.is_none_or(|at| at.elapsed() >= every);
                if due {
                    self.last_line = Some(Instant::now());
                    eprintln!("{}", snapshot.line());
                }
            }
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_time_counts_rate_and_success() {
        let line = Snapshot {
            phase: "load",
            elapsed: Duration::from_secs(65),
            total: Duration::from_secs(300),
            sent: 650,
            processed: 640,
            rate: 10.0,
            target_rate: 10.0,
            success_rate: 0.9846,
            backlog: Some(3),
            ..Snapshot::default()
        }
        .line();
        assert!(
            line.starts_with("load 0:01:05/0:05:00 (-0:03:55)"),
            "{line}"
        );
        assert!(line.contains("sent 650") && line.contains("processed 640"));
        assert!(line.contains("backlog 3") && line.contains("success 98.46%"));
        assert!(!line.contains("FAULT"));
    }

    #[test]
    fn the_line_names_the_faults_under_way() {
        let line = Snapshot {
            faults: vec!["blackhole", "consumer_slow"],
            ..Snapshot::default()
        }
        .line();
        assert!(
            line.ends_with(" · FAULT blackhole, consumer_slow"),
            "{line}"
        );
    }
}
