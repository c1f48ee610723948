//! Integer fields read as JSON Schema reads `integer`: any number with no fractional part, so
//! `300` and `300.0` are the same value (a client whose JSON library writes every number as a
//! float sends the latter).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Integers up to this magnitude are exact in an `f64`.
const EXACT_IN_F64: f64 = 9_007_199_254_740_992.0;

/// `value` as an integer when it is a number with no fractional part.
#[must_use]
pub fn whole_number(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        let f = value.as_f64()?;
        // Within ±2^53 and whole, so the conversion is exact.
        #[expect(
            clippy::cast_possible_truncation,
            reason = "f is a whole number within ±2^53"
        )]
        (f.fract() == 0.0 && f.abs() <= EXACT_IN_F64).then_some(f as i64)
    })
}

/// An optional integer field (`null` or absent: `None`) read with [`whole_number`].
///
/// # Errors
/// Anything but `null` or a whole number.
pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(value) => whole_number(&value)
            .map(Some)
            .ok_or_else(|| D::Error::custom("expected a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_number_without_a_fraction_is_whole_however_it_is_written() {
        for (value, expected) in [
            (json!(300), Some(300)),
            (json!(300.0), Some(300)),
            (json!(3e2), Some(300)),
            (json!(-4), Some(-4)),
            (json!(0.5), None),
            (json!(1e300), None),
            (json!("300"), None),
            (json!(true), None),
        ] {
            assert_eq!(whole_number(&value), expected, "{value}");
        }
    }
}
