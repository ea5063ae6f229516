//! Calls to the services order-svc depends on: a service token from
//! user-svc (cached, renewed before expiry, one renewal at a time), and
//! product-svc's InventoryService with that token, a deadline no longer
//! than the caller's, the caller's trace context, and bounded retries with
//! backoff on UNAVAILABLE. Every inventory call is idempotent (keyed by
//! reservation ID), so retrying is safe.

use kit::config::PeerAddr;
use std::future::Future;
use std::time::{Duration, Instant};

use oms_proto::product::v1::{self as pb, inventory_service_client::InventoryServiceClient};
use oms_proto::user::v1::{IssueServiceTokenRequest, auth_service_client::AuthServiceClient};
use tokio::sync::Mutex;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::config::ClientSecret;

/// Attempts per call when the dependency answers UNAVAILABLE.
const ATTEMPTS: u32 = 3;
/// First pause between attempts; doubles each time.
const BACKOFF: Duration = Duration::from_millis(50);
/// Renew a token this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

/// What a call may carry from the request that caused it.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// When the caller stops waiting (from its `grpc-timeout`).
    pub deadline: Option<Instant>,
    /// W3C `traceparent` of the incoming request.
    pub traceparent: Option<String>,
}

impl CallContext {
    /// The context of an incoming request.
    pub fn of<T>(request: &Request<T>) -> Self {
        let header = |name: &str| {
            request
                .metadata()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            deadline: header("grpc-timeout")
                .as_deref()
                .and_then(kit::time::parse_grpc_timeout)
                .map(|t| Instant::now() + t),
            traceparent: header("traceparent"),
        }
    }

    /// The time a call may take: the configured limit, or less if the
    /// caller's deadline is nearer.
    fn budget(&self, limit: Duration) -> Duration {
        self.deadline.map_or(limit, |d| {
            d.saturating_duration_since(Instant::now()).min(limit)
        })
    }
}

fn channel(addr: &PeerAddr, timeout: Duration) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(addr.uri())?
        .connect_timeout(timeout)
        .tcp_nodelay(true)
        .connect_lazy())
}

#[derive(Clone)]
struct CachedToken {
    token: String,
    expires_at: Instant,
}

/// order-svc's service token, from user-svc's IssueServiceToken.
pub struct ServiceTokens {
    auth: AuthServiceClient<Channel>,
    client_id: String,
    secret: ClientSecret,
    timeout: Duration,
    /// Held while renewing, so concurrent callers wait for one renewal.
    current: Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTokens")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ServiceTokens {
    /// Tokens for `client_id` from user-svc at `user_svc`.
    pub fn new(
        user_svc: &PeerAddr,
        client_id: String,
        secret: ClientSecret,
        timeout: Duration,
    ) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            auth: AuthServiceClient::new(channel(user_svc, timeout)?),
            client_id,
            secret,
            timeout,
            current: Mutex::new(None),
        })
    }

    /// A valid token: the cached one, renewed when it nears expiry. If
    /// user-svc cannot renew it, the cached one serves until it expires.
    pub async fn token(&self, ctx: &CallContext) -> Result<String, Status> {
        let mut current = self.current.lock().await;
        let now = Instant::now();
        if let Some(cached) = current.as_ref()
            && cached.expires_at > now + RENEW_BEFORE
        {
            return Ok(cached.token.clone());
        }
        match self.issue(ctx).await {
            Ok(fresh) => {
                let token = fresh.token.clone();
                *current = Some(fresh);
                Ok(token)
            }
            Err(e) => match current.as_ref() {
                Some(cached) if cached.expires_at > now => {
                    tracing::warn!(error = %e, "cannot renew the service token; using the current one until it expires");
                    Ok(cached.token.clone())
                }
                _ => Err(Status::unavailable(format!(
                    "cannot get a service token from user-svc: {}",
                    e.message()
                ))),
            },
        }
    }

    /// Forgets `token` (product-svc refused it), so the next call renews.
    pub async fn invalidate(&self, token: &str) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| c.token == token) {
            *current = None;
        }
    }

    /// A new token; the renewal belongs to the trace of the call that
    /// needed it.
    async fn issue(&self, ctx: &CallContext) -> Result<CachedToken, Status> {
        let request = IssueServiceTokenRequest {
            client_id: self.client_id.clone(),
            client_secret: self.secret.0.clone(),
            scopes: vec!["inventory:write".to_owned()],
        };
        let started = Instant::now();
        let response = retry_unavailable(self.timeout, ctx, || {
            let mut auth = self.auth.clone();
            let mut request = Request::new(request.clone());
            request.set_timeout(ctx.budget(self.timeout));
            if let Some(value) = ctx.traceparent.as_deref().and_then(|t| t.parse().ok()) {
                request.metadata_mut().insert("traceparent", value);
            }
            async move { auth.issue_service_token(request).await }
        })
        .await
        .inspect_err(|_| {
            metrics::counter!("oms_service_token_renewals_total", "outcome" => "error")
                .increment(1);
        })?
        .into_inner();
        metrics::counter!("oms_service_token_renewals_total", "outcome" => "ok").increment(1);
        let lifetime = Duration::from_secs(u64::try_from(response.expires_in).unwrap_or(0));
        tracing::info!(lifetime_secs = lifetime.as_secs(), "service token renewed");
        Ok(CachedToken {
            token: response.access_token,
            expires_at: started + lifetime,
        })
    }
}

