//! The account rules: registration, sign-in with throttling, refresh-token
//! rotation, service tokens, and account management. No wire types here:
//! the gRPC layer parses requests into the `input` types first.

use std::net::IpAddr;

use oms_runtime::auth::Role;
use oms_runtime::auth::revocations::{LISTED_FOR, Revocation, subject_digest};
use sea_orm::DatabaseConnection;

use crate::clients::{ServiceClient, audience_of};
use crate::error::UserError;
use crate::input::{DisplayName, Email, Password};
use crate::model::{AccessChange, User};
use crate::passwords::Passwords;
use crate::sessions::{Rotation, Sessions};
use crate::store::users;
use crate::throttle::SlidingWindow;
use crate::tokens::{SignedToken, TokenIssuer};

/// Tokens handed out by Login and RefreshToken.
#[derive(Debug)]
pub struct SignIn {
    /// The access token.
    pub access: SignedToken,
    /// The refresh token.
    pub refresh_token: String,
    /// The account.
    pub user: User,
}

/// A granted service token.
#[derive(Debug)]
pub struct ServiceGrant {
    /// The token.
    pub access: SignedToken,
    /// The scopes granted.
    pub scopes: Vec<String>,
}

/// Everything the account rules need.
#[derive(Debug, Clone)]
pub struct Accounts {
    pub(crate) db: DatabaseConnection,
    pub(crate) passwords: Passwords,
    pub(crate) tokens: TokenIssuer,
    pub(crate) sessions: Sessions,
    /// Failures per (account, client address).
    pub(crate) account_failures: SlidingWindow,
    /// Failures per account, from every address.
    pub(crate) account_wide_failures: SlidingWindow,
    /// Attempts per client address.
    pub(crate) peer_attempts: SlidingWindow,
    /// Registrations per client address.
    pub(crate) peer_registrations: SlidingWindow,
    pub(crate) clients: Vec<ServiceClient>,
}

impl Accounts {
    /// Creates a customer account; at most so many per client address per
    /// hour, each counted before the password is hashed (taken-email
    /// answers included: they are what an enumeration costs).
    pub async fn register(
        &self,
        email: Email,
        password: Password,
        name: DisplayName,
        peer: Option<IpAddr>,
    ) -> Result<User, UserError> {
        let peer = peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
        let attempt = self.peer_registrations.hit(&peer).await?;
        if let Some(retry) = attempt.retry_after {
            self.peer_registrations.release(&peer, &attempt).await?;
            metrics::counter!("oms_registrations_throttled_total").increment(1);
            return Err(UserError::RegistrationThrottled(retry));
        }
        let user = User {
            id: uuid::Uuid::now_v7().to_string(),
            email: email.as_str().to_owned(),
            display_name: name.as_str().to_owned(),
            password_hash: self.passwords.hash(password.expose()).await?,
            role: Role::Customer,
            create_time: oms_core::time::now(),
            disabled: false,
            token_version: 0,
        };
        users::insert(&self.db, &user).await?;
        tracing::info!(user_id = %user.id, "registered");
        Ok(user)
    }

