//! `oms.product.v1.QuoteService`: signed-in users, each with their own
//! quotes.

use oms_proto::product::v1::{self as pb, quote_service_server::QuoteService};
use oms_runtime::auth::require_user;
use tonic::{Request, Response, Status};

use super::State;
use crate::error::ProductError;
use crate::input;
use crate::model::{Quote, QuoteState};
use crate::wire::money;

pub(super) struct QuoteApi {
    pub(super) state: State,
}

fn auth(e: oms_runtime::ApiError) -> Status {
    ProductError::Auth(e).into()
}

#[tonic::async_trait]
impl QuoteService for QuoteApi {
    async fn create_quote(
        &self,
        request: Request<pb::CreateQuoteRequest>,
    ) -> Result<Response<pb::CreateQuoteResponse>, Status> {
        let (customer_id, _) = require_user(&request).map_err(auth)?;
        let lines = input::quote_lines(request.get_ref()).map_err(ProductError::Invalid)?;
        let quote = self.state.quotes.create(&customer_id, lines).await?;
        Ok(Response::new(pb::CreateQuoteResponse {
            quote: Some(to_proto_quote(quote)),
        }))
    }

    #[tracing::instrument(skip_all, name = "GetQuote", fields(quote_id = %request.get_ref().quote_id))]
    async fn get_quote(
        &self,
        request: Request<pb::GetQuoteRequest>,
    ) -> Result<Response<pb::GetQuoteResponse>, Status> {
        let (customer_id, _) = require_user(&request).map_err(auth)?;
        let id =
            input::uuid("quote_id", &request.get_ref().quote_id).map_err(ProductError::from)?;
        let quote = self.state.quotes.get(&customer_id, &id).await?;
        Ok(Response::new(pb::GetQuoteResponse {
            quote: Some(to_proto_quote(quote)),
        }))
    }
}

fn to_proto_quote(q: Quote) -> pb::Quote {
    let state = match q.state_at(oms_core::time::now()) {
        QuoteState::Open => pb::QuoteState::Open,
        QuoteState::Consumed => pb::QuoteState::Consumed,
        QuoteState::Expired => pb::QuoteState::Expired,
    };
    let currency = q.currency_code;
    pb::Quote {
        lines: q
            .lines
            .into_iter()
            .map(|l| pb::QuoteLine {
                unit_price: money(&currency, l.unit_price_minor),
                line_total: money(&currency, l.line_total_minor),
                product_id: l.product_id,
                sku: l.sku,
                name: l.name,
                quantity: l.quantity,
            })
            .collect(),
        total: money(&currency, q.total_minor),
        create_time: Some(oms_core::time::to_timestamp(q.create_time)),
        expire_time: Some(oms_core::time::to_timestamp(q.expire_time)),
        state: state.into(),
        order_id: q.order_id.unwrap_or_default(),
        id: q.id,
        customer_id: q.customer_id,
    }
}
