//! The OMS contract in Rust: messages, gRPC servers and clients generated
//! from `proto/`, and the encoded descriptor set (with `google.api.http`
//! options kept) that reflection and the gateway read.
//!
//! Generated code lives here and nowhere else; services depend on this crate
//! instead of compiling protos themselves.

#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

/// The encoded `FileDescriptorSet` of the whole contract and its imports,
/// with source info (comments) and custom options.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/oms_descriptor.bin"));

/// `oms.common.v1`: messages shared by every service.
pub mod common {
    pub mod v1 {
        tonic::include_proto!("oms.common.v1");
    }
}

/// `oms.user.v1`: AuthService, UserService and OAuthService.
pub mod user {
    pub mod v1 {
        tonic::include_proto!("oms.user.v1");
    }
}

/// `oms.product.v1`: ProductService, InventoryService and QuoteService.
pub mod product {
    pub mod v1 {
        tonic::include_proto!("oms.product.v1");
    }
}

/// `oms.order.v1`: OrderService.
pub mod order {
    pub mod v1 {
        tonic::include_proto!("oms.order.v1");
    }
}

/// `google.api`: the HTTP annotation messages.
pub mod google {
    pub mod api {
        tonic::include_proto!("google.api");
    }
}

/// Fully qualified names of every gRPC service, as reflection and health
/// report them.
pub mod service_names {
    pub const AUTH: &str = "oms.user.v1.AuthService";
    pub const USER: &str = "oms.user.v1.UserService";
    pub const OAUTH: &str = "oms.user.v1.OAuthService";
    pub const PRODUCT: &str = "oms.product.v1.ProductService";
    pub const INVENTORY: &str = "oms.product.v1.InventoryService";
    pub const QUOTE: &str = "oms.product.v1.QuoteService";
    pub const ORDER: &str = "oms.order.v1.OrderService";
}

/// A request's line as the domain reads it before checking it.
impl oms_core::lines::RawLine for common::v1::LineItem {
    fn product_id(&self) -> &str {
        &self.product_id
    }

    fn quantity(&self) -> i32 {
        self.quantity
    }
}
