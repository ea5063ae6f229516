//! A response's protobuf bytes written straight out as proto3 JSON, from
//! the descriptors alone: the same bytes `prost-reflect` writes
//! ([`crate::transcode::reflected_json`]), without first building a
//! `DynamicMessage` (a tree of boxed values, each string and timestamp
//! copied once more). That decode and serialize were 12 % of the gateway's
//! CPU under GetProduct load (BENCHMARKS.md, 2026-12-07).
//!
//! It handles what services send: plain messages, scalars, enums, repeated
//! fields packed or not, oneofs, `optional`, `Timestamp` and `Empty`.
//! Anything else, or anything unusual on the wire (a map with entries,
//! another well-known type, a singular message or a oneof sent twice,
//! bytes that do not parse), is `None`, and the caller falls back to
//! `prost-reflect`, which gives the answer or the error. A property test
//! holds the two to the same output.

use std::io::Write as _;

use base64::Engine as _;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

/// The JSON of `raw`, a message of type `desc`, appended to `out`; `None`
/// (with `out` in an unspecified state) for what it leaves to
/// `prost-reflect`.
pub(crate) fn write(desc: &MessageDescriptor, raw: &[u8], out: &mut Vec<u8>) -> Option<()> {
    nested(desc, raw, MAX_DEPTH, out)
}

/// How deep messages may nest, as prost's own decoder allows: deeper is
/// left to prost-reflect to refuse, never a stack overflow here.
const MAX_DEPTH: u32 = 100;

fn nested(desc: &MessageDescriptor, raw: &[u8], depth: u32, out: &mut Vec<u8>) -> Option<()> {
    let depth = depth.checked_sub(1)?;
    match desc.full_name() {
        "google.protobuf.Timestamp" => return timestamp(raw, out),
        "google.protobuf.Empty" => {
            // Still parsed: bytes that are not a message are an error.
            fields(raw)?;
            out.extend_from_slice(b"{}");
            return Some(());
        }
        name if name.starts_with("google.protobuf.") => return None,
        _ => {}
    }
    let occurrences = fields(raw)?;
    // prost-reflect writes set extensions; only a message with extension
    // ranges can have one, so the others skip the lookups.
    if !desc.descriptor_proto().extension_range.is_empty()
        && occurrences
            .iter()
            .any(|o| desc.get_field(o.number).is_none() && desc.get_extension(o.number).is_some())
    {
        return None;
    }
    out.push(b'{');
    let mut first = true;
    let mut oneofs_seen = Vec::new();
    for field in desc.fields() {
        let mut mine = occurrences.iter().filter(|o| o.number == field.number());
        let present = mine.clone().next().is_some();
        if present && let Some(oneof) = field.containing_oneof() {
            // Two members of one oneof: the wire says the later wins,
            // which prost-reflect applies; rare enough to leave to it.
            if oneofs_seen.contains(&oneof) {
                return None;
            }
            oneofs_seen.push(oneof);
        }
        if field.supports_presence() && !present {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        string(field.json_name(), out);
        out.push(b':');
        if field.is_map() {
            if present {
                // prost-reflect keeps maps in a hash map: its order is its own.
                return None;
            }
            out.extend_from_slice(b"{}");
        } else if field.is_list() {
            out.push(b'[');
            let mut first_item = true;
            for o in mine {
                list_items(&field, o, depth, &mut first_item, out)?;
            }
            out.push(b']');
        } else if let Kind::Message(message) = field.kind() {
            let o = mine.next()?;
            if mine.next().is_some() {
                // A message sent twice is merged, field by field.
                return None;
            }
            let Value::Bytes(bytes) = o.value else {
                return None;
            };
            self::nested(&message, bytes, depth, out)?;
        } else {
            match mine.next_back() {
                Some(o) => scalar(&field.kind(), o.value, out)?,
                None => default(&field.kind(), out),
            }
        }
    }
    out.push(b'}');
    Some(())
}

/// The JSON of the message field `name` of `raw` (a route's
/// `response_body`), as [`write`] gives it; an absent field is its
/// defaults, as prost-reflect reads it.
pub(crate) fn field(
    desc: &MessageDescriptor,
    raw: &[u8],
    name: &str,
    out: &mut Vec<u8>,
) -> Option<()> {
    let field = desc.get_field_by_name(name)?;
    let Kind::Message(message) = field.kind() else {
        return None;
    };
    if field.is_list() {
        return None;
    }
    let mut mine = fields(raw)?
        .into_iter()
        .filter(|o| o.number == field.number());
    let bytes = match (mine.next(), mine.next()) {
        (None, _) => &[][..],
        (
            Some(Occurrence {
                value: Value::Bytes(bytes),
                ..
            }),
            None,
        ) => bytes,
        _ => return None,
    };
    // The other fields are not read: none of them reaches the client.
    write(&message, bytes, out)
}

/// One field as the wire carries it.
#[derive(Debug, Clone, Copy)]
struct Occurrence<'a> {
    number: u32,
    value: Value<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

const MAX_FIELD_NUMBER: u32 = (1 << 29) - 1;

/// Every field of a message, in wire order; `None` for bytes that are not
/// a message (or hold groups, which proto3 has not).
fn fields(mut raw: &[u8]) -> Option<Vec<Occurrence<'_>>> {
    let mut found = Vec::with_capacity(16);
    while !raw.is_empty() {
        let key = varint(&mut raw)?;
        // Field numbers are 1 to 2^29 - 1; prost refuses others.
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|n| (1..=MAX_FIELD_NUMBER).contains(n))?;
        let value = match key & 7 {
            0 => Value::Varint(varint(&mut raw)?),
            1 => Value::Fixed64(u64::from_le_bytes(take(&mut raw, 8)?.try_into().ok()?)),
            2 => {
                let len = usize::try_from(varint(&mut raw)?).ok()?;
                Value::Bytes(take(&mut raw, len)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(take(&mut raw, 4)?.try_into().ok()?)),
            _ => return None,
        };
        found.push(Occurrence { number, value });
    }
    Some(found)
}

