//! The token verifier: caller types, audiences, and JWKS refetching on
//! key rotation (rate-limited).

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use oms_runtime::auth::{
    AccessClaims, Caller, Jwk, JwksSource, Revocation, RevocationSource, Role, Verifier,
    VerifierConfig, VerifyError, require_admin, require_scope, require_user,
};
use proptest::prelude::*;
use tokio::sync::Mutex;

const ISSUER: &str = "test-issuer";

fn jwk(key: &SigningKey, kid: &str) -> Jwk {
    Jwk {
        kty: "OKP".into(),
        crv: "Ed25519".into(),
        x: URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
        kid: kid.into(),
        alg: "EdDSA".into(),
        use_: "sig".into(),
    }
}

fn token(
    key: &SigningKey,
    kid: &str,
    aud: &str,
    role: Option<&str>,
    scope: Option<&str>,
) -> String {
    sign(key, kid, &claims(aud, role, scope))
}

fn claims(aud: &str, role: Option<&str>, scope: Option<&str>) -> AccessClaims {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    AccessClaims {
        iss: ISSUER.into(),
        sub: "subject-1".into(),
        aud: aud.into(),
        exp: now + 120,
        iat: now,
        nbf: now,
        jti: "jti".into(),
        role: role.map(str::to_owned),
        scope: scope.map(str::to_owned),
        client_id: scope.map(|_| "order-svc".to_owned()),
        ver: 0,
    }
}

fn sign(key: &SigningKey, kid: &str, claims: &AccessClaims) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.into());
    header.typ = Some("at+jwt".into());
    let der = key.to_pkcs8_der().unwrap();
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
    )
    .unwrap()
}

/// A JWKS endpoint whose keys the test changes, counting fetches.
#[derive(Default)]
struct Rotating {
    keys: Mutex<Vec<Jwk>>,
    fetches: AtomicUsize,
}

/// The verifier owns its source; the test keeps a handle on the same one.
struct Shared(Arc<Rotating>);

#[async_trait]
impl JwksSource for Shared {
    async fn fetch(&self) -> Result<Vec<Jwk>, String> {
        self.0.fetches.fetch_add(1, Ordering::SeqCst);
        Ok(self.0.keys.lock().await.clone())
    }
}

fn make_verifier(source: Arc<Rotating>, refetch: Duration) -> Verifier {
    let mut config = VerifierConfig::new(ISSUER, Some("product-svc"));
    config.refetch_interval = refetch;
    Verifier::new(config, Arc::new(Shared(source)))
}

// Paused time: the refetch window is crossed by advancing the clock, never
// by how fast the machine happens to be.
#[tokio::test(start_paused = true)]
async fn a_rotated_key_is_fetched_once_and_unknown_kids_are_rate_limited() {
    let (old, new) = (
        SigningKey::from_bytes(&[1; 32]),
        SigningKey::from_bytes(&[2; 32]),
    );
    let source = Arc::new(Rotating::default());
    *source.keys.lock().await = vec![jwk(&old, "old")];
    let verifier = make_verifier(source.clone(), Duration::from_secs(5));

    let user = verifier
        .verify(&token(&old, "old", "oms-api", Some("customer"), None))
        .await
        .unwrap();
    assert_eq!(
        user,
        Caller::User {
            id: "subject-1".into(),
            role: Role::Customer,
            scopes: vec![],
        }
    );
    verifier
        .verify(&token(&old, "old", "oms-api", Some("admin"), None))
        .await
        .unwrap();
    assert_eq!(
        source.fetches.load(Ordering::SeqCst),
        1,
        "known kids come from the cache"
    );

    // user-svc rotates. Right after a fetch the new kid is refused without
    // another fetch (a flood of made-up kids cannot hammer user-svc)...
    *source.keys.lock().await = vec![jwk(&new, "new"), jwk(&old, "old")];
    let rotated = token(&new, "new", "oms-api", Some("customer"), None);
    assert_eq!(
        verifier.verify(&rotated).await,
        Err(VerifyError::UnknownKey)
    );
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
    tokio::time::advance(Duration::from_secs(4)).await;
    assert_eq!(
        verifier.verify(&rotated).await,
        Err(VerifyError::UnknownKey),
        "still inside the window"
    );
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
    // ...and once the interval has passed, the unknown kid triggers one
    // refetch that brings the new key in.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(verifier.verify(&rotated).await.is_ok());
    assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
    verifier
        .verify(&token(&old, "old", "oms-api", Some("customer"), None))
        .await
        .unwrap();
    assert_eq!(
        source.fetches.load(Ordering::SeqCst),
        2,
        "both keys came with that fetch"
    );

    let forged = verifier
        .verify(&token(
            &SigningKey::from_bytes(&[3; 32]),
            "new",
            "oms-api",
            Some("customer"),
            None,
        ))
        .await;
    assert!(matches!(forged, Err(VerifyError::Invalid(_))), "{forged:?}");
}

