//! `harness`: parses the command line, sets up logging, signals and the
//! runtime, runs the library and exits with the verdict's code.

use clap::Parser;
use harness::cli::{self, Cli};
use harness::run::Signals;

fn main() {
    let cli = Cli::parse();
    harness::logging::init(cli.log_format, &cli.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(harness::error::exit::INFRASTRUCTURE);
        }
    };
    let code = runtime.block_on(async {
        let signals = Signals::default();
        tokio::spawn(watch_signals(signals.clone()));
        cli::execute(cli, signals).await
    });
    // Do not wait for lingering tasks (a stuck connection) on the way out.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    std::process::exit(code);
}

/// First Ctrl+C, SIGTERM or SIGHUP: stop the schedule, drain briefly,
/// report. Second: cut the drain short; the report is still written.
/// Third: exit at once (130), whatever the harness is waiting for.
async fn watch_signals(signals: Signals) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut interrupt), Ok(mut terminate), Ok(mut hangup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::warn!("cannot install signal handlers");
        return;
    };
    let mut next = [&signals.interrupt, &signals.hard_stop].into_iter();
    loop {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
            _ = hangup.recv() => {}
        }
        match next.next() {
            Some(token) => token.cancel(),
            None => {
                eprintln!("interrupted a third time: exiting at once");
                std::process::exit(harness::error::exit::INTERRUPTED);
            }
        }
    }
}
