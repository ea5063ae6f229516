//! Configuration from environment variables: read once at start-up, parsed
//! into typed values, and every failure names the variable to fix.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod grpc_limits;
pub mod tls;

pub use grpc_limits::GrpcLimits;
pub use secrecy::{ExposeSecret, SecretString};
pub use tls::{MeshTls, PublicTls};

/// The variable of [`Env::proxy_secret`].
pub const PROXY_SECRET_VAR: &str = "OMS_PROXY_SECRET";

/// The gRPC metadata key the gateway sends [`Env::proxy_secret`] in.
pub const PROXY_SECRET_HEADER: &str = "x-oms-proxy-secret";

/// A configuration value that could not be used. The message names the
/// variable, so the operator knows what to change.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: String,
    /// What is wrong with it (never its value when it may be a secret).
    pub reason: String,
}

impl ConfigError {
    /// A new error about `var`.
    pub fn new(var: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            var: var.into(),
            reason: reason.into(),
        }
    }
}

/// Where configuration comes from: the process environment, or a fixed map
/// in tests (so tests never mutate the process-wide environment).
#[derive(Debug, Clone, Default)]
pub struct Env {
    overrides: Option<HashMap<String, String>>,
    /// Every variable asked for, so a binary can list what it reads.
    asked: Arc<Mutex<BTreeSet<String>>>,
}

impl Env {
    /// Reads the process environment.
    pub fn process() -> Self {
        Self::default()
    }

