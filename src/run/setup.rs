//! Setting up a run, everything before the load: metrics, the target
//! (embedded or external), the network-fault proxy, the clients, the
//! stream and consumer, and the checks that refuse a run that cannot work
//! (a payload above max_payload, a run id still in the duplicate window).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{self, context::ContextBuilder};
use tokio_util::sync::CancellationToken;

use super::{Actors, Books, Experiment, Lanes, RunConfig, Signals, Target, Telemetry};
use crate::consumer::observer::Sources;
use crate::consumer::service::Service;
use crate::consumer::{UnderTest, Wiring};
use crate::error::HarnessError;
use crate::lane::{Lane, Slice};
use crate::ledger::Ledger;
use crate::provision::{self, Provisioned};
use crate::publisher::{Publisher, Start};
use crate::recovery::Tracker;
use crate::scenario::{ConsumerMode, Scenario};
use crate::schedule::Profile;
use crate::target::{self, embedded::EmbeddedCluster, proxy::Proxy, ConnectionState};

pub(super) type SharedCluster = Arc<tokio::sync::Mutex<EmbeddedCluster>>;

/// Everything before the load: metrics, the target, the proxy, clients,
/// provisioning. Dropped halfway (a signal), it stops what it started.
pub(super) async fn prepare(
    config: RunConfig,
    signals: Signals,
) -> Result<(Experiment, Option<SharedCluster>), HarnessError> {
    let telemetry = Telemetry::start(
        &config.name,
        &config.run_id,
        config.shard.as_ref().map(|s| s.shard),
        &config.file.display().to_string(),
        &config.metrics,
    )?;
    let s = &config.scenario;
    // Validated already; overrides from the command line were too.
    let plan = crate::plan::Plan::compile(s)
        .map_err(|e| HarnessError::Usage(format!("`{}`: {}", e.key, e.message)))?;
    let mut cluster = None;
    let url = match &s.target.url {
        Some(url) => url.clone(),
        None => {
            let started = EmbeddedCluster::start(s.target.nodes).await?;
            let url = started.url();
            tracing::info!(%url, nodes = s.target.nodes, "embedded nats-server ready");
            cluster = Some(Arc::new(tokio::sync::Mutex::new(started)));
            url
        }
    };
    // Network faults act on a proxy between the clients under test and the
    // server(s); foreign input still goes straight to the server.
    let proxy = if plan.needs_proxy() {
        let proxy = Proxy::start(&url)
            .await
            .map_err(|e| target::TargetError::Connect {
                url: target::redact(&url),
                message: format!("cannot start the network-fault proxy: {e}"),
            })?;
        tracing::info!(proxy = %target::redact(proxy.url()), "network faults go through the proxy");
        Some(Arc::new(proxy))
    } else {
        None
    };
    let target = crate::report::TargetInfo {
        url: target::redact(&url),
        embedded: cluster.is_some(),
        nodes: if cluster.is_some() { s.target.nodes } else { 0 },
        proxy: proxy.as_ref().map(|p| crate::report::ProxyInfo {
            url: target::redact(p.url()),
            dropped_bytes: 0,
            resets: 0,
        }),
        server_version: String::new(),
        server_usage: None,
    };
    let endpoints = Endpoints {
        server: url.clone(),
        clients: proxy.as_ref().map(|p| p.url().to_string()),
    };
    let mut experiment =
        Experiment::set_up(config, plan, signals, &endpoints, target, telemetry).await?;
    experiment.target.cluster = cluster.clone();
    experiment.target.proxy = proxy;
    Ok((experiment, cluster))
}

/// Where the clients connect.
struct Endpoints {
    /// The server(s) themselves.
    server: String,
    /// The proxy's URL, when the publisher and consumer go through one.
    clients: Option<String>,
}

impl Endpoints {
    /// The URL for the publisher and the consumer, and whether they must
    /// stick to it (not wander off to servers the cluster advertises).
    fn under_test(&self) -> (&str, bool) {
        match &self.clients {
            Some(proxy) => (proxy, true),
            None => (&self.server, false),
        }
    }
}

