//! A service's own token for calling user-svc (OAuth2 client credentials,
//! `AuthService/IssueServiceToken`): asked for when first needed, kept
//! until a minute before it expires, renewed by one caller at a time, and
//! forgotten when user-svc refuses it.

use std::time::{Duration, Instant};

use oms_proto::user::v1::{IssueServiceTokenRequest, auth_service_client::AuthServiceClient};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::Mutex;

/// Renew a token this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

/// A client ID and its secret at user-svc.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    /// The client ID (`OMS_<SVC>_CLIENT_ID`).
    pub client_id: String,
    /// Its secret (`OMS_<SVC>_CLIENT_SECRET`); never shown by `Debug`.
    pub secret: SecretString,
}

/// Tokens of `scopes` for one client.
#[derive(Debug)]
pub struct ServiceToken {
    auth: AuthServiceClient<crate::channel::Balanced>,
    credentials: ClientCredentials,
    scopes: Vec<String>,
    /// Held while renewing, so concurrent callers wait for one renewal.
    current: Mutex<Option<(String, Instant)>>,
}

impl ServiceToken {
    /// Tokens from user-svc over `channel`.
    pub fn new(
        channel: crate::channel::Balanced,
        credentials: ClientCredentials,
        scopes: &[&str],
    ) -> Self {
        Self {
            auth: AuthServiceClient::new(channel),
            credentials,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            current: Mutex::new(None),
        }
    }

    /// A token valid for at least another minute.
    pub async fn get(&self) -> Result<String, String> {
        let mut current = self.current.lock().await;
        if let Some((token, expires)) = current.as_ref()
            && *expires > Instant::now() + RENEW_BEFORE
        {
            return Ok(token.clone());
        }
        let asked = Instant::now();
        let granted = self
            .auth
            .clone()
            .issue_service_token(IssueServiceTokenRequest {
                client_id: self.credentials.client_id.clone(),
                client_secret: self.credentials.secret.expose_secret().to_owned(),
                scopes: self.scopes.clone(),
            })
            .await
            .map_err(|status| {
                format!(
                    "IssueServiceToken for {} from user-svc: {}: {}",
                    self.credentials.client_id,
                    status.code(),
                    status.message()
                )
            })?
            .into_inner();
        let lifetime = Duration::from_secs(u64::try_from(granted.expires_in).unwrap_or(0));
        *current = Some((granted.access_token.clone(), asked + lifetime));
        Ok(granted.access_token)
    }

    /// Forgets `token` (user-svc refused it), so the next call asks anew.
    pub async fn forget(&self, token: &str) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|(held, _)| held == token) {
            *current = None;
        }
    }
}
