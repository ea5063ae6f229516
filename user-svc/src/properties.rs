//! Property tests of user-svc's request parsers on any request a client
//! could send: a parsed value holds only what the rules allow (and parses
//! again to itself); a refusal names the request's own fields.

use oms_proto::user::v1 as pb;
use proptest::prelude::*;
use testkit::properties::{check_refusal, message, text};

use crate::input::{
    Credentials, DisplayName, Email, Password, PasswordChange, Registration, RoleChange, user_id,
};

proptest! {
    #![proptest_config(testkit::proptest_config(512))]

    #[test]
    fn an_email_is_normalised_once_and_bounded(raw in text()) {
        if let Ok(email) = Email::parse("email", &raw) {
            let address = email.as_str();
            prop_assert!(address.len() <= 254);
            prop_assert_eq!(address, address.trim());
            prop_assert_eq!(address.matches('@').count(), 1, "{}", address);
            prop_assert_eq!(Email::parse("email", address).map(|e| e.as_str().to_owned()), Ok(address.to_owned()));
        }
    }

    #[test]
    fn a_password_is_8_to_128_characters_kept_as_typed(raw in text()) {
        let count = raw.chars().count();
        match Password::parse("password", &raw) {
            Ok(password) => {
                prop_assert!((8..=128).contains(&count));
                prop_assert_eq!(password.expose(), raw.as_str());
            }
            Err(v) => {
                prop_assert!(!(8..=128).contains(&count));
                prop_assert_eq!(v.field, "password");
            }
        }
    }

    #[test]
    fn a_display_name_is_trimmed_bounded_and_printable(raw in text()) {
        if let Ok(name) = DisplayName::parse("display_name", &raw) {
            let name = name.as_str();
            prop_assert!((1..=100).contains(&name.chars().count()));
            prop_assert!(!name.chars().any(char::is_control));
            prop_assert_eq!(name, name.trim());
        }
    }

    #[test]
    fn a_user_id_is_a_canonical_uuid(raw in text()) {
        if let Ok(id) = user_id("user_id", &raw) {
            prop_assert_eq!(id.len(), 36);
            prop_assert_eq!(user_id("user_id", &id), Ok(id.clone()));
        }
    }

    #[test]
    fn register_requests(r in message::<pb::RegisterRequest>("oms.user.v1.RegisterRequest")) {
        match Registration::try_from(r.clone()) {
            Ok(valid) => {
                prop_assert_eq!(valid.password.expose(), r.password.as_str());
                prop_assert!(Email::parse("email", valid.email.as_str()).is_ok());
            }
            Err(violations) => check_refusal("oms.user.v1.RegisterRequest", &violations)?,
        }
    }

    #[test]
    fn login_requests(r in message::<pb::LoginRequest>("oms.user.v1.LoginRequest")) {
        match Credentials::try_from(r.clone()) {
            Ok(_) => prop_assert!(!r.email.is_empty() && !r.password.is_empty()),
            Err(violations) => check_refusal("oms.user.v1.LoginRequest", &violations)?,
        }
    }

    #[test]
    fn change_password_requests(r in message::<pb::ChangePasswordRequest>("oms.user.v1.ChangePasswordRequest")) {
        if let Err(violations) = PasswordChange::try_from(r) {
            check_refusal("oms.user.v1.ChangePasswordRequest", &violations)?;
        }
    }

    #[test]
    fn set_role_requests(r in message::<pb::SetUserRoleRequest>("oms.user.v1.SetUserRoleRequest")) {
        match RoleChange::try_from(r.clone()) {
            Ok(change) => prop_assert!(matches!(
                pb::Role::try_from(r.role),
                Ok(pb::Role::Customer | pb::Role::Admin)
            ) && change.user_id.len() == 36),
            Err(violations) => check_refusal("oms.user.v1.SetUserRoleRequest", &violations)?,
        }
    }
}
