//! Money: whole Korean won in an `i64`, never a float.

use serde::{Deserialize, Serialize};

use crate::validation::ValidationError;

/// The largest amount one request may name: 1,000,000,000,000 KRW.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// A positive amount of KRW, at most [`MAX_AMOUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Krw(i64);

impl Krw {
    /// Checks that `amount` is in 1..=MAX_AMOUNT; `field` names it in the error.
    pub fn parse(amount: i64, field: &'static str) -> Result<Self, ValidationError> {
        if amount <= 0 {
            return Err(ValidationError::new(field, "amount_not_positive", format!("{field} must be at least 1 KRW")));
        }
        if amount > MAX_AMOUNT {
            return Err(ValidationError::new(
                field,
                "amount_too_large",
                format!("{field} must be at most {MAX_AMOUNT} KRW"),
            ));
        }
        Ok(Self(amount))
    }

    /// For amounts already known to be valid (read from the database, or the sum of valid amounts
    /// checked by the caller).
    pub(crate) fn from_trusted(amount: i64) -> Self {
        Self(amount)
    }

    /// The number of won.
    pub fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_must_be_positive_and_bounded() {
        assert_eq!(Krw::parse(0, "amount").unwrap_err().code, "amount_not_positive");
        assert_eq!(Krw::parse(-5, "amount").unwrap_err().code, "amount_not_positive");
        assert_eq!(Krw::parse(MAX_AMOUNT + 1, "amount").unwrap_err().code, "amount_too_large");
        assert_eq!(Krw::parse(MAX_AMOUNT, "amount").unwrap().get(), MAX_AMOUNT);
    }
}
