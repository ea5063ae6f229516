//! UserService: reading and managing accounts, and who may.

use oms_proto::user::v1::{self as pb};
use testkit::{TestDb, bearer, error_reason as reason, violated_fields};
use tonic::Code;

use crate::helpers::*;

testkit::test_on_each_db!(
    change_password_checks_the_current_one_and_revokes_sessions,
    customers_cannot_read_others_list_users_or_set_roles,
    admins_set_roles_which_revokes_sessions_and_takes_effect,
    list_users_pages_with_opaque_keyset_tokens,
    the_bootstrap_admin_survives_restarts,
);

async fn change_password_checks_the_current_one_and_revokes_sessions(db: TestDb) {
    let svc = start(&db, &[]).await;
    register(&svc, "pw@example.com", "old password 1").await;
    let tokens = login(&svc, "pw@example.com", "old password 1")
        .await
        .unwrap();
    let change = |current: &str, new: &str| {
        bearer(
            pb::ChangePasswordRequest {
                current_password: current.into(),
                new_password: new.into(),
            },
            &tokens.access_token,
        )
    };
    let wrong = users(&svc)
        .change_password(change("not it at all", "new password 2"))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&wrong), ["current_password"]);
    let short = users(&svc)
        .change_password(change("old password 1", "short"))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&short), ["new_password"]);

    users(&svc)
        .change_password(change("old password 1", "new password 2"))
        .await
        .unwrap();
    assert_eq!(
        refresh(&svc, &tokens.refresh_token)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(
        login(&svc, "pw@example.com", "old password 1")
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert!(
        login(&svc, "pw@example.com", "new password 2")
            .await
            .is_ok()
    );
}

async fn customers_cannot_read_others_list_users_or_set_roles(db: TestDb) {
    let svc = start(&db, &[]).await;
    let alice = register(&svc, "alice@example.com", "alice password").await;
    let bob = register(&svc, "bob@example.com", "bob's password").await;
    let token = login(&svc, "alice@example.com", "alice password")
        .await
        .unwrap()
        .access_token;

    let other = users(&svc)
        .get_user(bearer(
            pb::GetUserRequest {
                user_id: bob.id.clone(),
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound);
    let list = users(&svc)
        .list_users(bearer(pb::ListUsersRequest::default(), &token))
        .await
        .unwrap_err();
    assert_eq!(
        (list.code(), reason(&list).as_str()),
        (Code::PermissionDenied, "ADMIN_REQUIRED")
    );
    let promote = users(&svc)
        .set_user_role(bearer(
            pb::SetUserRoleRequest {
                user_id: alice.id.clone(),
                role: pb::Role::Admin.into(),
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(promote.code(), Code::PermissionDenied);
    let malformed = users(&svc)
        .get_user(bearer(
            pb::GetUserRequest {
                user_id: "42".into(),
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&malformed), ["user_id"]);
}

async fn admins_set_roles_which_revokes_sessions_and_takes_effect(db: TestDb) {
    let svc = start(&db, &[]).await;
    let carol = register(&svc, "carol@example.com", "carol password").await;
    let carol_tokens = login(&svc, "carol@example.com", "carol password")
        .await
        .unwrap();
    let admin = admin_token(&svc).await;

    let bad = users(&svc)
        .set_user_role(bearer(
            pb::SetUserRoleRequest {
                user_id: carol.id.clone(),
                role: pb::Role::Unspecified.into(),
            },
            &admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad), ["role"]);
    let updated = users(&svc)
        .set_user_role(bearer(
            pb::SetUserRoleRequest {
                user_id: carol.id.clone(),
                role: pb::Role::Admin.into(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(updated.role(), pb::Role::Admin);
    assert_eq!(
        refresh(&svc, &carol_tokens.refresh_token)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );

    let new_token = login(&svc, "carol@example.com", "carol password")
        .await
        .unwrap()
        .access_token;
    assert!(
        users(&svc)
            .list_users(bearer(pb::ListUsersRequest::default(), &new_token))
            .await
            .is_ok()
    );
    let missing = users(&svc)
        .set_user_role(bearer(
            pb::SetUserRoleRequest {
                user_id: uuid::Uuid::now_v7().to_string(),
                role: pb::Role::Admin.into(),
            },
            &admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

async fn list_users_pages_with_opaque_keyset_tokens(db: TestDb) {
    let svc = start(&db, &[]).await;
    for i in 0..5 {
        register(&svc, &format!("page{i}@example.com"), "paging password").await;
    }
    let admin = admin_token(&svc).await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = users(&svc)
            .list_users(bearer(
                pb::ListUsersRequest {
                    page_size: 2,
                    page_token: token.clone(),
                },
                &admin,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.users.len() <= 2);
        seen.extend(page.users.into_iter().map(|u| u.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 6, "five customers and the admin, each once");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "oldest first, no repeats");

    let garbage = users(&svc)
        .list_users(bearer(
            pb::ListUsersRequest {
                page_size: 2,
                page_token: "garbage".into(),
            },
            &admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&garbage), ["page_token"]);
}

async fn the_bootstrap_admin_survives_restarts(db: TestDb) {
    let first = start(&db, &[]).await;
    let admin_id = me(&first, &admin_token(&first).await).await.unwrap().id;
    first.stop().await.unwrap();

    let second = start(&db, &[]).await;
    let again = me(&second, &admin_token(&second).await).await.unwrap();
    assert_eq!(
        (again.id.as_str(), again.role()),
        (admin_id.as_str(), pb::Role::Admin)
    );
    let listed = users(&second)
        .list_users(bearer(
            pb::ListUsersRequest::default(),
            &admin_token(&second).await,
        ))
        .await
        .unwrap()
        .into_inner()
        .users;
    assert_eq!(listed.iter().filter(|u| u.email == ADMIN_EMAIL).count(), 1);
}