#[tokio::test]
async fn service_and_user_tokens_are_told_apart_by_audience() {
    let key = SigningKey::from_bytes(&[4; 32]);
    let source = Arc::new(Rotating::default());
    *source.keys.lock().await = vec![jwk(&key, "k")];
    let verifier = make_verifier(source, Duration::from_secs(5));

    let service = verifier
        .verify(&token(
            &key,
            "k",
            "product-svc",
            None,
            Some("inventory:write products:read"),
        ))
        .await
        .unwrap();
    assert_eq!(
        service,
        Caller::Service {
            client_id: "order-svc".into(),
            scopes: vec!["inventory:write".into(), "products:read".into()]
        }
    );
    // Another service's token, or a user token dressed as a service one.
    assert!(
        verifier
            .verify(&token(&key, "k", "order-svc", None, Some("x")))
            .await
            .is_err()
    );
    assert!(
        verifier
            .verify(&token(
                &key,
                "k",
                "product-svc",
                Some("admin"),
                Some("inventory:write")
            ))
            .await
            .is_err()
    );
    assert!(
        verifier
            .verify(&token(&key, "k", "oms-api", None, None))
            .await
            .is_err(),
        "a user token needs a role"
    );
    // A user's sign-in to an application carries what they let it see,
    // never a service's scope.
    assert_eq!(
        verifier
            .verify(&token(
                &key,
                "k",
                "oms-api",
                Some("customer"),
                Some("openid email")
            ))
            .await
            .unwrap(),
        Caller::User {
            id: "subject-1".into(),
            role: Role::Customer,
            scopes: vec!["openid".into(), "email".into()],
        }
    );
    assert!(
        verifier
            .verify(&token(
                &key,
                "k",
                "oms-api",
                Some("admin"),
                Some("openid inventory:write")
            ))
            .await
            .is_err(),
        "a user token with a service's scope"
    );

    let as_request = |caller: Caller| {
        let mut request = tonic::Request::new(());
        request.extensions_mut().insert(caller);
        request
    };
    let admin = as_request(Caller::User {
        id: "u".into(),
        role: Role::Admin,
        scopes: vec![],
    });
    let customer = as_request(Caller::User {
        id: "c".into(),
        role: Role::Customer,
        scopes: vec![],
    });
    let svc = as_request(service);
    assert!(require_scope(&svc, "inventory:write").is_ok());
    let code =
        |r: Result<String, oms_runtime::ApiError>| tonic::Status::from(r.unwrap_err()).code();
    assert_eq!(
        code(require_scope(&svc, "users:admin")),
        tonic::Code::PermissionDenied
    );
    assert_eq!(
        code(require_scope(&admin, "inventory:write")),
        tonic::Code::PermissionDenied
    );
    assert_eq!(
        code(require_admin(&customer)),
        tonic::Code::PermissionDenied
    );
    assert_eq!(code(require_admin(&svc)), tonic::Code::PermissionDenied);
    assert_eq!(
        code(require_scope(&tonic::Request::new(()), "inventory:write")),
        tonic::Code::Unauthenticated
    );
    assert!(require_user(&svc).is_err());
    assert_eq!(require_admin(&admin).unwrap(), "u");
}

#[tokio::test]
async fn an_unreachable_jwks_is_unavailable_not_unauthenticated() {
    struct Down;
    #[async_trait]
    impl JwksSource for Down {
        async fn fetch(&self) -> Result<Vec<Jwk>, String> {
            Err("connection refused".into())
        }
    }
    let verifier = Verifier::new(VerifierConfig::new(ISSUER, None), Arc::new(Down));
    let key = SigningKey::from_bytes(&[5; 32]);
    let err = verifier
        .verify(&token(&key, "k", "oms-api", Some("customer"), None))
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::KeysUnavailable(_)));
    assert_eq!(
        tonic::Status::from(oms_runtime::ApiError::from(err)).code(),
        tonic::Code::Unavailable
    );
}

/// A revocation list the test edits while the verifier follows a clone.
#[derive(Default, Clone)]
struct Listed(Arc<std::sync::Mutex<Vec<Revocation>>>);

#[async_trait]
impl RevocationSource for Listed {
    async fn fetch(&self) -> Result<Vec<Revocation>, String> {
        Ok(self.0.lock().unwrap().clone())
    }
}

