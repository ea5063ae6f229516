//! Running a service in a test and talking to it: build and run on `127.0.0.1:0`,
//! health and reflection checks, bearer tokens, and reading error details.

use oms_runtime::app::Application;

/// A service (or the gateway) running in the test on `127.0.0.1:0`.
#[derive(Debug)]
pub struct Spawned {
    /// The address it actually listens on.
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), oms_runtime::StartupError>>,
}

/// Builds the app `A` on `127.0.0.1:0` and runs it in a task, the way
/// its binary would, but with a shutdown the test controls. A build that
/// fails is what [`Spawned::exited`] returns. A test that restarts a
/// service puts a [`super::Relay`] in front of it instead of binding a
/// released port again (another process may have taken it).
pub async fn spawn<A: Application>(config: A::Config) -> Spawned {
    spawn_with(|listener| A::build_on(config, listener)).await
}

/// [`spawn`] with the app built by `build` on the test's listener (for an
/// app built with parts of the test's own, such as order-svc's inventory).
pub async fn spawn_with<A, F, Fut>(build: F) -> Spawned
where
    A: Application,
    F: FnOnce(tokio::net::TcpListener) -> Fut,
    Fut: std::future::Future<Output = Result<A, oms_runtime::StartupError>>,
{
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", 0)).await {
        Ok(listener) => listener,
        Err(e) => panic!("cannot bind 127.0.0.1:0: {e}"),
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => panic!("no local address: {e}"),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = Box::pin(async move {
        let _ = stopped.await;
    });
    let task = match build(listener).await {
        Ok(app) => tokio::spawn(app.run_until_stopped(shutdown)),
        Err(e) => tokio::spawn(async move { Err(e) }),
    };
    Spawned {
        addr,
        stop: Some(stop),
        task,
    }
}

impl Spawned {
    /// A lazily connecting gRPC channel to it.
    pub fn channel(&self) -> tonic::transport::Channel {
        match tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr)) {
            Ok(endpoint) => endpoint.connect_lazy(),
            Err(e) => panic!("bad endpoint for {}: {e}", self.addr),
        }
    }

    /// Asks it to shut down and waits for it to stop.
    pub async fn stop(mut self) -> Result<(), oms_runtime::StartupError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(e) => panic!("service task panicked: {e}"),
        }
    }

    /// Waits for it to stop on its own (a build that failed).
    pub async fn exited(mut self) -> Result<(), oms_runtime::StartupError> {
        match (&mut self.task).await {
            Ok(result) => result,
            Err(e) => panic!("service task panicked: {e}"),
        }
    }
}

/// The `grpc.health.v1` status of `service` ("" for the whole server).
pub async fn health_status(
    channel: tonic::transport::Channel,
    service: &str,
) -> Result<tonic_health::pb::health_check_response::ServingStatus, tonic::Status> {
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let response = client
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?;
    Ok(response.into_inner().status())
}

/// The services a server advertises through reflection v1 or v1alpha,
/// sorted.
pub async fn reflected_services(
    channel: tonic::transport::Channel,
    v1alpha: bool,
) -> Result<Vec<String>, tonic::Status> {
    // The two versions share their message shapes but not their types.
    macro_rules! list {
        ($pb:path) => {{
            use $pb as pb;
            let mut client = pb::server_reflection_client::ServerReflectionClient::new(channel);
            let request = pb::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(pb::server_reflection_request::MessageRequest::ListServices(
                    String::new(),
                )),
            };
            let mut replies = client
                .server_reflection_info(tokio_stream::once(request))
                .await?
                .into_inner();
            let mut names = Vec::new();
            while let Some(reply) = replies.message().await? {
                if let Some(
                    pb::server_reflection_response::MessageResponse::ListServicesResponse(list),
                ) = reply.message_response
                {
                    names.extend(list.service.into_iter().map(|s| s.name));
                }
            }
            names
        }};
    }
    let mut names = if v1alpha {
        list!(tonic_reflection::pb::v1alpha)
    } else {
        list!(tonic_reflection::pb::v1)
    };
    names.sort();
    Ok(names)
}

/// Whether reflection (v1) finds a file defining `symbol`, e.g.
/// `google.rpc.ErrorInfo`: what grpcurl asks to decode error details.
pub async fn reflection_knows_symbol(channel: tonic::transport::Channel, symbol: &str) -> bool {
    use tonic_reflection::pb::v1 as pb;
    let mut client = pb::server_reflection_client::ServerReflectionClient::new(channel);
    let request = pb::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            pb::server_reflection_request::MessageRequest::FileContainingSymbol(symbol.to_owned()),
        ),
    };
    let Ok(replies) = client
        .server_reflection_info(tokio_stream::once(request))
        .await
    else {
        return false;
    };
    let mut replies = replies.into_inner();
    while let Ok(Some(reply)) = replies.message().await {
        if let Some(pb::server_reflection_response::MessageResponse::FileDescriptorResponse(
            files,
        )) = reply.message_response
        {
            return !files.file_descriptor_proto.is_empty();
        }
    }
    false
}

/// Checks what every OMS gRPC server must offer: health SERVING for the
/// server and each of its services, and reflection v1 and v1alpha listing
/// exactly its services plus health and reflection.
pub async fn assert_grpc_basics(
    channel: tonic::transport::Channel,
    info: oms_runtime::server::ServiceInfo,
) {
    use tonic_health::pb::health_check_response::ServingStatus;
    for service in std::iter::once("").chain(info.grpc_services.iter().copied()) {
        let status = health_status(channel.clone(), service).await;
        assert_eq!(
            status.ok(),
            Some(ServingStatus::Serving),
            "health of {service:?}"
        );
    }
    let mut expected: Vec<String> = info
        .grpc_services
        .iter()
        .map(|s| (*s).to_owned())
        .chain(
            [
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ]
            .map(String::from),
        )
        .collect();
    expected.sort();
    for v1alpha in [false, true] {
        let listed = reflected_services(channel.clone(), v1alpha).await;
        assert_eq!(
            listed.ok().as_ref(),
            Some(&expected),
            "reflection (v1alpha: {v1alpha})"
        );
    }
    // Error details decode in grpcurl and buf curl only if reflection
    // serves their types too.
    for symbol in [
        "google.rpc.Status",
        "google.rpc.ErrorInfo",
        "google.rpc.BadRequest",
        "google.rpc.RetryInfo",
    ] {
        assert!(
            reflection_knows_symbol(channel.clone(), symbol).await,
            "reflection does not serve {symbol}"
        );
    }
}

/// `message` with `authorization: Bearer <token>`.
pub fn bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    match format!("Bearer {token}").parse() {
        Ok(value) => {
            request.metadata_mut().insert("authorization", value);
        }
        Err(e) => panic!("a token must be a valid header value: {e}"),
    }
    request
}

/// The `ErrorInfo.reason` of an error ("" without one).
pub fn error_reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt as _;
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// One `ErrorInfo.metadata` value of an error ("" without it).
pub fn error_metadata(status: &tonic::Status, key: &str) -> String {
    use tonic_types::StatusExt as _;
    status
        .get_error_details()
        .error_info()
        .and_then(|i| i.metadata.get(key).cloned())
        .unwrap_or_default()
}

/// The fields named by an error's `BadRequest` detail, in order.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt as _;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}
