//! What a service tells the runtime about itself: its name, the gRPC
//! services it implements and their descriptors, and the methods polled
//! on a timer.

/// What a service exposes besides its own routes.
#[derive(Debug, Clone, Copy)]
pub struct ServiceInfo {
    /// Short name for logs, e.g. `user-svc`.
    pub name: &'static str,
    /// Fully qualified gRPC services it implements; health and reflection
    /// report exactly these.
    pub grpc_services: &'static [&'static str],
    /// The encoded descriptor set that describes them.
    pub descriptors: &'static [u8],
    /// Methods other processes call on a timer (e.g. the revocation list,
    /// every second from every verifier), as `/package.Service/Method`:
    /// their access lines are at DEBUG when they succeed, so an idle mesh
    /// does not log all day; a failure is still at INFO.
    pub polled: &'static [&'static str],
}
