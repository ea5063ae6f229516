//! One shared HTTP/2 channel per backend service. Channels connect lazily
//! and reconnect on their own, so the gateway starts before its backends.

use kit::config::PeerAddr;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::config::Config;

/// A backend by name, with its channel.
#[derive(Clone, Debug)]
pub(crate) struct Backend {
    /// The service's short name, as `/readyz` reports it.
    pub(crate) name: &'static str,
    /// The shared channel.
    pub(crate) channel: Channel,
}

/// Every backend the gateway forwards to.
#[derive(Clone, Debug)]
pub(crate) struct Backends {
    /// user-svc, product-svc, order-svc, in that order.
    pub(crate) all: [Backend; 3],
}

impl Backends {
    /// Builds the channels without connecting.
    pub(crate) fn connect_lazy(config: &Config) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            all: [
                backend("user-svc", &config.user_svc_addr)?,
                backend("product-svc", &config.product_svc_addr)?,
                backend("order-svc", &config.order_svc_addr)?,
            ],
        })
    }
}

fn backend(name: &'static str, addr: &PeerAddr) -> Result<Backend, tonic::transport::Error> {
    let channel = Endpoint::from_shared(addr.uri())?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .connect_lazy();
    Ok(Backend { name, channel })
}
