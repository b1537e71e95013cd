//! The proxy against a real TCP echo server on 127.0.0.1. Timings are
//! asserted only as lower bounds, which a busy machine cannot break.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// An echo server; returns its URL.
async fn echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    format!("nats://127.0.0.1:{port}")
}

async fn dial(proxy: &Proxy) -> TcpStream {
    let addr = proxy.url().trim_start_matches("nats://").to_string();
    TcpStream::connect(addr).await.unwrap()
}

/// Sends `bytes` and reads the same number back, within `limit`.
async fn round_trip(socket: &mut TcpStream, bytes: &[u8], limit: Duration) -> io::Result<Vec<u8>> {
    socket.write_all(bytes).await?;
    let mut back = vec![0u8; bytes.len()];
    match tokio::time::timeout(limit, socket.read_exact(&mut back)).await {
        Ok(read) => read.map(|_| back),
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

#[tokio::test]
async fn bytes_cross_unchanged_both_ways() {
    let proxy = Proxy::start(&echo_server().await).await.unwrap();
    let mut socket = dial(&proxy).await;
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let back = round_trip(&mut socket, &payload, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(back, payload);
    assert_eq!(proxy.connections(), 1);
}

#[tokio::test]
async fn latency_delays_each_way_and_keeps_order() {
    let proxy = Proxy::start(&echo_server().await).await.unwrap();
    let mut socket = dial(&proxy).await;
    proxy.set_latency(
        Direction::Both,
        Some((Duration::from_millis(150), Duration::from_millis(50))),
    );
    let started = Instant::now();
    let mut sent = Vec::new();
    for i in 0..20u8 {
        socket.write_all(&[i; 10]).await.unwrap();
        sent.extend_from_slice(&[i; 10]);
    }
    let mut back = vec![0u8; sent.len()];
    socket.read_exact(&mut back).await.unwrap();
    // Two ways of at least 100 ms each (150 ms minus 50 ms of jitter).
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(back, sent, "jitter must never reorder bytes");

    proxy.set_latency(Direction::Both, None);
    let back = round_trip(&mut socket, b"fast", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(back, b"fast");
}

#[tokio::test]
async fn one_way_latency_leaves_the_other_way_alone() {
    let proxy = Proxy::start(&echo_server().await).await.unwrap();
    let mut socket = dial(&proxy).await;
    proxy.set_latency(
        Direction::ToClient,
        Some((Duration::from_millis(300), Duration::ZERO)),
    );
    let started = Instant::now();
    round_trip(&mut socket, b"x", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn bandwidth_limits_bytes_per_second() {
    let proxy = Proxy::start(&echo_server().await).await.unwrap();
    let mut socket = dial(&proxy).await;
    proxy.set_bandwidth(Direction::ToServer, Some(64 * 1024));
    let payload = vec![7u8; 128 * 1024];
    let started = Instant::now();
    let back = round_trip(&mut socket, &payload, Duration::from_secs(20))
        .await
        .unwrap();
    // 128 KiB at 64 KiB/s: the last chunk cannot leave before ~1.75 s.
    assert!(
        started.elapsed() >= Duration::from_millis(1700),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(back.len(), payload.len());
}

#[tokio::test]
async fn a_blackhole_drops_bytes_then_resets_what_it_touched() {
    let proxy = Proxy::start(&echo_server().await).await.unwrap();
    let mut touched = dial(&proxy).await;
    round_trip(&mut touched, b"before", Duration::from_secs(5))
        .await
        .unwrap();

    proxy.set_blackhole(Direction::Both, true);
    let lost = round_trip(&mut touched, b"into the void", Duration::from_millis(500)).await;
    assert_eq!(lost.unwrap_err().kind(), io::ErrorKind::TimedOut);
    assert!(proxy.dropped_bytes() >= 13, "{}", proxy.dropped_bytes());
    assert_eq!(proxy.connections(), 1, "the connection stays open");

    proxy.set_blackhole(Direction::Both, false);
    let mut buf = [0u8; 8];
    let after = tokio::time::timeout(Duration::from_secs(5), touched.read(&mut buf))
        .await
        .expect("the reset arrives");
    assert!(matches!(after, Ok(0) | Err(_)), "{after:?}");
    assert_eq!(proxy.resets(), 1);

    let mut fresh = dial(&proxy).await;
    let back = round_trip(&mut fresh, b"after", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(back, b"after");
}

#[tokio::test]
async fn reset_ends_open_connections_and_refuses_new_ones_until_it_ends() {
    let proxy = Proxy::start(&echo_server().await).await.unwrap();
    let mut open = dial(&proxy).await;
    round_trip(&mut open, b"hi", Duration::from_secs(5))
        .await
        .unwrap();

    proxy.reset_all(true);
    let mut buf = [0u8; 8];
    let read = tokio::time::timeout(Duration::from_secs(5), open.read(&mut buf))
        .await
        .expect("the reset arrives");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let mut refused = dial(&proxy).await;
    assert!(round_trip(&mut refused, b"no", Duration::from_secs(2))
        .await
        .is_err());
    assert!(proxy.resets() >= 2);

    proxy.reset_all(false);
    let mut fresh = dial(&proxy).await;
    assert_eq!(
        round_trip(&mut fresh, b"yes", Duration::from_secs(5))
            .await
            .unwrap(),
        b"yes"
    );
}

#[tokio::test]
async fn every_server_of_a_list_gets_its_own_listener() {
    let (a, b) = (echo_server().await, echo_server().await);
    let proxy = Proxy::start(&format!("{a}, {b}")).await.unwrap();
    let urls: Vec<&str> = proxy.url().split(',').collect();
    assert_eq!(urls.len(), 2);
    assert_ne!(urls[0], urls[1]);
    assert!(urls.iter().all(|u| u.starts_with("nats://127.0.0.1:")));
}

#[test]
fn urls_keep_their_scheme_and_credentials() {
    assert_eq!(
        split_url("tls://u:p@nats.example.com:4443").unwrap(),
        ("tls://u:p@".into(), "nats.example.com".into(), 4443)
    );
    assert_eq!(
        split_url("localhost").unwrap(),
        ("nats://".into(), "localhost".into(), 4222)
    );
    assert!(split_url("nats://host:port").is_err());
    assert!(split_url("nats://:4222").is_err());
}
