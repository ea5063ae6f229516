//! Changes to an account that end its earlier access tokens within
//! seconds: role changes, disabling, new passwords; and the last admin.

use std::time::Duration;

use base64::Engine as _;
use oms_proto::user::v1::{self as pb};
use sha2::Digest as _;
use testkit::{TestDb, bearer, error_reason as reason, eventually};
use tonic::Code;

use crate::helpers::*;

testkit::test_on_each_db!(
    a_demoted_admin_loses_admin_rights_within_seconds,
    the_last_active_admin_cannot_be_demoted_or_disabled,
    a_disabled_account_cannot_sign_in_and_its_tokens_stop,
    a_new_password_ends_earlier_access_tokens,
    the_revocation_list_names_nobody_and_pages,
);

/// Waits until `token` is refused as revoked (the verifier refreshes its
/// list every second).
async fn until_revoked(svc: &testkit::Spawned, token: &str) {
    let status = eventually(
        Duration::from_secs(10),
        "the token to be revoked",
        || async { me(svc, token).await.err() },
    )
    .await;
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::Unauthenticated, "TOKEN_REVOKED"),
        "{status:?}"
    );
}

async fn set_role(
    svc: &testkit::Spawned,
    token: &str,
    user_id: &str,
    role: pb::Role,
) -> Result<pb::User, tonic::Status> {
    users(svc)
        .set_user_role(bearer(
            pb::SetUserRoleRequest {
                user_id: user_id.into(),
                role: role.into(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().user.unwrap())
}

async fn set_disabled(
    svc: &testkit::Spawned,
    token: &str,
    user_id: &str,
    disabled: bool,
) -> Result<pb::User, tonic::Status> {
    let mut users = users(svc);
    let user = if disabled {
        users
            .disable_user(bearer(
                pb::DisableUserRequest {
                    user_id: user_id.into(),
                },
                token,
            ))
            .await?
            .into_inner()
            .user
    } else {
        users
            .enable_user(bearer(
                pb::EnableUserRequest {
                    user_id: user_id.into(),
                },
                token,
            ))
            .await?
            .into_inner()
            .user
    };
    Ok(user.unwrap())
}

async fn list_users(svc: &testkit::Spawned, token: &str) -> Result<(), tonic::Status> {
    users(svc)
        .list_users(bearer(pb::ListUsersRequest::default(), token))
        .await
        .map(|_| ())
}

async fn a_demoted_admin_loses_admin_rights_within_seconds(db: TestDb) {
    let svc = start(&db, &[]).await;
    let admin = admin_token(&svc).await;
    let carol = register(&svc, "carol@example.com", "carol password").await;
    set_role(&svc, &admin, &carol.id, pb::Role::Admin)
        .await
        .unwrap();
    let carol_admin = login(&svc, "carol@example.com", "carol password")
        .await
        .unwrap()
        .access_token;
    list_users(&svc, &carol_admin).await.unwrap();

    set_role(&svc, &admin, &carol.id, pb::Role::Customer)
        .await
        .unwrap();
    until_revoked(&svc, &carol_admin).await;
    let refused = list_users(&svc, &carol_admin).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    // Signing in again gives a customer's token, which works as one.
    let carol_customer = login(&svc, "carol@example.com", "carol password")
        .await
        .unwrap()
        .access_token;
    assert_eq!(me(&svc, &carol_customer).await.unwrap().id, carol.id);
    let denied = list_users(&svc, &carol_customer).await.unwrap_err();
    assert_eq!(reason(&denied), "ADMIN_REQUIRED");
    // Nobody else's token was touched.
    list_users(&svc, &admin).await.unwrap();
}

async fn the_last_active_admin_cannot_be_demoted_or_disabled(db: TestDb) {
    let svc = start(&db, &[]).await;
    let admin = admin_token(&svc).await;
    let me_admin = me(&svc, &admin).await.unwrap();

    let demote = set_role(&svc, &admin, &me_admin.id, pb::Role::Customer)
        .await
        .unwrap_err();
    assert_eq!(
        (demote.code(), reason(&demote).as_str()),
        (Code::FailedPrecondition, "LAST_ADMIN")
    );
    let disable = set_disabled(&svc, &admin, &me_admin.id, true)
        .await
        .unwrap_err();
    assert_eq!(
        (disable.code(), reason(&disable).as_str()),
        (Code::FailedPrecondition, "LAST_ADMIN")
    );
    // Refused changes revoke nothing.
    list_users(&svc, &admin).await.unwrap();

    // A disabled admin does not count as one.
    let dan = register(&svc, "dan@example.com", "dan's password").await;
    set_role(&svc, &admin, &dan.id, pb::Role::Admin)
        .await
        .unwrap();
    set_disabled(&svc, &admin, &dan.id, true).await.unwrap();
    let still = set_role(&svc, &admin, &me_admin.id, pb::Role::Customer)
        .await
        .unwrap_err();
    assert_eq!(reason(&still), "LAST_ADMIN");

    // With another active admin, stepping down works.
    set_disabled(&svc, &admin, &dan.id, false).await.unwrap();
    let stepped_down = set_role(&svc, &admin, &me_admin.id, pb::Role::Customer)
        .await
        .unwrap();
    assert_eq!(stepped_down.role(), pb::Role::Customer);
    until_revoked(&svc, &admin).await;
}

async fn a_disabled_account_cannot_sign_in_and_its_tokens_stop(db: TestDb) {
    let svc = start(&db, &[]).await;
    let admin = admin_token(&svc).await;
    let erin = register(&svc, "erin@example.com", "erin's password").await;
    assert_eq!(erin.state(), pb::user::State::Active);
    let session = login(&svc, "erin@example.com", "erin's password")
        .await
        .unwrap();

    let disabled = set_disabled(&svc, &admin, &erin.id, true).await.unwrap();
    assert_eq!(disabled.state(), pb::user::State::Disabled);
    until_revoked(&svc, &session.access_token).await;
    assert_eq!(
        refresh(&svc, &session.refresh_token)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let right = login(&svc, "erin@example.com", "erin's password")
        .await
        .unwrap_err();
    assert_eq!(
        (right.code(), reason(&right).as_str()),
        (Code::PermissionDenied, "ACCOUNT_DISABLED")
    );
    // A wrong password learns nothing about the account's state.
    let wrong = login(&svc, "erin@example.com", "not erin's password")
        .await
        .unwrap_err();
    assert_eq!(reason(&wrong), "BAD_CREDENTIALS");
    // Idempotent, and seen by admins.
    let again = set_disabled(&svc, &admin, &erin.id, true).await.unwrap();
    assert_eq!(again.state(), pb::user::State::Disabled);

    let enabled = set_disabled(&svc, &admin, &erin.id, false).await.unwrap();
    assert_eq!(enabled.state(), pb::user::State::Active);
    let token = login(&svc, "erin@example.com", "erin's password")
        .await
        .unwrap()
        .access_token;
    assert_eq!(me(&svc, &token).await.unwrap().id, erin.id);

    let customer = login(&svc, "erin@example.com", "erin's password")
        .await
        .unwrap()
        .access_token;
    let denied = set_disabled(&svc, &customer, &erin.id, true)
        .await
        .unwrap_err();
    assert_eq!(reason(&denied), "ADMIN_REQUIRED");
}

async fn a_new_password_ends_earlier_access_tokens(db: TestDb) {
    let svc = start(&db, &[]).await;
    register(&svc, "fay@example.com", "fay's old password").await;
    let laptop = login(&svc, "fay@example.com", "fay's old password")
        .await
        .unwrap()
        .access_token;
    let phone = login(&svc, "fay@example.com", "fay's old password")
        .await
        .unwrap()
        .access_token;
    users(&svc)
        .change_password(bearer(
            pb::ChangePasswordRequest {
                current_password: "fay's old password".into(),
                new_password: "fay's new password".into(),
            },
            &laptop,
        ))
        .await
        .unwrap();
    until_revoked(&svc, &phone).await;
    until_revoked(&svc, &laptop).await;
    let fresh = login(&svc, "fay@example.com", "fay's new password")
        .await
        .unwrap()
        .access_token;
    assert!(me(&svc, &fresh).await.is_ok());
}

async fn the_revocation_list_names_nobody_and_pages(db: TestDb) {
    let svc = start(&db, &[]).await;
    let admin = admin_token(&svc).await;
    let mut changed = Vec::new();
    for name in ["gus", "hal", "ida"] {
        let user = register(&svc, &format!("{name}@example.com"), "a fine password").await;
        set_role(&svc, &admin, &user.id, pb::Role::Admin)
            .await
            .unwrap();
        changed.push(user.id);
    }
    let untouched = register(&svc, "jo@example.com", "a fine password").await;

    // Only the mesh's verifiers may read it: a service token of its scope.
    let list = |token: Option<String>, page_token: String| {
        let mut client = auth(&svc);
        let message = pb::ListTokenRevocationsRequest {
            page_size: 1,
            page_token,
        };
        async move {
            let request = match &token {
                Some(token) => bearer(message, token),
                None => tonic::Request::new(message),
            };
            client.list_token_revocations(request).await
        }
    };
    let anonymous = list(None, String::new()).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let as_admin = list(Some(admin.clone()), String::new()).await.unwrap_err();
    assert_eq!(as_admin.code(), Code::PermissionDenied);
    let wrong_scope = testkit::users::service_token(
        svc.channel(),
        "order-svc",
        CLIENT_SECRET,
        &["products:read"],
    )
    .await
    .unwrap();
    let elsewhere = list(Some(wrong_scope), String::new()).await.unwrap_err();
    assert_eq!(
        elsewhere.code(),
        Code::Unauthenticated,
        "a token for product-svc"
    );
    let reader = testkit::users::service_token(
        svc.channel(),
        "order-svc",
        CLIENT_SECRET,
        &["revocations:read"],
    )
    .await
    .unwrap();

    // One entry per page to see the paging.
    let mut listed = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = list(Some(reader.clone()), page_token.clone())
            .await
            .unwrap()
            .into_inner();
        assert!(page.revocations.len() <= 1);
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&page.next_page_token)
            .unwrap();
        for id in &changed {
            assert!(
                !String::from_utf8_lossy(&decoded).contains(id.as_str()),
                "a page token must not carry an ID"
            );
        }
        listed.extend(page.revocations);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let digest = |id: &str| sha2::Sha256::digest(id.as_bytes()).to_vec();
    let mut expected: Vec<Vec<u8>> = changed.iter().map(|id| digest(id)).collect();
    expected.sort();
    let mut seen: Vec<Vec<u8>> = listed.iter().map(|r| r.subject_sha256.clone()).collect();
    seen.sort();
    assert_eq!(seen, expected, "exactly the changed accounts, as digests");
    assert!(listed.iter().all(|r| r.min_token_version == 1));
    assert!(!seen.contains(&digest(&untouched.id)));

    let bad = auth(&svc)
        .list_token_revocations(bearer(
            pb::ListTokenRevocationsRequest {
                page_size: 0,
                page_token: "not a token".into(),
            },
            &reader,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}