    /// Reads only the given pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            overrides: Some(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
            asked: Arc::default(),
        }
    }

    /// The variable's value; unset and empty are the same (compose files
    /// often write `VAR=` for "not set").
    pub fn get(&self, var: &str) -> Result<Option<String>, ConfigError> {
        if let Ok(mut asked) = self.asked.lock() {
            asked.insert(var.to_owned());
        }
        let value = match &self.overrides {
            Some(map) => map.get(var).cloned(),
            None => match std::env::var(var) {
                Ok(value) => Some(value),
                Err(std::env::VarError::NotPresent) => None,
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(ConfigError::new(var, "is not valid UTF-8"));
                }
            },
        };
        Ok(value.filter(|v| !v.trim().is_empty()))
    }

    /// The variables asked for so far, sorted.
    pub fn asked(&self) -> Vec<String> {
        self.asked
            .lock()
            .map(|asked| asked.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Parses the variable with `FromStr`, or returns `default` when unset.
    pub fn parse_or<T>(&self, var: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.get(var)? {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e| ConfigError::new(var, format!("cannot parse {raw:?}: {e}"))),
        }
    }

    /// A number from `var` that must lie in `range`, or `default` when
    /// unset; the error names the variable and the range.
    pub fn bounded<T>(
        &self,
        var: &str,
        default: T,
        range: RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + fmt::Display,
        T::Err: fmt::Display,
    {
        let value = self.parse_or(var, default)?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::new(
                var,
                format!("must be from {} to {}", range.start(), range.end()),
            ))
        }
    }

    /// A duration in whole seconds from `var` (see [`Env::bounded`]).
    pub fn seconds(
        &self,
        var: &str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        self.bounded(var, default, range).map(Duration::from_secs)
    }

    /// A duration in milliseconds from `var` (see [`Env::bounded`]).
    pub fn millis(
        &self,
        var: &str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        self.bounded(var, default, range).map(Duration::from_millis)
    }

    /// A duration written with its unit from `var` (`90s`, `15m`, `2h`,
    /// `7d`: whole seconds, minutes, hours or days), in `range`, or
    /// `default` when unset; the error names the variable, the form and
    /// the range.
    pub fn duration(
        &self,
        var: &str,
        default: Duration,
        range: RangeInclusive<Duration>,
    ) -> Result<Duration, ConfigError> {
        let Some(raw) = self.get(var)? else {
            return Ok(default);
        };
        let bounds = format!(
            "from {} to {}",
            format_duration(*range.start()),
            format_duration(*range.end())
        );
        let value = parse_duration(raw.trim()).ok_or_else(|| {
            ConfigError::new(
                var,
                format!(
                    "must be a whole number with a unit (s, m, h or d), like 15m, {bounds}; got {:?}",
                    raw.trim()
                ),
            )
        })?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::new(var, format!("must be {bounds}")))
        }
    }

    /// `true` or `false` from `var`, or `default` when unset.
    pub fn flag(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var)?.as_deref().map(str::trim) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(ConfigError::new(
                var,
                format!("must be true or false, got {other:?}"),
            )),
        }
    }

    /// A secret (password, client secret): never shown by `Debug`.
    pub fn secret(&self, var: &str) -> Result<Option<SecretString>, ConfigError> {
        Ok(self.get(var)?.map(SecretString::from))
    }

    /// `OMS_PROXY_SECRET`: what the gateway sends with `x-forwarded-for`
    /// (in [`PROXY_SECRET_HEADER`]) and user-svc requires before it
    /// believes that header from a trusted proxy, so that being on a
    /// trusted address (loopback, a pod network) is not enough to name
    /// any client address. At least 32 characters.
    pub fn proxy_secret(&self) -> Result<Option<SecretString>, ConfigError> {
        let secret = self.secret(PROXY_SECRET_VAR)?;
        if let Some(secret) = &secret
            && secret.expose_secret().trim().len() < 32
        {
            return Err(ConfigError::new(
                PROXY_SECRET_VAR,
                "must be at least 32 characters (e.g. `openssl rand -base64 32`)",
            ));
        }
        Ok(secret)
    }

    /// A listen address such as `127.0.0.1:50051`.
    pub fn socket_addr(&self, var: &str, default: &str) -> Result<SocketAddr, ConfigError> {
        let raw = self.get(var)?.unwrap_or_else(|| default.to_owned());
        raw.trim().parse().map_err(|_| {
            ConfigError::new(
                var,
                format!(
                    "{raw:?} is not a socket address (expected host:port, e.g. 127.0.0.1:50051)"
                ),
            )
        })
    }

    /// Where another service is: `host:port` with a DNS name or an IP.
    pub fn peer_addr(&self, var: &str, default: &str) -> Result<PeerAddr, ConfigError> {
        let raw = self.get(var)?.unwrap_or_else(|| default.to_owned());
        PeerAddr::parse(raw.trim()).map_err(|reason| ConfigError::new(var, reason))
    }

    /// An optional listen address (a listener that is off unless set).
    pub fn optional_socket_addr(&self, var: &str) -> Result<Option<SocketAddr>, ConfigError> {
        match self.get(var)? {
            None => Ok(None),
            Some(_) => self.socket_addr(var, "").map(Some),
        }
    }

    /// The data directory of the embedded default (`OMS_DATA_DIR`, `./data`).
    pub fn data_dir(&self) -> Result<PathBuf, ConfigError> {
        Ok(PathBuf::from(
            self.get("OMS_DATA_DIR")?
                .unwrap_or_else(|| "./data".to_owned()),
        ))
    }

    /// A database URL from `var`, or a SQLite file named `file_name` under
    /// the data directory when unset.
    pub fn database_url(&self, var: &str, file_name: &str) -> Result<DatabaseUrl, ConfigError> {
        match self.get(var)? {
            Some(raw) => {
                DatabaseUrl::parse(raw.trim()).map_err(|reason| ConfigError::new(var, reason))
            }
            None => Ok(DatabaseUrl::sqlite_file(&self.data_dir()?.join(file_name))),
        }
    }

    /// `REDIS_URL`-style variable: `None` (in-process store) when unset.
    pub fn redis_url(&self, var: &str) -> Result<Option<RedisUrl>, ConfigError> {
        self.get(var)?
            .map(|raw| RedisUrl::parse(raw.trim()).map_err(|reason| ConfigError::new(var, reason)))
            .transpose()
    }

    /// `OMS_JWT_ISSUER`: the `iss` user-svc signs with and every verifier
    /// requires (default `oms-user-svc`).
    pub fn jwt_issuer(&self) -> Result<String, ConfigError> {
        Ok(self
            .get("OMS_JWT_ISSUER")?
            .map_or_else(|| "oms-user-svc".to_owned(), |s| s.trim().to_owned()))
    }

    /// `OMS_REDIS_KEY_PREFIX`: put before every Redis key (default `oms:`),
    /// so several deployments or tests can share one Redis.
    pub fn redis_key_prefix(&self) -> Result<String, ConfigError> {
        Ok(self
            .get("OMS_REDIS_KEY_PREFIX")?
            .map_or_else(|| "oms:".to_owned(), |s| s.trim().to_owned()))
    }

    /// `OMS_WORKER_THREADS`: the async runtime's worker threads, 1 to
    /// 1024; `None` (unset) = one per CPU this process may use, tokio's
    /// default, which already follows a container's CPU limit. For
    /// services sharing a host's cores without limits; on the bench's two
    /// cores one each measured no better than the default (BENCHMARKS.md).
    pub fn worker_threads(&self) -> Result<Option<usize>, ConfigError> {
        const VAR: &str = "OMS_WORKER_THREADS";
        let Some(raw) = self.get(VAR)? else {
            return Ok(None);
        };
        match raw.trim().parse::<usize>() {
            Ok(threads @ 1..=1024) => Ok(Some(threads)),
            _ => Err(ConfigError::new(
                VAR,
                format!("{raw:?} is not a thread count (expected 1 to 1024)"),
            )),
        }
    }

    /// `LOG_FORMAT`: `human` (default) or `json`.
    pub fn log_format(&self) -> Result<LogFormat, ConfigError> {
        match self.get("LOG_FORMAT")?.as_deref().map(str::trim) {
            None => Ok(LogFormat::Human),
            Some(raw) if raw.eq_ignore_ascii_case("human") => Ok(LogFormat::Human),
            Some(raw) if raw.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
            Some(raw) => Err(ConfigError::new(
                "LOG_FORMAT",
                format!("{raw:?} is not a log format (expected \"human\" or \"json\")"),
            )),
        }
    }
}