    /// Signs in. Unknown email and wrong password take the same time and
    /// give the same error; too many attempts give `Throttled`: from one
    /// address in all, for one account from one address, or, while the
    /// account is failing from everywhere, from an address that has tried
    /// it before. An address that has not tried the account always gets
    /// its password checked, so an attacker cannot lock the owner out.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> Result<SignIn, UserError> {
        let user = self.authenticate(email, password, peer).await?;
        let access = self
            .tokens
            .user_token(&user.id, user.role, user.token_version, None)?;
        let refresh_token = self.sessions.start(&user.id).await?;
        tracing::info!(user_id = %user.id, "signed in");
        Ok(SignIn {
            access,
            refresh_token,
            user,
        })
    }

    /// Checks a password with every throttling rule of [`Self::login`]:
    /// the account, if the password is its own and it is enabled.
    pub async fn authenticate(
        &self,
        email: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> Result<User, UserError> {
        // A malformed email cannot match any account; it still counts as an
        // attempt and gets the same answer as a wrong password.
        let email = Email::parse("email", email)
            .map(|e| e.as_str().to_owned())
            .unwrap_or_default();
        let peer = peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
        // Every limit is counted before the password is compared, by the
        // store's atomic increment: of a concurrent burst, at most the
        // limit is ever compared. A refused attempt is taken back, so the
        // counts stay those of compared attempts.
        let attempt = self.peer_attempts.hit(&peer).await?;
        if let Some(retry) = attempt.retry_after {
            self.peer_attempts.release(&peer, &attempt).await?;
            return Err(throttled(retry));
        }
        let from_here = format!("{email}|{peer}");
        let here = self.account_failures.hit(&from_here).await?;
        if let Some(retry) = here.retry_after {
            self.account_failures.release(&from_here, &here).await?;
            return Err(throttled(retry));
        }
        let wide = self.account_wide_failures.hit(&email).await?;
        // While the account fails from everywhere, an address gets one
        // compared attempt: its first (so the owner, from an address that
        // never failed, is always heard), never a second or a burst.
        if let Some(retry) = wide.retry_after
            && here.count > 1
        {
            self.account_wide_failures.release(&email, &wide).await?;
            self.account_failures.release(&from_here, &here).await?;
            return Err(throttled(retry));
        }
        let user = if email.is_empty() {
            None
        } else {
            users::find_by_email(&self.db, &email).await?
        };
        let matched = self
            .passwords
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await?;
        let Some(user) = user.filter(|_| matched) else {
            return Err(UserError::BadCredentials);
        };
        // Only failures count against the account.
        self.account_failures.release(&from_here, &here).await?;
        self.account_wide_failures.release(&email, &wide).await?;
        // Said only to whoever knows the password.
        if user.disabled {
            return Err(UserError::AccountDisabled);
        }
        Ok(user)
    }

    /// Rotates a refresh token; one issued to an OpenID Connect client
    /// only for that `client_id` (authenticated by the caller), and its new
    /// access token carries the scopes granted then.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        client_id: Option<&str>,
    ) -> Result<SignIn, UserError> {
        match self.sessions.rotate(refresh_token, client_id).await? {
            Rotation::Invalid => Err(UserError::InvalidRefreshToken),
            Rotation::Reused => Err(UserError::RefreshTokenReused),
            Rotation::Rotated {
                user_id,
                new_token,
                granted,
            } => {
                // The role may have changed since sign-in: read it again.
                // (Disabling revokes refresh tokens; this covers a refresh
                // racing with it.)
                let Some(user) = users::find_by_id(&self.db, &user_id).await? else {
                    return Err(UserError::InvalidRefreshToken);
                };
                if user.disabled {
                    return Err(UserError::AccountDisabled);
                }
                let access = self.tokens.user_token(
                    &user.id,
                    user.role,
                    user.token_version,
                    granted.as_ref(),
                )?;
                Ok(SignIn {
                    access,
                    refresh_token: new_token,
                    user,
                })
            }
        }
    }

    /// Ends the sign-in the token belongs to.
    pub async fn logout(&self, refresh_token: &str) -> Result<(), UserError> {
        self.sessions.revoke_family_of(refresh_token).await?;
        Ok(())
    }

    /// OAuth2 client credentials. Every requested scope must be allowed for
    /// the client and all must be for one service (the token's audience);
    /// none requested means all the client's scopes.
    pub async fn service_token(
        &self,
        client_id: &str,
        client_secret: &str,
        requested: Vec<String>,
    ) -> Result<ServiceGrant, UserError> {
        // Look up by ID but always compare a secret, so unknown clients and
        // wrong secrets cost the same.
        let client = self.clients.iter().find(|c| c.client_id == client_id);
        let secret_ok = client.is_some_and(|c| c.secret_matches(client_secret));
        let Some(client) = client.filter(|_| secret_ok) else {
            return Err(UserError::InvalidClient);
        };
        let scopes = if requested.is_empty() {
            client.scopes.clone()
        } else {
            requested
        };
        if let Some(denied) = scopes.iter().find(|s| !client.scopes.contains(s)) {
            return Err(UserError::ScopeNotAllowed(denied.clone()));
        }
        let mut audiences: Vec<&str> = scopes.iter().filter_map(|s| audience_of(s)).collect();
        audiences.sort_unstable();
        audiences.dedup();
        let [audience] = audiences[..] else {
            return Err(UserError::Invalid(vec![oms_runtime::FieldViolation::new(
                "scopes",
                "ask for scopes of exactly one service per token",
            )]));
        };
        let access = self
            .tokens
            .service_token(&client.client_id, audience, &scopes)?;
        tracing::info!(client_id = %client.client_id, audience, "issued a service token");
        Ok(ServiceGrant { access, scopes })
    }

    /// An account the caller may see: their own, or any for an admin.
    /// Others get `UserNotFound`, so IDs cannot be probed.
    pub async fn get_user(&self, caller: (&str, Role), user_id: &str) -> Result<User, UserError> {
        let (caller_id, role) = caller;
        if caller_id != user_id && role != Role::Admin {
            return Err(UserError::UserNotFound);
        }
        users::find_by_id(&self.db, user_id)
            .await?
            .ok_or(UserError::UserNotFound)
    }

    /// One page of accounts and the cursor of the next.
    pub async fn list_users(
        &self,
        after: Option<&str>,
        page_size: u64,
    ) -> Result<(Vec<User>, Option<String>), UserError> {
        let page = users::list(&self.db, after, page_size + 1).await?;
        Ok(oms_core::paging::split_page(page, page_size, |u| {
            u.id.clone()
        }))
    }

    /// Changes the caller's password and ends every sign-in of theirs.
    pub async fn change_password(
        &self,
        user_id: &str,
        current: &str,
        new: Password,
    ) -> Result<(), UserError> {
        let user = users::find_by_id(&self.db, user_id)
            .await?
            .ok_or(UserError::UserNotFound)?;
        if !self
            .passwords
            .verify(current, Some(&user.password_hash))
            .await?
        {
            return Err(UserError::WrongCurrentPassword);
        }
        let hash = self.passwords.hash(new.expose()).await?;
        self.change_access(user_id, AccessChange::Password(hash), "password changed")
            .await?;
        Ok(())
    }

    /// Sets an account's role and ends its sign-ins.
    pub async fn set_role(&self, user_id: &str, role: Role) -> Result<User, UserError> {
        self.change_access(user_id, AccessChange::Role(role), "role changed")
            .await
    }

    /// Disables or enables an account and ends its sign-ins.
    pub async fn set_disabled(&self, user_id: &str, disabled: bool) -> Result<User, UserError> {
        let what = if disabled {
            "account disabled"
        } else {
            "account enabled"
        };
        self.change_access(user_id, AccessChange::Disabled(disabled), what)
            .await
    }

    /// Applies `change`; if it changed anything, revokes the account's
    /// refresh tokens, and its access tokens stop working once verifiers
    /// see the raised token version (listed by [`Self::revocations`]).
    async fn change_access(
        &self,
        user_id: &str,
        change: AccessChange,
        what: &'static str,
    ) -> Result<User, UserError> {
        let (user, changed) = users::change_access(&self.db, user_id, &change)
            .await?
            .ok_or(UserError::UserNotFound)?;
        if changed {
            self.sessions.revoke_all(user_id).await?;
            tracing::info!(
                user_id,
                role = user.role.as_str(),
                disabled = user.disabled,
                token_version = user.token_version,
                "{what}; earlier tokens revoked"
            );
        }
        Ok(user)
    }

    /// One page of the accounts whose earlier access tokens no longer
    /// count (token version raised within
    /// [`oms_runtime::auth::revocations::LISTED_FOR`]), from `offset` on, and the
    /// offset of the next page if there is one.
    pub async fn revocations(
        &self,
        offset: u64,
        page_size: u64,
    ) -> Result<(Vec<Revocation>, Option<u64>), UserError> {
        let since = oms_core::time::now()
            - chrono::Duration::from_std(LISTED_FOR).unwrap_or(chrono::Duration::MAX);
        let mut page = users::revoked_since(&self.db, since, offset, page_size + 1).await?;
        let next = (page.len() as u64 > page_size).then(|| {
            page.truncate(usize::try_from(page_size).unwrap_or(usize::MAX));
            offset + page_size
        });
        let listed = page
            .into_iter()
            .map(|(id, min_version)| Revocation {
                subject_sha256: subject_digest(&id),
                min_version,
            })
            .collect();
        Ok((listed, next))
    }

    /// Creates the configured admin, or resets its role and password.
    pub async fn bootstrap_admin(&self, email: Email, password: Password) -> Result<(), UserError> {
        let admin = User {
            id: uuid::Uuid::now_v7().to_string(),
            email: email.as_str().to_owned(),
            display_name: "Administrator".to_owned(),
            password_hash: self.passwords.hash(password.expose()).await?,
            role: Role::Admin,
            create_time: oms_core::time::now(),
            disabled: false,
            token_version: 0,
        };
        users::upsert_by_email(&self.db, &admin).await?;
        tracing::info!(email = %admin.email, "bootstrap admin is in place");
        Ok(())
    }
}

/// A login refused for too many attempts, counted for the throttling alert
/// (deploy/monitoring/rules.yml); the refusal itself is logged where it is
/// answered.
fn throttled(retry: std::time::Duration) -> UserError {
    metrics::counter!("oms_logins_throttled_total").increment(1);
    UserError::Throttled(retry)
}