fn take<'a>(raw: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    if raw.len() < len {
        return None;
    }
    let (head, tail) = raw.split_at(len);
    *raw = tail;
    Some(head)
}

fn varint(raw: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = raw.split_first()?;
        *raw = rest;
        // The tenth byte holds the 64th bit alone; prost refuses more.
        if i == 9 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

/// The items of a repeated field in one occurrence: one value, or a packed
/// run of them.
fn list_items(
    field: &FieldDescriptor,
    o: &Occurrence<'_>,
    depth: u32,
    first: &mut bool,
    out: &mut Vec<u8>,
) -> Option<()> {
    let kind = field.kind();
    let mut item = |value: Value<'_>, out: &mut Vec<u8>| -> Option<()> {
        if !*first {
            out.push(b',');
        }
        *first = false;
        match &kind {
            Kind::Message(message) => match value {
                Value::Bytes(bytes) => nested(message, bytes, depth, out),
                _ => None,
            },
            kind => scalar(kind, value, out),
        }
    };
    match (o.value, &kind) {
        (Value::Bytes(mut packed), k) if packable(k) => {
            while !packed.is_empty() {
                let value = match k {
                    Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => {
                        Value::Fixed64(u64::from_le_bytes(take(&mut packed, 8)?.try_into().ok()?))
                    }
                    Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => {
                        Value::Fixed32(u32::from_le_bytes(take(&mut packed, 4)?.try_into().ok()?))
                    }
                    _ => Value::Varint(varint(&mut packed)?),
                };
                item(value, out)?;
            }
            Some(())
        }
        (value, _) => item(value, out),
    }
}

fn packable(kind: &Kind) -> bool {
    !matches!(kind, Kind::String | Kind::Bytes | Kind::Message(_))
}

