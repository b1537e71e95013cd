//! Figures during the run, from the live counters, for `abort_on` checks
//! and the status line. Loss and pending are only known at the end, so
//! here pending is the unresolved backlog and lost is 0.

use crate::criteria::{Figure, Figures, Kind};
use crate::ledger::{Ledger, Live};
use crate::stats::{Latency, Stats};

pub struct LiveFigures<'a> {
    pub ledger: &'a Ledger,
    pub stats: &'a Stats,
    pub target_rate: f64,
    pub achieved_rate: f64,
    pub garbage_sent: u64,
    /// Recovery time so far, failures during faults, a stuck consumer.
    pub faults: crate::recovery::FaultFigures,
}

impl LiveFigures<'_> {
    fn count(&self, name: &str) -> Option<u64> {
        let live = &self.ledger.live;
        let get = Live::get;
        Some(match name {
            "scheduled" => get(&live.scheduled),
            "published" => get(&live.published),
            "deduplicated" => get(&live.deduplicated),
            "publish_failed" => get(&live.publish_failed),
            "indeterminate" => get(&live.indeterminate),
            "processed" => get(&live.processed),
            "dead_lettered" => get(&live.dead_lettered),
            "pending" => self.ledger.unresolved_count() as u64,
            "unexpected" => get(&live.unexpected),
            "duplicates" => get(&live.duplicates),
            "stream_duplicates" => get(&live.stream_duplicates),
            "redelivered" => get(&live.redelivered),
            "retries" => get(&live.retries),
            "held_back" => get(&live.held_back),
            "garbage_sent" => self.garbage_sent,
            "not_sent" | "lost" | "lost_mid_run" | "lost_tail" | "recovered" => 0,
            _ => return None,
        })
    }

    pub fn success_rate(&self) -> f64 {
        let live = &self.ledger.live;
        let scheduled = Live::get(&live.scheduled);
        if scheduled == 0 {
            return 0.0;
        }
        Live::get(&live.processed) as f64 / scheduled as f64
    }
}

impl Figures for LiveFigures<'_> {
    fn figure(&self, name: &str) -> Option<Figure> {
        let scheduled = Some(Live::get(&self.ledger.live.scheduled) as f64);
        if let Some(count) = self.count(name) {
            return Some(Figure {
                value: count as f64,
                kind: Kind::Count,
                base: scheduled,
            });
        }
        if let Some((value, latency)) = self.faults.get(name) {
            let (kind, base) = if latency {
                (Kind::Latency, None)
            } else {
                (Kind::Count, scheduled)
            };
            return Some(Figure { value, kind, base });
        }
        let (value, kind, base) = match name {
            "success_rate" => (self.success_rate(), Kind::Ratio, None),
            "target_rate" => (self.target_rate, Kind::Rate, Some(self.target_rate)),
            "achieved_rate" => (self.achieved_rate, Kind::Rate, Some(self.target_rate)),
            _ => {
                let (histogram, stat) = name.split_once('.')?;
                let which = Latency::ALL.into_iter().find(|l| l.name() == histogram)?;
                let value = self.stats.summary(which).stat(stat)?;
                let kind = if stat == "count" {
                    Kind::Count
                } else {
                    Kind::Latency
                };
                (value, kind, if stat == "count" { scheduled } else { None })
            }
        };
        Some(Figure { value, kind, base })
    }
}
