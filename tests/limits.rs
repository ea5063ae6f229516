//! What a client sends is bounded before it costs memory: the gateway of
//! the real `oms` binary refuses over-long bodies with 413, before reading
//! them when their length is declared and after at most the route's limit
//! when they stream, and the process's resident memory stays flat.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use testkit::eventually;
use testkit::process::{Process, rust_log};
use tokio::io::AsyncWriteExt;

/// The `oms` binary on port 0 everywhere; the gateway's address.
async fn start_oms(data_dir: &std::path::Path) -> (Process, SocketAddr) {
    let env = [
        ("USER_SVC_ADDR", "127.0.0.1:0"),
        ("PRODUCT_SVC_ADDR", "127.0.0.1:0"),
        ("ORDER_SVC_ADDR", "127.0.0.1:0"),
        ("GATEWAY_ADDR", "127.0.0.1:0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain([
        ("OMS_DATA_DIR".to_owned(), data_dir.display().to_string()),
        ("RUST_LOG".to_owned(), rust_log("warn")),
    ]);
    let mut oms = Process::spawn(
        "oms",
        std::path::Path::new(env!("CARGO_BIN_EXE_oms")),
        env,
        data_dir.join("oms.log"),
    )
    .unwrap();
    let gateway = oms
        .wait_listening("http", Duration::from_secs(60))
        .await
        .unwrap();
    (oms, gateway)
}

/// Resident memory of `pid` in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The status the gateway answers to a POST declaring `length` bytes,
/// without waiting for the body.
async fn declared(gateway: SocketAddr, path: &str, content_type: &str, length: u64) -> u16 {
    testkit::http::send_declared(gateway, "POST", path, content_type, length).await
}