impl Experiment {
    async fn set_up(
        config: RunConfig,
        plan: crate::plan::Plan,
        signals: Signals,
        endpoints: &Endpoints,
        mut target: crate::report::TargetInfo,
        telemetry: Telemetry,
    ) -> Result<Experiment, HarnessError> {
        let s = &config.scenario;
        let connections = [
            Arc::new(ConnectionState::default()),
            Arc::new(ConnectionState::default()),
        ];
        let (url, pinned) = endpoints.under_test();
        // The publisher's connection lives on its lane, beside its pacer.
        let lane = Lane::start("harness-publisher", Slice::Short).map_err(|source| {
            HarnessError::System {
                what: "the publisher's thread",
                source,
            }
        })?;
        let consumer_lane = Lane::start("harness-consumer", Slice::Default).map_err(|source| {
            HarnessError::System {
                what: "the consumer's thread",
                source,
            }
        })?;
        let publisher_client = {
            let (target_config, url, state) =
                (s.target.clone(), url.to_owned(), connections[0].clone());
            lane.run(async move {
                target::connect(&target_config, &url, "harness-publisher", pinned, state).await
            })
            .await?
        };
        target.server_version = publisher_client.server_info().version.clone();
        check_max_payload(
            s,
            &config.id_prefix(),
            publisher_client.server_info().max_payload,
        )?;
        let consumer_client = {
            let (target_config, url, state) =
                (s.target.clone(), url.to_owned(), connections[1].clone());
            consumer_lane
                .run(async move {
                    target::connect(&target_config, &url, "harness-consumer", pinned, state).await
                })
                .await?
        };
        let js_publish = ContextBuilder::new()
            .timeout(s.publish.timeout)
            .max_ack_inflight(s.load.max_in_flight + 64)
            .build(publisher_client.clone());
        let provisioned = provision::provision(&js_publish, s).await?;
        refuse_reused_run_id(&provisioned, s, &config.id_prefix()).await?;
        let consumer: PullConsumer = jetstream::new(consumer_client.clone())
            .get_consumer_from_stream(&s.consumer.durable, &s.stream.name)
            .await
            .map_err(|e| provision::ProvisionError::Api {
                what: format!("consumer `{}`", s.consumer.durable),
                message: e.to_string(),
            })?;
        let mut ledger = Ledger::new(config.id_prefix());
        // With --start-at, the run's time 0 is that time: intended send
        // times count from it, even for a run ready late.
        if let Some(opened) = config.start_at.and_then(crate::event::Moment::at) {
            ledger.opened = opened;
        }
        let ledger = Arc::new(match s.consumer.mode {
            ConsumerMode::Simulated => ledger,
            ConsumerMode::External => ledger.observing(s.consumer.output.is_some()),
        });
        let panics = crate::panics::Panics::default();
        // Recovery after faults is judged on recent end-to-end latencies.
        let stats = telemetry.stats();
        let stats = Arc::new(if s.faults.is_empty() {
            stats
        } else {
            stats.keeping_recent()
        });
        let garbage_client = match s.load.garbage {
            Some(_) => {
                let state = Arc::new(ConnectionState::default());
                let client = target::connect(
                    &s.target,
                    &endpoints.server,
                    "harness-garbage",
                    false,
                    state.clone(),
                )
                .await?;
                Some((client, state))
            }
            None => None,
        };
        let under_test = match (&s.consumer.mode, &provisioned.observed) {
            (ConsumerMode::External, Some(observed)) => {
                let sources = Sources {
                    observed: observed.clone(),
                    dead_letter: provisioned.dead_letter.clone(),
                    output: provisioned.output.clone(),
                    payloads: crate::event::PayloadBuilder::new(&s.load.payload),
                    ledger: ledger.clone(),
                    stats: stats.clone(),
                };
                let service = s.consumer.service.as_ref().map(|spec| {
                    let log = spec
                        .log
                        .clone()
                        .unwrap_or_else(|| format!("harness-service-{}.log", config.run_id).into());
                    Service::new(spec.clone(), service_env(s, url), log, consumer.clone())
                });
                UnderTest::external(sources, service, consumer_lane.handle(), &panics)
                    .await
                    .map_err(HarnessError::Service)?
            }
            _ => {
                let wiring = Wiring {
                    client: &consumer_client,
                    durable: consumer.clone(),
                    stream: provisioned.stream.clone(),
                    lane: consumer_lane.handle(),
                };
                UnderTest::simulated(
                    s,
                    wiring,
                    ledger.clone(),
                    stats.clone(),
                    config.seed,
                    &panics,
                )
                .await
                .map_err(|message| provision::ProvisionError::Api {
                    what: "the MAX_DELIVERIES advisory subscription".into(),
                    message,
                })?
            }
        };
        let publish_stop = CancellationToken::new();
        let publisher = Arc::new(Publisher::new(
            js_publish,
            s,
            ledger.clone(),
            stats.clone(),
            config.seed,
            publish_stop.clone(),
            panics.clone(),
        ));
        let recovery = Arc::new(std::sync::Mutex::new(Tracker::new(
            s.recovery.clone(),
            s.faults.len(),
        )));
        // What this process intends: a shard's share of the whole.
        let share = config.shard.as_ref().map_or(1.0, |s| s.shard.share());
        Ok(Experiment {
            profile: Profile::from_load(&s.load).scaled(share),
            config,
            plan,
            signals,
            telemetry,
            books: Books {
                ledger,
                stats,
                recovery,
                series: Default::default(),
                garbage_sent: Arc::default(),
                panics,
            },
            actors: Actors {
                publisher,
                publish_stop,
                under_test: Arc::new(under_test),
            },
            warmup: Duration::ZERO,
            late: Duration::ZERO,
            started_at: SystemTime::now(),
            start: Start {
                instant: Instant::now(),
                wall: SystemTime::now(),
            },
            target: Target {
                info: target,
                cluster: None,
                proxy: None,
                provisioned,
                publisher_client,
                consumer_client,
                durable: consumer,
                connections,
                garbage_client,
                lanes: Lanes {
                    publisher: lane,
                    _consumer: consumer_lane,
                },
            },
        })
    }
}

