//! Parse, don't validate: the request fields user-svc accepts, as types that
//! can only hold valid values. Each failure is a field violation.

use kit::FieldViolation;
use kit::config::{ExposeSecret as _, SecretString};

/// A normalised email: trimmed, lower-cased, `local@domain.tld`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Checks and normalises `raw`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldViolation> {
        let email = raw.trim().to_lowercase();
        let bad = |why: &str| Err(FieldViolation::new(field, why));
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
            1..=100 if name.chars().any(char::is_control) => Err(FieldViolation::new(
                field,
                "must not contain control characters",
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

/// Collects the results of several field checks: all values, or every
/// violation (not only the first).
pub fn all_valid<T>(
    results: impl IntoIterator<Item = Result<T, FieldViolation>>,
) -> Result<Vec<T>, Vec<FieldViolation>> {
    let (ok, bad): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    if bad.is_empty() {
        Ok(ok.into_iter().filter_map(Result::ok).collect())
    } else {
        Err(bad.into_iter().filter_map(Result::err).collect())
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
