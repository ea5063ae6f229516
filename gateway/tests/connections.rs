//! What the gateway's connections may hold, tried as an attacker would:
//! half-sent headers, idle connections, more connections than the cap,
//! HTTP/2 streams that never end, and a client that never opens its
//! window. Every limit is set short here (seconds) so the test sees it
//! act; the defaults are in README.md.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use oms_config::Env;
use testkit::{RawH2, Spawned, eventually, memory, spawn};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const MIB: u64 = 1024 * 1024;

/// A gateway whose backends are nowhere (its own routes still answer),
/// with the port that refuses them, held for as long as the test keeps it.
async fn gateway(extra: &[(&str, &str)]) -> (Spawned, testkit::ClosedPort) {
    oms_telemetry::init_for_tests();
    let closed = testkit::ClosedPort::hold();
    let nowhere = closed.addr().to_string();
    let mut pairs: Vec<(String, String)> = ["USER_SVC_ADDR", "PRODUCT_SVC_ADDR", "ORDER_SVC_ADDR"]
        .iter()
        .map(|var| ((*var).to_owned(), nowhere.clone()))
        .collect();
    pairs.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let config = gateway::Config::from_env(&Env::from_pairs(pairs)).unwrap();
    (spawn::<gateway::App>(config).await, closed)
}

use testkit::counter;
use testkit::listener_refusals as refusals;

