//! Everything user-svc can fail with, and its one mapping to the wire.

use std::time::Duration;

use oms_runtime::{ApiError, FieldViolation, Rejection};
use tonic::Code;

use crate::DOMAIN;

/// A user-svc failure.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Bad request fields, every one of them.
    #[error("invalid request")]
    Invalid(Vec<FieldViolation>),
    /// Register with an email already in use.
    #[error("email already registered")]
    EmailTaken,
    /// Unknown email or wrong password: deliberately one answer for both.
    #[error("wrong email or password")]
    BadCredentials,
    /// Too many login attempts.
    #[error("too many login attempts")]
    Throttled(Duration),
    /// Too many registrations from one client address.
    #[error("too many registrations from this address; try again later")]
    RegistrationThrottled(Duration),
    /// A refresh token that was never issued, expired or was revoked.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// A refresh token that was already rotated: its family is revoked.
    #[error("refresh token reused")]
    RefreshTokenReused,
    /// Unknown service client or wrong secret.
    #[error("invalid client credentials")]
    InvalidClient,
    /// A scope the client may not have.
    #[error("scope {0} is not allowed for this client")]
    ScopeNotAllowed(String),
    /// The account does not exist, or the caller may not see it.
    #[error("user not found")]
    UserNotFound,
    /// The right password for an account an admin disabled.
    #[error("this account is disabled")]
    AccountDisabled,
    /// The change would leave no active admin.
    #[error("the last active admin cannot be demoted or disabled")]
    LastAdmin,
    /// ChangePassword with a wrong current password.
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    /// An authorization request for a client nobody registered.
    #[error("unknown client: no OpenID Connect client is registered with this client_id")]
    UnknownOAuthClient,
    /// A redirect URI the client did not register.
    #[error("redirect_uri is not one this client registered")]
    UnregisteredRedirectUri,
    /// An authorization code (or its verifier) that does not hold.
    #[error("{0}")]
    InvalidGrant(&'static str),
    /// An `id_token_hint` this provider did not sign, or for another client.
    #[error("id_token_hint is not an ID token this provider issued to this client")]
    ForeignIdToken,
    /// Authentication or authorization refused the call.
    #[error(transparent)]
    Auth(ApiError),
    /// The users database failed.
    #[error("users database")]
    Database(#[source] crate::store::users::StoreError),
    /// The token store (Redis) failed.
    #[error("token store")]
    TokenStore(#[source] oms_store::kv::KvError),
    /// Refresh tokens could not be read or written.
    #[error("refresh tokens")]
    Sessions(#[source] crate::sessions::SessionError),
    /// Password hashing failed.
    #[error("password hashing")]
    Hashing(#[source] crate::passwords::HashError),
    /// A token could not be signed.
    #[error("signing a token")]
    Signing(#[source] jsonwebtoken::errors::Error),
}

impl UserError {
    /// Whether Redis (tokens, sessions) or the database was down or
    /// unreachable.
    fn dependency_down(&self) -> bool {
        match self {
            Self::TokenStore(kv) | Self::Sessions(crate::sessions::SessionError::Store(kv)) => {
                kv.is_unavailable()
            }
            Self::Database(crate::store::users::StoreError::Db(db)) => {
                oms_store::db::is_unavailable(db)
            }
            _ => false,
        }
    }
}

impl From<FieldViolation> for UserError {
    fn from(violation: FieldViolation) -> Self {
        Self::Invalid(vec![violation])
    }
}

impl From<crate::store::users::StoreError> for UserError {
    fn from(e: crate::store::users::StoreError) -> Self {
        match e {
            crate::store::users::StoreError::EmailTaken => Self::EmailTaken,
            crate::store::users::StoreError::LastAdmin => Self::LastAdmin,
            other => Self::Database(other),
        }
    }
}

impl From<oms_store::kv::KvError> for UserError {
    fn from(e: oms_store::kv::KvError) -> Self {
        Self::TokenStore(e)
    }
}

impl From<crate::sessions::SessionError> for UserError {
    fn from(e: crate::sessions::SessionError) -> Self {
        Self::Sessions(e)
    }
}

impl From<crate::passwords::HashError> for UserError {
    fn from(e: crate::passwords::HashError) -> Self {
        Self::Hashing(e)
    }
}

impl From<jsonwebtoken::errors::Error> for UserError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        Self::Signing(e)
    }
}

fn reject(code: Code, reason: &'static str, message: impl Into<String>) -> ApiError {
    Rejection::new(code, DOMAIN, reason, message).into()
}

impl From<UserError> for ApiError {
    fn from(error: UserError) -> Self {
        let message = error.to_string();
        match error {
            UserError::Invalid(violations) => ApiError::InvalidArgument {
                domain: DOMAIN,
                violations,
            },
            UserError::EmailTaken => reject(Code::AlreadyExists, "EMAIL_TAKEN", message),
            UserError::BadCredentials => reject(Code::Unauthenticated, "BAD_CREDENTIALS", message),
            UserError::Throttled(retry) => {
                Rejection::new(Code::ResourceExhausted, DOMAIN, "LOGIN_THROTTLED", message)
                    .with("retryAfterSeconds", retry.as_secs())
                    .retry_after(retry)
                    .into()
            }
            UserError::RegistrationThrottled(retry) => Rejection::new(
                Code::ResourceExhausted,
                DOMAIN,
                "REGISTRATION_THROTTLED",
                message,
            )
            .with("retryAfterSeconds", retry.as_secs())
            .retry_after(retry)
            .into(),
            UserError::InvalidRefreshToken => {
                reject(Code::Unauthenticated, "INVALID_REFRESH_TOKEN", message)
            }
            UserError::RefreshTokenReused => reject(
                Code::Unauthenticated,
                "REFRESH_TOKEN_REUSED",
                "refresh token reused; every token of this sign-in is revoked",
            ),
            UserError::InvalidClient => reject(Code::Unauthenticated, "INVALID_CLIENT", message),
            UserError::ScopeNotAllowed(scope) => {
                Rejection::new(Code::PermissionDenied, DOMAIN, "SCOPE_NOT_ALLOWED", message)
                    .with("scope", scope)
                    .into()
            }
            UserError::UserNotFound => reject(Code::NotFound, "USER_NOT_FOUND", message),
            UserError::AccountDisabled => {
                reject(Code::PermissionDenied, "ACCOUNT_DISABLED", message)
            }
            UserError::LastAdmin => reject(Code::FailedPrecondition, "LAST_ADMIN", message),
            UserError::WrongCurrentPassword => ApiError::InvalidArgument {
                domain: DOMAIN,
                violations: vec![FieldViolation::new(
                    "current_password",
                    "is not the account's password",
                )],
            },
            UserError::UnknownOAuthClient => {
                reject(Code::InvalidArgument, "UNKNOWN_CLIENT", message)
            }
            UserError::UnregisteredRedirectUri => {
                reject(Code::InvalidArgument, "INVALID_REDIRECT_URI", message)
            }
            UserError::InvalidGrant(_) => {
                reject(Code::FailedPrecondition, "INVALID_GRANT", message)
            }
            UserError::ForeignIdToken => {
                reject(Code::InvalidArgument, "INVALID_ID_TOKEN_HINT", message)
            }
            UserError::Auth(e) => e,
            // Redis or the database down: the call may work in a moment.
            e if e.dependency_down() => ApiError::unavailable(e),
            e @ (UserError::Database(_)
            | UserError::TokenStore(_)
            | UserError::Sessions(_)
            | UserError::Hashing(_)
            | UserError::Signing(_)) => ApiError::internal(e),
        }
    }
}

impl From<UserError> for tonic::Status {
    fn from(error: UserError) -> Self {
        ApiError::from(error).into()
    }
}
