//! TLS of the mesh's listeners and channels, on a real gRPC server (the
//! runtime's own `serve_grpc`) with certificates of a test CA: mutual TLS
//! lets in a client of the CA and refuses the rest (counted), the name
//! dialled is the name verified, and a replaced certificate is served to
//! new connections without a restart while a broken one is refused and
//! the last good kept.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use oms_config::tls::Identity;
use oms_config::{MeshTls, PeerAddr};
use oms_runtime::channel::{Balanced, ChannelOptions, Dial, balanced};
use oms_runtime::tls::Tls;
use testkit::{TestCa, eventually};

const SERVICE: &str = "tls-test";

/// A server of health (and reflection) only, as every service serves it.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.take();
    }
}

async fn serve(tls: Option<Tls>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let info = oms_runtime::server::ServiceInfo {
        name: SERVICE,
        grpc_services: &[],
        descriptors: oms_proto::FILE_DESCRIPTOR_SET,
        polled: &[],
    };
    let verifier = oms_runtime::auth::Verifier::new(
        oms_runtime::auth::VerifierConfig::new("https://issuer.test", None),
        Arc::new(Vec::<oms_runtime::auth::Jwk>::new()),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(oms_runtime::server::serve_grpc(
        info,
        oms_config::GrpcLimits::default(),
        tonic::service::Routes::default(),
        oms_runtime::auth::AuthLayer::new(Arc::new(verifier)),
        oms_runtime::server::Listeners {
            grpc: listener,
            tls,
            metrics: None,
        },
        async {
            let _ = stopped.await;
        },
    ));
    Server {
        addr,
        stop: Some(stop),
    }
}

fn mesh(ca: &TestCa, identity: Option<&testkit::Issued>, mutual: bool) -> MeshTls {
    MeshTls {
        identity: identity.map(|issued| Identity {
            cert: issued.cert.clone(),
            key: issued.key.clone(),
        }),
        client_ca: mutual.then(|| ca.ca_file().to_owned()),
        ca: Some(ca.ca_file().to_owned()),
        reload_interval: Duration::from_secs(1),
    }
}

fn channel(host: &str, port: u16, tls: Option<Tls>) -> Balanced {
    let peer = PeerAddr::parse(&format!("{host}:{port}")).unwrap();
    let dial = Dial {
        resolve: Default::default(),
        tls,
    };
    balanced(&peer, &dial, ChannelOptions::default()).unwrap()
}

/// Health `Check` over `channel`: `Ok` when the server answered.
async fn check(channel: Balanced) -> Result<(), tonic::Status> {
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .map(|_| ())
}

fn handshake_refusals() -> u64 {
    testkit::counter("oms_listener_refusals_total", "limit=\"tls_handshake\"")
}

#[tokio::test]
async fn mutual_tls_serves_clients_of_its_ca_and_refuses_and_counts_every_other() {
    testkit::init_telemetry_for_tests();
    let ca = TestCa::new("mesh CA");
    let server_cert = ca.issue("server", &["localhost", "127.0.0.1"]);
    let client_cert = ca.issue("client", &["order-svc"]);
    let server_tls = Tls::mesh(SERVICE, &mesh(&ca, Some(&server_cert), true))
        .unwrap()
        .unwrap();
    let server = serve(Some(server_tls)).await;
    let port = server.addr.port();
    let client = Tls::mesh(SERVICE, &mesh(&ca, Some(&client_cert), false))
        .unwrap()
        .unwrap();

    // By name and by address: each is in the certificate.
    check(channel("localhost", port, Some(client.clone())))
        .await
        .unwrap();
    check(channel("127.0.0.1", port, Some(client.clone())))
        .await
        .unwrap();
    assert_eq!(handshake_refusals(), 0);

    // A client that trusts the CA but has no certificate of its own.
    let anonymous = Tls::mesh(SERVICE, &mesh(&ca, None, false))
        .unwrap()
        .unwrap();
    let refused = check(channel("localhost", port, Some(anonymous))).await;
    assert!(
        refused.is_err(),
        "a client without a certificate was served"
    );
    eventually(Duration::from_secs(5), "the refusal is counted", || async {
        (handshake_refusals() >= 1).then_some(())
    })
    .await;

    // A client of another CA.
    let other_ca = TestCa::new("another CA");
    let stranger_cert = other_ca.issue("stranger", &["order-svc"]);
    let mut stranger = mesh(&other_ca, Some(&stranger_cert), false);
    // It trusts our server, but its own certificate is the other CA's.
    stranger.ca = Some(ca.ca_file().to_owned());
    let stranger = Tls::mesh(SERVICE, &stranger).unwrap().unwrap();
    let refused = check(channel("localhost", port, Some(stranger))).await;
    assert!(refused.is_err(), "a client of another CA was served");

    // Plaintext.
    let refused = check(channel("127.0.0.1", port, None)).await;
    assert!(refused.is_err(), "a plaintext client was served");
    eventually(
        Duration::from_secs(5),
        "every refusal is counted",
        || async { (handshake_refusals() >= 3).then_some(()) },
    )
    .await;

    // The client still gets in.
    check(channel("localhost", port, Some(client)))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_name_dialled_is_the_name_verified() {
    let ca = TestCa::new("mesh CA");
    // product-svc's certificate, served at 127.0.0.1.
    let server_cert = ca.issue("product-svc", &["product-svc.oms.svc"]);
    let server = serve(Some(
        Tls::mesh(SERVICE, &mesh(&ca, Some(&server_cert), false))
            .unwrap()
            .unwrap(),
    ))
    .await;
    let client = Tls::mesh(SERVICE, &mesh(&ca, None, false))
        .unwrap()
        .unwrap();
    // 127.0.0.1 is where it is, but not a name its certificate is for.
    let status = check(channel("127.0.0.1", server.addr.port(), Some(client)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        format!("{status:?}").contains("NotValidForName"),
        "the error says why: {status:?}"
    );
}

/// The serial of the certificate a new TLS connection to `addr` is shown.
async fn served_serial(addr: SocketAddr, tls: &Tls) -> String {
    let config = tls.client_config().unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    let (_, session) = stream.get_ref();
    assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]), "ALPN picks h2");
    let leaf = &session.peer_certificates().unwrap()[0];
    oms_runtime::tls::serial_of(leaf).unwrap()
}

