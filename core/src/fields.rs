//! Parsing a request's fields all at once: every field is parsed, and a
//! request with several bad fields reports every one of them in one
//! `BadRequest`, not only the first.
//!
//! ```
//! use oms_core::fields::AllFields as _;
//! use oms_core::FieldViolation;
//!
//! let quantity = |raw: i32| {
//!     (raw > 0).then_some(raw).ok_or_else(|| FieldViolation::new("quantity", "must be positive"))
//! };
//! let name = |raw: &str| {
//!     (!raw.is_empty()).then(|| raw.to_owned()).ok_or_else(|| FieldViolation::new("name", "is empty"))
//! };
//! assert_eq!((quantity(2), name("mug")).all_fields(), Ok((2, "mug".to_owned())));
//! let both_bad = (quantity(0), name("")).all_fields().unwrap_err();
//! assert_eq!(both_bad.len(), 2);
//! ```

use crate::error::FieldViolation;

/// What a field parser can fail with: one violation or several (a list of
/// lines).
pub trait IntoViolations {
    /// The violations, as a list.
    fn into_violations(self) -> Vec<FieldViolation>;
}

impl IntoViolations for FieldViolation {
    fn into_violations(self) -> Vec<FieldViolation> {
        vec![self]
    }
}

impl IntoViolations for Vec<FieldViolation> {
    fn into_violations(self) -> Vec<FieldViolation> {
        self
    }
}

/// A tuple of parsed fields: all values, or every violation.
pub trait AllFields {
    /// The tuple of values.
    type Output;
    /// Every value, or every violation of every field.
    fn all_fields(self) -> Result<Self::Output, Vec<FieldViolation>>;
}

macro_rules! all_fields {
    ($($value:ident $error:ident),+) => {
        impl<$($value, $error: IntoViolations),+> AllFields for ($(Result<$value, $error>,)+) {
            type Output = ($($value,)+);

            #[allow(non_snake_case)]
            fn all_fields(self) -> Result<Self::Output, Vec<FieldViolation>> {
                let ($($value,)+) = self;
                let mut violations = Vec::new();
                $(
                    let $value = match $value {
                        Ok(value) => Some(value),
                        Err(e) => {
                            violations.extend(e.into_violations());
                            None
                        }
                    };
                )+
                match ($($value,)+) {
                    ($(Some($value),)+) => Ok(($($value,)+)),
                    _ => Err(violations),
                }
            }
        }
    };
}

all_fields!(A EA, B EB);
all_fields!(A EA, B EB, C EC);
all_fields!(A EA, B EB, C EC, D ED);
all_fields!(A EA, B EB, C EC, D ED, E EE);
all_fields!(A EA, B EB, C EC, D ED, E EE, F EF);

#[cfg(test)]
mod tests {
    use super::*;

    fn positive(field: &str, raw: i32) -> Result<i32, FieldViolation> {
        (raw > 0)
            .then_some(raw)
            .ok_or_else(|| FieldViolation::new(field, "must be positive"))
    }

    #[test]
    fn every_violation_of_every_field_is_kept() {
        assert_eq!(
            (positive("a", 1), positive("b", 2)).all_fields(),
            Ok((1, 2))
        );
        let lines: Result<Vec<i32>, Vec<FieldViolation>> = Err(vec![
            FieldViolation::new("lines[0]", "bad"),
            FieldViolation::new("lines[1]", "bad"),
        ]);
        let all = (positive("a", 0), lines, positive("c", 3))
            .all_fields()
            .unwrap_err();
        let fields: Vec<&str> = all.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["a", "lines[0]", "lines[1]"]);
    }
}
