//! The gRPC layer of order-svc: decodes requests, authorizes, calls the
//! order rules, and maps results to the wire.

use oms_proto::order::v1::{self as pb, order_service_server::OrderService};
use oms_runtime::auth::{Role, require_admin, require_user};
use std::pin::Pin;
use tonic::service::Routes;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;

use crate::clients::call_context;
use crate::error::OrderError;
use crate::input::{self, Cancellation, NewOrder, OrderQuery, StatusChange};
use crate::orders::{Caller, Orders};
use crate::watch_slots::Refused;
use crate::wire::to_proto_order;

/// What the handlers share.
#[derive(Debug, Clone)]
pub(crate) struct State {
    /// The order rules.
    pub(crate) orders: Orders,
    /// WatchOrder streams open at once on this instance, at most
    /// [`MAX_WATCHERS`], and a share of them per user.
    pub(crate) watchers: crate::watch_slots::WatchSlots,
}

/// Most WatchOrder streams one instance serves at once: each holds a task
/// and a database read per change.
pub(crate) const MAX_WATCHERS: usize = 1000;

/// What WatchOrder answers with.
type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchOrderResponse, Status>> + Send>>;

/// Longest a WatchOrder stream stays open.
const MAX_WATCH: std::time::Duration = std::time::Duration::from_secs(600);

/// The routes of OrderService.
pub(crate) fn routes(state: State) -> Routes {
    Routes::new(pb::order_service_server::OrderServiceServer::new(
        OrderApi { state },
    ))
}

struct OrderApi {
    state: State,
}

fn auth(e: oms_runtime::ApiError) -> Status {
    OrderError::Auth(e).into()
}

fn user<T>(request: &Request<T>) -> Result<(String, Role), Status> {
    require_user(request).map_err(auth)
}

#[tonic::async_trait]
impl OrderService for OrderApi {
    async fn watch_order(
        &self,
        request: Request<pb::WatchOrderRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let (id, role) = user(&request)?;
        let order_id = input::order_id(&request.get_ref().order_id).map_err(OrderError::from)?;
        let limit = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(oms_core::time::parse_grpc_timeout)
            .map_or(MAX_WATCH, |t| t.min(MAX_WATCH));
        let permit = match self.state.watchers.take(&id) {
            Ok(slot) => slot,
            Err(Refused::Full) => {
                tracing::warn!(order_id, "WatchOrder refused: every watch slot is taken");
                metrics::counter!("oms_watch_refused_total", "reason" => "full").increment(1);
                return Err(OrderError::TooManyWatchers.into());
            }
            Err(Refused::UserShare(share)) => {
                tracing::warn!(order_id, user_id = %id, share, "WatchOrder refused: the user holds their share of watch slots");
                metrics::counter!("oms_watch_refused_total", "reason" => "user_share").increment(1);
                return Err(OrderError::TooManyOwnWatches(share).into());
            }
        };
        let mut watch = self
            .state
            .orders
            .watch(Caller { id: &id, role }, &order_id)
            .await?;
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let _permit = permit;
            let until = tokio::time::Instant::now() + limit;
            loop {
                let next = tokio::select! {
                    next = watch.next() => next,
                    () = tokio::time::sleep_until(until) => break,
                    () = sender.closed() => break,
                };
                let item = match next {
                    Ok(Some(order)) => Ok(pb::WatchOrderResponse {
                        order: Some(to_proto_order(order)),
                    }),
                    Ok(None) => break,
                    Err(e) => Err(Status::from(e)),
                };
                let failed = item.is_err();
                if sender.send(item).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }

    async fn create_order(
        &self,
        request: Request<pb::CreateOrderRequest>,
    ) -> Result<Response<pb::CreateOrderResponse>, Status> {
        let (customer, _) = user(&request)?;
        let ctx = call_context(&request);
        let input = NewOrder::try_from(request.into_inner()).map_err(OrderError::from)?;
        // The saga runs to its end even if the client hangs up midway, so
        // no order is left half-placed by a dropped connection. It stays
        // in the call's span: its logs and queries belong to the request's
        // trace.
        let orders = self.state.orders.clone();
        let placed = tokio::spawn(
            async move {
                orders
                    .create(
                        &ctx,
                        &customer,
                        &input.request_id,
                        input.lines,
                        input.quote_id.as_deref(),
                    )
                    .await
            }
            .in_current_span(),
        )
        .await
        .map_err(|source| OrderError::Task {
            what: "saga",
            source,
        })??;
        Ok(Response::new(pb::CreateOrderResponse {
            order: Some(to_proto_order(placed)),
        }))
    }

    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::GetOrderResponse>, Status> {
        let (id, role) = user(&request)?;
        let order_id = input::order_id(&request.get_ref().order_id).map_err(OrderError::from)?;
        let order = self
            .state
            .orders
            .get(Caller { id: &id, role }, &order_id)
            .await?;
        Ok(Response::new(pb::GetOrderResponse {
            order: Some(to_proto_order(order)),
        }))
    }

    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let (id, role) = user(&request)?;
        let query = OrderQuery::try_from(request.into_inner()).map_err(OrderError::from)?;
        let (orders, next) = self
            .state
            .orders
            .list(Caller { id: &id, role }, &query)
            .await?;
        Ok(Response::new(pb::ListOrdersResponse {
            orders: orders.into_iter().map(to_proto_order).collect(),
            next_page_token: next
                .as_deref()
                .map(oms_core::paging::encode_token)
                .unwrap_or_default(),
        }))
    }

    async fn cancel_order(
        &self,
        request: Request<pb::CancelOrderRequest>,
    ) -> Result<Response<pb::CancelOrderResponse>, Status> {
        let (id, role) = user(&request)?;
        let ctx = call_context(&request);
        let Cancellation { order_id, reason } =
            Cancellation::try_from(request.into_inner()).map_err(OrderError::from)?;
        let orders = self.state.orders.clone();
        let cancelled = tokio::spawn(
            async move {
                orders
                    .cancel(&ctx, Caller { id: &id, role }, &order_id, &reason)
                    .await
            }
            .in_current_span(),
        )
        .await
        .map_err(|source| OrderError::Task {
            what: "cancellation",
            source,
        })??;
        Ok(Response::new(pb::CancelOrderResponse {
            order: Some(to_proto_order(cancelled)),
        }))
    }

    async fn update_order_status(
        &self,
        request: Request<pb::UpdateOrderStatusRequest>,
    ) -> Result<Response<pb::UpdateOrderStatusResponse>, Status> {
        let admin = require_admin(&request).map_err(auth)?;
        let StatusChange { order_id, to } =
            StatusChange::try_from(request.into_inner()).map_err(OrderError::from)?;
        let order = self
            .state
            .orders
            .advance(
                Caller {
                    id: &admin,
                    role: Role::Admin,
                },
                &order_id,
                to,
            )
            .await?;
        Ok(Response::new(pb::UpdateOrderStatusResponse {
            order: Some(to_proto_order(order)),
        }))
    }
}
