//! The gateway in front of the real mesh: JSON routes from the proto
//! annotations, errors in the AIP-193 form, headers forwarded.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use oms_config::Env;
use serde_json::json;
use testkit::http::send;
use testkit::unique_name;
use testkit::users::{ADMIN_EMAIL, ADMIN_PASSWORD};

async fn start() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    start_with(&[]).await
}

async fn start_with(extra: &[(&str, &str)]) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let data_dir = std::env::temp_dir().join(unique_name("oms_gw"));
    let mut pairs: Vec<(String, String)> = [
        ("USER_SVC_ADDR", "127.0.0.1:0".to_owned()),
        ("PRODUCT_SVC_ADDR", "127.0.0.1:0".to_owned()),
        ("ORDER_SVC_ADDR", "127.0.0.1:0".to_owned()),
        ("GATEWAY_ADDR", "127.0.0.1:0".to_owned()),
        ("OMS_DATA_DIR", data_dir.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    // The test admin and a reporting client (oms adds order-svc's own).
    pairs.extend(testkit::users::accounts_env(&[
        testkit::clients::ServiceClient::new("reporting", "reporting secret", &["products:read"]),
    ]));
    pairs.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let env = Env::from_pairs(pairs);
    let mesh = oms::Mesh::build(&env).await.unwrap();
    let addr = mesh.addrs().gateway;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(mesh.run_until_stopped(async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

async fn login(gw: SocketAddr, email: &str, password: &str) -> String {
    let reply = send(
        gw,
        "POST",
        "/v1/auth/login",
        &[],
        Some(&json!({"email": email, "password": password}).to_string()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json["accessToken"].as_str().unwrap().to_owned()
}

/// What an order through the gateway needs: a product with `stock` units,
/// created by the admin, and the access token of a customer registered as
/// `email`. Returns (product id, token).
async fn product_and_customer(
    gw: SocketAddr,
    sku: &str,
    stock: u32,
    email: &str,
) -> (String, String) {
    let admin = format!("Bearer {}", login(gw, ADMIN_EMAIL, ADMIN_PASSWORD).await);
    let body = json!({"sku": sku, "name": format!("{sku} mug"),
        "price": {"currencyCode": "USD", "amountMinor": "500"}, "stockOnHand": stock.to_string()});
    let created = send(
        gw,
        "POST",
        "/v1/products",
        &[("authorization", &admin)],
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.json);
    let product = created.json["product"]["id"].as_str().unwrap().to_owned();
    let password = format!("{email} password");
    let registered = send(
        gw,
        "POST",
        "/v1/auth/register",
        &[],
        Some(&json!({"email": email, "password": password, "displayName": "Customer"}).to_string()),
    )
    .await;
    assert_eq!(registered.status, 200, "{}", registered.json);
    (product, login(gw, email, &password).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_is_served_as_json_from_the_annotations() {
    let (gw, _stop) = start().await;
    let registered = send(
        gw,
        "POST",
        "/v1/auth/register",
        &[],
        Some(
            r#"{"email":"ada@example.com","password":"correct horse battery","displayName":"Ada"}"#,
        ),
    )
    .await;
    assert_eq!(registered.status, 200, "{}", registered.json);
    assert_eq!(registered.json["user"]["email"], "ada@example.com");
    assert_eq!(
        registered.json["user"]["role"], "ROLE_CUSTOMER",
        "enums by name"
    );

    let ada = login(gw, "ada@example.com", "correct horse battery").await;
    let bearer = format!("Bearer {ada}");
    let me = send(
        gw,
        "GET",
        "/v1/users/me",
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(
        (me.status, me.json["user"]["displayName"].as_str()),
        (200, Some("Ada")),
        "literal /me beats /{{user_id}}"
    );

    let admin = format!("Bearer {}", login(gw, ADMIN_EMAIL, ADMIN_PASSWORD).await);
    let created = send(
        gw,
        "POST",
        "/v1/products",
        &[("authorization", &admin)],
        Some(r#"{"sku":"MUG-1","name":"Red mug","price":{"currencyCode":"USD","amountMinor":"1250"},"stockOnHand":"10"}"#),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.json);
    let id = created.json["product"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.json["product"]["stockOnHand"], "10",
        "int64 as a string"
    );

    let listed = send(
        gw,
        "GET",
        "/v1/products?query=mug&pageSize=1&include_archived=false",
        &[],
        None,
    )
    .await;
    assert_eq!(
        listed.json["products"].as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.json
    );

    let patched = send(
        gw,
        "PATCH",
        &format!("/v1/products/{id}?updateMask=name,description"),
        &[("authorization", &admin)],
        Some(r#"{"name":"Blue mug","description":"now blue"}"#),
    )
    .await;
    assert_eq!(
        (patched.status, patched.json["product"]["name"].as_str()),
        (200, Some("Blue mug")),
        "{}",
        patched.json
    );

    let adjusted = send(
        gw,
        "POST",
        &format!("/v1/products/{id}:adjustStock"),
        &[("authorization", &admin)],
        Some(r#"{"delta":5,"reason":"delivery"}"#),
    )
    .await;
    assert_eq!(
        (
            adjusted.status,
            adjusted.json["product"]["stockOnHand"].as_str()
        ),
        (200, Some("15")),
        "{}",
        adjusted.json
    );

    let order_body = json!({"lines": [{"productId": id, "quantity": 2}]}).to_string();
    let headers = [
        ("authorization", bearer.as_str()),
        ("idempotency-key", "checkout-42"),
    ];
    let ordered = send(gw, "POST", "/v1/orders", &headers, Some(&order_body)).await;
    assert_eq!(
        (ordered.status, ordered.json["order"]["status"].as_str()),
        (200, Some("ORDER_STATUS_CONFIRMED")),
        "{}",
        ordered.json
    );
    let again = send(gw, "POST", "/v1/orders", &headers, Some(&order_body)).await;
    assert_eq!(
        again.json["order"]["id"], ordered.json["order"]["id"],
        "Idempotency-Key fills request_id"
    );
    // The same key with another body: 422, as the IETF Idempotency-Key
    // draft says.
    let other_body = json!({"lines": [{"productId": id, "quantity": 3}]}).to_string();
    let reused = send(gw, "POST", "/v1/orders", &headers, Some(&other_body)).await;
    assert_eq!(
        (reused.status, reused.reason()),
        (422, "IDEMPOTENCY_KEY_REUSED"),
        "{}",
        reused.json
    );

    // A body that is not JSON is refused before it is read: a browser's
    // cross-site form or text POST never reaches a service.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let refused = send(
            gw,
            "POST",
            "/v1/orders",
            &[
                ("authorization", bearer.as_str()),
                ("content-type", content_type),
            ],
            Some(&order_body),
        )
        .await;
        assert_eq!(refused.status, 415, "{content_type}: {}", refused.json);
        assert_eq!(refused.json["error"]["code"], 415);
    }
    let charset = send(
        gw,
        "POST",
        "/v1/orders",
        &[
            ("authorization", bearer.as_str()),
            ("content-type", "application/json; charset=utf-8"),
            ("idempotency-key", "checkout-42"),
        ],
        Some(&order_body),
    )
    .await;
    assert_eq!(charset.status, 200, "JSON with a charset: {}", charset.json);

    let jwks = send(gw, "GET", "/.well-known/jwks.json", &[], None).await;
    assert_eq!(jwks.json["keys"][0]["kty"], "OKP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_use_grpc_gateway_statuses_and_the_aip_193_body() {
    let (gw, _stop) = start().await;
    let anonymous = send(gw, "GET", "/v1/users/me", &[], None).await;
    assert_eq!(
        (anonymous.status, anonymous.json["error"]["status"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    assert_eq!(anonymous.json["error"]["code"], 401);

    let invalid = send(
        gw,
        "POST",
        "/v1/auth/register",
        &[],
        Some(r#"{"email":"x","password":"short","displayName":""}"#),
    )
    .await;
    assert_eq!(invalid.status, 400);
    let violations = invalid.json["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest")
        .unwrap()["fieldViolations"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(violations, 3);

    let unknown_field = send(
        gw,
        "POST",
        "/v1/auth/login",
        &[],
        Some(r#"{"email":"a@b.co","pasword":"x"}"#),
    )
    .await;
    assert_eq!(unknown_field.status, 400, "{}", unknown_field.json);
    assert!(
        unknown_field.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pasword")
    );
    let malformed = send(gw, "POST", "/v1/auth/login", &[], Some("{not json")).await;
    assert_eq!(
        (malformed.status, malformed.json["error"]["status"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
    let wrong_type = send(gw, "POST", "/v1/auth/login", &[], Some(r#"{"email":42}"#)).await;
    assert_eq!(wrong_type.status, 400);
    // Over 1 MiB: refused before the body is read (tests/limits.rs streams
    // bodies and reads memory).
    assert_eq!(
        testkit::http::send_declared(
            gw,
            "POST",
            "/v1/auth/login",
            "application/json",
            1024 * 1024 + 10
        )
        .await,
        413
    );
    // Over it while reading: 413 too, with AIP-193's status for it.
    let over = vec![b' '; 1024 * 1024 + 10];
    let refused = testkit::http::send_bytes(
        gw,
        "POST",
        "/v1/auth/login",
        &[("content-type", "application/json")],
        &over,
    )
    .await;
    assert_eq!(refused.status, 413, "{}", refused.text);
    assert!(
        refused.text.contains(r#""status":"RESOURCE_EXHAUSTED""#),
        "{}",
        refused.text
    );

    let wrong_method = send(gw, "DELETE", "/v1/users/me", &[], None).await;
    assert_eq!(
        (wrong_method.status, wrong_method.header("allow")),
        (405, Some("GET"))
    );
    let nowhere = send(gw, "GET", "/v2/nothing", &[], None).await;
    assert_eq!(
        (nowhere.status, nowhere.json["error"]["status"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let bad_query = send(gw, "GET", "/v1/products?pageSize=lots", &[], None).await;
    assert_eq!(bad_query.status, 400);
    let missing = send(
        gw,
        "GET",
        &format!("/v1/products/{}", uuid::Uuid::now_v7()),
        &[],
        None,
    )
    .await;
    assert_eq!(
        (missing.status, missing.reason()),
        (404, "PRODUCT_NOT_FOUND")
    );

    let echoed = send(
        gw,
        "GET",
        "/v1/products",
        &[("x-request-id", "trace-me-1")],
        None,
    )
    .await;
    assert_eq!(echoed.header("x-request-id"), Some("trace-me-1"));
    let generated = send(gw, "GET", "/v1/products", &[], None).await;
    assert!(
        generated
            .header("x-request-id")
            .is_some_and(|v| uuid::Uuid::parse_str(v).is_ok())
    );

    // A 404 names no path back; a deadline that passed is 504.
    let missing = send(gw, "GET", "/no/such/echo-me-not", &[], None).await;
    assert_eq!(missing.status, 404);
    assert!(!missing.text.contains("echo-me-not"), "{}", missing.text);
    let late = send(gw, "GET", "/v1/products", &[("grpc-timeout", "1n")], None).await;
    assert_eq!(late.status, 504, "{}", late.text);
    assert!(
        late.text.contains(r#""status":"DEADLINE_EXCEEDED""#),
        "{}",
        late.text
    );

    // Login throttling surfaces as 429 with Retry-After.
    for _ in 0..5 {
        send(
            gw,
            "POST",
            "/v1/auth/login",
            &[],
            Some(r#"{"email":"nobody@example.com","password":"wrong password"}"#),
        )
        .await;
    }
    let throttled = send(
        gw,
        "POST",
        "/v1/auth/login",
        &[],
        Some(r#"{"email":"nobody@example.com","password":"wrong password"}"#),
    )
    .await;
    assert_eq!(throttled.status, 429, "{}", throttled.json);
    assert!(
        throttled
            .header("retry-after")
            .is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n > 0))
    );
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth2_token_endpoint_speaks_rfc_6749() {
    use base64::Engine as _;
    let (gw, _stop) = start().await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("reporting:reporting%20secret")
    );
    let granted = send(
        gw,
        "POST",
        "/oauth2/token",
        &[FORM, ("authorization", &basic)],
        Some("grant_type=client_credentials"),
    )
    .await;
    assert_eq!(granted.status, 200, "{}", granted.json);
    assert_eq!(
        (
            granted.json["token_type"].as_str(),
            granted.json["scope"].as_str()
        ),
        (Some("Bearer"), Some("products:read"))
    );
    assert!(
        granted.json["expires_in"]
            .as_i64()
            .is_some_and(|s| s > 0 && s <= 300)
    );
    assert_eq!(granted.header("cache-control"), Some("no-store"));
    assert!(
        granted.json.get("refresh_token").is_none(),
        "no refresh token for client credentials"
    );

    let in_form = send(
        gw,
        "POST",
        "/oauth2/token",
        &[FORM],
        Some("grant_type=client_credentials&client_id=reporting&client_secret=reporting+secret&scope=products%3Aread"),
    )
    .await;
    assert_eq!(in_form.status, 200, "{}", in_form.json);

    let wrong = send(
        gw,
        "POST",
        "/oauth2/token",
        &[FORM],
        Some("grant_type=client_credentials&client_id=reporting&client_secret=nope"),
    )
    .await;
    assert_eq!(
        (wrong.status, wrong.json["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(
        wrong
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic"))
    );
    let scope = send(
        gw,
        "POST",
        "/oauth2/token",
        &[FORM, ("authorization", &basic)],
        Some("grant_type=client_credentials&scope=inventory:write"),
    )
    .await;
    assert_eq!(
        (scope.status, scope.json["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let password = send(
        gw,
        "POST",
        "/oauth2/token",
        &[FORM],
        Some("grant_type=password&username=a&password=b"),
    )
    .await;
    assert_eq!(
        (password.status, password.json["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let no_grant = send(gw, "POST", "/oauth2/token", &[FORM], Some("client_id=x")).await;
    assert_eq!(no_grant.json["error"], "invalid_request");
    let json_body = send(
        gw,
        "POST",
        "/oauth2/token",
        &[],
        Some(r#"{"grant_type":"client_credentials"}"#),
    )
    .await;
    assert_eq!(
        (json_body.status, json_body.json["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // The refresh_token grant rotates like AuthService/RefreshToken.
    send(
        gw,
        "POST",
        "/v1/auth/register",
        &[],
        Some(r#"{"email":"rt@example.com","password":"refresh me please","displayName":"R"}"#),
    )
    .await;
    let login = send(
        gw,
        "POST",
        "/v1/auth/login",
        &[],
        Some(r#"{"email":"rt@example.com","password":"refresh me please"}"#),
    )
    .await;
    let refresh = login.json["refreshToken"].as_str().unwrap().to_owned();
    let rotated = send(
        gw,
        "POST",
        "/oauth2/token",
        &[FORM],
        Some(&format!("grant_type=refresh_token&refresh_token={refresh}")),
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.json);
    assert_ne!(
        rotated.json["refresh_token"].as_str(),
        Some(refresh.as_str())
    );
    let reused = send(
        gw,
        "POST",
        "/oauth2/token",
        &[FORM],
        Some(&format!("grant_type=refresh_token&refresh_token={refresh}")),
    )
    .await;
    assert_eq!(
        (reused.status, reused.json["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_exactly_the_served_routes_and_who_may_call_them() {
    let (gw, _stop) = start().await;
    let doc = send(gw, "GET", "/openapi.json", &[], None).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.json["openapi"], "3.0.3");
    let paths = doc.json["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, methods) in paths {
        for (method, operation) in methods.as_object().unwrap() {
            operations += 1;
            // Fill every path variable with a well-formed ID.
            let concrete: String = path
                .split('/')
                .map(|segment| match segment.find('{') {
                    Some(start) => {
                        let end = segment.find('}').unwrap();
                        format!(
                            "{}{}{}",
                            &segment[..start],
                            uuid::Uuid::now_v7(),
                            &segment[end + 1..]
                        )
                    }
                    None => segment.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("/");
            let verb = method.to_uppercase();
            let body = (verb == "POST" || verb == "PATCH").then_some("{}");
            let reply = send(gw, &verb, &concrete, &[], body).await;
            let message = reply.json["error"]["message"].as_str().unwrap_or_default();
            assert!(
                !message.starts_with("no route") && reply.status != 405,
                "{verb} {path} is documented but not served: {}",
                reply.json
            );
            let secured = operation.get("security").is_some();
            assert_eq!(
                reply.status == 401,
                secured,
                "{verb} {path}: documented as {}, answered {} anonymously",
                if secured { "needing a token" } else { "public" },
                reply.status
            );
            let responses = &operation["responses"];
            let content = if responses["200"].is_object() {
                &responses["200"]["content"]
            } else {
                &responses["201"]["content"]
            };
            assert!(
                content["application/json"]["schema"].is_object()
                    || content["text/event-stream"]["schema"].is_object()
                    || content["image/png"]["schema"]["format"] == "binary",
                "{verb} {path}: {responses}"
            );
        }
    }
    // Every annotated RPC: 5 of AuthService (all but IssueServiceToken and
    // ListTokenRevocations, which are gRPC only), 7 of UserService, 11 of
    // ProductService and its 3 raw-body image routes (upload, image,
    // thumbnail), 2 of QuoteService, 6 of OrderService.
    assert_eq!(operations, 5 + 7 + 11 + 3 + 2 + 6);
    let watch = &doc.json["paths"]["/v1/orders/{order_id}:watch"]["get"]["responses"]["200"];
    assert!(
        watch["content"]["text/event-stream"]["schema"].is_object(),
        "WatchOrder is documented as Server-Sent Events: {watch}"
    );
    let product = &doc.json["components"]["schemas"]["oms.product.v1.Product"]["properties"];
    assert_eq!(
        product["stockOnHand"]["type"], "string",
        "int64 as a string"
    );
    assert!(
        product["sku"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("unique")),
        "proto comments become descriptions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_only_configured_origins() {
    let (gw, _stop) =
        start_with(&[("GATEWAY_CORS_ALLOWED_ORIGINS", "https://shop.example.com")]).await;
    let preflight = [
        ("origin", "https://shop.example.com"),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "authorization,content-type",
        ),
    ];
    let allowed = send(gw, "OPTIONS", "/v1/orders", &preflight, None).await;
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://shop.example.com")
    );
    let other = send(
        gw,
        "OPTIONS",
        "/v1/orders",
        &[("origin", "https://evil.example"), preflight[1]],
        None,
    )
    .await;
    assert_eq!(other.header("access-control-allow-origin"), None);
    let simple = send(
        gw,
        "GET",
        "/v1/products",
        &[("origin", "https://shop.example.com")],
        None,
    )
    .await;
    assert_eq!(
        simple.header("access-control-allow-origin"),
        Some("https://shop.example.com")
    );

    // Off by default: no CORS headers at all.
    let (plain, _stop2) = start().await;
    let none = send(
        plain,
        "GET",
        "/v1/products",
        &[("origin", "https://shop.example.com")],
        None,
    )
    .await;
    assert_eq!(none.header("access-control-allow-origin"), None);
}

/// The value of the sample `name` whose labels include all of `labels`,
/// from a Prometheus text exposition.
fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(series, _)| {
            series
                .strip_prefix(name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('{'))
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|(_, value)| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_call_by_route_rpc_and_code() {
    let (gw, _stop) = start().await;
    let password = ADMIN_PASSWORD;
    let admin = login(gw, ADMIN_EMAIL, password).await;
    let before = send(gw, "GET", "/metrics", &[], None).await.text;

    let missing = format!("/v1/products/{}", uuid::Uuid::now_v7());
    assert_eq!(send(gw, "GET", &missing, &[], None).await.status, 404);
    let forged = send(
        gw,
        "GET",
        "/v1/users/me",
        &[("authorization", "Bearer not.a.token")],
        None,
    )
    .await;
    assert_eq!(forged.status, 401);
    assert_eq!(
        send(gw, "GET", "/no/such/route", &[], None).await.status,
        404
    );
    // The gateway's own routes are labelled by axum's match.
    assert_eq!(
        send(gw, "GET", "/openapi.json", &[], None).await.status,
        200
    );
    let me = send(
        gw,
        "GET",
        "/v1/users/me",
        &[("authorization", &format!("Bearer {admin}"))],
        None,
    )
    .await;
    assert_eq!(me.status, 200);

    let metrics = send(gw, "GET", "/metrics", &[], None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        metrics.headers
    );
    let after = metrics.text;
    let grew = |name: &str, labels: &[(&str, &str)]| {
        let was = sample(&before, name, labels).unwrap_or(0.0);
        let now = sample(&after, name, labels).unwrap_or(0.0);
        assert!(
            now > was,
            "{name}{labels:?} did not grow: {was} -> {now}\n{after}"
        );
    };
    let rpc = |service, grpc_service, method, code| {
        [
            ("service", service),
            ("grpc_service", grpc_service),
            ("grpc_method", method),
            ("grpc_code", code),
        ]
    };
    grew(
        "grpc_server_handled_total",
        &rpc(
            "product-svc",
            "oms.product.v1.ProductService",
            "GetProduct",
            "NOT_FOUND",
        ),
    );
    // Refused by the auth layer before any handler: still counted.
    grew(
        "grpc_server_handled_total",
        &rpc(
            "user-svc",
            "oms.user.v1.UserService",
            "GetCurrentUser",
            "UNAUTHENTICATED",
        ),
    );
    grew(
        "grpc_server_handled_total",
        &rpc(
            "user-svc",
            "oms.user.v1.UserService",
            "GetCurrentUser",
            "OK",
        ),
    );
    grew(
        "grpc_server_handling_seconds_count",
        &[("service", "user-svc"), ("grpc_method", "GetCurrentUser")],
    );
    assert!(
        sample(
            &after,
            "grpc_server_handling_seconds_bucket",
            &[("grpc_method", "GetCurrentUser"), ("le", "+Inf")]
        )
        .is_some(),
        "latency is a histogram"
    );
    assert_eq!(
        sample(
            &after,
            "grpc_server_in_flight_requests",
            &[("service", "user-svc"), ("grpc_method", "GetCurrentUser")]
        ),
        Some(0.0),
        "every call that started has ended"
    );
    grew(
        "http_server_requests_total",
        &[
            ("route", "/v1/products/{product_id}"),
            ("method", "GET"),
            ("status", "404"),
        ],
    );
    grew(
        "http_server_requests_total",
        &[("route", "unmatched"), ("method", "GET"), ("status", "404")],
    );
    grew(
        "http_server_requests_total",
        &[
            ("route", "/openapi.json"),
            ("method", "GET"),
            ("status", "200"),
        ],
    );
    assert!(
        !after.contains("/no/such/route"),
        "raw paths never become labels"
    );
    for service in ["user-svc", "product-svc", "order-svc"] {
        assert_eq!(
            sample(&after, "db_pool_max_connections", &[("service", service)]),
            Some(1.0),
            "{service}: SQLite runs one connection"
        );
    }
    assert!(!after.contains(password) && !after.contains(&admin));
}

/// One span as an OTLP collector receives it.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    service: String,
    db_system: Option<String>,
}

/// One log record as an OTLP collector receives it.
#[derive(Debug, Clone)]
struct ReceivedLog {
    body: String,
    severity: String,
    trace_id: String,
    span_id: String,
    service_name: String,
    attributes: std::collections::BTreeMap<String, String>,
}

/// An OTLP/gRPC receiver of traces and logs on 127.0.0.1:0 that keeps what
/// it gets.
#[derive(Default, Clone)]
struct Collector {
    spans: std::sync::Arc<std::sync::Mutex<Vec<ReceivedSpan>>>,
    logs: std::sync::Arc<std::sync::Mutex<Vec<ReceivedLog>>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    match value?.value.as_ref()? {
        Any::StringValue(s) => Some(s.clone()),
        Any::IntValue(i) => Some(i.to_string()),
        Any::DoubleValue(d) => Some(d.to_string()),
        Any::BoolValue(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Starts the collector and makes this test process export to it
/// (nextest runs each test in its own process: this subscriber is the one).
async fn start_collector() -> (Collector, oms_telemetry::Telemetry) {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::LogsServiceServer;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .add_service(LogsServiceServer::new(collector.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let telemetry = oms_telemetry::init(&oms_telemetry::TelemetryConfig {
        log_format: oms_config::LogFormat::Human,
        otlp_endpoint: Some(format!("http://{collector_addr}")),
        service_name: "oms-test".to_owned(),
    })
    .unwrap();
    (collector, telemetry)
}

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for Collector
{
    async fn export(
        &self,
        request: tonic::Request<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        let mut received = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let attribute = |key: &str| {
                        text(
                            span.attributes
                                .iter()
                                .find(|kv| kv.key == key)
                                .and_then(|kv| kv.value.as_ref()),
                        )
                    };
                    received.push(ReceivedSpan {
                        name: span.name.clone(),
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        service: attribute("oms.service").unwrap_or_default(),
                        db_system: attribute("db.system"),
                    });
                }
            }
        }
        Ok(tonic::Response::new(Default::default()))
    }
}

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::LogsService
    for Collector
{
    async fn export(
        &self,
        request: tonic::Request<
            opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest,
        >,
    ) -> Result<
        tonic::Response<opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse>,
        tonic::Status,
    > {
        let mut received = self.logs.lock().unwrap();
        for resource in request.into_inner().resource_logs {
            let service_name = resource
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| text(kv.value.as_ref()))
                .unwrap_or_default();
            for scope in resource.scope_logs {
                for record in scope.log_records {
                    received.push(ReceivedLog {
                        body: text(record.body.as_ref()).unwrap_or_default(),
                        severity: record.severity_text.clone(),
                        trace_id: hex(&record.trace_id),
                        span_id: hex(&record.span_id),
                        service_name: service_name.clone(),
                        attributes: record
                            .attributes
                            .iter()
                            .filter_map(|kv| Some((kv.key.clone(), text(kv.value.as_ref())?)))
                            .collect(),
                    });
                }
            }
        }
        Ok(tonic::Response::new(Default::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_through_the_gateway_is_one_trace_across_every_service() {
    let (collector, telemetry) = start_collector().await;

    let (gw, _stop) = start().await;
    let (product, token) = product_and_customer(gw, "TRACE-1", 3, "trace@example.com").await;
    let customer = format!("Bearer {token}");

    // The client's own trace: everything this order causes joins it.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{client_span}-01");
    let order = send(
        gw,
        "POST",
        "/v1/orders",
        &[("authorization", &customer), ("traceparent", &traceparent)],
        Some(
            &json!({"lines": [{"productId": product, "quantity": 1}], "requestId": "traced-1"})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(
        order.json["order"]["status"], "ORDER_STATUS_CONFIRMED",
        "{}",
        order.json
    );

    let spans = testkit::eventually(
        std::time::Duration::from_secs(20),
        "the order's spans from all four services",
        || {
            let collector = collector.clone();
            let telemetry = &telemetry;
            async move {
                telemetry.flush().await;
                let spans: Vec<ReceivedSpan> = collector
                    .spans
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|s| s.trace_id == trace_id)
                    .cloned()
                    .collect();
                let services: std::collections::BTreeSet<&str> =
                    spans.iter().map(|s| s.service.as_str()).collect();
                ["gateway", "order-svc", "product-svc", "user-svc"]
                    .iter()
                    .all(|s| services.contains(s))
                    .then_some(spans)
            }
        },
    )
    .await;

    let find = |service: &str, name: &str| {
        spans
            .iter()
            .find(|s| s.service == service && s.name.ends_with(name))
            .unwrap_or_else(|| panic!("no {service} span {name} in {spans:#?}"))
    };
    let http = find("gateway", "/v1/orders");
    assert_eq!(
        http.parent_span_id, client_span,
        "the gateway continues the client's span"
    );
    let create = find("order-svc", "OrderService/CreateOrder");
    assert_eq!(
        create.parent_span_id, http.span_id,
        "order-svc under the gateway"
    );
    // The saga takes its stock in one ReserveStock (reserved and committed
    // in product-svc's one transaction).
    let take = find("product-svc", "InventoryService/ReserveStock");
    assert_eq!(
        take.parent_span_id, create.span_id,
        "ReserveStock under CreateOrder"
    );
    assert!(
        spans
            .iter()
            .any(|s| s.service == "user-svc" && s.parent_span_id == create.span_id),
        "user-svc (service token, keys) under CreateOrder: {spans:#?}"
    );
    // Database queries are spans too, inside each service's call.
    let ids: std::collections::HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let db_spans: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.db_system.is_some()).collect();
    assert!(
        db_spans.len() >= 2
            && db_spans
                .iter()
                .all(|s| ids.contains(s.parent_span_id.as_str())),
        "database spans inside the trace: {db_spans:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_orders_log_records_reach_the_collector_with_its_trace_id() {
    let (collector, telemetry) = start_collector().await;
    let (gw, _stop) = start().await;
    let (product, token) = product_and_customer(gw, "LOGS-1", 1, "logs@example.com").await;
    let customer = format!("Bearer {token}");

    // Five of a product with one in stock: product-svc refuses, the order fails.
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let traceparent = format!("00-{trace_id}-b7ad6b7169203331-01");
    let order = send(
        gw,
        "POST",
        "/v1/orders",
        &[("authorization", &customer), ("traceparent", &traceparent)],
        Some(
            &json!({"lines": [{"productId": product, "quantity": 5}], "requestId": "logs-1"})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(order.status, 400, "{}", order.json);

    let finished = |records: &[ReceivedLog], rpc: &str, code: &str| {
        records.iter().any(|r| {
            r.body == "rpc finished"
                && r.attributes.get("rpc").is_some_and(|v| v.ends_with(rpc))
                && r.attributes.get("code").map(String::as_str) == Some(code)
        })
    };
    let records = testkit::eventually(
        std::time::Duration::from_secs(20),
        "the failed order's log records from gateway, order-svc and product-svc",
        || {
            let collector = collector.clone();
            let telemetry = &telemetry;
            async move {
                telemetry.flush().await;
                let records: Vec<ReceivedLog> = collector
                    .logs
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|r| r.trace_id == trace_id)
                    .cloned()
                    .collect();
                let complete = records.iter().any(|r| r.body == "order failed")
                    && finished(&records, "OrderService/CreateOrder", "FAILED_PRECONDITION")
                    && finished(
                        &records,
                        "InventoryService/ReserveStock",
                        "FAILED_PRECONDITION",
                    )
                    && records.iter().any(|r| {
                        r.body == "request finished"
                            && r.attributes.get("status").map(String::as_str) == Some("400")
                    });
                complete.then_some(records)
            }
        },
    )
    .await;
    let failed = records.iter().find(|r| r.body == "order failed").unwrap();
    assert_eq!(failed.severity, "INFO");
    assert!(failed.attributes.contains_key("order_id"), "{failed:#?}");
    for record in &records {
        assert_eq!(record.service_name, "oms-test");
        assert!(
            record.span_id.len() == 16 && record.span_id != "0000000000000000",
            "each record names the span it was logged in: {record:#?}"
        );
        assert!(
            record.attributes.values().all(|v| !v.contains(&token)),
            "no token in a record: {record:#?}"
        );
    }
    // Records of other requests keep their own traces.
    let all = collector.logs.lock().unwrap().clone();
    assert!(
        all.iter()
            .any(|r| r.body == "rpc finished" && !r.trace_id.is_empty() && r.trace_id != trace_id),
        "the login's records carry their own trace ids"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_with_a_hundred_bad_lines_gets_a_small_400_that_counts_them() {
    let (gw, _stop) = start().await;
    let admin = format!("Bearer {}", login(gw, ADMIN_EMAIL, ADMIN_PASSWORD).await);
    let bad_lines: Vec<_> = (0..100)
        .map(|i| json!({"productId": format!("not-a-uuid-{i}"), "quantity": 0}))
        .collect();
    let duplicates: Vec<_> = (0..101)
        .map(|_| json!({"productId": uuid::Uuid::nil().to_string(), "quantity": 1}))
        .collect();
    for lines in [bad_lines, duplicates] {
        let body = json!({"lines": lines, "requestId": "many-lines"}).to_string();
        let reply = send(
            gw,
            "POST",
            "/v1/orders",
            &[("authorization", &admin)],
            Some(&body),
        )
        .await;
        assert_eq!(reply.status, 400, "{}", reply.text);
        let details = reply.json["error"]["details"].as_array().unwrap();
        let listed = details
            .iter()
            .find(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest")
            .and_then(|d| d["fieldViolations"].as_array())
            .map_or(0, Vec::len);
        assert!((1..=20).contains(&listed), "{listed} violations listed");
        assert!(reply.text.len() < 4096, "{} bytes", reply.text.len());
        assert!(
            lines_over_twenty(details),
            "the rest are counted: {}",
            reply.text
        );
        assert!(
            reply.json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("more"),
            "{}",
            reply.text
        );
    }
}

/// Whether the ErrorInfo counts more violations than the details list.
fn lines_over_twenty(details: &[serde_json::Value]) -> bool {
    details
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo")
        .and_then(|d| d["metadata"]["violations"].as_str())
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| n > 20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taking_rights_away_ends_earlier_tokens_through_the_gateway_within_seconds() {
    let (gw, _stop) = start().await;
    let admin = format!("Bearer {}", login(gw, ADMIN_EMAIL, ADMIN_PASSWORD).await);
    let registered = send(
        gw,
        "POST",
        "/v1/auth/register",
        &[],
        Some(r#"{"email":"cy@example.com","password":"cy's password","displayName":"Cy"}"#),
    )
    .await;
    let cy_id = registered.json["user"]["id"].as_str().unwrap().to_owned();
    let set_role = |role: &'static str| {
        let (admin, path) = (admin.clone(), format!("/v1/users/{cy_id}:setRole"));
        async move {
            send(
                gw,
                "POST",
                &path,
                &[("authorization", &admin)],
                Some(&json!({ "role": role }).to_string()),
            )
            .await
        }
    };
    assert_eq!(set_role("ROLE_ADMIN").await.status, 200);
    let cy_admin = format!(
        "Bearer {}",
        login(gw, "cy@example.com", "cy's password").await
    );
    let create = |token: String, sku: String| async move {
        let body = json!({"sku": sku, "name": "Kettle",
            "price": {"currencyCode": "USD", "amountMinor": "3000"}});
        send(
            gw,
            "POST",
            "/v1/products",
            &[("authorization", &token)],
            Some(&body.to_string()),
        )
        .await
    };
    assert_eq!(
        create(cy_admin.clone(), "KETTLE-0".into()).await.status,
        200
    );

    assert_eq!(set_role("ROLE_CUSTOMER").await.status, 200);
    let mut attempt = 0;
    let refused = testkit::eventually(
        std::time::Duration::from_secs(10),
        "product-svc to refuse the demoted admin's token",
        || {
            attempt += 1;
            let reply = create(cy_admin.clone(), format!("KETTLE-{attempt}"));
            async move {
                let reply = reply.await;
                (reply.status != 200).then_some(reply)
            }
        },
    )
    .await;
    assert_eq!(
        (refused.status, refused.reason()),
        (401, "TOKEN_REVOKED"),
        "{}",
        refused.json
    );

    // The last admin cannot step down; disabling locks an account out.
    let me = send(
        gw,
        "GET",
        "/v1/users/me",
        &[("authorization", &admin)],
        None,
    )
    .await;
    let admin_id = me.json["user"]["id"].as_str().unwrap().to_owned();
    let step_down = send(
        gw,
        "POST",
        &format!("/v1/users/{admin_id}:setRole"),
        &[("authorization", &admin)],
        Some(r#"{"role":"ROLE_CUSTOMER"}"#),
    )
    .await;
    assert_eq!(
        (step_down.status, step_down.reason()),
        (400, "LAST_ADMIN"),
        "{}",
        step_down.json
    );
    let disabled = send(
        gw,
        "POST",
        &format!("/v1/users/{cy_id}:disable"),
        &[("authorization", &admin)],
        Some("{}"),
    )
    .await;
    assert_eq!(
        disabled.json["user"]["state"], "STATE_DISABLED",
        "{}",
        disabled.json
    );
    let locked_out = send(
        gw,
        "POST",
        "/v1/auth/login",
        &[],
        Some(r#"{"email":"cy@example.com","password":"cy's password"}"#),
    )
    .await;
    assert_eq!(
        (locked_out.status, locked_out.reason()),
        (403, "ACCOUNT_DISABLED")
    );
}

/// Reads an HTTP/1.1 chunked body as it arrives, one decoded piece at a
/// time.
struct Chunks {
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
}

impl Chunks {
    async fn fill(&mut self) -> bool {
        use tokio::io::AsyncReadExt as _;
        let mut bytes = [0u8; 4096];
        match tokio::time::timeout(
            std::time::Duration::from_secs(20),
            self.stream.read(&mut bytes),
        )
        .await
        .expect("more of the stream within 20 s")
        .unwrap()
        {
            0 => false,
            n => {
                self.buffer.extend_from_slice(&bytes[..n]);
                true
            }
        }
    }

    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(at) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buffer[..at]).into_owned();
                self.buffer.drain(..at + 2);
                return Some(line);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The head's status line and headers.
    async fn head(&mut self) -> Vec<String> {
        let mut head = Vec::new();
        while let Some(line) = self.line().await {
            if line.is_empty() {
                break;
            }
            head.push(line);
        }
        head
    }

    /// The next chunk's data; `None` at the last chunk.
    async fn chunk(&mut self) -> Option<String> {
        let size = usize::from_str_radix(self.line().await?.trim(), 16).ok()?;
        if size == 0 {
            return None;
        }
        while self.buffer.len() < size + 2 {
            if !self.fill().await {
                return None;
            }
        }
        let data = String::from_utf8_lossy(&self.buffer[..size]).into_owned();
        self.buffer.drain(..size + 2);
        Some(data)
    }

    /// The next Server-Sent Event's `data` (keep-alive comments skipped).
    async fn event(&mut self, pending: &mut String) -> Option<String> {
        loop {
            if let Some(end) = pending.find("\n\n") {
                let event: String = pending.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                    return Some(data.to_owned());
                }
                continue;
            }
            pending.push_str(&self.chunk().await?);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_watched_as_server_sent_events_until_it_is_final() {
    use tokio::io::AsyncWriteExt as _;
    let (gw, _stop) = start().await;
    let (product_id, token) = product_and_customer(gw, "TEA-1", 5, "wes@example.com").await;
    let wes = format!("Bearer {token}");
    let admin = format!("Bearer {}", login(gw, ADMIN_EMAIL, ADMIN_PASSWORD).await);
    let order = send(
        gw,
        "POST",
        "/v1/orders",
        &[("authorization", &wes), ("idempotency-key", "watch-1")],
        Some(&json!({"lines": [{"productId": product_id, "quantity": 1}]}).to_string()),
    )
    .await;
    assert_eq!(order.status, 200, "{}", order.json);
    let order_id = order.json["order"]["id"].as_str().unwrap().to_owned();

    let mut stream = tokio::net::TcpStream::connect(gw).await.unwrap();
    stream
        .write_all(
            format!(
                "GET /v1/orders/{order_id}:watch HTTP/1.1\r\nHost: {gw}\r\nAccept: text/event-stream\r\nAuthorization: {wes}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut body = Chunks {
        stream,
        buffer: Vec::new(),
    };
    let head = body.head().await;
    assert!(head[0].contains(" 200 "), "{head:?}");
    assert!(
        head.iter()
            .any(|h| h.eq_ignore_ascii_case("content-type: text/event-stream")),
        "{head:?}"
    );
    let mut pending = String::new();
    let status = |data: String| -> String {
        let event: serde_json::Value = serde_json::from_str(&data).unwrap();
        event["order"]["status"].as_str().unwrap().to_owned()
    };
    let first = body.event(&mut pending).await.unwrap();
    assert_eq!(status(first), "ORDER_STATUS_CONFIRMED", "as it is now");
    for next in ["ORDER_STATUS_SHIPPED", "ORDER_STATUS_DELIVERED"] {
        let moved = send(
            gw,
            "POST",
            &format!("/v1/orders/{order_id}:updateStatus"),
            &[("authorization", &admin)],
            Some(&json!({ "status": next }).to_string()),
        )
        .await;
        assert_eq!(moved.status, 200, "{}", moved.json);
        assert_eq!(status(body.event(&mut pending).await.unwrap()), next);
    }
    assert_eq!(
        body.event(&mut pending).await,
        None,
        "a final state ends the stream"
    );

    let anonymous = send(
        gw,
        "GET",
        &format!("/v1/orders/{order_id}:watch"),
        &[],
        None,
    )
    .await;
    assert_eq!(anonymous.status, 401);
}

/// A `width` × `height` PNG.
fn png(width: u32, height: u32) -> Vec<u8> {
    let pixels = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 200])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(pixels)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_is_put_as_a_raw_body_and_served_with_an_etag() {
    use testkit::http::send_bytes;
    let (gw, _stop) = start().await;
    let admin = login(gw, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let bearer = format!("Bearer {admin}");
    let created = send(
        gw,
        "POST",
        "/v1/products",
        &[("authorization", &bearer)],
        Some(&json!({"sku": "GW-IMG", "name": "Pictured mug", "price": {"currencyCode": "USD", "amountMinor": "900"}, "stockOnHand": "3"}).to_string()),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.json);
    let product = created.json["product"]["id"].as_str().unwrap().to_owned();
    let images = format!("/v1/products/{product}/images");
    let picture = png(400, 200);

    let anonymous = send_bytes(
        gw,
        "PUT",
        &images,
        &[("content-type", "image/png")],
        &picture,
    )
    .await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    let put = send_bytes(
        gw,
        "PUT",
        &format!("{images}?altText=A%20mug"),
        &[("authorization", &bearer), ("content-type", "image/png")],
        &picture,
    )
    .await;
    assert_eq!(put.status, 201, "{}", put.text);
    let image = &put.json["image"];
    assert_eq!(image["altText"], "A mug");
    assert_eq!(
        image["byteSize"],
        picture.len().to_string(),
        "int64 as a string"
    );
    let sha256 = oms_core::digest::sha256_hex(&picture);
    assert_eq!(image["sha256"], sha256);

    let url = image["url"].as_str().unwrap().to_owned();
    let got = send_bytes(gw, "GET", &url, &[], &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.bytes, picture, "byte for byte");
    assert_eq!(got.header("content-type"), Some("image/png"));
    assert_eq!(
        got.header("content-length"),
        Some(picture.len().to_string().as_str())
    );
    let etag = format!("\"{sha256}\"");
    assert_eq!(got.header("etag"), Some(etag.as_str()));
    assert_eq!(
        got.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    let cached = send_bytes(gw, "GET", &url, &[("if-none-match", &etag)], &[]).await;
    assert_eq!(cached.status, 304);
    assert!(cached.bytes.is_empty());
    let thumbnail_url = image["thumbnailUrl"].as_str().unwrap();
    let thumbnail = send_bytes(gw, "GET", thumbnail_url, &[], &[]).await;
    assert_eq!(thumbnail.status, 200);
    assert_eq!(thumbnail.header("content-type"), Some("image/jpeg"));
    assert_eq!(thumbnail.header("x-content-type-options"), Some("nosniff"));
    // Other methods get the standard error body, not a bare 405.
    let deleted = send_bytes(
        gw,
        "DELETE",
        thumbnail_url,
        &[("authorization", &bearer)],
        &[],
    )
    .await;
    assert_eq!(
        (deleted.status, deleted.header("allow")),
        (405, Some("GET"))
    );
    assert!(
        deleted.text.contains(r#""status":"UNIMPLEMENTED""#),
        "{}",
        deleted.text
    );
    let listed = send(gw, "GET", &images, &[], None).await;
    assert_eq!(listed.json["images"][0]["id"], image["id"]);

    let mut too_big = png(8, 8);
    too_big.resize(6 << 20, 0);
    let refused = send_bytes(
        gw,
        "PUT",
        &images,
        &[("authorization", &bearer), ("content-type", "image/png")],
        &too_big,
    )
    .await;
    assert_eq!(refused.status, 413, "{}", refused.text);
    assert_eq!(refused.reason(), "IMAGE_TOO_LARGE");
    let text = send_bytes(
        gw,
        "PUT",
        &images,
        &[("authorization", &bearer), ("content-type", "image/png")],
        b"plain text pretending to be a picture",
    )
    .await;
    assert_eq!((text.status, text.reason()), (400, "IMAGE_TYPE_MISMATCH"));
    // A PNG signature on bytes that are no PNG: refused without the
    // decoder's own words.
    let mut broken = b"\x89PNG\r\n\x1a\n".to_vec();
    broken.extend_from_slice(b"no chunks follow the signature at all");
    let unreadable = send_bytes(
        gw,
        "PUT",
        &images,
        &[("authorization", &bearer), ("content-type", "image/png")],
        &broken,
    )
    .await;
    assert_eq!(
        (unreadable.status, unreadable.reason()),
        (400, "INVALID_IMAGE")
    );
    assert_eq!(
        unreadable.json["error"]["message"],
        "the bytes are not a readable image of the declared type"
    );
    let listed = send(gw, "GET", &images, &[], None).await;
    assert_eq!(
        listed.json["images"].as_array().unwrap().len(),
        1,
        "nothing refused was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_presigned_urls_an_image_get_redirects_to_the_store() {
    use testkit::http::send_bytes;
    let Some((endpoint, bucket)) = testkit::s3_test_bucket().await else {
        return;
    };
    let blob_url = format!("s3://{bucket}/gw");
    let (gw, _stop) = start_with(&[
        ("OMS_BLOB_URL", &blob_url),
        ("AWS_ENDPOINT_URL", &endpoint),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("OMS_BLOB_PRESIGN", "true"),
    ])
    .await;
    let admin = login(gw, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let bearer = format!("Bearer {admin}");
    let created = send(
        gw,
        "POST",
        "/v1/products",
        &[("authorization", &bearer)],
        Some(&json!({"sku": "GW-SIGNED", "name": "Signed mug", "price": {"currencyCode": "USD", "amountMinor": "900"}, "stockOnHand": "1"}).to_string()),
    )
    .await;
    let product = created.json["product"]["id"].as_str().unwrap().to_owned();
    let put = send_bytes(
        gw,
        "PUT",
        &format!("/v1/products/{product}/images"),
        &[("authorization", &bearer), ("content-type", "image/png")],
        &png(20, 20),
    )
    .await;
    assert_eq!(put.status, 201, "{}", put.text);
    let got = send_bytes(
        gw,
        "GET",
        put.json["image"]["url"].as_str().unwrap(),
        &[],
        &[],
    )
    .await;
    assert_eq!(got.status, 307);
    let location = got.header("location").unwrap();
    assert!(
        location.starts_with(&format!("{endpoint}/{bucket}/gw/products/{product}/"))
            && location.contains("X-Amz-Signature="),
        "{location}"
    );
}