/// One scalar (or enum) value; `None` when its wire type is not the
/// field's.
fn scalar(kind: &Kind, value: Value<'_>, out: &mut Vec<u8>) -> Option<()> {
    // The casts are protobuf's own: a 32-bit varint keeps its low bits.
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
    match (kind, value) {
        (Kind::String, Value::Bytes(b)) => string(std::str::from_utf8(b).ok()?, out),
        (Kind::Bytes, Value::Bytes(b)) => {
            out.push(b'"');
            let start = out.len();
            out.resize(start + base64::encoded_len(b.len(), true)?, 0);
            base64::engine::general_purpose::STANDARD
                .encode_slice(b, &mut out[start..])
                .ok()?;
            out.push(b'"');
        }
        (Kind::Bool, Value::Varint(v)) => {
            out.extend_from_slice(if v != 0 { b"true" } else { b"false" });
        }
        (Kind::Int32, Value::Varint(v)) => number(v as i32, out),
        (Kind::Sint32, Value::Varint(v)) => number(zigzag(v) as i32, out),
        (Kind::Uint32, Value::Varint(v)) => number(v as u32, out),
        (Kind::Fixed32, Value::Fixed32(v)) => number(v, out),
        (Kind::Sfixed32, Value::Fixed32(v)) => number(v as i32, out),
        // 64-bit integers are strings in proto3 JSON.
        (Kind::Int64, Value::Varint(v)) => quoted(v as i64, out),
        (Kind::Sint64, Value::Varint(v)) => quoted(zigzag(v), out),
        (Kind::Uint64, Value::Varint(v)) => quoted(v, out),
        (Kind::Fixed64, Value::Fixed64(v)) => quoted(v, out),
        (Kind::Sfixed64, Value::Fixed64(v)) => quoted(v as i64, out),
        (Kind::Float, Value::Fixed32(v)) => {
            let v = f32::from_bits(v);
            if v.is_finite() {
                serde_json::to_writer(&mut *out, &v).ok()?;
            } else {
                non_finite(f64::from(v), out);
            }
        }
        (Kind::Double, Value::Fixed64(v)) => {
            let v = f64::from_bits(v);
            if v.is_finite() {
                serde_json::to_writer(&mut *out, &v).ok()?;
            } else {
                non_finite(v, out);
            }
        }
        (Kind::Enum(e), Value::Varint(v)) => match e.get_value(v as i32) {
            Some(named) => string(named.name(), out),
            None => number(v as i32, out),
        },
        _ => return None,
    }
    Some(())
}

/// What an absent field without presence reads as.
fn default(kind: &Kind, out: &mut Vec<u8>) {
    match kind {
        Kind::String | Kind::Bytes => out.extend_from_slice(b"\"\""),
        Kind::Bool => out.extend_from_slice(b"false"),
        Kind::Int64 | Kind::Sint64 | Kind::Uint64 | Kind::Fixed64 | Kind::Sfixed64 => {
            out.extend_from_slice(b"\"0\"");
        }
        Kind::Enum(e) => {
            let zero = e.default_value();
            string(zero.name(), out);
        }
        // serde_json writes a float zero as a float.
        Kind::Float | Kind::Double => out.extend_from_slice(b"0.0"),
        // Other numbers, and (unreachable: messages have presence) a message.
        _ => out.push(b'0'),
    }
}

fn zigzag(v: u64) -> i64 {
    #[allow(clippy::cast_possible_wrap)] // the zigzag decoding itself
    let half = (v >> 1) as i64;
    half ^ -((v & 1) as i64)
}

fn number(v: impl std::fmt::Display, out: &mut Vec<u8>) {
    let _ = write!(out, "{v}");
}

fn quoted(v: impl std::fmt::Display, out: &mut Vec<u8>) {
    let _ = write!(out, "\"{v}\"");
}

/// The proto3 JSON names of the floats JSON has no number for.
fn non_finite(v: f64, out: &mut Vec<u8>) {
    let name = if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    };
    string(name, out);
}

/// A JSON string, escaped as serde_json escapes it.
fn string(s: &str, out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail, and a str always serializes.
    let _ = serde_json::to_writer(out, s);
}