/// The variables of one service's [`ServiceBase`].
#[derive(Debug, Clone, Copy)]
pub struct ServiceVars {
    /// Its listen address, e.g. `ORDER_SVC_ADDR`.
    pub addr: &'static str,
    /// Where it listens by default, e.g. `127.0.0.1:50053`.
    pub default_addr: &'static str,
    /// Its `/metrics` listener, e.g. `ORDER_SVC_METRICS_ADDR`.
    pub metrics_addr: &'static str,
    /// Its SQLite file under the data directory, e.g. `orders.db`.
    pub sqlite_file: &'static str,
}

/// What every gRPC service reads alike: where it listens, where it serves
/// `/metrics`, its database, and the `iss` of the tokens it trusts.
#[derive(Debug, Clone)]
pub struct ServiceBase {
    /// Where to listen for gRPC.
    pub addr: SocketAddr,
    /// Where to serve Prometheus `/metrics`; `None` serves none.
    pub metrics_addr: Option<SocketAddr>,
    /// The service's own database.
    pub database_url: DatabaseUrl,
    /// The `iss` of every access token (user-svc signs with it).
    pub jwt_issuer: String,
    /// What its gRPC listener lets clients hold.
    pub grpc_limits: GrpcLimits,
    /// Whether it applies its migrations at start-up
    /// (`OMS_MIGRATE_ON_START`, default true) or only checks that they
    /// were applied (by `<service> migrate`, the deploy's Job).
    pub migrate_on_start: bool,
    /// How its gRPC clients find their peers.
    pub resolve: ResolveConfig,
    /// TLS on its listener and its client channels.
    pub tls: MeshTls,
}

impl ServiceBase {
    /// Reads it; `database_var` is `DATABASE_URL` for a standalone binary
    /// and `<SVC>_DATABASE_URL` inside the one-process `oms`.
    pub fn from_env(env: &Env, vars: ServiceVars, database_var: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            addr: env.socket_addr(vars.addr, vars.default_addr)?,
            metrics_addr: env.optional_socket_addr(vars.metrics_addr)?,
            database_url: env.database_url(database_var, vars.sqlite_file)?,
            jwt_issuer: env.jwt_issuer()?,
            grpc_limits: GrpcLimits::from_env(env)?,
            migrate_on_start: env.flag("OMS_MIGRATE_ON_START", true)?,
            resolve: ResolveConfig::from_env(env)?,
            tls: MeshTls::from_env(env)?,
        })
    }
}

/// Redis for a service: `REDIS_URL` (in process when unset) and the
/// prefix of every key it stores there.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `None` keeps the data in process (the embedded default).
    pub url: Option<RedisUrl>,
    /// `OMS_REDIS_KEY_PREFIX` followed by `namespace`.
    pub key_prefix: String,
}

impl RedisConfig {
    /// Reads it; `namespace` (e.g. `user:`) keeps services apart in one Redis.
    pub fn from_env(env: &Env, namespace: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            url: env.redis_url("REDIS_URL")?,
            key_prefix: format!("{}{namespace}", env.redis_key_prefix()?),
        })
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Coloured, one line per event, for people.
    Human,
    /// One JSON object per event, for log shippers.
    Json,
}

