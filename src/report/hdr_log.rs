//! `--hdr-log DIR`: one HdrHistogram interval log per latency
//! (`publish.hlog`, `end_to_end.hlog`, ...), which HdrHistogram's own tools
//! read (HistogramLogProcessor, HdrHistogramVisualizer, the Python `hdrh`
//! package). A pure renderer: the report's series in, the log's text out.
//!
//! Each log has the format's version, the run's start as `StartTime` and
//! `BaseTime` (interval timestamps count from it), the legend, then a line
//! per interval: tag, start, length, max (in ms) and the interval's
//! histogram, V2 deflate-compressed and base64-encoded, in microseconds.

use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;

use super::Report;
use crate::series::decode;
use crate::stats::Latency;

const VERSION: &str = "[Histogram log format version 1.3]";
const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";

/// The interval log of one latency.
pub fn render(report: &Report, which: Latency) -> Vec<u8> {
    let index = Latency::ALL.iter().position(|l| *l == which).unwrap_or(0);
    let start = humantime::parse_rfc3339(&report.started_at).unwrap_or(UNIX_EPOCH);
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut builder = IntervalLogWriterBuilder::new();
    builder
        .add_comment(&format!(
            "harness {}, scenario {}, run {}: {} latency in microseconds",
            report.harness_version,
            report.scenario,
            report.run_id,
            which.name()
        ))
        .add_comment(VERSION)
        .with_start_time(start)
        .with_base_time(start);
    // Headers first; the writer has no call for the legend, a line of its
    // own. The second writer adds the max's divisor (maxima in ms) as a
    // header comment, which readers take wherever it stands.
    if builder.begin_log_with(&mut out, &mut serializer).is_err() {
        return out;
    }
    out.extend_from_slice(LEGEND.as_bytes());
    let mut plain = IntervalLogWriterBuilder::new();
    let Ok(mut writer) = plain
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut out, &mut serializer)
    else {
        return Vec::new();
    };
    let tag = Tag::new(which.name());
    let mut from = 0.0;
    for point in &report.series.points {
        let Some(bytes) = point.histograms.get(index) else {
            continue;
        };
        let histogram = decode(bytes);
        let length = (point.t_secs - from).max(0.0);
        let _ = writer.write_histogram(
            &histogram,
            Duration::from_secs_f64(from),
            Duration::from_secs_f64(length),
            tag,
        );
        from = point.t_secs;
    }
    drop(writer);
    out
}
