//! The services the gateway forwards to, by name, and one shared HTTP/2
//! channel to each. Channels connect lazily and reconnect on their own, so
//! the gateway starts before its backends.

use oms_runtime::channel::Balanced;

use crate::config::Config;

/// A backend service of the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Service {
    /// user-svc: `oms.user.v1`.
    User,
    /// product-svc: `oms.product.v1`.
    Product,
    /// order-svc: `oms.order.v1`.
    Order,
}

impl Service {
    /// Every backend, in the order `/readyz` reports them.
    pub(crate) const ALL: [Self; 3] = [Self::User, Self::Product, Self::Order];

    /// Its short name, as `/readyz` reports it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::User => "user-svc",
            Self::Product => "product-svc",
            Self::Order => "order-svc",
        }
    }

    /// The service that serves a protobuf package; `None` for packages
    /// the gateway does not route (health, reflection, google.*).
    pub(crate) fn of_package(package: &str) -> Option<Self> {
        match package {
            "oms.user.v1" => Some(Self::User),
            "oms.product.v1" => Some(Self::Product),
            "oms.order.v1" => Some(Self::Order),
            _ => None,
        }
    }
}

/// Every backend's channel.
#[derive(Clone, Debug)]
pub(crate) struct Backends {
    user: Balanced,
    product: Balanced,
    order: Balanced,
}

impl Backends {
    /// Builds the channels (to every replica of each service, dialled as
    /// `dial` says) without connecting.
    pub(crate) fn connect_lazy(
        config: &Config,
        dial: &oms_runtime::channel::Dial,
    ) -> Result<Self, oms_runtime::channel::ChannelError> {
        let channel = |addr| {
            oms_runtime::channel::balanced(
                addr,
                dial,
                oms_runtime::channel::ChannelOptions::default(),
            )
        };
        Ok(Self {
            user: channel(&config.user_svc_addr)?,
            product: channel(&config.product_svc_addr)?,
            order: channel(&config.order_svc_addr)?,
        })
    }

    /// The shared channel to `service`.
    pub(crate) fn channel(&self, service: Service) -> Balanced {
        match service {
            Service::User => self.user.clone(),
            Service::Product => self.product.clone(),
            Service::Order => self.order.clone(),
        }
    }
}