/// A database URL that sea-orm can open: `sqlite:` or `mysql://` /
/// `mariadb://`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Accepts `sqlite:…`, `mysql://…` and `mariadb://…`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.starts_with("sqlite:") {
            Ok(Self(raw.to_owned()))
        } else if let Some(rest) = raw.strip_prefix("mariadb://") {
            // sqlx speaks MariaDB through its MySQL driver.
            Ok(Self(format!("mysql://{rest}")))
        } else if raw.starts_with("mysql://") {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "{} is not a supported database URL (expected sqlite://path or mysql://user@host:port/db)",
                redact(raw)
            ))
        }
    }

    /// A SQLite file, created if missing.
    pub fn sqlite_file(path: &std::path::Path) -> Self {
        Self(format!("sqlite://{}?mode=rwc", path.display()))
    }

    /// The URL to hand to the driver (may hold a password: never log it).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether this is a SQLite URL.
    pub fn is_sqlite(&self) -> bool {
        self.0.starts_with("sqlite:")
    }

    /// The file path of a SQLite URL, if it names a file.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.0.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or_default();
        (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// A `redis://` or `rediss://` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// Accepts `redis://…` and `rediss://…`; `?ssl-ca=/path/ca.pem` (only
    /// with `rediss://`) names the CA the server is verified against.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.starts_with("redis://") || raw.starts_with("rediss://") {
            let url = Self(raw.to_owned());
            if url.ssl_ca().is_some() && !raw.starts_with("rediss://") {
                return Err(format!("{}: ssl-ca needs TLS (rediss://)", redact(raw)));
            }
            Ok(url)
        } else {
            Err(format!(
                "{} is not a Redis URL (expected redis://host:port)",
                redact(raw)
            ))
        }
    }

    /// The URL to hand to the client (may hold a password: never log it).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The CA file of its `ssl-ca` query parameter.
    pub fn ssl_ca(&self) -> Option<&str> {
        let query = self.0.split_once('?')?.1;
        let query = query.split('#').next().unwrap_or(query);
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("ssl-ca="))
            .filter(|path| !path.is_empty())
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

/// Replaces the password of `scheme://user:password@host` with `***`, so a
/// URL can be logged or shown in an error.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Where to reach another service: `host:port`, the host a DNS name or an
/// IP address (IPv6 in brackets). Names are resolved when connecting, so
/// containers and Kubernetes services find each other by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddr(String);

