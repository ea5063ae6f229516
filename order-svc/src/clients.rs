//! Calls to the services order-svc depends on: a service token from
//! user-svc (cached, renewed before expiry, one renewal at a time), and
//! product-svc's InventoryService with that token, a deadline no longer
//! than the caller's, the caller's trace context, and bounded retries with
//! backoff on UNAVAILABLE. Every inventory call is idempotent (keyed by
//! reservation ID), so retrying is safe. [`GrpcInventory`] is the
//! [`Inventory`] port over these calls: wire types end here.

use oms_config::PeerAddr;
use oms_runtime::channel::ChannelError;
use oms_runtime::channel::Dial;
use std::future::Future;
use std::time::{Duration, Instant};

use oms_proto::common::v1::LineItem;
use oms_proto::product::v1::{self as pb, inventory_service_client::InventoryServiceClient};
use oms_proto::user::v1::{IssueServiceTokenRequest, auth_service_client::AuthServiceClient};
use oms_runtime::channel::Balanced;
use secrecy::ExposeSecret as _;
use tokio::sync::Mutex;
use tonic::{Code, Request, Status};

use crate::config::ClientSecret;
use crate::inventory::{
    CallContext, Inventory, InventoryError, Line, Price, QuoteUse, Refusal, RefusalKind,
    Reservation, ReservationState, ReservedLine, Unavailable,
};

/// Attempts per call when the dependency answers UNAVAILABLE.
const ATTEMPTS: u32 = 3;
/// First pause between attempts; doubles each time.
const BACKOFF: Duration = Duration::from_millis(50);
/// Renew a token this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