/// Streams `total` bytes as a chunked body while reading the answer: the
/// status, or `None` when the gateway cut the connection instead; and
/// how much was sent before it stopped taking the body.
async fn streamed(
    gateway: SocketAddr,
    path: &str,
    content_type: &str,
    total: usize,
) -> (Option<u16>, usize) {
    let stream = tokio::net::TcpStream::connect(gateway).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: oms\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let sending = tokio::spawn(async move {
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = 0;
        if writer.write_all(head.as_bytes()).await.is_err() {
            return sent;
        }
        while sent < total {
            let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
            if writer.write_all(&frame).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
        let _ = writer.write_all(b"0\r\n\r\n").await;
        sent
    });
    let status = tokio::time::timeout(
        Duration::from_secs(30),
        testkit::http::status_line(&mut reader),
    )
    .await
    .unwrap();
    drop(reader);
    let sent = sending.await.unwrap();
    (status, sent)
}

/// Four attackers send `attack` ten times each while eight honest
/// clients send `honest` forty times each, all at once; how many honest
/// requests failed.
async fn honest_failures_beside<A, AF, H, HF>(attack: A, honest: H) -> usize
where
    A: Fn() -> AF + Clone + Send + 'static,
    AF: std::future::Future<Output = ()> + Send,
    H: Fn() -> HF + Clone + Send + 'static,
    HF: std::future::Future<Output = bool> + Send,
{
    let attackers: Vec<_> = (0..4)
        .map(|_| {
            let attack = attack.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    attack().await;
                }
            })
        })
        .collect();
    let honest: Vec<_> = (0..8)
        .map(|_| {
            let honest = honest.clone();
            tokio::spawn(async move {
                let mut failures = 0;
                for _ in 0..40 {
                    if !honest().await {
                        failures += 1;
                    }
                }
                failures
            })
        })
        .collect();
    for attacker in attackers {
        attacker.await.unwrap();
    }
    let mut failures = 0;
    for client in honest {
        failures += client.await.unwrap();
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_with_413_and_memory_stays_flat() {
    let data_dir = testkit::TempDir::new("oms_limits");
    let (oms, gateway) = start_oms(data_dir.path()).await;
    let pid = oms.child.id().unwrap();
    let form = "application/x-www-form-urlencoded";

    // Declared: refused before a byte of the body is read.
    assert_eq!(
        declared(gateway, "/oauth2/token", form, 300 * 1024 * 1024).await,
        413
    );
    assert_eq!(
        declared(gateway, "/oauth2/token", form, 9 * 1024).await,
        413
    );
    assert_eq!(
        declared(gateway, "/v1/orders", "application/json", 2 * 1024 * 1024).await,
        413
    );
    assert_eq!(
        declared(
            gateway,
            "/v1/auth/login",
            "application/json",
            1024 * 1024 + 1
        )
        .await,
        413
    );

    // Streamed without a length: the gateway stops after the route's limit.
    // A first round warms the allocator (its arenas and the connection's
    // buffers), so the measured rounds show growth, not first use.
    let log_path = data_dir.path().join("oms.log");
    let refusals = || {
        std::fs::read_to_string(&log_path)
            .unwrap()
            .matches("request body over the limit refused")
            .count()
    };
    let mut before = 0;
    for round in 0..4 {
        if round == 1 {
            before = rss_kib(pid);
        }
        for (path, content_type) in [("/oauth2/token", form), ("/v1/orders", "application/json")] {
            let refused_before = refusals();
            let (status, sent) = streamed(gateway, path, content_type, 64 * 1024 * 1024).await;
            // The gateway stopped taking the body; the 413 itself may be
            // lost when the client's unread bytes reset the connection, so
            // the refusal is read from the log instead.
            assert!(
                sent < 64 * 1024 * 1024,
                "{path}: took all {sent} bytes (answered {status:?})"
            );
            assert!(
                status.is_none_or(|s| s == 413),
                "{path}: answered {status:?}"
            );
            eventually(
                Duration::from_secs(10),
                "the refusal to be logged at WARN",
                || async { (refusals() > refused_before).then_some(()) },
            )
            .await;
        }
    }
    let after = rss_kib(pid);
    assert!(
        after < before + 32 * 1024,
        "resident memory grew from {before} KiB to {after} KiB over 384 MiB of refused bodies"
    );
}

/// `GET /v1/products` with an `authorization` header of `size` bytes.
async fn list_products_with_a_token_of(gateway: SocketAddr, size: usize) -> testkit::http::Reply {
    let token = format!("Bearer {}", "x".repeat(size));
    testkit::http::send(
        gateway,
        "GET",
        "/v1/products",
        &[("authorization", &token)],
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_get_431_and_honest_requests_alongside_all_succeed() {
    let data_dir = testkit::TempDir::new("oms_limits");
    let (_oms, gateway) = start_oms(data_dir.path()).await;
    for size in [17 * 1024, 60 * 1024] {
        let refused = list_products_with_a_token_of(gateway, size).await;
        assert_eq!(refused.status, 431, "{size} bytes: {}", refused.text);
        assert_eq!(refused.json["error"]["code"], 431);
    }

    // Four senders of oversized headers and honest clients at once: the
    // honest ones never see a failure (the big headers never reach the
    // shared connections to the services).
    let failures = honest_failures_beside(
        move || async move {
            let reply = list_products_with_a_token_of(gateway, 40 * 1024).await;
            assert_eq!(reply.status, 431);
        },
        move || async move {
            testkit::http::send(gateway, "GET", "/v1/products", &[], None)
                .await
                .status
                == 200
        },
    )
    .await;
    assert_eq!(failures, 0, "honest requests failed beside the attackers");
    // Each refusal is seen at WARN with its route and peer (the log runs
    // at RUST_LOG=warn: honest requests leave nothing).
    let log = std::fs::read_to_string(data_dir.path().join("oms.log")).unwrap();
    let refusal = log
        .lines()
        .find(|l| l.contains("request finished") && l.contains("\"status\":431"))
        .unwrap_or_else(|| panic!("no WARN line for a 431 in:\n{log}"));
    assert!(
        refusal.contains("\"level\":\"WARN\"") && refusal.contains("\"peer\":\"127.0.0.1:"),
        "{refusal}"
    );
    assert!(
        !log.lines().any(|l| l.contains("\"status\":200")),
        "honest requests are not warnings"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_with_a_thousand_bad_lines_break_no_honest_request() {
    let data_dir = testkit::TempDir::new("oms_limits");
    let (_oms, gateway) = start_oms(data_dir.path()).await;
    let registered = testkit::http::send(
        gateway,
        "POST",
        "/v1/auth/register",
        &[],
        Some(r#"{"email":"mallory@example.com","password":"mallory password","displayName":"M"}"#),
    )
    .await;
    assert_eq!(registered.status, 200, "{}", registered.text);
    let login = testkit::http::send(
        gateway,
        "POST",
        "/v1/auth/login",
        &[],
        Some(r#"{"email":"mallory@example.com","password":"mallory password"}"#),
    )
    .await;
    let bearer = format!("Bearer {}", login.json["accessToken"].as_str().unwrap());
    let lines: Vec<String> = (0..1000)
        .map(|_| r#"{"productId":"00000000-0000-0000-0000-000000000000","quantity":1}"#.to_owned())
        .collect();
    let body = format!(r#"{{"requestId":"flood","lines":[{}]}}"#, lines.join(","));

    let (attacker, honest) = (bearer.clone(), bearer);
    let failures = honest_failures_beside(
        move || {
            let (bearer, body) = (attacker.clone(), body.clone());
            async move {
                let reply = testkit::http::send(
                    gateway,
                    "POST",
                    "/v1/orders",
                    &[("authorization", &bearer)],
                    Some(&body),
                )
                .await;
                assert_eq!(reply.status, 400, "{}", reply.text);
                assert!(reply.text.len() < 4096, "{} bytes", reply.text.len());
            }
        },
        move || {
            let bearer = honest.clone();
            async move {
                let reply = testkit::http::send(
                    gateway,
                    "GET",
                    "/v1/orders",
                    &[("authorization", &bearer)],
                    None,
                )
                .await;
                reply.status == 200
            }
        },
    )
    .await;
    assert_eq!(failures, 0, "honest requests failed beside the attackers");
}
