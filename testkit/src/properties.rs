//! Property-test inputs: any message of the contract as a client could
//! send it, generated from the descriptor set (so a field added to
//! `proto/` is generated too), with strings that mix arbitrary Unicode,
//! near-valid values (IDs, SKUs, emails, currency codes) and very long
//! text, and numbers that mix small and extreme values.

use std::sync::OnceLock;

use proptest::prelude::*;
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value,
};

/// How deep messages nest before nested fields are left unset.
const DEPTH: u32 = 3;
/// Most elements of a repeated field.
const MAX_REPEATED: usize = 4;

/// The contract's descriptors.
///
/// # Panics
/// If the descriptor set compiled into `oms-proto` does not decode.
pub fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(oms_proto::FILE_DESCRIPTOR_SET)
            .unwrap_or_else(|e| panic!("the contract's descriptor set does not decode: {e}"))
    })
}

/// Any `M` (named `full_name` in the contract, e.g.
/// `oms.user.v1.RegisterRequest`): each field unset or set to any value of
/// its type, nested messages to a depth of three.
///
/// # Panics
/// If the contract has no message `full_name`, or `M` is not that message.
pub fn message<M: prost::Message + Default + std::fmt::Debug + 'static>(
    full_name: &str,
) -> BoxedStrategy<M> {
    let descriptor = pool()
        .get_message_by_name(full_name)
        .unwrap_or_else(|| panic!("the contract has no message {full_name}"));
    let name = full_name.to_owned();
    dynamic(&descriptor, DEPTH)
        .prop_map(move |dynamic| {
            M::decode(dynamic.encode_to_vec().as_slice())
                .unwrap_or_else(|e| panic!("a generated {name} does not decode as one: {e}"))
        })
        .boxed()
}

/// Any message of type `descriptor`, as a [`DynamicMessage`].
pub fn dynamic(descriptor: &MessageDescriptor, depth: u32) -> BoxedStrategy<DynamicMessage> {
    let fields: Vec<BoxedStrategy<Option<(FieldDescriptor, Value)>>> = descriptor
        .fields()
        .filter_map(|field| {
            let value = field_value(&field, depth)?;
            Some(proptest::option::of(value.prop_map(move |v| (field.clone(), v))).boxed())
        })
        .collect();
    let descriptor = descriptor.clone();
    fields
        .prop_map(move |values| {
            let mut message = DynamicMessage::new(descriptor.clone());
            // A later member of a oneof replaces an earlier one, as on the wire.
            for (field, value) in values.into_iter().flatten() {
                message.set_field(&field, value);
            }
            message
        })
        .boxed()
}

/// Values for one field; `None` when it is a message nested too deep.
fn field_value(field: &FieldDescriptor, depth: u32) -> Option<BoxedStrategy<Value>> {
    let one = scalar_or_message(&field.kind(), depth)?;
    Some(if field.is_list() {
        proptest::collection::vec(one, 0..=MAX_REPEATED)
            .prop_map(Value::List)
            .boxed()
    } else {
        one
    })
}

fn scalar_or_message(kind: &Kind, depth: u32) -> Option<BoxedStrategy<Value>> {
    Some(match kind {
        Kind::String => text().prop_map(Value::String).boxed(),
        Kind::Bytes => proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| Value::Bytes(b.into()))
            .boxed(),
        Kind::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => int32().prop_map(Value::I32).boxed(),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => int64().prop_map(Value::I64).boxed(),
        Kind::Uint32 | Kind::Fixed32 => prop_oneof![Just(u32::MAX), 0..1_000u32, any::<u32>()]
            .prop_map(Value::U32)
            .boxed(),
        Kind::Uint64 | Kind::Fixed64 => prop_oneof![Just(u64::MAX), 0..1_000u64, any::<u64>()]
            .prop_map(Value::U64)
            .boxed(),
        Kind::Float => any::<f32>().prop_map(Value::F32).boxed(),
        Kind::Double => any::<f64>().prop_map(Value::F64).boxed(),
        // Unknown numbers too: a client may send a value added after us.
        Kind::Enum(_) => prop_oneof![-1..12, any::<i32>()]
            .prop_map(Value::EnumNumber)
            .boxed(),
        Kind::Message(nested) if depth > 0 => {
            dynamic(nested, depth - 1).prop_map(Value::Message).boxed()
        }
        Kind::Message(_) => return None,
    })
}

