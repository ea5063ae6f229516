//! Backends that fail below gRPC (unreachable, or answering HTTP without a
//! `grpc-status`) get 502/503 from the gateway: never 429, which would
//! tell the client to slow down, and never 500, which would blame us.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use axum::http::StatusCode;
use oms_config::Env;
use testkit::http::send;
use testkit::spawn;

/// An HTTP/2 server that answers every request with `status`, `body` and
/// no gRPC status: what a misconfigured proxy or a header-size refusal
/// looks like.
async fn answering(status: StatusCode, body: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || async move { (status, body) });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_below_grpc_are_502_or_503_never_429() {
    oms_telemetry::init_for_tests();
    let closed = testkit::ClosedPort::hold();
    let env = Env::from_pairs([
        ("USER_SVC_ADDR", closed.addr().to_string()),
        (
            "PRODUCT_SVC_ADDR",
            answering(StatusCode::TOO_MANY_REQUESTS, "")
                .await
                .to_string(),
        ),
        (
            "ORDER_SVC_ADDR",
            answering(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers too large",
            )
            .await
            .to_string(),
        ),
    ]);
    let config = gateway::Config::from_env(&env).unwrap();
    let gateway = spawn::<gateway::App>(config).await;
    let id = "0190f3a4-0000-7000-8000-000000000000";

    let cases = [
        // tonic reads a bare 429 as UNAVAILABLE: the backend is overloaded
        // or misrouted, not this client.
        ("GET", format!("/v1/products/{id}"), None, 503),
        // A 431 with a body tonic cannot read as gRPC (INTERNAL to tonic):
        // a bad answer from upstream, not our bug.
        (
            "GET",
            format!("/v1/orders/{id}"),
            Some(("authorization", "Bearer x")),
            502,
        ),
        // Connection refused.
        ("POST", "/v1/auth/login".to_owned(), None, 503),
    ];
    for (method, path, header, expected) in cases {
        let headers: Vec<(&str, &str)> = header.into_iter().collect();
        let body = (method == "POST").then_some(r#"{"email":"a@example.com","password":"p"}"#);
        let reply = send(gateway.addr, method, &path, &headers, body).await;
        assert_eq!(reply.status, expected, "{method} {path}: {}", reply.text);
        assert_eq!(
            reply.json["error"]["status"], "UNAVAILABLE",
            "{}",
            reply.text
        );
        assert_eq!(reply.json["error"]["code"], expected);
    }
}