/// What the harness tells the service it runs: where the server is (as the
/// harness's own clients reach it, through the fault proxy if there is
/// one), how to log in, and what it consumes.
fn service_env(s: &Scenario, url: &str) -> Vec<(String, String)> {
    let mut env = vec![
        ("NATS_URL".to_string(), url.to_string()),
        ("HARNESS_STREAM".to_string(), s.stream.name.clone()),
        ("HARNESS_DURABLE".to_string(), s.consumer.durable.clone()),
        ("HARNESS_SUBJECT".to_string(), s.load.subject.clone()),
        (
            "HARNESS_DEAD_LETTER_SUBJECT".to_string(),
            s.consumer.dead_letter_subject.clone(),
        ),
    ];
    if let Some(output) = &s.consumer.output {
        env.push(("HARNESS_OUTPUT_SUBJECT".to_string(), output.subject.clone()));
    }
    let t = &s.target;
    let logins = [
        ("NATS_USER", t.user.clone()),
        ("NATS_PASSWORD", t.password.clone()),
        ("NATS_TOKEN", t.token.clone()),
        (
            "NATS_CREDS",
            t.credentials.as_ref().map(|p| p.display().to_string()),
        ),
    ];
    for (name, value) in logins {
        if let Some(value) = value {
            env.push((name.to_string(), value));
        }
    }
    env
}

/// A run id used within the stream's duplicate window would have every
/// event dropped as a duplicate of the earlier run's: refuse it (exit 2).
async fn refuse_reused_run_id(
    provisioned: &Provisioned,
    s: &Scenario,
    run_id: &str,
) -> Result<(), HarnessError> {
    let window = s.stream.duplicate_window;
    match provision::run_id_in_use(&provisioned.stream, &s.load.subject, run_id, window).await {
        Ok(None) => Ok(()),
        Ok(Some(age)) => Err(HarnessError::Usage(format!(
            "run id `{run_id}` was used on stream `{}` {} ago, within its duplicate window of {}: \
             the stream would drop this run's events as duplicates of that run's; \
             give another --run-id (or none, for a random one), or wait {}",
            s.stream.name,
            humantime::format_duration(Duration::from_secs(age.as_secs())),
            humantime::format_duration(window),
            humantime::format_duration(Duration::from_secs((window - age).as_secs() + 1)),
        ))),
        Err(message) => {
            tracing::warn!(%message, "cannot tell whether the run id was used before");
            Ok(())
        }
    }
}

/// Checks that the scenario's events, and their dead-lettered copies, fit
/// the server's `max_payload` (from its INFO), headers included: otherwise
/// every publish, or every dead letter, would fail in a run that might
/// still pass.
fn check_max_payload(s: &Scenario, run_id: &str, max_payload: usize) -> Result<(), HarnessError> {
    let headers =
        crate::event::largest_headers(run_id).max(crate::consumer::largest_copy_headers(s, run_id));
    let message = headers + crate::event::largest_body(&s.load.payload, run_id);
    if message <= max_payload {
        return Ok(());
    }
    let size = s.load.payload.size.0;
    Err(HarnessError::PayloadAboveMaxPayload {
        size,
        message,
        max_payload,
        fits: (size as usize).saturating_sub(message - max_payload),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit;
    use crate::scenario::ByteSize;

    #[test]
    fn a_payload_above_max_payload_is_a_usage_error_naming_both_sizes() {
        let mut s = crate::scenario::parse(
            "[load]\nrate = 1\nduration = \"1s\"\n[load.payload]\nsize = 8192\n",
            std::path::Path::new("s.toml"),
        )
        .unwrap();
        let e = check_max_payload(&s, "r1", 4096).unwrap_err();
        assert_eq!(e.exit_code(), exit::USAGE);
        let text = e.to_string();
        assert!(
            text.contains("`load.payload.size` 8192 B") && text.contains("max_payload of 4096 B"),
            "{text}"
        );
        let HarnessError::PayloadAboveMaxPayload { fits, .. } = e else {
            unreachable!()
        };
        s.load.payload.size = ByteSize(fits as u64);
        assert!(check_max_payload(&s, "r1", 4096).is_ok(), "{fits}");
        // The dead-lettered copy's headers are the longer: it decides.
        let event = crate::event::largest_message(&s.load.payload, "r1");
        assert!(event < 4096, "{event}");
        s.load.payload.size = ByteSize(fits as u64 + 1);
        assert!(check_max_payload(&s, "r1", 4096).is_err());
    }
}