/// `google.protobuf.Timestamp` as RFC 3339, exactly as prost-reflect
/// writes it (prost-types' formatting); out of its range is `None`, for
/// prost-reflect to refuse.
fn timestamp(raw: &[u8], out: &mut Vec<u8>) -> Option<()> {
    // 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, as prost-reflect checks.
    const MIN_SECONDS: i64 = -62_135_596_800;
    const MAX_SECONDS: i64 = 253_402_300_799;
    let mut t = prost_types::Timestamp::default();
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
    for o in fields(raw)? {
        match (o.number, o.value) {
            (1, Value::Varint(v)) => t.seconds = v as i64,
            (2, Value::Varint(v)) => t.nanos = v as i32,
            (1 | 2, _) => return None,
            _ => {}
        }
    }
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&t.seconds) {
        return None;
    }
    let _ = write!(out, "\"{t}\"");
    Some(())
}

#[cfg(test)]
mod tests {
    use prost::encoding::encode_varint;
    use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
    use prost_types::field_descriptor_proto::{Label, Type};
    use prost_types::{
        DescriptorProto, EnumDescriptorProto, EnumValueDescriptorProto, FieldDescriptorProto,
        FileDescriptorProto,
    };

    /// `message Sample { repeated int32 ints = 1; repeated double doubles
    /// = 2; repeated Colour colours = 3; string name = 4; Sample child = 5;
    /// sint64 delta = 6; float ratio = 7; }`: the wire shapes the
    /// contract's responses do not all have.
    fn sample() -> MessageDescriptor {
        let field = |name: &str, number: i32, label: Label, kind: Type, type_name: &str| {
            FieldDescriptorProto {
                name: Some(name.into()),
                number: Some(number),
                label: Some(label as i32),
                r#type: Some(kind as i32),
                type_name: (!type_name.is_empty()).then(|| type_name.into()),
                json_name: Some(name.into()),
                ..Default::default()
            }
        };
        let (rep, one) = (Label::Repeated, Label::Optional);
        let file = FileDescriptorProto {
            name: Some("sample.proto".into()),
            package: Some("t".into()),
            syntax: Some("proto3".into()),
            message_type: vec![DescriptorProto {
                name: Some("Sample".into()),
                field: vec![
                    field("ints", 1, rep, Type::Int32, ""),
                    field("doubles", 2, rep, Type::Double, ""),
                    field("colours", 3, rep, Type::Enum, ".t.Colour"),
                    field("name", 4, one, Type::String, ""),
                    field("child", 5, one, Type::Message, ".t.Sample"),
                    field("delta", 6, one, Type::Sint64, ""),
                    field("ratio", 7, one, Type::Float, ""),
                ],
                ..Default::default()
            }],
            enum_type: vec![EnumDescriptorProto {
                name: Some("Colour".into()),
                value: ["COLOUR_UNSPECIFIED", "RED"]
                    .iter()
                    .zip(0..)
                    .map(|(name, number)| EnumValueDescriptorProto {
                        name: Some((*name).into()),
                        number: Some(number),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let pool = DescriptorPool::from_file_descriptor_set(prost_types::FileDescriptorSet {
            file: vec![file],
        })
        .expect("the sample descriptor is valid");
        pool.get_message_by_name("t.Sample")
            .expect("Sample is in the pool")
    }

    fn key(out: &mut Vec<u8>, number: u64, wire: u64) {
        encode_varint(number << 3 | wire, out);
    }

    fn len(out: &mut Vec<u8>, number: u64, payload: &[u8]) {
        key(out, number, 2);
        encode_varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    fn direct(raw: &[u8]) -> Option<String> {
        let mut out = Vec::new();
        super::write(&sample(), raw, &mut out)?;
        Some(String::from_utf8(out).expect("the writer writes UTF-8"))
    }

    fn reflected(raw: &[u8]) -> Result<String, String> {
        let message = DynamicMessage::decode(sample(), raw).map_err(|e| e.to_string())?;
        let json = crate::transcode::reflected_json(&message, None)?;
        Ok(String::from_utf8(json).expect("serde_json writes UTF-8"))
    }

    #[test]
    fn packed_and_unpacked_repeated_fields_read_alike() {
        let mut raw = Vec::new();
        let mut packed = Vec::new();
        for v in [1i64, -1, 300] {
            encode_varint(v as u64, &mut packed);
        }
        len(&mut raw, 1, &packed);
        key(&mut raw, 1, 0);
        encode_varint(7, &mut raw);
        let doubles: Vec<u8> = [1.5f64, f64::NAN, f64::NEG_INFINITY, 0.0]
            .iter()
            .flat_map(|d| d.to_le_bytes())
            .collect();
        len(&mut raw, 2, &doubles);
        for colour in [1u64, 99] {
            key(&mut raw, 3, 0);
            encode_varint(colour, &mut raw);
        }
        let json = direct(&raw).expect("written directly");
        assert_eq!(Ok(json.clone()), reflected(&raw));
        assert_eq!(
            json,
            r#"{"ints":[1,-1,300,7],"doubles":[1.5,"NaN","-Infinity",0.0],"colours":["RED",99],"name":"","delta":"0","ratio":0.0}"#
        );
    }

    #[test]
    fn a_scalar_sent_twice_is_the_last_and_unknown_fields_are_skipped() {
        let mut raw = Vec::new();
        len(&mut raw, 4, b"first");
        len(&mut raw, 99, b"unknown");
        key(&mut raw, 6, 0);
        encode_varint(3, &mut raw); // zigzag -2
        len(&mut raw, 4, "sécond \"quoted\"\n".as_bytes());
        key(&mut raw, 7, 5);
        raw.extend_from_slice(&0.1f32.to_le_bytes());
        let mut child = Vec::new();
        len(&mut child, 4, b"kid");
        len(&mut raw, 5, &child);
        let json = direct(&raw).expect("written directly");
        assert_eq!(Ok(json.clone()), reflected(&raw));
        assert!(json.contains(r#""name":"sécond \"quoted\"\n""#), "{json}");
        assert!(json.contains(r#""delta":"-2""#), "{json}");
    }

    #[test]
    fn what_it_cannot_write_exactly_is_left_to_prost_reflect() {
        let mut child = Vec::new();
        len(&mut child, 4, b"kid");
        // A message sent twice merges: prost-reflect's to write.
        let mut twice = Vec::new();
        len(&mut twice, 5, &child);
        len(&mut twice, 5, &child);
        assert_eq!(direct(&twice), None);
        assert!(reflected(&twice).is_ok());
        // Bytes that are not a message: prost-reflect's to refuse.
        let mut bad_text = Vec::new();
        len(&mut bad_text, 4, &[0xff, 0xfe]);
        let mut truncated = Vec::new();
        key(&mut truncated, 4, 2);
        encode_varint(10, &mut truncated);
        truncated.extend_from_slice(b"short");
        let wrong_wire_type = {
            let mut raw = Vec::new();
            len(&mut raw, 6, b"x");
            raw
        };
        let field_zero = vec![0u8, 1];
        let long_varint = {
            let mut raw = Vec::new();
            key(&mut raw, 6, 0);
            raw.extend_from_slice(&[0xff; 9]);
            raw.push(0x02);
            raw
        };
        for raw in [
            bad_text,
            truncated,
            wrong_wire_type,
            field_zero,
            long_varint,
        ] {
            assert_eq!(direct(&raw), None, "{raw:?}");
            assert!(reflected(&raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn nesting_is_bounded_as_prost_bounds_it() {
        let nest = |levels: usize| {
            let mut raw = Vec::new();
            len(&mut raw, 4, b"leaf");
            for _ in 0..levels {
                let mut outer = Vec::new();
                len(&mut outer, 5, &raw);
                raw = outer;
            }
            raw
        };
        let shallow = nest(50);
        assert_eq!(direct(&shallow).map(Ok), Some(reflected(&shallow)));
        let deep = nest(10_000);
        assert_eq!(direct(&deep), None);
        assert!(reflected(&deep).is_err(), "prost refuses it too");
    }
}
