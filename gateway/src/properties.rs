//! Property tests of what the gateway reads from clients, against every
//! route of the contract: request paths, query strings and JSON bodies.
//! Whatever arrives, the answer is a route or none, a request message or a
//! typed [`BadInput`](crate::transcode::BadInput) — never a panic; and a
//! request written in the contract's JSON mapping reads back as itself.

use std::sync::OnceLock;

use proptest::prelude::*;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, SerializeOptions};
use serde_json::Value as Json;

use crate::routes::{self, Body, Route};
use crate::transcode;

fn routes() -> &'static [Route] {
    static ROUTES: OnceLock<Vec<Route>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        routes::load(oms_proto::FILE_DESCRIPTOR_SET)
            .map(|(_, routes)| routes)
            .unwrap_or_else(|e| panic!("the contract's routes do not load: {e}"))
    })
}

/// A route of the contract.
fn any_route() -> impl Strategy<Value = &'static Route> {
    prop::sample::select(routes().iter().collect::<Vec<_>>())
}

/// The message a route's body holds, if it has one.
fn body_message(route: &Route) -> Option<MessageDescriptor> {
    let input = route.method.input();
    match &route.body {
        Body::None => None,
        Body::Whole => Some(input),
        Body::Field(name) => match input.get_field_by_name(name)?.kind() {
            Kind::Message(message) => Some(message),
            _ => None,
        },
    }
}

/// Every field and enum value name of the contract, so generated JSON
/// reaches past the top-level fields.
fn contract_names() -> Vec<String> {
    let pool = testkit::properties::pool();
    let mut names: Vec<String> = pool
        .all_messages()
        .flat_map(|m| {
            m.fields()
                .flat_map(|f| [f.name().to_owned(), f.json_name().to_owned()])
                .collect::<Vec<_>>()
        })
        .chain(
            pool.all_enums()
                .flat_map(|e| e.values().map(|v| v.name().to_owned()).collect::<Vec<_>>()),
        )
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Any JSON value, its keys mostly names the contract uses.
fn any_json() -> impl Strategy<Value = Json> {
    let names = contract_names();
    let key = prop_oneof![
        3 => prop::sample::select(names.clone()),
        1 => "[a-zA-Z_@]{0,10}",
    ];
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<f64>().prop_map(Json::from),
        testkit::properties::text().prop_map(Json::from),
        prop::sample::select(names).prop_map(Json::from),
        "-?[0-9]{1,25}(\\.[0-9]{1,3})?".prop_map(Json::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|pairs| Json::Object(pairs.into_iter().collect())),
        ]
    })
}

/// `text` percent-encoded for a path segment: everything but RFC 3986's
/// unreserved characters escaped.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `route`'s template with each `{variable}` replaced by the next of
/// `values`, encoded.
fn path_of(route: &Route, values: &[String]) -> String {
    let mut path = String::new();
    let mut values = values.iter();
    let mut rest = route.template.raw.as_str();
    while let Some(open) = rest.find('{') {
        path.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
        path.push_str(&percent_encode(values.next().map_or("x", String::as_str)));
        rest = &rest[close..];
    }
    path.push_str(rest);
    path
}

fn json_of(message: &DynamicMessage) -> Option<Json> {
    let options = SerializeOptions::new()
        .skip_default_fields(false)
        .stringify_64_bit_integers(true);
    message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .ok()
}

