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
