//! The embedded default end to end: `oms` runs all four parts in one
//! process, on real ports, with SQLite files under its data directory.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use oms_config::Env;
use testkit::{assert_grpc_basics, eventually, unique_name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every address on port 0 and a fresh data directory, plus `extra`.
fn env(data_dir: &std::path::Path, extra: &[(&str, &str)]) -> Env {
    let mut pairs: Vec<(String, String)> = [
        ("USER_SVC_ADDR", "127.0.0.1:0"),
        ("PRODUCT_SVC_ADDR", "127.0.0.1:0"),
        ("ORDER_SVC_ADDR", "127.0.0.1:0"),
        ("GATEWAY_ADDR", "127.0.0.1:0"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    pairs.push(("OMS_DATA_DIR".to_owned(), data_dir.display().to_string()));
    Env::from_pairs(pairs)
}

fn temp_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(unique_name("oms_mesh"))
}

/// A minimal HTTP/1.1 GET: status code and body.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the gateway");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut raw = String::new();
    stream
        .read_to_string(&mut raw)
        .await
        .expect("read response");
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn channel(addr: SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_lazy()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mesh_serves_all_four_parts_and_stops_cleanly() {
    oms_telemetry::init_for_tests();
    let data_dir = temp_dir();
    let mesh = oms::Mesh::build(&env(&data_dir, &[])).await.expect("bind");
    let addrs = mesh.addrs();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(mesh.run_until_stopped(async {
        let _ = stopped.await;
    }));

    assert_grpc_basics(channel(addrs.user), user_svc::SERVICE_INFO).await;
    assert_grpc_basics(channel(addrs.product), product_svc::SERVICE_INFO).await;
    assert_grpc_basics(channel(addrs.order), order_svc::SERVICE_INFO).await;

    let (status, body) = http_get(addrs.gateway, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    // The gateway connects lazily, so readiness may take a moment.
    eventually(Duration::from_secs(10), "/readyz to answer 200", || async {
        (http_get(addrs.gateway, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    // What the gateway container's health check runs.
    oms_runtime::healthcheck::check(
        addrs.gateway,
        oms_runtime::healthcheck::Probe::Http("/readyz"),
    )
    .await
    .expect("the gateway is healthy");
    let (status, body) = http_get(addrs.gateway, "/no/such/path").await;
    assert_eq!(status, 404);
    assert!(body.contains(r#""status":"NOT_FOUND""#), "{body}");

    let _ = stop.send(());
    let result = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the mesh stops within the drain timeout")
        .expect("the mesh task does not panic");
    assert!(result.is_ok(), "{result:?}");
    // (Probing the released ports now would ask whoever took them since;
    // user-svc's healthcheck test shows a stopped service unhealthy behind
    // an address it keeps.)
    for file in ["users.db", "products.db", "orders.db"] {
        assert!(data_dir.join(file).exists(), "{file} under OMS_DATA_DIR");
    }
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// In one process the gateway reaches user-svc on loopback, and user-svc
/// believes the client address it forwards: but only the gateway's, by a
/// secret made up for this process. Another local caller naming a new
/// address per call is limited as itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_caller_cannot_name_its_own_client_address() {
    let data_dir = temp_dir();
    let mesh = oms::Mesh::build(&env(&data_dir, &[("OMS_LOGIN_MAX_ATTEMPTS_PER_PEER", "3")]))
        .await
        .expect("bind");
    let addrs = mesh.addrs();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(mesh.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let mut auth =
        oms_proto::user::v1::auth_service_client::AuthServiceClient::new(channel(addrs.user));
    let mut codes = Vec::new();
    for i in 0..4 {
        let mut request = tonic::Request::new(oms_proto::user::v1::LoginRequest {
            email: "someone@example.com".into(),
            password: "a wrong password".into(),
        });
        request.metadata_mut().insert(
            "x-forwarded-for",
            format!("198.51.100.{i}").parse().unwrap(),
        );
        codes.push(auth.login(request).await.unwrap_err().code());
    }
    assert_eq!(
        codes,
        [
            tonic::Code::Unauthenticated,
            tonic::Code::Unauthenticated,
            tonic::Code::Unauthenticated,
            tonic::Code::ResourceExhausted,
        ],
        "four calls from one local process are four attempts from 127.0.0.1"
    );
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), running).await;
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn a_taken_port_names_the_variable_to_change() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let data_dir = temp_dir();
    let err = oms::Mesh::build(&env(&data_dir, &[("PRODUCT_SVC_ADDR", &addr)]))
        .await
        .expect_err("the port is taken");
    let message = oms_core::error::report(&err);
    assert!(
        message.contains("PRODUCT_SVC_ADDR") && message.contains(&addr),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_metrics_port_stops_the_mesh_naming_its_variable() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let data_dir = temp_dir();
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        oms::Mesh::build(&env(&data_dir, &[("ORDER_SVC_METRICS_ADDR", &addr)])),
    )
    .await
    .expect("the mesh gives up instead of hanging");
    let message = oms_core::error::report(&result.expect_err("the port is taken"));
    assert!(
        message.contains("ORDER_SVC_METRICS_ADDR") && message.contains(&addr),
        "{message}"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn a_bad_address_names_its_variable() {
    let err = oms::Mesh::build(&env(&temp_dir(), &[("ORDER_SVC_ADDR", "not-an-address")]))
        .await
        .expect_err("bad address");
    assert!(
        matches!(&err, oms_runtime::StartupError::Config(c) if c.var == "ORDER_SVC_ADDR"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_stops_the_mesh_with_a_clear_error() {
    let data_dir = temp_dir();
    // Port 1 on loopback: nothing listens there, so the connection is refused.
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        oms::Mesh::build(&env(&data_dir, &[("REDIS_URL", "redis://127.0.0.1:1")])),
    )
    .await
    .expect("the mesh gives up instead of hanging");
    let message = oms_core::error::report(&result.expect_err("redis is unreachable"));
    assert!(
        message.contains("key-value store") && message.contains("127.0.0.1:1"),
        "{message}"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_stops_the_mesh_and_hides_the_password() {
    let data_dir = temp_dir();
    let env = env(
        &data_dir,
        &[(
            "ORDER_SVC_DATABASE_URL",
            "mysql://oms:hunter2@127.0.0.1:1/orders",
        )],
    );
    let result = tokio::time::timeout(Duration::from_secs(30), oms::Mesh::build(&env))
        .await
        .expect("the mesh gives up instead of hanging");
    let message = oms_core::error::report(&result.expect_err("the database is unreachable"));
    assert!(
        message.contains("order-svc") && message.contains("cannot connect to the database"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "password leaked: {message}");
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// The real binary: a bad value ends it with one line naming the variable
/// and a non-zero exit code, never a panic.
#[test]
fn the_binary_reports_bad_configuration_in_one_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_oms"))
        .env("GATEWAY_ADDR", "localhost")
        .env("OMS_DATA_DIR", temp_dir())
        .output()
        .expect("run oms");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("GATEWAY_ADDR") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

/// A quote lifetime outside 1 s to 7 days stops `oms` at start-up, as it
/// stops product-svc.
#[test]
fn a_quote_lifetime_out_of_range_stops_the_binary() {
    let output = Command::new(env!("CARGO_BIN_EXE_oms"))
        .env("OMS_QUOTE_TTL", "8d")
        .env("OMS_DATA_DIR", temp_dir())
        .output()
        .expect("run oms");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("OMS_QUOTE_TTL") && stderr.contains("from 1s to 7d"),
        "{stderr}"
    );
}

/// The real binary stops cleanly (exit 0) on SIGTERM once it serves.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_drains_and_exits_zero_on_sigterm() {
    use tokio::io::AsyncBufReadExt;
    let data_dir = temp_dir();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_oms"))
        .envs([
            ("USER_SVC_ADDR", "127.0.0.1:0"),
            ("PRODUCT_SVC_ADDR", "127.0.0.1:0"),
            ("ORDER_SVC_ADDR", "127.0.0.1:0"),
            ("GATEWAY_ADDR", "127.0.0.1:0"),
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", "info"),
        ])
        .env("OMS_DATA_DIR", &data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start oms");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut serving = 0;
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(r#""target":"oms::listen""#) {
                serving += 1;
                if serving == 4 {
                    break;
                }
            }
        }
    })
    .await
    .expect("all four parts report their address");
    assert_eq!(serving, 4);

    let pid = child.id().expect("pid").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits within the drain timeout")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[test]
fn oms_help_prints_usage_instead_of_starting_the_mesh() {
    testkit::assert_cli_basics(
        env!("CARGO_BIN_EXE_oms"),
        "oms",
        &["serve", "env-vars"],
        "ORDER_SVC_DATABASE_URL",
    );
}

/// A bootstrap password the service refuses is a bad value like any other:
/// exit code 2 and one line naming the variable, as README says.
#[test]
fn a_bad_bootstrap_password_exits_2_naming_the_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_oms"))
        .envs([
            ("USER_SVC_ADDR", "127.0.0.1:0"),
            ("PRODUCT_SVC_ADDR", "127.0.0.1:0"),
            ("ORDER_SVC_ADDR", "127.0.0.1:0"),
            ("GATEWAY_ADDR", "127.0.0.1:0"),
            ("OMS_BOOTSTRAP_ADMIN_EMAIL", "admin@example.com"),
            ("OMS_BOOTSTRAP_ADMIN_PASSWORD", "short"),
        ])
        .env("OMS_DATA_DIR", temp_dir())
        .output()
        .expect("run oms");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("OMS_BOOTSTRAP_ADMIN_PASSWORD") && !stderr.contains("short"),
        "{stderr}"
    );
}

/// The `oms::listen` address of `service`'s listener of `kind`.
fn listen_addr_of(log: &str, service: &str, kind: &str) -> Option<SocketAddr> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|e| e["target"] == "oms::listen" && e["service"] == service && e["kind"] == kind)
        .and_then(|e| e["addr"].as_str()?.parse().ok())
}

/// The keys of a JSON log line, sorted.
fn keys(line: &serde_json::Value) -> Vec<&str> {
    let mut keys: Vec<&str> = line
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

/// The access lines' schema as docs/logging.md writes it down, read from
/// the real binary's JSON log at `info`: a GetProduct served directly,
/// one through the gateway, and the gateway's own line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_lines_are_short_flat_and_carry_each_fact_once() {
    let data_dir = testkit::TempDir::new("oms_log_lines");
    let log_path = data_dir.path().join("oms.log");
    let env = [
        ("USER_SVC_ADDR", "127.0.0.1:0"),
        ("PRODUCT_SVC_ADDR", "127.0.0.1:0"),
        ("ORDER_SVC_ADDR", "127.0.0.1:0"),
        ("GATEWAY_ADDR", "127.0.0.1:0"),
        ("RUST_LOG", "info"),
        ("OMS_BOOTSTRAP_ADMIN_EMAIL", "admin@example.com"),
        ("OMS_BOOTSTRAP_ADMIN_PASSWORD", "log line admin password"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain([(
        "OMS_DATA_DIR".to_owned(),
        data_dir.path().display().to_string(),
    )]);
    let mut oms = testkit::process::Process::spawn(
        "oms",
        std::path::Path::new(env!("CARGO_BIN_EXE_oms")),
        env,
        log_path.clone(),
    )
    .unwrap();
    let gateway = oms
        .wait_listening("http", Duration::from_secs(60))
        .await
        .unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let products = listen_addr_of(&log, "product-svc", "grpc").expect("product-svc's address");

    let login = testkit::http::send(
        gateway,
        "POST",
        "/v1/auth/login",
        &[],
        Some(r#"{"email":"admin@example.com","password":"log line admin password"}"#),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let admin = format!("Bearer {}", login.json["accessToken"].as_str().unwrap());
    let created = testkit::http::send(
        gateway,
        "POST",
        "/v1/products",
        &[("authorization", &admin)],
        Some(r#"{"sku":"LOG-1","name":"Log mug","price":{"currencyCode":"USD","amountMinor":"500"},"stockOnHand":"3"}"#),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let id = created.json["product"]["id"].as_str().unwrap().to_owned();

    // Anonymous, as the catalogue is read.
    let mut catalogue = oms_proto::product::v1::product_service_client::ProductServiceClient::new(
        channel(products),
    );
    catalogue
        .get_product(oms_proto::product::v1::GetProductRequest {
            product_id: id.clone(),
        })
        .await
        .unwrap();
    let forwarded = testkit::http::send(
        gateway,
        "GET",
        &format!("/v1/products/{id}"),
        &[("x-request-id", "log-line-1")],
        None,
    )
    .await;
    assert_eq!(forwarded.status, 200, "{}", forwarded.text);

    let get_product = "oms.product.v1.ProductService/GetProduct";
    let (direct, through, gateway_line) = eventually(
        Duration::from_secs(10),
        "the three access lines in the log",
        || {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            async move {
                let lines: Vec<(String, serde_json::Value)> = text
                    .lines()
                    .filter_map(|l| Some((l.to_owned(), serde_json::from_str(l).ok()?)))
                    .collect();
                let find = |f: &dyn Fn(&serde_json::Value) -> bool| {
                    lines.iter().find(|(_, v)| f(v)).cloned()
                };
                let direct = find(&|v| v["rpc"] == get_product && v.get("request_id").is_none())?;
                let through =
                    find(&|v| v["rpc"] == get_product && v["request_id"] == "log-line-1")?;
                let gateway_line =
                    find(&|v| v["target"] == "oms::http" && v["request_id"] == "log-line-1")?;
                Some((direct, through, gateway_line))
            }
        },
    )
    .await;

    // A typical GetProduct line: every fact, each once, in ≤ 300 bytes.
    let (text, line) = &direct;
    assert!(text.len() <= 300, "{} bytes: {text}", text.len());
    assert_eq!(
        keys(line),
        [
            "caller", "code", "level", "ms", "msg", "peer", "rpc", "span_id", "target", "time",
            "trace_id"
        ],
        "{text}"
    );
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["target"], "oms::rpc");
    assert_eq!(line["msg"], "rpc finished");
    assert_eq!(line["code"], "OK");
    assert_eq!(line["caller"], "anonymous");
    assert!(line["ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{text}");
    assert!(
        line["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{text}"
    );
    let hex = |v: &serde_json::Value, len: usize| {
        v.as_str()
            .is_some_and(|s| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    assert!(
        hex(&line["trace_id"], 32) && hex(&line["span_id"], 16),
        "{text}"
    );
    assert!(
        chrono_like(line["time"].as_str().unwrap()),
        "RFC 3339 UTC with microseconds: {text}"
    );

    // Through the gateway: the same keys plus the request id, in the
    // gateway's trace, under a span of its own.
    let (text, line) = &through;
    let mut expected = keys(&direct.1);
    expected.push("request_id");
    expected.sort_unstable();
    assert_eq!(keys(line), expected, "{text}");
    let (gateway_text, gateway_line) = &gateway_line;
    assert_eq!(
        keys(gateway_line),
        [
            "level",
            "method",
            "ms",
            "msg",
            "peer",
            "request_id",
            "route",
            "span_id",
            "status",
            "target",
            "time",
            "trace_id"
        ],
        "{gateway_text}"
    );
    assert_eq!(gateway_line["msg"], "request finished");
    assert_eq!(gateway_line["status"], 200);
    assert_eq!(gateway_line["route"], "/v1/products/{product_id}");
    assert_eq!(line["trace_id"], gateway_line["trace_id"]);
    assert_ne!(line["span_id"], gateway_line["span_id"]);
    // No OpenTelemetry attribute without an exporter.
    assert!(
        !std::fs::read_to_string(&log_path)
            .unwrap()
            .contains("\"otel."),
        "otel.* keys in the log"
    );
}

/// `2026-12-07T05:28:52.123456Z`.
fn chrono_like(time: &str) -> bool {
    let b = time.as_bytes();
    b.len() == 27
        && b.get(10) == Some(&b'T')
        && b.get(19) == Some(&b'.')
        && b.get(26) == Some(&b'Z')
        && time
            .bytes()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16 | 19 | 26) || c.is_ascii_digit())
}