/// Any text a client could send: empty, arbitrary Unicode, printable ASCII,
/// near-valid identifiers and addresses with stray spaces, UUIDs, and runs
/// of one character up to 6,000 long (past every length limit).
pub fn text() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        any::<String>(),
        "[ -~]{0,40}",
        " {0,2}[A-Za-z0-9._@:-]{1,70} {0,2}",
        "[A-Z]{3}",
        "[a-z0-9.+]{1,12}@[a-z0-9-]{1,12}\\.[a-z]{2,4}",
        any::<u128>().prop_map(uuid_text),
        (0usize..6_000, any::<char>()).prop_map(|(n, c)| std::iter::repeat_n(c, n).collect()),
    ]
    .boxed()
}

/// Small numbers (around the limits a request meets) and any.
fn int32() -> BoxedStrategy<i32> {
    // The extremes on their own: `abs()` and negation overflow there
    // (i64::MIN once passed a bound check as a stock delta).
    prop_oneof![Just(i32::MIN), Just(i32::MAX), -3..1_000, any::<i32>()].boxed()
}

fn int64() -> BoxedStrategy<i64> {
    prop_oneof![Just(i64::MIN), Just(i64::MAX), -3i64..1_000, any::<i64>()].boxed()
}

/// `n` in the UUID text form, any version bits.
fn uuid_text(n: u128) -> String {
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Whether `path` (`product.sku`, `lines[2].quantity`) names a field of
/// the contract's message `message`, as a violation's field must.
pub fn is_field_path(message: &str, path: &str) -> bool {
    let Some(mut current) = pool().get_message_by_name(message) else {
        return false;
    };
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let name = match part.split_once('[') {
            Some((name, index)) => {
                let digits = index.strip_suffix(']').unwrap_or("x");
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return false;
                }
                name
            }
            None => part,
        };
        let Some(field) = current.get_field_by_name(name) else {
            return false;
        };
        if part.contains('[') && !field.is_list() {
            return false;
        }
        if parts.peek().is_some() {
            let Kind::Message(next) = field.kind() else {
                return false;
            };
            current = next;
        }
    }
    true
}

/// A request parser's refusal as a client must get it: at least one
/// violation, each naming a field of `request` (a full message name) and
/// saying what is wrong.
///
/// # Errors
/// The failed check, for `proptest!`.
pub fn check_refusal(
    request: &str,
    violations: &[oms_core::FieldViolation],
) -> Result<(), TestCaseError> {
    for violation in violations {
        prop_assert!(
            is_field_path(request, &violation.field),
            "{:?} is not a field of {request}",
            violation.field
        );
        prop_assert!(
            !violation.description.is_empty(),
            "{}: no description",
            violation.field
        );
    }
    prop_assert!(
        !violations.is_empty(),
        "{request}: refused without a violation"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::test_runner::TestRunner;

    #[test]
    fn every_request_of_the_contract_can_be_generated() {
        let mut runner = TestRunner::deterministic();
        let requests: Vec<_> = pool()
            .all_messages()
            .filter(|m| m.full_name().starts_with("oms.") && m.name().ends_with("Request"))
            .collect();
        assert!(requests.len() > 20, "{} requests", requests.len());
        assert!(is_field_path(
            "oms.product.v1.CreateProductRequest",
            "product.sku"
        ));
        assert!(is_field_path(
            "oms.order.v1.CreateOrderRequest",
            "lines[2].quantity"
        ));
        assert!(!is_field_path(
            "oms.order.v1.CreateOrderRequest",
            "lines.quantity[2]"
        ));
        assert!(!is_field_path(
            "oms.order.v1.CreateOrderRequest",
            "lines[].quantity"
        ));
        assert!(!is_field_path(
            "oms.order.v1.CreateOrderRequest",
            "line_items"
        ));
        for request in requests {
            let strategy = dynamic(&request, DEPTH);
            for _ in 0..20 {
                let value = strategy.new_tree(&mut runner).map(|t| t.current());
                assert!(value.is_ok(), "{}", request.full_name());
            }
        }
    }
}
