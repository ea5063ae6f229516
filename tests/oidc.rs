//! The OpenID Provider through the gateway of the one-process `oms`, as a
//! browser and a client speak to it over HTTP: discovery, the sign-in page
//! and its form, codes exchanged with PKCE, ID tokens, UserInfo, refresh,
//! revocation and logout; and every refusal the issue names (wrong or
//! extra redirect URI, missing or plain PKCE, wrong verifier, a code
//! reused, expired or of another client, an `id_token_hint` of another
//! issuer, a forged sign-in form, framing, the password grant). The stock
//! clients (openid-client driving Chromium, authlib) run against the
//! binary in `scripts/smoke`.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oms_config::Env;
use sha2::{Digest as _, Sha256};
use testkit::http::{Reply, send};
use testkit::{eventually, unique_name};

const PARTNER_SECRET: &str = "partner-secret-for-tests";
const PARTNER_REDIRECT: &str = "https://partner.example/cb";

struct Provider {
    gw: SocketAddr,
    issuer: String,
    console_redirect: String,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<Result<(), oms_runtime::StartupError>>,
}

async fn start(extra: &[(&str, &str)]) -> Provider {
    oms_telemetry::init_for_tests();
    let data_dir = std::env::temp_dir().join(unique_name("oms_oidc"));
    let partner = format!(
        r#"[{{"client_id":"partner","type":"confidential","secret_sha256":"{}","redirect_uris":["{PARTNER_REDIRECT}"],"scopes":["openid","email","profile","offline_access"]}}]"#,
        oms_core::digest::sha256_hex(PARTNER_SECRET.as_bytes())
    );
    let mut pairs: Vec<(String, String)> = [
        ("USER_SVC_ADDR", "127.0.0.1:0"),
        ("PRODUCT_SVC_ADDR", "127.0.0.1:0"),
        ("ORDER_SVC_ADDR", "127.0.0.1:0"),
        ("GATEWAY_ADDR", "127.0.0.1:0"),
        ("OMS_OAUTH_CLIENTS", partner.as_str()),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    pairs.push(("OMS_DATA_DIR".to_owned(), data_dir.display().to_string()));
    pairs.extend(testkit::users::accounts_env(&[]));
    let mesh = oms::Mesh::build(&Env::from_pairs(pairs)).await.unwrap();
    let gw = mesh.addrs().gateway;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(mesh.run_until_stopped(async {
        let _ = stopped.await;
    }));
    eventually(Duration::from_secs(20), "/readyz", || async move {
        (send(gw, "GET", "/readyz", &[], None).await.status == 200).then_some(())
    })
    .await;
    Provider {
        gw,
        issuer: format!("http://localhost:{}", gw.port()),
        console_redirect: format!("http://localhost:{}/console/callback", gw.port()),
        stop,
        running,
    }
}

impl Provider {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.running.await.unwrap().unwrap();
    }
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn query(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The parameters of a URL's query.
fn params_of(location: &str) -> HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// A PKCE pair: (verifier, S256 challenge).
fn pkce(seed: &str) -> (String, String) {
    let verifier = format!("{seed}-verifier-{}", "v".repeat(43));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The value of cookie `name` set by `reply`.
fn set_cookie<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .find(|v| v.starts_with(&format!("{name}=")))
}

fn cookie_value(set_cookie: &str) -> &str {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, v)| v)
        .unwrap()
}