/// Whether the server has closed `tcp` (a read ends or fails at once).
async fn closed(tcp: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_millis(20), tcp.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            // An answer (a 408, say) before the close: read on.
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

/// Waits until the server has closed every one of `connections`; panics
/// naming `what` after `within`.
async fn all_closed(connections: &mut [TcpStream], within: Duration, what: &str) {
    let deadline = tokio::time::Instant::now() + within;
    let mut open: Vec<&mut TcpStream> = connections.iter_mut().collect();
    while !open.is_empty() {
        let mut still = Vec::new();
        for tcp in open {
            if !closed(tcp).await {
                still.push(tcp);
            }
        }
        open = still;
        assert!(
            open.is_empty() || tokio::time::Instant::now() < deadline,
            "{} of {what} still open after {within:?}",
            open.len()
        );
    }
}

/// `GET /healthz` on a connection of its own; false if refused or closed.
async fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut tcp) = TcpStream::connect(addr).await else {
        return false;
    };
    let request = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n";
    if tcp.write_all(request).await.is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer).await;
    answer.starts_with(b"HTTP/1.1 200")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_headers_and_idle_connections_are_closed_on_time() {
    let (gateway, _nowhere) = gateway(&[
        ("GATEWAY_HEADER_READ_TIMEOUT", "1s"),
        ("GATEWAY_IDLE_TIMEOUT", "2s"),
    ])
    .await;
    let mut half = Vec::new();
    let mut idle = Vec::new();
    for _ in 0..20 {
        let mut tcp = TcpStream::connect(gateway.addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
            .await
            .unwrap();
        half.push(tcp);
        idle.push(TcpStream::connect(gateway.addr).await.unwrap());
    }
    // An HTTP/2 connection that greets and then opens nothing.
    let h2 = RawH2::connect(gateway.addr).await.unwrap();
    all_closed(
        &mut half,
        Duration::from_secs(20),
        "the half-sent connections",
    )
    .await;
    all_closed(&mut idle, Duration::from_secs(20), "the idle connections").await;
    eventually(
        Duration::from_secs(10),
        "the idle HTTP/2 connection to close",
        || {
            let closed = h2.closed();
            async move { closed.then_some(()) }
        },
    )
    .await;
    assert!(healthy(gateway.addr).await, "honest requests are served");
}

/// `GET /healthz` on a keep-alive connection already open: answered 200.
async fn assert_healthz_on(tcp: &mut TcpStream) {
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tcp.read(&mut answer).await.unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answer[..n])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_ones_are_closed_and_open_ones_keep_working() {
    let (gateway, _nowhere) = gateway(&[("GATEWAY_MAX_CONNECTIONS", "16")]).await;
    // An honest client with a keep-alive connection, opened first.
    let mut honest = TcpStream::connect(gateway.addr).await.unwrap();
    assert_healthz_on(&mut honest).await;
    let mut fillers = Vec::new();
    for _ in 0..15 {
        fillers.push(TcpStream::connect(gateway.addr).await.unwrap());
    }
    // The listener is full: one more is closed on arrival.
    let extra = TcpStream::connect(gateway.addr).await.unwrap();
    all_closed(
        &mut [extra],
        Duration::from_secs(5),
        "the connection past the cap",
    )
    .await;
    assert!(refusals("connections") >= 1);
    // The honest client's connection still serves.
    assert_healthz_on(&mut honest).await;
    // A place freed is a place again.
    drop(fillers.pop());
    eventually(
        Duration::from_secs(10),
        "a freed place to be taken",
        || async { healthy(gateway.addr).await.then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_that_never_end_are_answered_and_the_rest_refused() {
    let (gateway, _nowhere) = gateway(&[("GATEWAY_STALL_TIMEOUT", "1s")]).await;
    let (rss_before, _) = memory();
    let mut connections = Vec::new();
    for _ in 0..20 {
        let mut h2 = RawH2::connect(gateway.addr).await.unwrap();
        for _ in 0..200 {
            // A contract route: its handler waits for the body that never
            // comes, until the stall time.
            h2.open_get("/v1/products/0190f3a4-0000-7000-8000-000000000000", false)
                .await
                .unwrap();
        }
        connections.push(h2);
    }
    let opened = 20 * 200;
    let ended = eventually(Duration::from_secs(30), "every stream to be ended", || {
        let ended: usize = connections.iter().map(RawH2::ended).sum();
        async move { (ended == opened).then_some(ended) }
    })
    .await;
    assert_eq!(ended, opened);
    // 100 streams per connection are taken (and time out); the rest are
    // refused at once.
    let reset: usize = connections.iter().map(RawH2::reset).sum();
    assert_eq!(
        reset,
        20 * 100,
        "streams past SETTINGS_MAX_CONCURRENT_STREAMS"
    );
    assert!(refusals("body_timeout") >= 1);
    let grown = memory().0.saturating_sub(rss_before);
    eprintln!("RSS grew by {} MiB", grown / MIB);
    assert!(grown < 64 * MIB, "RSS grew by {} MiB", grown / MIB);
    assert!(healthy(gateway.addr).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_answers_is_closed_and_holds_little() {
    let (gateway, _nowhere) = gateway(&[("GATEWAY_STALL_TIMEOUT", "1s")]).await;
    let (rss_before, _) = memory();
    let mut connections = Vec::new();
    for _ in 0..50 {
        let mut h2 = RawH2::connect_with_window(gateway.addr, Some(0))
            .await
            .unwrap();
        for _ in 0..100 {
            h2.open_get("/openapi.json", true).await.unwrap();
        }
        connections.push(h2);
    }
    let peak = std::sync::atomic::AtomicU64::new(0);
    eventually(
        Duration::from_secs(30),
        "every shut-window connection to be closed",
        || {
            peak.fetch_max(memory().0, std::sync::atomic::Ordering::Relaxed);
            let all = connections.iter().all(RawH2::closed);
            async move { all.then_some(()) }
        },
    )
    .await;
    assert!(refusals("stalled") >= 1);
    let grown = peak.into_inner().saturating_sub(rss_before);
    eprintln!("RSS grew by {} MiB at most", grown / MIB);
    // 5,000 answers of the ~46 KB document once pinned ~46 KB each.
    assert!(grown < 64 * MIB, "RSS grew by {} MiB", grown / MIB);
    assert!(healthy(gateway.addr).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_mid_body_is_an_abort_not_a_refusal() {
    let (gateway, _nowhere) = gateway(&[]).await;
    for _ in 0..5 {
        let mut tcp = TcpStream::connect(gateway.addr).await.unwrap();
        tcp.write_all(
            b"POST /v1/auth/login HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
        drop(tcp);
    }
    eventually(
        Duration::from_secs(10),
        "the aborts to be counted",
        || async { (counter("http_server_client_aborts_total", "") == 5).then_some(()) },
    )
    .await;
    assert_eq!(
        counter("http_server_refused_total", "reason=\"body_too_large\""),
        0,
        "a hang-up is not an oversized body"
    );
}

/// Sends `head` as a whole request and reads the answer to the end.
async fn raw_answer(addr: SocketAddr, head: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(head).await.unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_hyper_cannot_parse_get_the_json_error_body_too() {
    let (gateway, _nowhere) = gateway(&[]).await;
    let long_path = format!("/v1/products/{}", "a".repeat(100_000));
    let many_params: String = (0..10_000).map(|i| format!("p{i}=v&")).collect();
    for (head, status) in [
        (
            format!("GET {long_path} HTTP/1.1\r\nHost: gateway\r\n\r\n"),
            "414",
        ),
        (
            format!("GET /v1/products?{many_params} HTTP/1.1\r\nHost: gateway\r\n\r\n"),
            "414",
        ),
        (
            "GET /v1/products/a b HTTP/1.1\r\nHost: gateway\r\n\r\n".to_owned(),
            "400",
        ),
    ] {
        let answer = raw_answer(gateway.addr, head.as_bytes()).await;
        let (top, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(top.starts_with(&format!("HTTP/1.1 {status}")), "{top}");
        assert!(top.contains("content-type: application/json"), "{top}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["status"], "INVALID_ARGUMENT", "{body}");
    }
}