#[tokio::test]
async fn a_renewed_certificate_reaches_new_connections_and_a_broken_one_keeps_the_last_good() {
    testkit::init_telemetry_for_tests();
    let ca = TestCa::new("mesh CA");
    let first = ca.issue("server", &["localhost"]);
    let server_tls = Tls::mesh(SERVICE, &mesh(&ca, Some(&first), true))
        .unwrap()
        .unwrap();
    let server = serve(Some(server_tls)).await;
    let client_cert = ca.issue("client", &["gateway"]);
    let client = Tls::mesh(SERVICE, &mesh(&ca, Some(&client_cert), false))
        .unwrap()
        .unwrap();
    assert_eq!(served_serial(server.addr, &client).await, first.serial);
    // A channel whose connection is open before the renewal.
    let open = channel("localhost", server.addr.port(), Some(client.clone()));
    check(open.clone()).await.unwrap();

    // cert-manager renews: same files, new certificate.
    let renewed = ca.issue("server", &["localhost"]);
    assert_ne!(renewed.serial, first.serial);
    eventually(
        Duration::from_secs(20),
        "a new connection is shown the renewed certificate",
        || async { (served_serial(server.addr, &client).await == renewed.serial).then_some(()) },
    )
    .await;
    // The connection made before goes on serving calls.
    check(open).await.unwrap();

    // A broken file: refused, counted, and the renewed one still served.
    let failures = || testkit::counter("oms_tls_reload_failures_total", "");
    assert_eq!(failures(), 0);
    std::fs::write(&renewed.cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    eventually(
        Duration::from_secs(20),
        "the broken file is counted",
        || async { (failures() >= 1).then_some(()) },
    )
    .await;
    assert_eq!(served_serial(server.addr, &client).await, renewed.serial);
    check(channel(
        "localhost",
        server.addr.port(),
        Some(client.clone()),
    ))
    .await
    .unwrap();

    // The expiry of what is served is a metric (a year from now).
    let expiry = oms_telemetry::metrics::render()
        .lines()
        .find(|line| {
            line.starts_with("oms_tls_certificate_expiry_timestamp_seconds{")
                && line.contains("certificate=\"mesh\"")
        })
        .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let days = (expiry - now) / 86_400.0;
    assert!((364.0..=366.0).contains(&days), "expires in {days} days");
}
