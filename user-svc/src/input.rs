//! Parse, don't validate: the request fields user-svc accepts, as types that
//! can only hold valid values. Each failure is a field violation.

use oms_config::{ExposeSecret as _, SecretString};
use oms_core::fields::AllFields as _;
use oms_proto::user::v1 as pb;
use oms_runtime::FieldViolation;
use oms_runtime::auth::Role;

/// A normalised email: trimmed, lower-cased, `local@domain.tld`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Checks and normalises `raw`: NFKC, then lower case (then NFKC
    /// again, as Unicode's NFKC_Casefold does), so a fullwidth or composed
    /// look-alike of an address is that address; control and invisible
    /// characters are refused, not stripped.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldViolation> {
        use unicode_normalization::UnicodeNormalization as _;
        let bad = |why: &str| Err(FieldViolation::new(field, why));
        if raw.len() > 1024 {
            return bad("must be at most 254 characters");
        }
        if oms_core::text::hidden_in_line(raw.trim()).is_some() {
            return bad("must not contain control or invisible characters");
        }
        let folded: String = raw.trim().nfkc().collect::<String>().to_lowercase();
        let email: String = folded.nfkc().collect();
        if email.is_empty() {
            return bad("is required");
        }
        if email.len() > 254 {
            return bad("must be at most 254 characters");
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return bad("must be an email address like name@example.com");
        };
        let valid_chars = |s: &str| {
            !s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '@' || c == ',')
        };
        if local.is_empty()
            || local.len() > 64
            || !valid_chars(local)
            || !valid_chars(domain)
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return bad("must be an email address like name@example.com");
        }
        Ok(Self(email))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password of 8 to 128 characters. No composition rules and no
/// truncation (NIST SP 800-63B); whitespace is kept as typed.
/// Never shown by `Debug`.
#[derive(Debug, Clone)]
pub struct Password(SecretString);

impl Password {
    /// Checks the length of `raw`, in characters.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldViolation> {
        match raw.chars().count() {
            0..8 => Err(FieldViolation::new(field, "must be at least 8 characters")),
            8..=128 => Ok(Self(SecretString::from(raw))),
            _ => Err(FieldViolation::new(field, "must be at most 128 characters")),
        }
    }

    /// The password itself.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// A display name: trimmed, 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Checks and trims `raw`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldViolation> {
        let name = raw.trim();
        match name.chars().count() {
            0 => Err(FieldViolation::new(field, "is required")),
            1..=100 if oms_core::text::hidden_in_line(name).is_some() => Err(FieldViolation::new(
                field,
                "must not contain control or invisible characters",
            )),
            1..=100 => Ok(Self(name.to_owned())),
            _ => Err(FieldViolation::new(field, "must be at most 100 characters")),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user ID: a UUID in its canonical text form.
pub fn user_id(field: &str, raw: &str) -> Result<String, FieldViolation> {
    uuid::Uuid::parse_str(raw.trim())
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| FieldViolation::new(field, "must be a user ID (UUID)"))
}

/// A field that must not be empty (kept as sent: a secret, or a value
/// checked against what is stored).
pub fn required(field: &str, value: &str) -> Result<(), FieldViolation> {
    if value.is_empty() {
        Err(FieldViolation::new(field, "is required"))
    } else {
        Ok(())
    }
}

/// A Register request, valid.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The normalised email.
    pub email: Email,
    /// The password, 8 to 128 characters.
    pub password: Password,
    /// The shown name.
    pub display_name: DisplayName,
}

impl TryFrom<pb::RegisterRequest> for Registration {
    type Error = Vec<FieldViolation>;

    fn try_from(r: pb::RegisterRequest) -> Result<Self, Self::Error> {
        let (email, password, display_name) = (
            Email::parse("email", &r.email),
            Password::parse("password", &r.password),
            DisplayName::parse("display_name", &r.display_name),
        )
            .all_fields()?;
        Ok(Self {
            email,
            password,
            display_name,
        })
    }
}

/// A Login request with both fields present (checked against the stored
/// account, never parsed further: a wrong one must cost the same).
#[derive(Debug, Clone)]
pub struct Credentials {
    /// As typed.
    pub email: String,
    /// As typed; never shown by `Debug`.
    pub password: SecretString,
}

impl TryFrom<pb::LoginRequest> for Credentials {
    type Error = Vec<FieldViolation>;

    fn try_from(r: pb::LoginRequest) -> Result<Self, Self::Error> {
        (
            required("email", &r.email),
            required("password", &r.password),
        )
            .all_fields()?;
        Ok(Self {
            email: r.email,
            password: SecretString::from(r.password),
        })
    }
}

/// A ChangePassword request, valid.
#[derive(Debug, Clone)]
pub struct PasswordChange {
    /// The current password, as typed.
    pub current: SecretString,
    /// The new one.
    pub new: Password,
}

impl TryFrom<pb::ChangePasswordRequest> for PasswordChange {
    type Error = Vec<FieldViolation>;

    fn try_from(r: pb::ChangePasswordRequest) -> Result<Self, Self::Error> {
        let ((), new) = (
            required("current_password", &r.current_password),
            Password::parse("new_password", &r.new_password),
        )
            .all_fields()?;
        Ok(Self {
            current: SecretString::from(r.current_password),
            new,
        })
    }
}

/// A SetUserRole request, valid.
#[derive(Debug, Clone)]
pub struct RoleChange {
    /// The account.
    pub user_id: String,
    /// Its new role.
    pub role: Role,
}

impl TryFrom<pb::SetUserRoleRequest> for RoleChange {
    type Error = Vec<FieldViolation>;

    fn try_from(r: pb::SetUserRoleRequest) -> Result<Self, Self::Error> {
        let role = match pb::Role::try_from(r.role) {
            Ok(pb::Role::Customer) => Ok(Role::Customer),
            Ok(pb::Role::Admin) => Ok(Role::Admin),
            _ => Err(FieldViolation::new(
                "role",
                "must be ROLE_CUSTOMER or ROLE_ADMIN",
            )),
        };
        let (user_id, role) = (user_id("user_id", &r.user_id), role).all_fields()?;
        Ok(Self { user_id, role })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_lowercased_and_checked() {
        assert_eq!(
            Email::parse("email", "  Ada@Example.COM ")
                .unwrap()
                .as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@exa..mple.com",
            "a@b@c.com",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn passwords_count_characters_not_bytes_and_are_not_truncated() {
        assert!(Password::parse("password", "1234567").is_err());
        assert!(Password::parse("password", "ééééééé").is_err());
        assert!(Password::parse("password", "éééééééé").is_ok());
        let long = "x".repeat(128);
        assert_eq!(Password::parse("password", &long).unwrap().expose(), long);
        assert!(Password::parse("password", &"x".repeat(129)).is_err());
        let shown = format!("{:?}", Password::parse("p", "hunter2hunter2").unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn display_names_are_bounded() {
        assert_eq!(
            DisplayName::parse("display_name", "  Ada  ")
                .unwrap()
                .as_str(),
            "Ada"
        );
        assert!(DisplayName::parse("display_name", "   ").is_err());
        assert!(DisplayName::parse("display_name", &"x".repeat(101)).is_err());
        assert!(DisplayName::parse("display_name", "a\u{7}b").is_err());
    }
}
