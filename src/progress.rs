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
    /// Every field, most important first: the time, a fault under way, the
    /// rate and the end-to-end p99, then the counts.
    fn fields(&self) -> Vec<String> {
        let mut time = format!(
            "{} {} of {}",
            self.phase,
            clock(self.elapsed),
            clock(self.total)
        );
        let remaining = self.total.saturating_sub(self.elapsed);
        if self.phase == "load" && !remaining.is_zero() {
            time += &format!(", {} left", clock(remaining));
        }
        let mut fields = vec![time];
        if !self.faults.is_empty() {
            fields.push(format!("FAULT {}", self.faults.join(", ")));
        }
        fields.extend([
            format!("{:.1}/{:.1} ev/s", self.rate, self.target_rate),
            format!("e2e p99 {:.1}ms", self.end_to_end_p99_ms),
            format!("success {:.2}%", self.success_rate * 100.0),
            format!("sent {}", self.sent),
            format!("acked {}", self.published),
            format!("processed {}", self.processed),
            format!(
                "backlog {}",
                self.backlog.map_or("?".into(), |b| b.to_string())
            ),
            format!("in flight {}", self.in_flight),
            format!("failed {}", self.failed),
            format!("dlq {}", self.dead_lettered),
        ]);
        fields
    }

    /// The whole line.
    fn line(&self) -> String {
        self.fields().join(" · ")
    }

    /// As many fields as fit in `width` characters, in order of importance:
    /// a line that wraps would be redrawn as a new line four times a second.
    fn line_within(&self, width: usize) -> String {
        let fields = self.fields();
        let mut line = String::new();
        for field in &fields {
            let extra = if line.is_empty() { 0 } else { 3 } + field.chars().count();
            if line.chars().count() + extra > width {
                break;
            }
            if !line.is_empty() {
                line.push_str(" · ");
            }
            line.push_str(field);
        }
        if line.is_empty() {
            // Not even the time fits: as much of it as does.
            line = fields[0].chars().take(width).collect();
        }
        line
    }
}

/// `m:ss`, or `h:mm:ss` from an hour.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Columns of the terminal on stderr, if it is one.
fn terminal_width() -> Option<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: TIOCGWINSZ fills a winsize for a terminal descriptor and
    // fails on anything else; stderr stays open for the process's life.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let fd = std::io::stderr().as_raw_fd();
    let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// The bar before the message: 24 columns and a space.
const BAR_COLUMNS: usize = 25;

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
                    // Asked each time: the terminal may be resized.
                    let width = terminal_width()
                        .unwrap_or(80)
                        .saturating_sub(BAR_COLUMNS + 1);
                    bar.set_message(snapshot.line_within(width));
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
            line.starts_with("load 1:05 of 5:00, 3:55 left · 10.0/10.0 ev/s"),
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
            line.contains(" · FAULT blackhole, consumer_slow · "),
            "{line}"
        );
    }

    #[test]
    fn the_line_fits_the_terminal_dropping_the_least_important_fields() {
        let snapshot = Snapshot {
            phase: "load",
            elapsed: Duration::from_secs(3 * 3600 + 65),
            total: Duration::from_secs(4 * 3600),
            sent: 123_456_789,
            published: 123_456_700,
            processed: 123_456_000,
            backlog: Some(789),
            faults: vec!["blackhole"],
            ..Snapshot::default()
        };
        let full = snapshot.line();
        assert!(full.chars().count() > 160, "{full}");
        for width in [40, 80, 120, 160 - BAR_COLUMNS - 1] {
            let line = snapshot.line_within(width);
            assert!(line.chars().count() <= width, "{width}: {line}");
            assert!(
                line.starts_with("load 3:01:05 of 4:00:00, 58:55 left"),
                "{line}"
            );
            assert!(full.starts_with(&line), "whole fields, in order: {line}");
        }
        assert!(snapshot.line_within(80).contains("FAULT blackhole"));
        assert_eq!(snapshot.line_within(9), "load 3:01");
        assert_eq!(snapshot.line_within(10_000), full);
        let drain = Snapshot {
            phase: "drain",
            elapsed: Duration::from_secs(300),
            total: Duration::from_secs(300),
            ..Snapshot::default()
        };
        assert!(
            drain.line().starts_with("drain 5:00 of 5:00 · "),
            "{}",
            drain.line()
        );
    }
}