#[tokio::test]
async fn a_listed_subject_loses_its_older_tokens_within_seconds() {
    let key = SigningKey::from_bytes(&[1; 32]);
    let source = Arc::new(Rotating::default());
    *source.keys.lock().await = vec![jwk(&key, "k")];
    let listed = Listed::default();
    let verifier =
        make_verifier(source, Duration::from_secs(5)).following(Arc::new(listed.clone()));

    let mut old = claims("oms-api", Some("admin"), None);
    old.ver = 3;
    let old = sign(&key, "k", &old);
    let mut new = claims("oms-api", Some("customer"), None);
    new.ver = 4;
    let new = sign(&key, "k", &new);
    let service = token(&key, "k", "product-svc", None, Some("inventory:write"));
    verifier.verify(&old).await.unwrap();

    listed.0.lock().unwrap().push(Revocation {
        subject_sha256: oms_runtime::auth::revocations::subject_digest("subject-1"),
        min_version: 4,
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match verifier.verify(&old).await {
            Err(VerifyError::Revoked) => break,
            Ok(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("the older token must be refused as revoked: {other:?}"),
        }
    }
    assert!(matches!(
        verifier.verify(&new).await,
        Ok(Caller::User {
            role: Role::Customer,
            ..
        })
    ));
    // Service tokens have their own subjects and no version.
    assert!(verifier.verify(&service).await.is_ok());
    let status = tonic::Status::from(oms_runtime::ApiError::from(VerifyError::Revoked));
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
}

// A verified token is remembered until its expiry, but never past its key:
// once the JWKS no longer lists the key (rotated out and refetched), the
// same token is refused, as it was before tokens were remembered.
#[tokio::test(start_paused = true)]
async fn a_remembered_token_is_refused_once_its_key_is_withdrawn() {
    let (old, new) = (
        SigningKey::from_bytes(&[1; 32]),
        SigningKey::from_bytes(&[2; 32]),
    );
    let source = Arc::new(Rotating::default());
    *source.keys.lock().await = vec![jwk(&old, "old")];
    let verifier = make_verifier(source.clone(), Duration::from_secs(5));
    let remembered = token(&old, "old", "oms-api", Some("customer"), None);
    for _ in 0..3 {
        verifier.verify(&remembered).await.unwrap();
    }

    *source.keys.lock().await = vec![jwk(&new, "new")];
    tokio::time::advance(Duration::from_secs(6)).await;
    verifier
        .verify(&token(&new, "new", "oms-api", Some("customer"), None))
        .await
        .unwrap();
    assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
    assert_eq!(
        verifier.verify(&remembered).await,
        Err(VerifyError::UnknownKey)
    );

    // A token differing in one byte of its signature is not the remembered
    // one: it is checked in full, and fails.
    let fresh = token(&new, "new", "oms-api", Some("customer"), None);
    verifier.verify(&fresh).await.unwrap();
    let mut tampered = fresh.into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(matches!(
        verifier.verify(&tampered).await,
        Err(VerifyError::Invalid(_) | VerifyError::Malformed)
    ));
}

/// A verifier that knows one key, and a valid token signed with it.
struct Known {
    runtime: tokio::runtime::Runtime,
    verifier: Verifier,
    token: String,
}

fn known() -> &'static Known {
    static KNOWN: std::sync::OnceLock<Known> = std::sync::OnceLock::new();
    KNOWN.get_or_init(|| {
        let key = SigningKey::from_bytes(&[7; 32]);
        let source = Arc::new(Rotating {
            keys: Mutex::new(vec![jwk(&key, "k")]),
            fetches: AtomicUsize::new(0),
        });
        let known = Known {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            verifier: make_verifier(source, Duration::from_secs(5)),
            token: token(&key, "k", "oms-api", Some("customer"), None),
        };
        // The property below must start from a token that passes.
        known
            .runtime
            .block_on(known.verifier.verify(&known.token))
            .unwrap();
        known
    })
}

proptest! {
    #![proptest_config(testkit::proptest_config(512))]

    // Whatever arrives as a bearer token is refused with a typed error.
    #[test]
    fn any_string_is_refused(
        raw in "\\PC{0,300}|[A-Za-z0-9_.=+/-]{0,300}|eyJ[A-Za-z0-9_-]{10,80}\\.[A-Za-z0-9_-]{0,120}\\.[A-Za-z0-9_-]{0,90}"
    ) {
        let known = known();
        prop_assert!(known.runtime.block_on(known.verifier.verify(&raw)).is_err());
    }

    // One character changed anywhere in a valid token (header, claims,
    // signature or a dot), or the token cut or extended, and it is refused.
    #[test]
    fn a_valid_token_changed_anywhere_is_refused(
        at in any::<prop::sample::Index>(),
        replacement in "[A-Za-z0-9_.=-]",
        cut in any::<bool>(),
    ) {
        let known = known();
        let mut changed = known.token.clone().into_bytes();
        let i = at.index(changed.len());
        let byte = replacement.as_bytes()[0];
        if cut {
            changed.truncate(i);
        } else if changed[i] == byte {
            changed.push(byte);
        } else {
            changed[i] = byte;
        }
        let changed = String::from_utf8(changed).unwrap();
        let verdict = known.runtime.block_on(known.verifier.verify(&changed));
        prop_assert!(verdict.is_err(), "{changed} was accepted");
    }
}
