//! What the network-fault proxy costs on a clean network: against one
//! embedded nats-server, in the same run, the round-trip latency of core
//! request-reply and the rate of JetStream publishes with acks, straight to
//! the server and through the proxy with no fault active; and their ratios.
//!
//! `cargo bench --bench proxy`. Knobs (environment): PROXY_ROUNDS (10) of
//! PROXY_REQUESTS (500) requests per path, alternating paths each round so
//! that drift hits both alike; PROXY_PUBLISH_SECS (5) per path for the
//! publish rate. Results are printed and written to target/proxy.json.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use futures::StreamExt;
use harness::target::embedded::EmbeddedCluster;
use harness::target::proxy::Proxy;
use hdrhistogram::Histogram;

fn knob(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `requests` sequential request-replies, recorded in µs.
async fn round_trips(client: &async_nats::Client, requests: usize, into: &mut Histogram<u64>) {
    for _ in 0..requests {
        let started = Instant::now();
        client
            .request("bench.echo", "ping".into())
            .await
            .expect("request");
        into.saturating_record(started.elapsed().as_micros() as u64);
    }
}

/// Publishes with acks (1024 outstanding) for `secs`; acks per second.
async fn publish_rate(client: async_nats::Client, subject: &str, secs: f64) -> f64 {
    let js = jetstream::new(client);
    let payload = bytes::Bytes::from(vec![b'x'; 128]);
    let mut acks = futures::stream::FuturesUnordered::new();
    let mut acked = 0u64;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    while Instant::now() < deadline {
        while acks.len() < 1024 {
            let ack = js
                .publish(subject.to_string(), payload.clone())
                .await
                .expect("publish");
            acks.push(std::future::IntoFuture::into_future(ack));
        }
        if let Some(Ok(_)) = acks.next().await {
            acked += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    while acks.next().await.is_some() {}
    acked as f64 / secs
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds = knob("PROXY_ROUNDS", 10.0) as usize;
    let requests = knob("PROXY_REQUESTS", 500.0) as usize;
    let publish_secs = knob("PROXY_PUBLISH_SECS", 5.0);

    let cluster = EmbeddedCluster::start(1).await.expect("nats-server");
    let url = cluster.url();
    let proxy = Proxy::start(&url).await.expect("proxy");
    let direct = async_nats::connect(url.as_str()).await.expect("connect");
    let proxied = async_nats::connect(proxy.url()).await.expect("connect");

    let mut echo = direct.subscribe("bench.echo").await.expect("subscribe");
    let responder = direct.clone();
    let echoing = tokio::spawn(async move {
        while let Some(message) = echo.next().await {
            if let Some(reply) = message.reply {
                let _ = responder.publish(reply, message.payload).await;
            }
        }
    });
    direct.flush().await.expect("flush");

    let new = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let (mut straight, mut through) = (new(), new());
    round_trips(&direct, 200, &mut new()).await; // warm-up
    round_trips(&proxied, 200, &mut new()).await;
    for round in 0..rounds {
        if round % 2 == 0 {
            round_trips(&direct, requests, &mut straight).await;
            round_trips(&proxied, requests, &mut through).await;
        } else {
            round_trips(&proxied, requests, &mut through).await;
            round_trips(&direct, requests, &mut straight).await;
        }
    }
    echoing.abort();

    let js = jetstream::new(direct.clone());
    js.create_stream(stream::Config {
        name: "PROXY_BENCH".into(),
        subjects: vec!["proxybench.>".into()],
        storage: stream::StorageType::Memory,
        max_messages: 200_000,
        ..Default::default()
    })
    .await
    .expect("stream");
    let rate_direct = publish_rate(direct.clone(), "proxybench.direct", publish_secs).await;
    let rate_proxied = publish_rate(proxied.clone(), "proxybench.proxied", publish_secs).await;

    println!("\nround trip (ms)        count     p50     p90     p99   p99.9");
    for (name, h) in [("direct", &straight), ("through proxy", &through)] {
        println!(
            "{name:<18}{:>10}{:>8.3}{:>8.3}{:>8.3}{:>8.3}",
            h.len(),
            ms(h, 0.5),
            ms(h, 0.9),
            ms(h, 0.99),
            ms(h, 0.999)
        );
    }
    let p50_added = ms(&through, 0.5) - ms(&straight, 0.5);
    let p99_added = ms(&through, 0.99) - ms(&straight, 0.99);
    let rate_ratio = rate_proxied / rate_direct;
    println!(
        "\nthe proxy adds {p50_added:.3} ms at p50 and {p99_added:.3} ms at p99 per round trip"
    );
    println!(
        "publish with acks: {rate_direct:.0}/s direct, {rate_proxied:.0}/s through the proxy (ratio {rate_ratio:.2})"
    );
    let json = serde_json::json!({
        "round_trip_ms": {
            "direct": {"p50": ms(&straight, 0.5), "p99": ms(&straight, 0.99), "count": straight.len()},
            "proxied": {"p50": ms(&through, 0.5), "p99": ms(&through, 0.99), "count": through.len()},
        },
        "publish_rate": {"direct": rate_direct, "proxied": rate_proxied, "ratio": rate_ratio},
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/proxy.json");
    let _ = std::fs::write(
        &path,
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    );
    println!("written to {}", path.display());
    cluster.shutdown().await;
}