impl PeerAddr {
    /// Checks the form; never resolves.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("{raw:?} is not host:port ({why}; e.g. user-svc:50051 or 127.0.0.1:50051)")
        };
        let (host, port) = raw.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        // Port 0 passes: in the one-process `oms` the same variable is a
        // listen address too, and its peers are wired to the port bound.
        if port.parse::<u16>().is_err() {
            return Err(bad("the port must be a number up to 65535"));
        }
        let valid_host = if let Some(ip) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'))
        {
            ip.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            !host.is_empty()
                && host.len() <= 253
                && host.split('.').all(|label| {
                    (1..=63).contains(&label.len())
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        };
        if !valid_host {
            return Err(bad(
                "the host must be a DNS name, an IPv4 address or [IPv6]",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The host: a DNS name, or an IP address (an IPv6 one without its
    /// brackets).
    pub fn host(&self) -> &str {
        let host = self.0.rsplit_once(':').map_or("", |(host, _)| host);
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
    }

    /// The port (checked by [`PeerAddr::parse`]).
    pub fn port(&self) -> u16 {
        self.0
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or(0)
    }
}

/// How every gRPC client of the mesh finds its peers: a peer's name is
/// resolved to all its addresses, again every `interval`, by the system's
/// resolver or by the name server `dns_server` (Consul's DNS interface, a
/// cluster DNS reached directly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolveConfig {
    /// How often a peer's name is resolved again (`OMS_RESOLVE_INTERVAL`).
    pub interval: Duration,
    /// The name server asked instead of the system's resolver
    /// (`OMS_DNS_SERVER`, `ip:port`).
    pub dns_server: Option<SocketAddr>,
}

/// The variable of [`ResolveConfig::interval`].
pub const RESOLVE_INTERVAL_VAR: &str = "OMS_RESOLVE_INTERVAL";
/// The variable of [`ResolveConfig::dns_server`].
pub const DNS_SERVER_VAR: &str = "OMS_DNS_SERVER";

impl Default for ResolveConfig {
    /// Every 5 s (as gRPC's own DNS resolvers poll), by the system resolver.
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            dns_server: None,
        }
    }
}

impl ResolveConfig {
    /// Reads it: `OMS_RESOLVE_INTERVAL` from 1s to 5m (default 5s),
    /// `OMS_DNS_SERVER` an `ip:port` if set.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            interval: env.duration(
                RESOLVE_INTERVAL_VAR,
                Self::default().interval,
                Duration::from_secs(1)..=Duration::from_secs(300),
            )?,
            dns_server: env.optional_socket_addr(DNS_SERVER_VAR)?,
        })
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> Self {
        Self(addr.to_string())
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("mysql://oms:s3cret@db:3306/users"),
            "mysql://oms:***@db:3306/users"
        );
        assert_eq!(
            redact("mysql://root@db:3306/users"),
            "mysql://root@db:3306/users"
        );
        assert_eq!(redact("sqlite://data/users.db"), "sqlite://data/users.db");
    }

    #[test]
    fn a_bad_address_names_its_variable() {
        let env = Env::from_pairs([("USER_SVC_ADDR", "localhost")]);
        let err = env
            .socket_addr("USER_SVC_ADDR", "127.0.0.1:50051")
            .unwrap_err();
        assert_eq!(err.var, "USER_SVC_ADDR");
        assert!(err.to_string().starts_with("USER_SVC_ADDR: "), "{err}");
    }

    #[test]
    fn bounded_numbers_name_the_variable_and_the_range() {
        let env = Env::from_pairs([("A", "5"), ("B", "0"), ("C", "x")]);
        assert_eq!(env.seconds("A", 1, 1..=10).unwrap(), Duration::from_secs(5));
        assert_eq!(
            env.millis("UNSET", 7, 1..=10).unwrap(),
            Duration::from_millis(7)
        );
        let err = env.bounded("B", 1u64, 1..=10).unwrap_err();
        assert_eq!(
            (err.var.as_str(), err.reason.as_str()),
            ("B", "must be from 1 to 10")
        );
        assert_eq!(env.bounded("C", 1u64, 1..=10).unwrap_err().var, "C");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let env = Env::from_pairs([("S", "hunter2")]);
        let secret = env.secret("S").unwrap().unwrap();
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert_eq!(secret.expose_secret(), "hunter2");
    }

    #[test]
    fn unset_and_empty_fall_back_to_the_default() {
        let env = Env::from_pairs([("USER_SVC_ADDR", " ")]);
        let addr = env.socket_addr("USER_SVC_ADDR", "127.0.0.1:50051").unwrap();
        assert_eq!(addr.port(), 50051);
    }

    #[test]
    fn database_urls_are_checked_and_default_to_sqlite_under_the_data_dir() {
        let env = Env::from_pairs([
            ("OMS_DATA_DIR", "/tmp/oms"),
            ("BAD", "postgres://x:pw@h/db"),
        ]);
        let url = env.database_url("DATABASE_URL", "users.db").unwrap();
        assert_eq!(url.sqlite_path(), Some(PathBuf::from("/tmp/oms/users.db")));
        let err = env.database_url("BAD", "users.db").unwrap_err();
        assert_eq!(err.var, "BAD");
        assert!(!err.reason.contains("pw"), "password leaked: {err}");
        let maria = DatabaseUrl::parse("mariadb://root@127.0.0.1:3306/x").unwrap();
        assert_eq!(maria.expose(), "mysql://root@127.0.0.1:3306/x");
    }

    #[test]
    fn worker_threads_are_a_count_from_1_to_1024() {
        assert_eq!(
            Env::from_pairs([("OMS_WORKER_THREADS", " 1 ")])
                .worker_threads()
                .unwrap(),
            Some(1)
        );
        assert_eq!(
            Env::from_pairs(std::iter::empty::<(String, String)>())
                .worker_threads()
                .unwrap(),
            None
        );
        for bad in ["0", "1025", "two", "-1"] {
            let error = Env::from_pairs([("OMS_WORKER_THREADS", bad)])
                .worker_threads()
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("OMS_WORKER_THREADS") && error.contains("1 to 1024"),
                "{error}"
            );
        }
    }

    #[test]
    fn log_format_accepts_only_known_values() {
        assert_eq!(
            Env::from_pairs([("LOG_FORMAT", "JSON")])
                .log_format()
                .unwrap(),
            LogFormat::Json
        );
        let unset = Env::from_pairs(Vec::<(String, String)>::new());
        assert_eq!(unset.log_format().unwrap(), LogFormat::Human);
        assert!(
            Env::from_pairs([("LOG_FORMAT", "xml")])
                .log_format()
                .is_err()
        );
    }

    #[test]
    fn peers_are_resolved_every_5s_by_the_system_unless_told() {
        assert_eq!(
            ResolveConfig::from_env(&Env::from_pairs([] as [(&str, &str); 0])).unwrap(),
            ResolveConfig::default()
        );
        let told = ResolveConfig::from_env(&Env::from_pairs([
            (RESOLVE_INTERVAL_VAR, "2s"),
            (DNS_SERVER_VAR, "127.0.0.1:8600"),
        ]))
        .unwrap();
        assert_eq!(told.interval, Duration::from_secs(2));
        assert_eq!(
            told.dns_server,
            Some(SocketAddr::from(([127, 0, 0, 1], 8600)))
        );
        for (var, bad) in [
            (RESOLVE_INTERVAL_VAR, "0s"),
            (RESOLVE_INTERVAL_VAR, "1h"),
            (DNS_SERVER_VAR, "consul:8600"),
        ] {
            let err = ResolveConfig::from_env(&Env::from_pairs([(var, bad)])).unwrap_err();
            assert_eq!(err.var, var);
        }
    }

    #[test]
    fn peers_are_found_by_name_or_address() {
        for good in [
            "user-svc:50051",
            "127.0.0.1:1",
            "[::1]:8080",
            "a.b-c.example:65535",
        ] {
            let peer = PeerAddr::parse(good).unwrap();
            assert_eq!(peer.to_string(), good);
        }
        let v6 = PeerAddr::parse("[::1]:8080").unwrap();
        assert_eq!((v6.host(), v6.port()), ("::1", 8080));
        let named = PeerAddr::parse("user-svc:50051").unwrap();
        assert_eq!((named.host(), named.port()), ("user-svc", 50051));
        for bad in [
            "user-svc",
            "user-svc:70000",
            "user-svc:port",
            ":50051",
            "-svc:1",
            "user_svc:1",
            "::1:8080",
            "http://user-svc:1",
        ] {
            assert!(PeerAddr::parse(bad).is_err(), "{bad:?}");
        }
    }
}