/// The value of hidden field `name` in a page.
fn field(page: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// Decoded claims of a JWT (its signature is checked by the stock clients).
fn claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn authorize_path(
    client_id: &str,
    redirect_uri: &str,
    challenge: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", "openid email profile offline_access"),
        ("state", "st-123 &?"),
        ("nonce", "n-456"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        params.retain(|(name, _)| name != k);
        if !v.is_empty() {
            params.push((k, v));
        }
    }
    format!("/oauth2/authorize?{}", query(&params))
}

/// Signs in on the page for `path` and returns the session cookie and the
/// redirect after it.
async fn sign_in(p: &Provider, path: &str, password: &str) -> (Option<String>, Reply) {
    let page = send(p.gw, "GET", path, &[], None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let csrf = cookie_value(set_cookie(&page, "oms_csrf").unwrap()).to_owned();
    let mut form: Vec<(String, String)> = [
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
    ]
    .iter()
    .filter(|name| page.text.contains(&format!(r#"name="{name}""#)))
    .map(|name| {
        (
            (*name).to_owned(),
            field(&page.text, name).replace("&amp;", "&"),
        )
    })
    .collect();
    form.push(("csrf".into(), field(&page.text, "csrf")));
    form.push(("email".into(), testkit::users::ADMIN_EMAIL.into()));
    form.push(("password".into(), password.into()));
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let cookie = format!("oms_csrf={csrf}");
    let reply = send(
        p.gw,
        "POST",
        "/oauth2/login",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &cookie),
        ],
        Some(&body),
    )
    .await;
    let session = set_cookie(&reply, "oms_session").map(|c| cookie_value(c).to_owned());
    (session, reply)
}

/// A code for `client_id` from a signed-in browser.
async fn code_for(
    p: &Provider,
    session: &str,
    client_id: &str,
    redirect: &str,
    challenge: &str,
) -> String {
    let cookie = format!("oms_session={session}");
    let reply = send(
        p.gw,
        "GET",
        &authorize_path(client_id, redirect, challenge, &[]),
        &[("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(reply.status, 302, "{}", reply.text);
    params_of(reply.header("location").unwrap())["code"].clone()
}

async fn token(p: &Provider, form: &[(&str, &str)], basic: Option<&str>) -> Reply {
    let body = query(form);
    let auth = basic.map(|b| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(b)
        )
    });
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth));
    }
    send(p.gw, "POST", "/oauth2/token", &headers, Some(&body)).await
}

async fn exchange(p: &Provider, code: &str, redirect: &str, verifier: &str) -> Reply {
    token(
        p,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "console"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ],
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_and_a_public_client_gets_verified_tokens() {
    sign_in_flow(start(&[]).await).await;
}

/// The same with codes, sessions and refresh tokens in Redis, as every
/// replicated deployment keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_with_the_provider_state_in_redis() {
    let Some(redis) = testkit::backends::require_backend(testkit::backends::REDIS_VAR) else {
        return;
    };
    let prefix = format!("{}:", unique_name("oms_oidc"));
    sign_in_flow(
        start(&[
            ("REDIS_URL", redis.as_str()),
            ("OMS_REDIS_KEY_PREFIX", prefix.as_str()),
        ])
        .await,
    )
    .await;
}

async fn sign_in_flow(p: Provider) {
    // Discovery: OIDC Discovery 1.0 §3's required fields, and S256 only.
    let discovery = send(p.gw, "GET", "/.well-known/openid-configuration", &[], None).await;
    assert_eq!(discovery.status, 200);
    let d = &discovery.json;
    assert_eq!(d["issuer"], p.issuer.as_str());
    for required in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "userinfo_endpoint",
        "end_session_endpoint",
        "revocation_endpoint",
    ] {
        assert!(
            d[required].is_string() || d[required].is_array(),
            "{required} missing: {d}"
        );
    }
    assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        serde_json::json!(["EdDSA"])
    );
    let jwks = send(p.gw, "GET", "/.well-known/jwks.json", &[], None).await;
    assert_eq!(jwks.json["keys"][0]["alg"], "EdDSA");

    // The sign-in page: no script, framing refused, no referrer, a CSRF
    // cookie.
    let (verifier, challenge) = pkce("one");
    let path = authorize_path("console", &p.console_redirect, &challenge, &[]);
    let page = send(p.gw, "GET", &path, &[], None).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("<form") && !page.text.contains("<script"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert!(
        csp.contains("form-action 'self' http://localhost:"),
        "{csp}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let csrf = set_cookie(&page, "oms_csrf").unwrap();
    assert!(
        csrf.contains("HttpOnly") && csrf.contains("SameSite=Strict"),
        "{csrf}"
    );

    // A wrong password: the page again, the same words as an unknown email.
    let (none, wrong) = sign_in(&p, &path, "not the password").await;
    assert!(none.is_none());
    assert_eq!(wrong.status, 401);
    assert!(wrong.text.contains("Wrong email or password."));

    // Signed in: back to the client with a code, state unchanged, iss.
    let (session, back) = sign_in(&p, &path, testkit::users::ADMIN_PASSWORD).await;
    assert_eq!(back.status, 303, "{}", back.text);
    let session = session.unwrap();
    let session_cookie = set_cookie(&back, "oms_session").unwrap();
    assert!(
        session_cookie.contains("HttpOnly")
            && session_cookie.contains("SameSite=Lax")
            && !session_cookie.contains("Secure"),
        "{session_cookie}"
    );
    let location = back.header("location").unwrap();
    assert!(location.starts_with(&p.console_redirect), "{location}");
    let answer = params_of(location);
    assert_eq!(answer["state"], "st-123 &?");
    assert_eq!(answer["iss"], p.issuer);

    // The code, with the verifier: tokens, never cached.
    let tokens = exchange(&p, &answer["code"], &p.console_redirect, &verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    assert_eq!(tokens.header("cache-control"), Some("no-store"));
    let id = claims(tokens.json["id_token"].as_str().unwrap());
    assert_eq!(id["iss"], p.issuer.as_str());
    assert_eq!(id["aud"], "console");
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["email"], testkit::users::ADMIN_EMAIL);
    assert_eq!(id["email_verified"], false);
    assert!(id["auth_time"].as_u64().is_some() && id["name"].is_string());
    let access = tokens.json["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        claims(&access)["scope"],
        "openid email profile offline_access"
    );

    // UserInfo: the same subject; the token works on the API as well.
    let bearer = format!("Bearer {access}");
    let info = send(
        p.gw,
        "GET",
        "/oauth2/userinfo",
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(info.status, 200, "{}", info.text);
    assert_eq!(info.json["sub"], id["sub"]);
    assert_eq!(info.json["email"], testkit::users::ADMIN_EMAIL);
    let me = send(
        p.gw,
        "GET",
        "/v1/users/me",
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(me.status, 200);
    let anonymous = send(p.gw, "GET", "/oauth2/userinfo", &[], None).await;
    assert_eq!(anonymous.status, 401);
    assert!(
        anonymous
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );

    // A second authorization is seamless: the session cookie carries it.
    let (verifier2, challenge2) = pkce("two");
    let code2 = code_for(&p, &session, "console", &p.console_redirect, &challenge2).await;
    let second = exchange(&p, &code2, &p.console_redirect, &verifier2).await;
    assert_eq!(second.status, 200);

    // Refresh: rotated, by its own client only.
    let refresh = tokens.json["refresh_token"].as_str().unwrap().to_owned();
    let refreshed = token(
        &p,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "console"),
        ],
        None,
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(
        claims(refreshed.json["access_token"].as_str().unwrap())["client_id"],
        "console"
    );
    let rotated = refreshed.json["refresh_token"].as_str().unwrap().to_owned();

    // Revocation (RFC 7009): the refresh token dies.
    let revoked = send(
        p.gw,
        "POST",
        "/oauth2/revoke",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(&query(&[("token", &rotated), ("client_id", "console")])),
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let dead = token(
        &p,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rotated),
            ("client_id", "console"),
        ],
        None,
    )
    .await;
    assert_eq!(
        (dead.status, dead.json["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // prompt=login asks for the password again despite the session.
    let cookie = format!("oms_session={session}");
    let again = send(
        p.gw,
        "GET",
        &authorize_path(
            "console",
            &p.console_redirect,
            &challenge,
            &[("prompt", "login")],
        ),
        &[("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(again.status, 200);
    assert!(again.text.contains("<form"));

    // Logout with the ID token as hint: back to the console with state,
    // the cookie cleared, the session over.
    let id_token = tokens.json["id_token"].as_str().unwrap();
    let logout_to = format!("http://localhost:{}/console/", p.gw.port());
    let logout = send(
        p.gw,
        "GET",
        &format!(
            "/oauth2/logout?{}",
            query(&[
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", &logout_to),
                ("state", "bye")
            ])
        ),
        &[("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(logout.status, 302, "{}", logout.text);
    assert_eq!(
        logout.header("location"),
        Some(format!("{logout_to}?state=bye").as_str())
    );
    assert!(
        set_cookie(&logout, "oms_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = send(
        p.gw,
        "GET",
        &authorize_path(
            "console",
            &p.console_redirect,
            &challenge,
            &[("prompt", "none")],
        ),
        &[("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(after.status, 302);
    assert_eq!(
        params_of(after.header("location").unwrap())["error"],
        "login_required"
    );

    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_the_issue_names_refuses() {
    let p = start(&[]).await;
    let (verifier, challenge) = pkce("neg");
    let path = authorize_path("console", &p.console_redirect, &challenge, &[]);
    let (session, _) = sign_in(&p, &path, testkit::users::ADMIN_PASSWORD).await;
    let session = session.unwrap();
    let cookie = format!("oms_session={session}");
    let authorize = |extra: Vec<(&'static str, String)>, redirect: String| {
        let cookie = cookie.clone();
        let challenge = challenge.clone();
        let gw = p.gw;
        async move {
            let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send(
                gw,
                "GET",
                &authorize_path("console", &redirect, &challenge, &extra),
                &[("cookie", &cookie)],
                None,
            )
            .await
        }
    };

    // An unregistered redirect URI, or an unknown client: an error page,
    // never a redirect.
    for wrong in [
        format!("http://localhost:{}/console/callback/../evil", p.gw.port()),
        "https://evil.example/cb".to_owned(),
        format!("{}?extra=1", p.console_redirect),
    ] {
        let reply = authorize(vec![], wrong.clone()).await;
        assert_eq!(reply.status, 400, "{wrong}");
        assert!(reply.header("location").is_none(), "{wrong}");
    }
    let unknown = send(
        p.gw,
        "GET",
        &authorize_path("nobody", &p.console_redirect, &challenge, &[]),
        &[],
        None,
    )
    .await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.header("location").is_none() && unknown.text.contains("Unknown application"));

    // PKCE missing or plain: an error back to the client, no code.
    for extra in [
        vec![
            ("code_challenge", String::new()),
            ("code_challenge_method", String::new()),
        ],
        vec![("code_challenge_method", "plain".to_owned())],
    ] {
        let reply = authorize(extra, p.console_redirect.clone()).await;
        assert_eq!(reply.status, 302);
        let answer = params_of(reply.header("location").unwrap());
        assert_eq!(answer["error"], "invalid_request");
        assert!(!answer.contains_key("code"));
        assert_eq!(answer["state"], "st-123 &?");
    }
    let implicit = authorize(
        vec![("response_type", "token".to_owned())],
        p.console_redirect.clone(),
    )
    .await;
    assert_eq!(
        params_of(implicit.header("location").unwrap())["error"],
        "unsupported_response_type"
    );
    let scope = authorize(
        vec![("scope", "email".to_owned())],
        p.console_redirect.clone(),
    )
    .await;
    assert_eq!(
        params_of(scope.header("location").unwrap())["error"],
        "invalid_scope"
    );
    let no_session = send(
        p.gw,
        "GET",
        &authorize_path(
            "console",
            &p.console_redirect,
            &challenge,
            &[("prompt", "none")],
        ),
        &[],
        None,
    )
    .await;
    assert_eq!(
        params_of(no_session.header("location").unwrap())["error"],
        "login_required"
    );

    // A wrong verifier; then the code is spent.
    let code = code_for(&p, &session, "console", &p.console_redirect, &challenge).await;
    let wrong = exchange(&p, &code, &p.console_redirect, &pkce("other").0).await;
    assert_eq!(
        (wrong.status, wrong.json["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(wrong.header("cache-control"), Some("no-store"));
    // Another redirect URI than the request's.
    let code = code_for(&p, &session, "console", &p.console_redirect, &challenge).await;
    let other_redirect = format!("http://127.0.0.1:{}/console/callback", p.gw.port());
    let moved = exchange(&p, &code, &other_redirect, &verifier).await;
    assert_eq!(moved.json["error"], "invalid_grant");
    // No verifier at all.
    let code = code_for(&p, &session, "console", &p.console_redirect, &challenge).await;
    let bare = token(
        &p,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "console"),
            ("code", &code),
            ("redirect_uri", &p.console_redirect),
        ],
        None,
    )
    .await;
    assert_eq!(bare.json["error"], "invalid_request");

    // A code used twice: refused, and the refresh token it issued dies.
    let code = code_for(&p, &session, "console", &p.console_redirect, &challenge).await;
    let first = exchange(&p, &code, &p.console_redirect, &verifier).await;
    assert_eq!(first.status, 200);
    let replay = exchange(&p, &code, &p.console_redirect, &verifier).await;
    assert_eq!(replay.json["error"], "invalid_grant");
    let refresh = first.json["refresh_token"].as_str().unwrap();
    let revoked = token(
        &p,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", "console"),
        ],
        None,
    )
    .await;
    assert_eq!(revoked.json["error"], "invalid_grant", "{}", revoked.text);

    // A code of another client: the partner, authenticated, cannot spend
    // the console's code, nor refresh the console's token.
    let code = code_for(&p, &session, "console", &p.console_redirect, &challenge).await;
    let basic = format!("partner:{PARTNER_SECRET}");
    let stolen = token(
        &p,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &p.console_redirect),
            ("code_verifier", &verifier),
        ],
        Some(&basic),
    )
    .await;
    assert_eq!(stolen.json["error"], "invalid_grant", "{}", stolen.text);
    let code = code_for(&p, &session, "console", &p.console_redirect, &challenge).await;
    let console_tokens = exchange(&p, &code, &p.console_redirect, &verifier).await;
    let console_refresh = console_tokens.json["refresh_token"].as_str().unwrap();
    let crossed = token(
        &p,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", console_refresh),
        ],
        Some(&basic),
    )
    .await;
    assert_eq!(crossed.json["error"], "invalid_grant");
    // A confidential client with a wrong secret, or as a public one.
    let code = code_for(&p, &session, "partner", PARTNER_REDIRECT, &challenge).await;
    let bad_secret = token(
        &p,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", PARTNER_REDIRECT),
            ("code_verifier", &verifier),
        ],
        Some("partner:wrong"),
    )
    .await;
    assert_eq!(
        (bad_secret.status, bad_secret.json["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let no_secret = token(
        &p,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "partner"),
            ("code", "x"),
            ("redirect_uri", PARTNER_REDIRECT),
            ("code_verifier", &verifier),
        ],
        None,
    )
    .await;
    assert_eq!(no_secret.status, 401);

    // The password grant is off.
    let password = token(
        &p,
        &[
            ("grant_type", "password"),
            ("username", testkit::users::ADMIN_EMAIL),
            ("password", testkit::users::ADMIN_PASSWORD),
            ("client_id", "console"),
        ],
        None,
    )
    .await;
    assert_eq!(
        (password.status, password.json["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );

    // A forged sign-in form: no CSRF cookie, or a token that is not it.
    let form = query(&[
        ("client_id", "console"),
        ("redirect_uri", &p.console_redirect),
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("email", testkit::users::ADMIN_EMAIL),
        ("password", testkit::users::ADMIN_PASSWORD),
        ("csrf", &"a".repeat(43)),
    ]);
    for cookie in ["", &format!("oms_csrf={}", "b".repeat(43))] {
        let forged = send(
            p.gw,
            "POST",
            "/oauth2/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", cookie),
            ],
            Some(&form),
        )
        .await;
        assert_eq!(forged.status, 403, "{cookie}");
        assert!(set_cookie(&forged, "oms_session").is_none());
    }
    let matching = format!("oms_csrf={}", "a".repeat(43));
    let cross_site = send(
        p.gw,
        "POST",
        "/oauth2/login",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &matching),
            ("sec-fetch-site", "cross-site"),
        ],
        Some(&form),
    )
    .await;
    assert_eq!(cross_site.status, 403);

    // An id_token_hint of another issuer (another key): refused.
    let foreign = {
        let der = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(
            &ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
        )
        .unwrap();
        let key = jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes());
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.typ = Some("JWT".into());
        header.kid = Some("elsewhere".into());
        let claims = serde_json::json!({"iss": "https://idp.elsewhere.example", "sub": "x", "aud": "console", "exp": 4_000_000_000u64, "iat": 0});
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    let logout = send(
        p.gw,
        "GET",
        &format!("/oauth2/logout?{}", query(&[("id_token_hint", &foreign)])),
        &[("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(logout.status, 400, "{}", logout.text);
    assert!(
        set_cookie(&logout, "oms_session").is_none(),
        "the session is not ended"
    );
    // Without any hint, logout asks first (a link cannot sign anyone out).
    let ask = send(p.gw, "GET", "/oauth2/logout", &[("cookie", &cookie)], None).await;
    assert_eq!(ask.status, 200);
    assert!(
        ask.text.contains(r#"action="/oauth2/logout""#)
            && set_cookie(&ask, "oms_session").is_none()
    );

    // Every refusal was counted.
    let metrics = send(p.gw, "GET", "/metrics", &[], None).await;
    for reason in [
        "csrf",
        "unregistered_redirect_uri",
        "invalid_grant",
        "code_reused",
        "invalid_id_token_hint",
    ] {
        let line = format!("oms_oauth_refusals_total{{reason=\"{reason}\"}}");
        let counted = metrics
            .text
            .lines()
            .find(|l| l.starts_with(&line))
            .unwrap_or_else(|| panic!("{line} missing"));
        assert!(!counted.ends_with(" 0"), "{counted}");
    }
    p.stop().await;
}

/// A code past its life is refused. The life is set to one second, and
/// the test waits for Redis to drop the code rather than for a clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_past_its_life_is_refused() {
    let Some(redis) = testkit::backends::require_backend(testkit::backends::REDIS_VAR) else {
        return;
    };
    let prefix = format!("{}:", unique_name("oms_oidc"));
    let p = start(&[
        ("REDIS_URL", redis.as_str()),
        ("OMS_REDIS_KEY_PREFIX", prefix.as_str()),
        ("OMS_OIDC_CODE_TTL_SECS", "1"),
    ])
    .await;
    let (verifier, challenge) = pkce("late");
    let path = authorize_path("console", &p.console_redirect, &challenge, &[]);
    let (session, _) = sign_in(&p, &path, testkit::users::ADMIN_PASSWORD).await;
    let code = code_for(
        &p,
        &session.unwrap(),
        "console",
        &p.console_redirect,
        &challenge,
    )
    .await;
    let url = oms_config::RedisUrl::parse(&redis).unwrap();
    let kv = oms_store::kv::RedisKv::connect(&url, &format!("{prefix}user:"))
        .await
        .unwrap();
    let key = format!("code:{}", oms_core::digest::sha256_hex(code.as_bytes()));
    assert!(
        oms_store::kv::KvStore::get(&kv, &key)
            .await
            .unwrap()
            .is_some(),
        "the code is stored under {key}"
    );
    eventually(Duration::from_secs(10), "the code to expire", || {
        let (kv, key) = (&kv, &key);
        async move {
            oms_store::kv::KvStore::get(kv, key)
                .await
                .unwrap()
                .is_none()
                .then_some(())
        }
    })
    .await;
    let late = exchange(&p, &code, &p.console_redirect, &verifier).await;
    assert_eq!(
        (late.status, late.json["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    p.stop().await;
}

/// The console as the provider's client: a page without a session sends
/// the browser to sign in; the callback takes only the answer to its own
/// request; a form without the browser's token, or a feed without a
/// session, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_through_the_provider_and_refuses_forged_requests() {
    let p = start(&[]).await;
    let away = send(p.gw, "GET", "/console/orders?status=CONFIRMED", &[], None).await;
    assert_eq!(away.status, 303);
    assert_eq!(
        away.header("location"),
        Some("/console/login?next=%2Fconsole%2Forders%3Fstatus%3DCONFIRMED")
    );
    let feed = send(p.gw, "GET", "/console/orders/live?ids=x", &[], None).await;
    assert_eq!(feed.status, 401);

    let start_login = send(p.gw, "GET", away.header("location").unwrap(), &[], None).await;
    assert_eq!(start_login.status, 303);
    let remembered =
        cookie_value(set_cookie(&start_login, "oms_console_login").unwrap()).to_owned();
    let authorize = start_login.header("location").unwrap();
    assert!(
        authorize.starts_with(&format!("{}/oauth2/authorize?", p.issuer)),
        "{authorize}"
    );
    let asked = params_of(authorize);
    assert_eq!(asked["code_challenge_method"], "S256");
    let (_, back) = sign_in(
        &p,
        authorize.strip_prefix(&p.issuer).unwrap(),
        testkit::users::ADMIN_PASSWORD,
    )
    .await;
    let callback = back
        .header("location")
        .unwrap()
        .strip_prefix(&p.issuer)
        .unwrap()
        .to_owned();
    let login_cookie = format!("oms_console_login={remembered}");

    // Another state than the one this browser asked with: refused.
    let tampered = callback.replace(&encode(&asked["state"]), "tampered");
    let refused = send(p.gw, "GET", &tampered, &[("cookie", &login_cookie)], None).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(set_cookie(&refused, "oms_console").is_none());
    // Without the cookie of the request: refused.
    let stranger = send(p.gw, "GET", &callback, &[], None).await;
    assert_eq!(stranger.status, 400);

    let signed_in = send(p.gw, "GET", &callback, &[("cookie", &login_cookie)], None).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.text);
    assert_eq!(
        signed_in.header("location"),
        Some("/console/orders?status=CONFIRMED")
    );
    let session = set_cookie(&signed_in, "oms_console").unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("Path=/console"),
        "{session}"
    );
    let console = format!("oms_console={}", cookie_value(session));
    let orders = send(
        p.gw,
        "GET",
        "/console/orders",
        &[("cookie", &console)],
        None,
    )
    .await;
    assert_eq!(orders.status, 200);
    assert!(orders.text.contains("<h1>Orders</h1>") && orders.text.contains("Customer ID"));
    assert!(
        orders
            .header("content-security-policy")
            .unwrap()
            .contains("script-src 'self'")
    );
    let csrf = cookie_value(set_cookie(&orders, "oms_console_csrf").unwrap()).to_owned();

    // A cancel form without this browser's token does nothing.
    let with_csrf = format!("{console}; oms_console_csrf={csrf}");
    for (cookie, body) in [
        (with_csrf.as_str(), "reason=x&csrf=forged".to_owned()),
        (console.as_str(), format!("reason=x&csrf={csrf}")),
    ] {
        let forged = send(
            p.gw,
            "POST",
            "/console/orders/00000000-0000-7000-8000-000000000000/cancel",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", cookie),
            ],
            Some(&body),
        )
        .await;
        assert_eq!(forged.status, 403, "{cookie} {body}");
    }
    // With it, the API's own answer shows (no such order).
    let real = send(
        p.gw,
        "POST",
        "/console/orders/00000000-0000-7000-8000-000000000000/cancel",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &with_csrf),
        ],
        Some(&format!("reason=x&csrf={csrf}")),
    )
    .await;
    assert_eq!(real.status, 404, "{}", real.text);
    assert!(real.text.contains("order not found"));
    p.stop().await;
}
