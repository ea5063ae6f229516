//! `GET /openapi.json`: an OpenAPI 3.0 document generated at start-up from
//! the same route table and descriptors the gateway serves, so every path
//! in it is served and every served route is in it. Proto comments become
//! descriptions; `oms.common.v1.access` decides which operations need a
//! bearer token.

use std::collections::BTreeMap;

use prost_reflect::{
    DescriptorPool, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor, Value as PValue,
};
use serde_json::{Map, Value, json};

use crate::routes::{Body, Route};

/// The document.
pub(crate) fn document(pool: &DescriptorPool, routes: &[Route]) -> Value {
    let access = pool.get_extension_by_name("oms.common.v1.access");
    let mut schemas = BTreeMap::new();
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for route in routes {
        let method = &route.method;
        let input = method.input();
        let bound: Vec<String> = route.template.variables().map(str::to_owned).collect();
        let mut parameters: Vec<Value> = bound
            .iter()
            .map(|path| {
                let schema = field_at(&input, path)
                    .map_or_else(|| json!({"type": "string"}), |f| scalar_schema(&f));
                json!({"name": param_name(path), "in": "path", "required": true, "schema": schema})
            })
            .collect();
        let mut operation = Map::new();
        operation.insert(
            "operationId".into(),
            json!(format!(
                "{}_{}",
                method.parent_service().name(),
                method.name()
            )),
        );
        operation.insert("tags".into(), json!([method.parent_service().name()]));
        if let Some(text) = comments(&method.parent_file(), method.path()) {
            operation.insert("description".into(), json!(text));
        }
        match &route.body {
            Body::Whole => {
                operation.insert(
                    "requestBody".into(),
                    json!({"required": true, "content": {"application/json": {"schema": reference(&input, &mut schemas)}}}),
                );
            }
            Body::Field(name) => {
                if let Some(Kind::Message(m)) = input.get_field_by_name(name).map(|f| f.kind()) {
                    operation.insert(
                        "requestBody".into(),
                        json!({"required": true, "content": {"application/json": {"schema": reference(&m, &mut schemas)}}}),
                    );
                }
            }
            Body::None => {}
        }
        if route.body != Body::Whole {
            for field in input.fields() {
                let taken = bound
                    .iter()
                    .any(|b| b == field.name() || b.starts_with(&format!("{}.", field.name())));
                let in_body = matches!(&route.body, Body::Field(f) if f == field.name());
                if taken || in_body || !queryable(&field) {
                    continue;
                }
                let mut parameter = json!({"name": field.json_name(), "in": "query", "schema": field_schema(&field, &mut schemas)});
                if let Some(text) = comments(&field.parent_file(), field.path()) {
                    parameter["description"] = json!(text);
                }
                if field.is_list() {
                    parameter["explode"] = json!(true);
                }
                parameters.push(parameter);
            }
        }
        if !parameters.is_empty() {
            operation.insert("parameters".into(), Value::Array(parameters));
        }
        operation.insert(
            "responses".into(),
            json!({
                "200": ok_response(method, &mut schemas),
                "default": {"description": "An error (AIP-193)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            }),
        );
        let needs_token = access.as_ref().is_some_and(|ext| {
            let options = method.options();
            matches!(options.get_extension(ext).as_ref(), PValue::EnumNumber(n) if *n != 1 && *n != 0)
        });
        if needs_token {
            operation.insert("security".into(), json!([{"bearerAuth": []}]));
        }
        paths
            .entry(openapi_path(&route.template.raw))
            .or_default()
            .insert(route.verb.as_str().to_lowercase(), Value::Object(operation));
    }
    image_routes(pool, &mut paths, &mut schemas);
    schemas.insert("Error".to_owned(), error_schema());
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "OMS",
            "version": "v1",
            "description": "The OMS order-management API as JSON, generated from the gRPC contract in proto/.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    })
}

/// A path variable's name in the document: `{product.id}` reads as
/// `{product_id}`, so tools that treat names as identifiers cope, and
/// `PATCH /v1/products/{product.id}` shares its path item with
/// `DELETE /v1/products/{product_id}` (OpenAPI requires one item per path
/// shape). The gateway binds variables by position, not by name.
fn param_name(field_path: &str) -> String {
    field_path.replace('.', "_")
}

fn openapi_path(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut in_variable = false;
    for c in template.chars() {
        match c {
            '{' => in_variable = true,
            '}' => in_variable = false,
            '.' if in_variable => {
                out.push('_');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// The field at a dotted path.
fn field_at(message: &MessageDescriptor, path: &str) -> Option<FieldDescriptor> {
    let mut current = message.clone();
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = current.get_field_by_name(part)?;
        if parts.peek().is_none() {
            return Some(field);
        }
        let Kind::Message(next) = field.kind() else {
            return None;
        };
        current = next;
    }
    None
}

/// Fields the gateway reads from the query: scalars, enums, their lists,
/// and FieldMasks.
fn queryable(field: &FieldDescriptor) -> bool {
    match field.kind() {
        Kind::Message(m) => m.full_name() == "google.protobuf.FieldMask" && !field.is_list(),
        Kind::Bytes => false,
        _ => !field.is_map(),
    }
}

fn reference(message: &MessageDescriptor, schemas: &mut BTreeMap<String, Value>) -> Value {
    if let Some(special) = well_known(message) {
        return special;
    }
    let name = message.full_name().to_owned();
    if !schemas.contains_key(&name) {
        // Placeholder first: recursive messages refer to themselves.
        schemas.insert(name.clone(), Value::Null);
        let mut properties = Map::new();
        for field in message.fields() {
            let mut schema = field_schema(&field, schemas);
            if let Some(text) = comments(&field.parent_file(), field.path())
                && schema.get("$ref").is_none()
            {
                schema["description"] = json!(text);
            }
            properties.insert(field.json_name().to_owned(), schema);
        }
        let mut schema = json!({"type": "object", "properties": properties});
        if let Some(text) = comments(&message.parent_file(), message.path()) {
            schema["description"] = json!(text);
        }
        schemas.insert(name.clone(), schema);
    }
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn well_known(message: &MessageDescriptor) -> Option<Value> {
    match message.full_name() {
        "google.protobuf.Timestamp" => Some(json!({"type": "string", "format": "date-time"})),
        "google.protobuf.FieldMask" => {
            Some(json!({"type": "string", "description": "Comma-separated field paths."}))
        }
        _ => None,
    }
}

fn field_schema(field: &FieldDescriptor, schemas: &mut BTreeMap<String, Value>) -> Value {
    let single = match field.kind() {
        Kind::Message(m) => reference(&m, schemas),
        _ => scalar_schema(field),
    };
    if field.is_list() {
        json!({"type": "array", "items": single})
    } else {
        single
    }
}

/// A scalar's schema by the proto3 JSON mapping (64-bit integers are
/// strings).
fn scalar_schema(field: &FieldDescriptor) -> Value {
    match field.kind() {
        Kind::String => json!({"type": "string"}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Kind::Uint32 | Kind::Fixed32 => json!({"type": "integer", "format": "int64", "minimum": 0}),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => json!({"type": "string", "format": "int64"}),
        Kind::Uint64 | Kind::Fixed64 => json!({"type": "string", "format": "uint64"}),
        Kind::Float => json!({"type": "number", "format": "float"}),
        Kind::Double => json!({"type": "number", "format": "double"}),
        Kind::Bytes => json!({"type": "string", "format": "byte"}),
        Kind::Enum(e) => {
            json!({"type": "string", "enum": e.values().map(|v| v.name().to_owned()).collect::<Vec<_>>()})
        }
        Kind::Message(_) => json!({"type": "object"}),
    }
}

/// The leading comment of the element at `path` in its file.
fn comments(file: &FileDescriptor, path: &[i32]) -> Option<String> {
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let location = info.location.iter().find(|l| l.path == path)?;
    let text = location.leading_comments.as_deref()?.trim();
    (!text.is_empty()).then(|| text.lines().map(str::trim).collect::<Vec<_>>().join("\n"))
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "An error in the AIP-193 form: the gRPC status, its HTTP code, and google.rpc details.",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "integer", "description": "The HTTP status code."},
                    "status": {"type": "string", "description": "The gRPC status name, e.g. INVALID_ARGUMENT."},
                    "message": {"type": "string"},
                    "details": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"@type": {"type": "string"}}, "additionalProperties": true},
                    },
                },
                "required": ["code", "status", "message"],
            },
        },
        "required": ["error"],
    })
}

