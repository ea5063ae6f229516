//! JSON ⇄ protobuf by the proto3 JSON mapping: builds an RPC's request
//! from the path variables, the query string and the JSON body, and turns
//! its response into JSON. Every bad input is a [`BadInput`] naming the
//! field, never a panic or a 500.

use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage,
    SerializeOptions, Value,
};

use crate::routes::{Body, Route};
use crate::template::percent_decode;
use crate::wire_json;

/// A request the gateway cannot turn into the RPC's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadInput {
    /// The field at fault (empty for the body as a whole).
    pub(crate) field: String,
    /// What is wrong.
    pub(crate) message: String,
}

fn bad(field: &str, message: impl Into<String>) -> BadInput {
    BadInput {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The RPC's request message for this HTTP request.
pub(crate) fn request(
    route: &Route,
    bound: &[(String, String)],
    query: Option<&str>,
    body: &[u8],
    idempotency_key: Option<&str>,
) -> Result<DynamicMessage, BadInput> {
    let input = route.method.input();
    let mut message = match &route.body {
        Body::Whole => from_json(input.clone(), body, "")?,
        Body::Field(field) => {
            let mut message = DynamicMessage::new(input.clone());
            let desc = find_field(&input, field)
                .ok_or_else(|| bad(field, "is not a field of the request"))?;
            let Kind::Message(sub) = desc.kind() else {
                return Err(bad(field, "body fields must be messages"));
            };
            let value = from_json(sub, body, field)?;
            message.set_field(&desc, Value::Message(value));
            message
        }
        Body::None => DynamicMessage::new(input.clone()),
    };
    for (path, value) in bound {
        set_path(&mut message, path, value, false)?;
    }
    if route.body != Body::Whole {
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(&key.replace('+', " "))
                .ok_or_else(|| bad(key, "bad percent-encoding"))?;
            let value = percent_decode(&value.replace('+', " "))
                .ok_or_else(|| bad(&key, "bad percent-encoding"))?;
            if bound.iter().any(|(path, _)| *path == key) {
                continue;
            }
            // What the body carries is the body's alone: a query key
            // inside it once overrode the body's own value.
            if let Body::Field(body_field) = &route.body {
                let first = key.split('.').next().unwrap_or_default();
                if find_field(&input, first)
                    .is_some_and(|f| find_field(&input, body_field).is_some_and(|b| b == f))
                {
                    return Err(bad(
                        &key,
                        format!(
                            "is part of the body ({body_field}); it may not be set in the query"
                        ),
                    ));
                }
            }
            set_path(&mut message, &key, &value, true)?;
        }
    }
    // `Idempotency-Key` fills `request_id` when the body leaves it empty.
    if let (Some(key), Some(field)) = (idempotency_key, input.get_field_by_name("request_id"))
        && field.kind() == Kind::String
        && message
            .get_field(&field)
            .as_str()
            .is_some_and(str::is_empty)
    {
        message.set_field(&field, Value::String(key.to_owned()));
    }
    Ok(message)
}

fn from_json(
    desc: MessageDescriptor,
    body: &[u8],
    field: &str,
) -> Result<DynamicMessage, BadInput> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DynamicMessage::new(desc));
    }
    // serde_json keeps the last of two equal keys; a boundary should not
    // guess which one the client meant.
    serde::de::DeserializeSeed::deserialize(
        NoDuplicateKeys,
        &mut serde_json::Deserializer::from_slice(body),
    )
    .map_err(|e| bad(field, format!("invalid JSON: {e}")))?;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let message = DynamicMessage::deserialize_with_options(desc, &mut deserializer, &options)
        .map_err(|e| bad(field, format!("invalid JSON: {e}")))?;
    deserializer
        .end()
        .map_err(|e| bad(field, format!("invalid JSON: {e}")))?;
    Ok(message)
}

/// Walks a JSON document and fails on an object with a key twice.
struct NoDuplicateKeys;

impl<'de> serde::de::DeserializeSeed<'de> for NoDuplicateKeys {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(NoDuplicateKeys)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
            }
            map.next_value_seed(NoDuplicateKeys)?;
        }
        Ok(())
    }
}

/// A field by its proto name or its JSON name.
fn find_field(desc: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    desc.get_field_by_name(name)
        .or_else(|| desc.get_field_by_json_name(name))
}

