//! What one gRPC listener lets its clients hold, read from
//! `OMS_GRPC_MAX_*`; the server enforces it, this only says how much.

use std::time::Duration;

use crate::{ConfigError, Env};

/// What one gRPC listener lets its clients hold (SECURITY.md gives the
/// memory each bound keeps within).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcLimits {
    /// Connections open at once; more are closed on arrival. The mesh's
    /// own clients hold one per peer.
    pub max_connections: usize,
    /// Calls open at once, streams included (WatchOrder takes at most
    /// 1,000); more are refused with RESOURCE_EXHAUSTED. Also each
    /// connection's SETTINGS_MAX_CONCURRENT_STREAMS, so the mesh's one
    /// connection per peer may use all of it.
    pub max_calls: u32,
    /// How long a call may take to be answered when its caller set no
    /// `grpc-timeout` (and the most any `grpc-timeout` gets): a call whose
    /// body never completes ends with DEADLINE_EXCEEDED.
    pub max_call_time: Duration,
    /// How long a connection lives before the server asks the client to
    /// make a new one (GOAWAY; calls in flight get `max_call_time` more):
    /// clients that do not balance (grpcurl, generated clients behind a
    /// ClusterIP) still spread over the replicas as time passes.
    pub max_connection_age: Duration,
}

impl Default for GrpcLimits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            max_calls: 2_048,
            max_call_time: Duration::from_secs(60),
            max_connection_age: Duration::from_secs(300),
        }
    }
}

impl GrpcLimits {
    /// `OMS_GRPC_MAX_CONNECTIONS`, `OMS_GRPC_MAX_CALLS`,
    /// `OMS_GRPC_MAX_CALL_TIME`, `OMS_MAX_CONNECTION_AGE`, each bounded.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let default = Self::default();
        Ok(Self {
            max_connections: env.bounded(
                "OMS_GRPC_MAX_CONNECTIONS",
                default.max_connections,
                8..=65_536,
            )?,
            max_calls: env.bounded("OMS_GRPC_MAX_CALLS", default.max_calls, 8..=65_536)?,
            max_call_time: env.duration(
                "OMS_GRPC_MAX_CALL_TIME",
                default.max_call_time,
                Duration::from_secs(1)..=Duration::from_secs(3_600),
            )?,
            max_connection_age: env.duration(
                "OMS_MAX_CONNECTION_AGE",
                default.max_connection_age,
                Duration::from_secs(1)..=Duration::from_secs(86_400),
            )?,
        })
    }
}
