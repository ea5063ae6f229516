//! The route table, read from the descriptor set at start-up: every RPC
//! with a `google.api.http` rule becomes a route. Adding an annotated RPC
//! to `proto/` adds its route; there is no handler code per RPC.

use http::Method;
use oms_proto::google::api::{HttpRule, http_rule::Pattern};

use crate::backends::Service;
use prost_reflect::{DescriptorPool, MethodDescriptor, Value};

use crate::template::PathTemplate;

/// Which request fields the HTTP body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// No body; every field comes from the path and the query.
    None,
    /// `body: "*"`: every field not bound by the path.
    Whole,
    /// `body: "<field>"`: that one field.
    Field(String),
}

/// One HTTP route onto one RPC.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// The HTTP verb.
    pub(crate) verb: Method,
    /// The path template.
    pub(crate) template: PathTemplate,
    /// The RPC.
    pub(crate) method: MethodDescriptor,
    /// What the body holds.
    pub(crate) body: Body,
    /// The response field sent as the body, if not the whole response.
    pub(crate) response_body: Option<String>,
    /// The service that serves it.
    pub(crate) backend: Service,
    /// The gRPC path, `/package.Service/Method`, made once.
    pub(crate) grpc_path: http::uri::PathAndQuery,
    /// Its request metrics.
    pub(crate) metrics: std::sync::Arc<crate::observe::RouteMetrics>,
}

/// Reads every `google.api.http` rule of the contract's services.
pub(crate) fn load(descriptors: &[u8]) -> Result<(DescriptorPool, Vec<Route>), String> {
    let pool = DescriptorPool::decode(descriptors).map_err(|e| format!("descriptor set: {e}"))?;
    let http = pool
        .get_extension_by_name("google.api.http")
        .ok_or("the descriptor set lacks google.api.http")?;
    let mut routes = Vec::new();
    for service in pool.services() {
        let Some(backend) = Service::of_package(service.package_name()) else {
            continue;
        };
        for method in service.methods() {
            let options = method.options();
            if !options.has_extension(&http) {
                continue;
            }
            let Value::Message(rule) = options.get_extension(&http).into_owned() else {
                continue;
            };
            let rule: HttpRule = rule
                .transcode_to()
                .map_err(|e| format!("{}: bad google.api.http rule: {e}", method.full_name()))?;
            for rule in std::iter::once(rule.clone()).chain(rule.additional_bindings) {
                routes.push(route(&method, &rule, backend)?);
            }
        }
    }
    // Most specific first: `/v1/users/me` before `/v1/users/{user_id}`.
    routes.sort_by_key(|r| std::cmp::Reverse(r.template.specificity()));
    Ok((pool, routes))
}

fn route(method: &MethodDescriptor, rule: &HttpRule, backend: Service) -> Result<Route, String> {
    let (verb, path) = match &rule.pattern {
        Some(Pattern::Get(p)) => (Method::GET, p),
        Some(Pattern::Post(p)) => (Method::POST, p),
        Some(Pattern::Put(p)) => (Method::PUT, p),
        Some(Pattern::Delete(p)) => (Method::DELETE, p),
        Some(Pattern::Patch(p)) => (Method::PATCH, p),
        Some(Pattern::Custom(c)) => (
            Method::from_bytes(c.kind.as_bytes())
                .map_err(|e| format!("{}: {e}", method.full_name()))?,
            &c.path,
        ),
        None => {
            return Err(format!(
                "{}: google.api.http rule without a pattern",
                method.full_name()
            ));
        }
    };
    let body = match rule.body.as_str() {
        "" => Body::None,
        "*" => Body::Whole,
        field => Body::Field(field.to_owned()),
    };
    let grpc_path = format!("/{}/{}", method.parent_service().full_name(), method.name())
        .parse()
        .map_err(|e| format!("{}: {e}", method.full_name()))?;
    let template = PathTemplate::parse(path)?;
    Ok(Route {
        grpc_path,
        metrics: std::sync::Arc::new(crate::observe::RouteMetrics::new(&verb, &template.raw)),
        verb,
        template,
        method: method.clone(),
        body,
        response_body: (!rule.response_body.is_empty()).then(|| rule.response_body.clone()),
        backend,
    })
}