/// A unary RPC answers one JSON message; a server stream answers
/// Server-Sent Events, each event's `data` one JSON message.
fn ok_response(
    method: &prost_reflect::MethodDescriptor,
    schemas: &mut std::collections::BTreeMap<String, Value>,
) -> Value {
    let schema = reference(&method.output(), schemas);
    if method.is_server_streaming() {
        json!({
            "description": "A stream of Server-Sent Events; the data of each is one JSON message of this schema. An error after the stream began comes as an event named `error` with the AIP-193 body.",
            "content": {"text/event-stream": {"schema": schema}},
        })
    } else {
        json!({"description": "OK", "content": {"application/json": {"schema": schema}}})
    }
}

/// The image routes, whose bodies are raw bytes rather than JSON (served by
/// `images.rs`, not the route table).
fn image_routes(
    pool: &DescriptorPool,
    paths: &mut BTreeMap<String, Map<String, Value>>,
    schemas: &mut BTreeMap<String, Value>,
) {
    let error = json!({"description": "An error (AIP-193)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let binary = json!({"type": "string", "format": "binary"});
    let image_types = json!({
        "image/png": {"schema": binary},
        "image/jpeg": {"schema": binary},
        "image/webp": {"schema": binary},
    });
    let uploaded = pool
        .get_message_by_name("oms.product.v1.UploadProductImageResponse")
        .map_or_else(|| json!({"type": "object"}), |m| reference(&m, schemas));
    let product_id =
        json!({"name": "product_id", "in": "path", "required": true, "schema": {"type": "string"}});
    let image_id =
        json!({"name": "image_id", "in": "path", "required": true, "schema": {"type": "string"}});
    let mut upload = Map::new();
    upload.insert(
        "operationId".into(),
        json!("ProductService_UploadProductImage"),
    );
    upload.insert("tags".into(), json!(["ProductService"]));
    upload.insert(
        "description".into(),
        json!("Adds an image to a product: the raw PNG, JPEG or WebP as the body, its type as Content-Type. Admins only. Too large: 413; not the declared type or over 8000 pixels a side or 16 megapixels: 400."),
    );
    upload.insert(
        "parameters".into(),
        json!([product_id, {"name": "altText", "in": "query", "schema": {"type": "string"}, "description": "Text for people who cannot see the image, up to 500 characters."}]),
    );
    upload.insert(
        "requestBody".into(),
        json!({"required": true, "content": image_types}),
    );
    upload.insert(
        "responses".into(),
        json!({"201": {"description": "The stored image", "content": {"application/json": {"schema": uploaded}}}, "default": error}),
    );
    upload.insert("security".into(), json!([{"bearerAuth": []}]));
    paths
        .entry("/v1/products/{product_id}/images".to_owned())
        .or_default()
        .insert("put".into(), Value::Object(upload));
    for (suffix, what, operation) in [
        (
            "",
            "the image's bytes",
            "ProductService_DownloadProductImage",
        ),
        (
            "/thumbnail",
            "its 320-pixel-wide JPEG thumbnail",
            "ProductService_DownloadProductImageThumbnail",
        ),
    ] {
        let download = json!({
            "operationId": operation,
            "tags": ["ProductService"],
            "description": format!("Streams {what}, with its SHA-256 as ETag (If-None-Match answers 304) and immutable caching; with presigned URLs on, redirects (307) to the store instead."),
            "parameters": [product_id, image_id],
            "responses": {
                "200": {"description": "The bytes", "content": image_types},
                "304": {"description": "Not modified: the client's copy is current"},
                "307": {"description": "Fetch the bytes from the presigned URL in Location"},
                "default": error,
            },
        });
        paths
            .entry(format!(
                "/v1/products/{{product_id}}/images/{{image_id}}{suffix}"
            ))
            .or_default()
            .insert("get".into(), download);
    }
}