/// Sets a dotted field path from its text form; repeated fields (from the
/// query) collect every value given.
fn set_path(
    message: &mut DynamicMessage,
    path: &str,
    raw: &str,
    from_query: bool,
) -> Result<(), BadInput> {
    let mut parts = path.split('.').peekable();
    let mut current = message;
    while let Some(part) = parts.next() {
        let field = find_field(&current.descriptor(), part)
            .ok_or_else(|| bad(path, "is not a field of the request"))?;
        if parts.peek().is_none() {
            let value = match field.kind() {
                // A FieldMask in a query is its JSON form: a comma list.
                Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask" => {
                    let mut mask = DynamicMessage::new(m.clone());
                    let paths: Vec<Value> = raw
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(|p| Value::String(to_snake_case(p)))
                        .collect();
                    mask.set_field_by_name("paths", Value::List(paths));
                    Value::Message(mask)
                }
                _ => scalar(&field, raw).map_err(|message| bad(path, message))?,
            };
            if field.is_list() {
                if !from_query {
                    return Err(bad(path, "a repeated field cannot be bound in the path"));
                }
                if let Value::List(items) = current.get_field_mut(&field) {
                    items.push(value);
                }
            } else {
                current.set_field(&field, value);
            }
            return Ok(());
        }
        let Kind::Message(_) = field.kind() else {
            return Err(bad(path, format!("{part} has no fields")));
        };
        if field.is_list() || field.is_map() {
            return Err(bad(path, format!("{part} cannot be set from the query")));
        }
        current = match current.get_field_mut(&field) {
            Value::Message(inner) => inner,
            _ => return Err(bad(path, format!("{part} has no fields"))),
        };
    }
    Ok(())
}

/// `updateMask`-style lowerCamelCase paths back to proto field names.
fn to_snake_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The text form of a scalar, as the proto3 JSON mapping reads it.
fn scalar(field: &FieldDescriptor, raw: &str) -> Result<Value, String> {
    let number = |what: &str| format!("must be {what}");
    Ok(match field.kind() {
        Kind::String => Value::String(raw.to_owned()),
        Kind::Bool => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err("must be true or false".to_owned()),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(raw.parse().map_err(|_| number("a 32-bit integer"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(raw.parse().map_err(|_| number("a 64-bit integer"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(
            raw.parse()
                .map_err(|_| number("an unsigned 32-bit integer"))?,
        ),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(
            raw.parse()
                .map_err(|_| number("an unsigned 64-bit integer"))?,
        ),
        Kind::Float => Value::F32(raw.parse().map_err(|_| number("a number"))?),
        Kind::Double => Value::F64(raw.parse().map_err(|_| number("a number"))?),
        Kind::Enum(e) => match e.get_value_by_name(raw) {
            Some(v) => Value::EnumNumber(v.number()),
            None => match raw.parse::<i32>() {
                Ok(n) if e.get_value(n).is_some() => Value::EnumNumber(n),
                _ => {
                    return Err(format!(
                        "must be one of {}",
                        e.values()
                            .map(|v| v.name().to_owned())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            },
        },
        Kind::Bytes | Kind::Message(_) => {
            return Err("cannot be given in the path or query".to_owned());
        }
    })
}

/// The response as JSON: lowerCamelCase names, 64-bit integers as strings,
/// enums by name, default values included (as grpc-gateway v2 does).
pub(crate) fn response_json(route: &Route, raw: &[u8]) -> Result<Vec<u8>, String> {
    bytes_json(&route.method.output(), raw, route.response_body.as_deref())
}

/// A message of type `desc` (or its message field `part`, a route's
/// `response_body`) as JSON from its bytes: written straight from them
/// ([`wire_json`]) where it can be, else by `prost-reflect`, which the two
/// are held to.
fn bytes_json(desc: &MessageDescriptor, raw: &[u8], part: Option<&str>) -> Result<Vec<u8>, String> {
    if let Some(json) = direct_json(desc, raw, part) {
        return Ok(json);
    }
    let message = DynamicMessage::decode(desc.clone(), raw)
        .map_err(|e| format!("decoding the response: {e}"))?;
    reflected_json(&message, part)
}

/// [`bytes_json`] by [`wire_json`] alone; `None` for what it leaves to
/// `prost-reflect`.
pub(crate) fn direct_json(
    desc: &MessageDescriptor,
    raw: &[u8],
    part: Option<&str>,
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len() * 2 + 64);
    match part {
        None => wire_json::write(desc, raw, &mut out),
        Some(field) => wire_json::field(desc, raw, field, &mut out),
    }?;
    Some(out)
}

/// [`bytes_json`] by `prost-reflect`.
pub(crate) fn reflected_json(
    message: &DynamicMessage,
    part: Option<&str>,
) -> Result<Vec<u8>, String> {
    let options = json_options();
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    match part {
        None => message.serialize_with_options(&mut serializer, &options),
        Some(field) => match message.get_field_by_name(field).as_deref() {
            Some(Value::Message(inner)) => inner.serialize_with_options(&mut serializer, &options),
            _ => return Err(format!("response_body {field} is not a message field")),
        },
    }
    .map_err(|e| e.to_string())?;
    Ok(out)
}

fn json_options() -> SerializeOptions {
    SerializeOptions::new()
        .skip_default_fields(false)
        .stringify_64_bit_integers(true)
}

/// A typed message, `name` in the contract, as the JSON routes answer
/// (proto3 JSON: lowerCamelCase, 64-bit integers as strings).
pub(crate) fn message_json(
    pool: &prost_reflect::DescriptorPool,
    name: &str,
    message: &impl prost::Message,
) -> Result<Vec<u8>, String> {
    let descriptor = pool
        .get_message_by_name(name)
        .ok_or_else(|| format!("{name} is not in the contract"))?;
    bytes_json(&descriptor, &message.encode_to_vec(), None)
}