/// product-svc's InventoryService, authenticated as order-svc.
pub struct Inventory {
    client: InventoryServiceClient<Channel>,
    tokens: ServiceTokens,
    timeout: Duration,
}

impl std::fmt::Debug for Inventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inventory")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Inventory {
    /// A client for product-svc at `addr`.
    pub fn new(
        addr: &PeerAddr,
        tokens: ServiceTokens,
        timeout: Duration,
    ) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            client: InventoryServiceClient::new(channel(addr, timeout)?),
            tokens,
            timeout,
        })
    }

    /// ReserveStock.
    pub async fn reserve(
        &self,
        ctx: &CallContext,
        message: pb::ReserveStockRequest,
    ) -> Result<pb::Reservation, Status> {
        let r = self
            .call(
                ctx,
                message,
                |mut c, r| async move { c.reserve_stock(r).await },
            )
            .await?;
        r.reservation
            .ok_or_else(|| Status::internal("product-svc sent no reservation"))
    }

    /// CommitReservation.
    pub async fn commit(
        &self,
        ctx: &CallContext,
        reservation_id: &str,
    ) -> Result<pb::Reservation, Status> {
        let message = pb::CommitReservationRequest {
            reservation_id: reservation_id.to_owned(),
        };
        let r = self
            .call(ctx, message, |mut c, r| async move {
                c.commit_reservation(r).await
            })
            .await?;
        r.reservation
            .ok_or_else(|| Status::internal("product-svc sent no reservation"))
    }

    /// ReleaseReservation.
    pub async fn release(
        &self,
        ctx: &CallContext,
        reservation_id: &str,
    ) -> Result<pb::Reservation, Status> {
        let message = pb::ReleaseReservationRequest {
            reservation_id: reservation_id.to_owned(),
        };
        let r = self
            .call(ctx, message, |mut c, r| async move {
                c.release_reservation(r).await
            })
            .await?;
        r.reservation
            .ok_or_else(|| Status::internal("product-svc sent no reservation"))
    }

    /// GetReservation.
    pub async fn get(
        &self,
        ctx: &CallContext,
        reservation_id: &str,
    ) -> Result<pb::Reservation, Status> {
        let message = pb::GetReservationRequest {
            reservation_id: reservation_id.to_owned(),
        };
        let r = self
            .call(ctx, message, |mut c, r| async move {
                c.get_reservation(r).await
            })
            .await?;
        r.reservation
            .ok_or_else(|| Status::internal("product-svc sent no reservation"))
    }

    /// One idempotent call: token, deadline, trace context, retries on
    /// UNAVAILABLE, and one token renewal if product-svc says
    /// UNAUTHENTICATED (the token may have been signed by a rotated key).
    async fn call<M, R, F, Fut>(&self, ctx: &CallContext, message: M, send: F) -> Result<R, Status>
    where
        M: Clone,
        F: Fn(InventoryServiceClient<Channel>, Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, Status>>,
    {
        let mut renewed = false;
        loop {
            let token = self.tokens.token(ctx).await?;
            let result = retry_unavailable(self.timeout, ctx, || {
                let mut request = Request::new(message.clone());
                request.set_timeout(ctx.budget(self.timeout));
                if let Ok(value) = format!("Bearer {token}").parse() {
                    request.metadata_mut().insert("authorization", value);
                }
                if let Some(value) = ctx.traceparent.as_deref().and_then(|t| t.parse().ok()) {
                    request.metadata_mut().insert("traceparent", value);
                }
                send(self.client.clone(), request)
            })
            .await;
            match result {
                Err(status) if status.code() == Code::Unauthenticated && !renewed => {
                    renewed = true;
                    self.tokens.invalidate(&token).await;
                }
                other => return other.map(tonic::Response::into_inner),
            }
        }
    }
}

/// Runs `call` until it succeeds, fails with anything but UNAVAILABLE, or
/// runs out of attempts or of the caller's time.
async fn retry_unavailable<R, F, Fut>(
    limit: Duration,
    ctx: &CallContext,
    mut call: F,
) -> Result<R, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<R, Status>>,
{
    let mut pause = BACKOFF;
    let mut attempt = 1;
    loop {
        let budget = ctx.budget(limit);
        if budget.is_zero() {
            return Err(Status::deadline_exceeded("the caller's deadline passed"));
        }
        let outcome = match tokio::time::timeout(budget, call()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Status::deadline_exceeded(
                "a dependency did not answer in time",
            )),
        };
        match outcome {
            Err(status)
                if status.code() == Code::Unavailable
                    && attempt < ATTEMPTS
                    && ctx.budget(limit) > pause =>
            {
                tracing::debug!(attempt, error = %status.message(), "dependency unavailable; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}