proptest! {
    #![proptest_config(testkit::proptest_config(512))]

    #[test]
    fn any_path_finds_a_route_or_none(path in "/[a-zA-Z0-9/:._%{}*-]{0,60}") {
        for route in routes() {
            if let Some(bound) = route.template.matches(&path) {
                let variables: Vec<&str> = route.template.variables().collect();
                for (field, _) in &bound {
                    prop_assert!(variables.contains(&field.as_str()), "{} bound {field}", route.template.raw);
                }
            }
        }
    }

    #[test]
    fn a_routes_path_binds_exactly_what_was_put_in_it(
        route in any_route(),
        values in prop::collection::vec("[^\u{0}]{1,20}|[a-zA-Z0-9:%/ -]{1,20}", 3),
    ) {
        let path = path_of(route, &values);
        let bound = route.template.matches(&path);
        prop_assert!(bound.is_some(), "{path} does not match {}", route.template.raw);
        let bound = bound.unwrap_or_default();
        prop_assert_eq!(bound.len(), route.template.variables().count());
        for ((field, value), (expected_field, expected)) in bound.iter().zip(route.template.variables().zip(&values)) {
            prop_assert_eq!(field.as_str(), expected_field);
            prop_assert_eq!(value, expected);
        }
        // Whatever the values, the request is built or refused with a reason.
        if let Err(refusal) = transcode::request(route, &bound, None, b"", None) {
            prop_assert!(!refusal.message.is_empty());
        }
    }

    #[test]
    fn any_query_builds_a_request_or_a_typed_refusal(
        route in any_route(),
        query in "([a-zA-Z_.]{1,20}=[a-zA-Z0-9%+,._-]{0,20}&?){0,4}|[ -~]{0,60}",
    ) {
        if let Err(refusal) = transcode::request(route, &[], Some(&query), b"", None) {
            prop_assert!(!refusal.message.is_empty());
        }
    }

    #[test]
    fn any_json_body_builds_a_request_or_a_typed_refusal(route in any_route(), body in any_json()) {
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        if let Err(refusal) = transcode::request(route, &[], None, &bytes, None) {
            prop_assert!(!refusal.message.is_empty());
        }
    }

    #[test]
    fn any_bytes_as_a_body_build_a_request_or_a_typed_refusal(
        route in any_route(),
        body in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        if let Err(refusal) = transcode::request(route, &[], None, &body, None) {
            prop_assert!(!refusal.message.is_empty());
        }
    }

    #[test]
    fn a_request_in_the_json_mapping_reads_back_as_itself(
        (route, message) in any_route()
            .prop_filter_map("has a body", |r| body_message(r).map(|m| (r, m)))
            .prop_flat_map(|(r, m)| (Just(r), testkit::properties::dynamic(&m, 3))),
    ) {
        // Out-of-range timestamps have no JSON form: nothing a client can send.
        let Some(json) = json_of(&message) else { return Ok(()) };
        let bytes = serde_json::to_vec(&json).unwrap_or_default();
        let request = transcode::request(route, &[], None, &bytes, None);
        prop_assert!(request.is_ok(), "{} refused {json}: {:?}", route.template.raw, request.err().map(|e| e.message));
        let request = request.unwrap_or_else(|_| DynamicMessage::new(route.method.input()));
        let read_back = match &route.body {
            Body::Field(field) => request
                .get_field_by_name(field)
                .and_then(|v| v.as_message().cloned())
                .and_then(|m| json_of(&m)),
            _ => json_of(&request),
        };
        prop_assert_eq!(read_back, Some(json));
    }

    #[test]
    fn any_response_renders_as_json(
        (route, response) in any_route()
            .prop_flat_map(|r| (Just(r), testkit::properties::dynamic(&r.method.output(), 3))),
    ) {
        // Only timestamps out of RFC 3339's range may fail; a server never
        // sends those.
        if json_of(&response).is_some() {
            let raw = prost::Message::encode_to_vec(&response);
            let rendered = transcode::response_json(route, &raw);
            prop_assert!(rendered.is_ok(), "{}: {:?}", route.template.raw, rendered.err());
        }
    }

    /// The JSON written straight from the bytes is prost-reflect's, byte
    /// for byte, and it is written for every response a server could send
    /// (not left to the fallback).
    #[test]
    fn a_response_written_from_its_bytes_is_what_prost_reflect_writes(
        (route, response) in any_route()
            .prop_flat_map(|r| (Just(r), testkit::properties::dynamic(&r.method.output(), 3))),
    ) {
        let part = route.response_body.as_deref();
        let Ok(reflected) = transcode::reflected_json(&response, part) else {
            // Timestamps out of RFC 3339's range: prost-reflect refuses.
            return Ok(());
        };
        let raw = prost::Message::encode_to_vec(&response);
        let written = transcode::direct_json(&route.method.output(), &raw, part);
        prop_assert!(written.is_some(), "{}: left to prost-reflect", route.template.raw);
        let direct = written.unwrap_or_default();
        prop_assert_eq!(
            String::from_utf8_lossy(&direct),
            String::from_utf8_lossy(&reflected),
            "{}", route.template.raw
        );
    }
}

fn route_of(rpc: &str) -> &'static Route {
    routes()
        .iter()
        .find(|r| r.method.name() == rpc)
        .unwrap_or_else(|| panic!("no route for {rpc}"))
}

#[test]
fn a_query_may_not_set_what_the_body_carries() {
    let route = route_of("UpdateProduct");
    let bound = [(
        "product.id".to_owned(),
        "0190f3a4-0000-7000-8000-000000000000".to_owned(),
    )];
    let body = br#"{"price":{"currencyCode":"USD","amountMinor":"777"}}"#;
    let refused = transcode::request(
        route,
        &bound,
        Some("updateMask=price&product.price.amountMinor=1"),
        body,
        None,
    )
    .unwrap_err();
    assert_eq!(refused.field, "product.price.amountMinor");
    // What the body does not carry still comes from the query.
    assert!(transcode::request(route, &bound, Some("updateMask=price"), body, None).is_ok());
}

#[test]
fn a_json_key_given_twice_is_refused_at_any_depth() {
    let login = route_of("Login");
    for body in [
        &br#"{"email":"a@example.com","email":"b@example.com","password":"p"}"#[..],
        br#"{"email":"a@example.com","password":"p","password":"q"}"#,
    ] {
        let refused = transcode::request(login, &[], None, body, None).unwrap_err();
        assert!(refused.message.contains("duplicate key"), "{refused:?}");
    }
    let create = route_of("CreateOrder");
    let nested = br#"{"requestId":"r","lines":[{"productId":"p","quantity":1,"quantity":2}]}"#;
    let refused = transcode::request(create, &[], None, nested, None).unwrap_err();
    assert!(refused.message.contains("duplicate key"), "{refused:?}");
    let once = br#"{"email":"a@example.com","password":"p"}"#;
    assert!(transcode::request(login, &[], None, once, None).is_ok());
}