/// The context of an incoming request: its deadline and trace.
pub fn call_context<T>(request: &Request<T>) -> CallContext {
    let header = |name: &str| {
        request
            .metadata()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    CallContext {
        deadline: header("grpc-timeout")
            .as_deref()
            .and_then(oms_core::time::parse_grpc_timeout)
            .map(|t| Instant::now() + t),
        traceparent: header("traceparent"),
    }
}

fn channel(addr: &PeerAddr, dial: &Dial, timeout: Duration) -> Result<Balanced, ChannelError> {
    oms_runtime::channel::balanced(
        addr,
        dial,
        oms_runtime::channel::ChannelOptions {
            connect_timeout: timeout,
            call_timeout: None,
        },
    )
}

#[derive(Clone)]
struct CachedToken {
    token: String,
    expires_at: Instant,
}

/// order-svc's service token, from user-svc's IssueServiceToken.
pub struct ServiceTokens {
    auth: AuthServiceClient<Balanced>,
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
    /// Tokens for `client_id` from user-svc at `user_svc` (its replicas
    /// dialled as `dial` says).
    pub fn new(
        user_svc: &PeerAddr,
        dial: &Dial,
        client_id: String,
        secret: ClientSecret,
        timeout: Duration,
    ) -> Result<Self, ChannelError> {
        Ok(Self {
            auth: AuthServiceClient::new(channel(user_svc, dial, timeout)?),
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
            client_secret: self.secret.expose_secret().to_owned(),
            scopes: vec!["inventory:write".to_owned()],
        };
        let started = Instant::now();
        let response = retry_unavailable(self.timeout, ctx, || {
            let mut auth = self.auth.clone();
            let mut request = Request::new(request.clone());
            request.set_timeout(ctx.budget(self.timeout));
            if let Some(value) = ctx
                .traceparent
                .as_deref()
                .and_then(oms_runtime::observe::unique_metadata)
            {
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

/// product-svc's InventoryService, authenticated as order-svc: the
/// [`Inventory`] port over gRPC.
pub struct GrpcInventory {
    client: InventoryServiceClient<Balanced>,
    tokens: ServiceTokens,
    timeout: Duration,
}

impl std::fmt::Debug for GrpcInventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcInventory")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What product-svc's answer means to the saga: a refusal for a business
/// reason (passed on with its details), or no usable answer.
fn to_inventory_error(status: Status) -> InventoryError {
    let kind = match status.code() {
        Code::InvalidArgument => Some(RefusalKind::Invalid),
        Code::NotFound => Some(RefusalKind::NotFound),
        Code::FailedPrecondition => Some(RefusalKind::FailedPrecondition),
        Code::AlreadyExists => Some(RefusalKind::AlreadyExists),
        Code::OutOfRange => Some(RefusalKind::OutOfRange),
        _ => None,
    };
    match kind {
        Some(kind) => InventoryError::Refused(Refusal {
            kind,
            message: status.message().to_owned(),
            details: status.details().to_vec(),
        }),
        None => InventoryError::Unavailable(Unavailable {
            timed_out: status.code() == Code::DeadlineExceeded,
            message: status.message().to_owned(),
        }),
    }
}

fn garbled(what: &str) -> InventoryError {
    InventoryError::Unavailable(Unavailable {
        timed_out: false,
        message: format!("product-svc sent {what}"),
    })
}

fn to_reservation(reservation: Option<pb::Reservation>) -> Result<Reservation, InventoryError> {
    let r = reservation.ok_or_else(|| garbled("no reservation"))?;
    let state = match r.state() {
        pb::ReservationState::Reserved => ReservationState::Reserved,
        pb::ReservationState::Committed => ReservationState::Committed,
        pb::ReservationState::Released => ReservationState::Released,
        pb::ReservationState::Expired => ReservationState::Expired,
        pb::ReservationState::Unspecified => return Err(garbled("no reservation state")),
    };
    let lines = r
        .lines
        .into_iter()
        .map(|line| {
            let price = line
                .unit_price
                .ok_or_else(|| garbled("a reserved line without a price"))?;
            Ok(ReservedLine {
                product_id: line.product_id,
                sku: line.sku,
                name: line.name,
                quantity: line.quantity,
                unit_price: Price {
                    currency_code: price.currency_code,
                    amount_minor: price.amount_minor,
                },
            })
        })
        .collect::<Result<_, InventoryError>>()?;
    Ok(Reservation {
        id: r.reservation_id,
        state,
        lines,
    })
}

impl GrpcInventory {
    /// A client for product-svc at `addr` (its replicas dialled as `dial`
    /// says).
    pub fn new(
        addr: &PeerAddr,
        dial: &Dial,
        tokens: ServiceTokens,
        timeout: Duration,
    ) -> Result<Self, ChannelError> {
        Ok(Self {
            client: InventoryServiceClient::new(channel(addr, dial, timeout)?),
            tokens,
            timeout,
        })
    }

    /// The client order-svc's configuration describes: product-svc and
    /// user-svc where it says, as the client it names.
    pub fn from_config(
        config: &crate::Config,
        dial: &Dial,
    ) -> Result<Self, oms_runtime::StartupError> {
        let secret = config.client_secret.clone().ok_or_else(|| {
            oms_config::ConfigError::new(
                crate::CLIENT_SECRET_VAR,
                "must be set: order-svc's OAuth2 client secret at user-svc",
            )
        })?;
        let dependency =
            |e: ChannelError| oms_runtime::StartupError::setup("order-svc dependencies", e);
        let tokens = ServiceTokens::new(
            &config.user_svc_addr,
            dial,
            config.client_id.clone(),
            secret,
            config.call_timeout,
        )
        .map_err(dependency)?;
        Self::new(&config.product_svc_addr, dial, tokens, config.call_timeout).map_err(dependency)
    }

    /// One idempotent call: token, deadline, trace context, retries on
    /// UNAVAILABLE, and one token renewal if product-svc says
    /// UNAUTHENTICATED (the token may have been signed by a rotated key).
    async fn call<M, R, F, Fut>(&self, ctx: &CallContext, message: M, send: F) -> Result<R, Status>
    where
        M: Clone,
        F: Fn(InventoryServiceClient<Balanced>, Request<M>) -> Fut,
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
                if let Some(value) = ctx
                    .traceparent
                    .as_deref()
                    .and_then(oms_runtime::observe::unique_metadata)
                {
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

#[async_trait::async_trait]
impl Inventory for GrpcInventory {
    async fn take(
        &self,
        ctx: &CallContext,
        reservation_id: &str,
        lines: &[Line],
        quote: Option<&QuoteUse>,
    ) -> Result<Reservation, InventoryError> {
        let message = pb::ReserveStockRequest {
            reservation_id: reservation_id.to_owned(),
            lines: lines
                .iter()
                .map(|l| LineItem {
                    product_id: l.product_id.clone(),
                    quantity: l.quantity,
                })
                .collect(),
            quote_id: quote.map(|q| q.quote_id.clone()).unwrap_or_default(),
            customer_id: quote.map(|q| q.customer_id.clone()).unwrap_or_default(),
            order_id: quote.map(|q| q.order_id.clone()).unwrap_or_default(),
            // Reserve and commit in product-svc's one transaction: the
            // saga has nothing to check in between that a release after
            // the commit cannot undo.
            commit: true,
        };
        let r = self
            .call(
                ctx,
                message,
                |mut c, r| async move { c.reserve_stock(r).await },
            )
            .await
            .map_err(to_inventory_error)?;
        to_reservation(r.reservation)
    }

    async fn release(&self, ctx: &CallContext, reservation_id: &str) -> Result<(), InventoryError> {
        let message = pb::ReleaseReservationRequest {
            reservation_id: reservation_id.to_owned(),
        };
        match self
            .call(ctx, message, |mut c, r| async move {
                c.release_reservation(r).await
            })
            .await
        {
            // Never made: it holds nothing, which is what release is for.
            Err(status) if status.code() == Code::NotFound => Ok(()),
            other => other.map(drop).map_err(to_inventory_error),
        }
    }

    async fn get(
        &self,
        ctx: &CallContext,
        reservation_id: &str,
    ) -> Result<Option<Reservation>, InventoryError> {
        let message = pb::GetReservationRequest {
            reservation_id: reservation_id.to_owned(),
        };
        match self
            .call(ctx, message, |mut c, r| async move {
                c.get_reservation(r).await
            })
            .await
        {
            Err(status) if status.code() == Code::NotFound => Ok(None),
            other => to_reservation(other.map_err(to_inventory_error)?.reservation).map(Some),
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