/// `15m`-style text as a duration: digits, then `s`, `m`, `h` or `d`.
fn parse_duration(text: &str) -> Option<Duration> {
    let unit_at = text.len().checked_sub(1)?;
    let (digits, unit) = text.split_at(unit_at);
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let count: u64 = digits.parse().ok()?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(count.checked_mul(seconds)?))
}

/// A duration in the largest unit [`parse_duration`] reads that divides it.
fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    fn read(value: &str) -> Result<Duration, ConfigError> {
        Env::from_pairs([("OMS_QUOTE_TTL", value)]).duration(
            "OMS_QUOTE_TTL",
            Duration::from_secs(900),
            Duration::from_secs(1)..=Duration::from_secs(7 * 86_400),
        )
    }

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(read("1s").ok(), Some(Duration::from_secs(1)));
        assert_eq!(read("15m").ok(), Some(Duration::from_secs(900)));
        assert_eq!(read(" 2h ").ok(), Some(Duration::from_secs(7_200)));
        assert_eq!(read("7d").ok(), Some(Duration::from_secs(7 * 86_400)));
    }

    #[test]
    fn unset_is_the_default() {
        let env = Env::from_pairs(Vec::<(String, String)>::new());
        let ttl = env.duration(
            "OMS_QUOTE_TTL",
            Duration::from_secs(900),
            Duration::from_secs(1)..=Duration::from_secs(60),
        );
        assert_eq!(ttl.ok(), Some(Duration::from_secs(900)));
    }

    #[test]
    fn anything_else_is_refused_with_the_form_and_range() {
        for bad in ["15", "m", "-1s", "1.5m", "15 m", "15min", "99999999999d"] {
            let e = read(bad).expect_err(bad);
            assert!(e.to_string().contains("OMS_QUOTE_TTL"), "{e}");
            assert!(e.to_string().contains("like 15m"), "{bad}: {e}");
        }
        for out_of_range in ["0s", "8d", "10081m"] {
            let e = read(out_of_range).expect_err(out_of_range);
            assert!(e.to_string().contains("from 1s to 7d"), "{e}");
        }
    }
}
