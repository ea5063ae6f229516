//! The datastores over TLS, against a Redis and a MariaDB this test starts
//! with TLS on (certificates of a test CA): `rediss://` with the CA named
//! in the URL, and MariaDB's `ssl-mode=VERIFY_IDENTITY` with `ssl-ca`.
//! Each server is verified: the wrong CA, or a host its certificate does
//! not name, is refused.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use oms_config::{DatabaseUrl, RedisUrl};
use oms_store::db::PoolOptions;
use oms_store::kv::{KvStore, RedisKv};
use sea_orm::ConnectionTrait;
use testkit::servers::ServerTls;
use testkit::servers::mariadb::MariadbServer;
use testkit::servers::peer::find_program;
use testkit::servers::redis::RedisServer;
use testkit::{TempDir, TestCa};

/// The server program, or `None` (the test does not run) off CI; CI has
/// them all.
fn program(name: &str) -> Option<()> {
    if find_program(name).is_some() {
        return Some(());
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI needs {name}"
    );
    eprintln!("!!! {name} not installed: the test did not run");
    None
}

/// A CA, and a server certificate for `localhost` only.
fn server_files(ca: &TestCa) -> ServerTls {
    let issued = ca.issue("server", &["localhost"]);
    ServerTls {
        cert: issued.cert,
        key: issued.key,
        ca: ca.ca_file().to_owned(),
    }
}

#[tokio::test]
async fn redis_over_tls_verifies_the_server_against_the_ca_in_the_url() {
    let Some(()) = program("redis-server") else {
        return;
    };
    let dir = TempDir::new("redis_tls");
    let ca = TestCa::new("redis CA");
    let server = RedisServer::start_with(dir.path().join("redis"), Some(server_files(&ca)))
        .await
        .unwrap();
    let port = server.url().rsplit(':').next().unwrap().to_owned();
    let url = |host: &str, ca: &std::path::Path| {
        RedisUrl::parse(&format!("rediss://{host}:{port}/0?ssl-ca={}", ca.display())).unwrap()
    };

    let kv = RedisKv::connect(&url("localhost", ca.ca_file()), "tls:")
        .await
        .unwrap();
    kv.set("greeting", b"sealed", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        kv.get("greeting").await.unwrap().as_deref(),
        Some(&b"sealed"[..])
    );

    // Another CA's server is not this one.
    let other = TestCa::new("another CA");
    let refused = RedisKv::connect(&url("localhost", other.ca_file()), "tls:").await;
    assert!(refused.is_err(), "a server of another CA was trusted");
    // The certificate names localhost, not 127.0.0.1.
    let refused = RedisKv::connect(&url("127.0.0.1", ca.ca_file()), "tls:").await;
    assert!(
        refused.is_err(),
        "a host the certificate does not name was trusted"
    );
    // Nor is the CA the system trusts.
    let refused = RedisKv::connect(
        &RedisUrl::parse(&format!("rediss://localhost:{port}/0")).unwrap(),
        "tls:",
    )
    .await;
    assert!(refused.is_err(), "a test CA was trusted without ssl-ca");
}

#[test]
fn ssl_ca_needs_rediss() {
    let error = RedisUrl::parse("redis://localhost:6379/0?ssl-ca=/ca.pem").unwrap_err();
    assert!(error.contains("rediss://"), "{error}");
}

#[tokio::test]
async fn mariadb_verify_identity_takes_the_ca_in_the_url_and_refuses_other_servers() {
    let Some(()) = program("mariadbd") else {
        return;
    };
    let dir = TempDir::new("mariadb_tls");
    let ca = TestCa::new("mariadb CA");
    let server = MariadbServer::start_with(dir.path().join("mariadb"), Some(server_files(&ca)))
        .await
        .unwrap();
    let url = server.url();
    let port = url
        .trim_start_matches("mysql://root@localhost:")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let connect = |host: &str, query: String| {
        let url = DatabaseUrl::parse(&format!("mysql://root@{host}:{port}/mysql?{query}")).unwrap();
        async move {
            oms_store::db::connect(
                &url,
                PoolOptions {
                    max_connections: 1,
                    acquire_timeout: Duration::from_secs(5),
                },
            )
            .await
        }
    };
    let verify =
        |ca: &TestCa| format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={}", ca.ca_file().display());

    let cipher = |db: sea_orm::DatabaseConnection| async move {
        db.query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SHOW SESSION STATUS LIKE 'Ssl_cipher'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<String>(1)
        .unwrap()
    };
    let sealed = cipher(connect("localhost", verify(&ca)).await.unwrap()).await;
    assert!(!sealed.is_empty(), "the session is not encrypted");
    // The same query tells a plaintext session apart.
    let plain = cipher(
        connect("localhost", "ssl-mode=DISABLED".to_owned())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(plain, "", "ssl-mode=DISABLED was encrypted");

    let other = TestCa::new("another CA");
    assert!(
        connect("localhost", verify(&other)).await.is_err(),
        "a server of another CA was trusted"
    );
    assert!(
        connect("127.0.0.1", verify(&ca)).await.is_err(),
        "a host the certificate does not name was trusted"
    );
}
