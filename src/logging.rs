//! Logs on stderr: the `--log-level` filter, checked before use; colour
//! only on a terminal; and no secret in any line, whatever the level.
//!
//! Secrets are kept out at the writer, not by capping the client library's
//! levels: every formatted line passes through [`Redacting`], which replaces
//! each registered secret (a password or token) before the line leaves the
//! process. That holds for lines from any crate and any future field that
//! happens to print one (async-nats's debug logs printed a URL's password
//! through its `ServerAddr`), while `--log-level async_nats=debug` keeps
//! showing what the client does. Capping `async_nats` at info would both
//! hide that and miss leaks from elsewhere.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::sync::RwLock;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

const LEVELS: &str = "off, error, warn, info, debug, trace";

/// Checks a `--log-level` value (clap's value parser): comma-separated
/// `LEVEL` or `TARGET=LEVEL` directives. A bare word that is not a level
/// is refused even though tracing would read it as a target name: `loud`
/// would silently turn off every other log line.
pub fn check_filter(text: &str) -> Result<String, String> {
    let help = || {
        format!(
            "`{text}` is not a log filter: give a level ({LEVELS}) or TARGET=LEVEL, \
             comma-separated, e.g. `info`, `debug` or `warn,harness=debug`"
        )
    };
    let directives: Vec<&str> = text.split(',').map(str::trim).collect();
    if directives.iter().all(|d| d.is_empty()) {
        return Err(help());
    }
    for directive in directives.into_iter().filter(|d| !d.is_empty()) {
        let level = directive.rsplit_once('=').map_or(directive, |(_, l)| l);
        if level.parse::<LevelFilter>().is_err() || level.is_empty() {
            return Err(help());
        }
    }
    EnvFilter::try_new(text).map_err(|_| help())?;
    Ok(text.to_string())
}

/// Colour only for a person at a terminal: log files and CI logs get plain
/// text. `NO_COLOR` (any non-empty value, see no-color.org) turns it off too.
fn colour(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber: `filter` (already checked), on stderr
/// through [`Redacting`].
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("warn"));
    let ansi = colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR"),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(Redacting::new(std::io::stderr, &SECRETS));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Secrets to hide, in every form a log line may show them.
pub struct Secrets(RwLock<Vec<String>>);

impl Secrets {
    pub const fn new() -> Secrets {
        Secrets(RwLock::new(Vec::new()))
    }

    /// Adds `secret` as written, percent-encoded (inside a URL) and escaped
    /// (inside a Debug or JSON string).
    pub fn add(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let quoted = |s: String| s[1..s.len() - 1].to_string();
        let forms = [
            secret.to_string(),
            percent_encode(secret),
            quoted(format!("{secret:?}")),
            quoted(serde_json::Value::from(secret).to_string()),
        ];
        let Ok(mut list) = self.0.write() else { return };
        for form in forms {
            if !list.contains(&form) {
                list.push(form);
            }
        }
        // Longest first, so a secret that contains another goes whole.
        list.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// `text` with every secret replaced by `***`.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let Ok(list) = self.0.read() else {
            return Cow::Borrowed(text);
        };
        let mut text = Cow::Borrowed(text);
        for secret in list.iter() {
            if text.contains(secret.as_str()) {
                text = Cow::Owned(text.replace(secret.as_str(), "***"));
            }
        }
        text
    }
}

impl Default for Secrets {
    fn default() -> Self {
        Secrets::new()
    }
}

/// The secrets of this process's runs, known to the stderr writer.
static SECRETS: Secrets = Secrets::new();

/// Hides `secrets` from every log line from now on. Call it as soon as they
/// are known, before anything connects.
pub fn hide_secrets<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) {
    for secret in secrets {
        SECRETS.add(secret.as_ref());
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A writer that holds one log line and hands it on, redacted, when the
/// formatter drops it: tracing formats each event whole and then drops its
/// writer, so a secret can never be split across two writes.
pub struct Redacting<M> {
    inner: M,
    secrets: &'static Secrets,
}

impl<M> Redacting<M> {
    pub fn new(inner: M, secrets: &'static Secrets) -> Redacting<M> {
        Redacting { inner, secrets }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = Line<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            bytes: Vec::new(),
            inner: self.inner.make_writer(),
            secrets: self.secrets,
        }
    }
}

/// One event's text on its way out; see [`Redacting`].
pub struct Line<W: Write> {
    bytes: Vec<u8>,
    inner: W,
    secrets: &'static Secrets,
}

impl<W: Write> Write for Line<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for Line<W> {
    fn drop(&mut self) {
        if self.bytes.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.bytes);
        let _ = self.inner.write_all(self.secrets.redact(&text).as_bytes());
        let _ = self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn only_levels_and_target_levels_are_filters() {
        for ok in [
            "warn",
            "DEBUG",
            "info,harness=debug",
            "async_nats=trace",
            "3",
        ] {
            assert_eq!(check_filter(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in [
            "loud",
            "",
            " , ",
            "harness=loud",
            "harness=",
            "info,harness",
        ] {
            let e = check_filter(bad).unwrap_err();
            assert!(
                e.contains("is not a log filter") && e.contains("warn,harness=debug"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None));
        assert!(!colour(true, Some("1".into())));
        assert!(colour(true, Some("".into())), "an empty NO_COLOR is unset");
    }

    #[test]
    fn every_form_of_a_secret_is_hidden() {
        let secrets = Secrets::new();
        secrets.add("p@ss\"w");
        secrets.add("");
        let line = r#"url=nats://a:p%40ss%22w@h debug=Some("p@ss\"w") raw p@ss"w"#;
        assert_eq!(
            secrets.redact(line),
            r#"url=nats://a:***@h debug=Some("***") raw ***"#
        );
        assert!(matches!(secrets.redact("nothing here"), Cow::Borrowed(_)));
    }

    /// A real subscriber, text and JSON, writing through [`Redacting`].
    #[test]
    fn log_lines_leave_without_the_secret() {
        static TEST_SECRETS: Secrets = Secrets::new();
        TEST_SECRETS.add("s3cret");
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = {
            let out = out.clone();
            move || Sink(out.clone())
        };
        let text = tracing_subscriber::fmt()
            .with_writer(Redacting::new(sink.clone(), &TEST_SECRETS))
            .with_max_level(tracing::Level::TRACE)
            .finish();
        tracing::subscriber::with_default(text, || {
            tracing::debug!(password = ?Some("s3cret"), "connect with s3cret");
        });
        let json = tracing_subscriber::fmt()
            .json()
            .with_writer(Redacting::new(sink, &TEST_SECRETS))
            .finish();
        tracing::subscriber::with_default(json, || {
            tracing::info!(url = "nats://u:s3cret@h", "connecting");
        });
        let written = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert!(!written.contains("s3cret"), "{written}");
        assert_eq!(written.matches("***").count(), 3, "{written}");
    }

    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
