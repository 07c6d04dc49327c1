//! Exact decimal amounts: parsing, scaling to atomic units, and formatting for display.
//!
//! Nothing here touches floating point. A decimal is kept as an integer mantissa and a
//! scale (`0.01` is mantissa `1`, scale `2`); converting to a token's atomic units multiplies
//! by a power of ten with overflow checks.

use std::fmt;

use alloy_primitives::U256;

use crate::price::PriceError;

/// A non-negative decimal number held exactly: `mantissa / 10^scale`.
///
/// ```
/// use x402_protocol::Decimal;
///
/// let d: Decimal = "0.0100".parse().unwrap();
/// assert_eq!(d.to_atomic(6).unwrap().to::<u64>(), 10_000);
/// assert_eq!(d.to_string(), "0.01");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    mantissa: U256,
    scale: u8,
}

/// The largest number of fractional digits a [`Decimal`] accepts (a token with more decimals
/// than this does not exist in practice; 18 is the usual maximum).
pub const MAX_SCALE: u8 = 77;

impl Decimal {
    /// Builds a decimal from its integer mantissa and scale (`Decimal::new(1, 2)` is `0.01`).
    pub fn new(mantissa: impl Into<U256>, scale: u8) -> Self {
        Decimal {
            mantissa: mantissa.into(),
            scale,
        }
        .normalized()
    }

    /// The decimal as an integer mantissa (`1` for `0.01`).
    pub fn mantissa(&self) -> U256 {
        self.mantissa
    }

    /// The number of fractional digits (`2` for `0.01`).
    pub fn scale(&self) -> u8 {
        self.scale
    }

    /// Whether the value is exactly zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa.is_zero()
    }

    /// Converts to the atomic units of a token with `decimals` fractional digits.
    ///
    /// Fails when the value has more fractional digits than the token (it cannot be paid
    /// exactly) or when the result does not fit in 256 bits.
    pub fn to_atomic(&self, decimals: u8) -> Result<U256, PriceError> {
        if self.scale > decimals {
            return Err(PriceError::TooManyDecimals {
                amount: self.to_string(),
                given: self.scale,
                max: decimals,
            });
        }
        let factor = pow10(decimals - self.scale).ok_or(PriceError::Overflow)?;
        self.mantissa
            .checked_mul(factor)
            .ok_or(PriceError::Overflow)
    }

    /// Interprets an atomic amount of a token with `decimals` fractional digits as a decimal.
    pub fn from_atomic(atomic: U256, decimals: u8) -> Self {
        Decimal::new(atomic, decimals)
    }

    /// Drops trailing fractional zeros so equal values compare equal.
    fn normalized(mut self) -> Self {
        let ten = U256::from(10u8);
        while self.scale > 0 && !self.mantissa.is_zero() && (self.mantissa % ten).is_zero() {
            self.mantissa /= ten;
            self.scale -= 1;
        }
        if self.mantissa.is_zero() {
            self.scale = 0;
        }
        self
    }
}

fn pow10(exp: u8) -> Option<U256> {
    U256::from(10u8).checked_pow(U256::from(exp))
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa.to_string();
        let scale = usize::from(self.scale);
        if scale == 0 {
            return f.write_str(&digits);
        }
        if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            write!(f, "{int}.{frac}")
        } else {
            write!(f, "0.{}{digits}", "0".repeat(scale - digits.len()))
        }
    }
}

impl std::str::FromStr for Decimal {
    type Err = PriceError;

    /// Parses `"12"`, `"0.01"` or `"1.500"`. Signs, exponents, separators and empty parts
    /// (`".5"`, `"1."`) are rejected with a reason.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(PriceError::Empty);
        }
        if s.starts_with('-') {
            return Err(PriceError::Negative(s.to_owned()));
        }
        let (int, frac) = match s.split_once('.') {
            Some((int, frac)) => (int, Some(frac)),
            None => (s, None),
        };
        let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
            return Err(PriceError::InvalidNumber(s.to_owned()));
        }
        let frac = frac.unwrap_or("");
        let scale = u8::try_from(frac.len())
            .ok()
            .filter(|scale| *scale <= MAX_SCALE)
            .ok_or(PriceError::Overflow)?;
        let mut digits = String::with_capacity(int.len() + frac.len());
        digits.push_str(int);
        digits.push_str(frac);
        let mantissa = parse_decimal_u256(&digits).map_err(|_| PriceError::Overflow)?;
        Ok(Decimal { mantissa, scale }.normalized())
    }
}

/// Error from [`parse_decimal_u256`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegerError {
    /// The text was empty.
    #[error("expected a base-10 integer, found an empty string")]
    Empty,
    /// The text held something other than ASCII digits.
    #[error("expected a base-10 integer (digits only)")]
    NotDigits,
    /// The value does not fit in 256 bits.
    #[error("integer does not fit in 256 bits")]
    Overflow,
}

/// Parses a base-10 integer string (digits only: no sign, no `0x`, no spaces) into a `U256`.
///
/// This is the format of every amount and EIP-3009 time on the x402 wire.
///
/// ```
/// use x402_protocol::amount::parse_decimal_u256;
/// assert_eq!(parse_decimal_u256("10000").unwrap().to::<u32>(), 10_000);
/// assert!(parse_decimal_u256("0x10").is_err());
/// assert!(parse_decimal_u256("-1").is_err());
/// ```
pub fn parse_decimal_u256(s: &str) -> Result<U256, IntegerError> {
    if s.is_empty() {
        return Err(IntegerError::Empty);
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IntegerError::NotDigits);
    }
    U256::from_str_radix(s, 10).map_err(|_| IntegerError::Overflow)
}

/// Formats an atomic amount for people: `format_units(10000, 6)` is `"0.01"`.
///
/// ```
/// use alloy_primitives::U256;
/// use x402_protocol::amount::format_units;
/// assert_eq!(format_units(U256::from(1_500_000u64), 6), "1.5");
/// assert_eq!(format_units(U256::from(1u64), 6), "0.000001");
/// ```
pub fn format_units(atomic: U256, decimals: u8) -> String {
    Decimal::from_atomic(atomic, decimals).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let d: Decimal = "1.2300".parse().unwrap();
        assert_eq!((d.mantissa(), d.scale()), (U256::from(123u8), 2));
        assert_eq!("0".parse::<Decimal>().unwrap().scale(), 0);
        assert_eq!("000.10".parse::<Decimal>().unwrap().to_string(), "0.1");
    }

    #[test]
    fn rejects_malformed_numbers() {
        for bad in [
            "", " ", ".5", "1.", "1.2.3", "1e6", "+1", "1,000", "0x10", "1 000", "½",
        ] {
            assert!(
                bad.parse::<Decimal>().is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert!(matches!(
            "-1".parse::<Decimal>(),
            Err(PriceError::Negative(_))
        ));
    }

    #[test]
    fn scales_exactly_where_floats_would_not() {
        // 4.02 * 10^6 in binary floating point is 4019999.9999999995.
        let d: Decimal = "4.02".parse().unwrap();
        assert_eq!(d.to_atomic(6).unwrap(), U256::from(4_020_000u64));
        assert_eq!(
            "0.1".parse::<Decimal>().unwrap().to_atomic(18).unwrap(),
            U256::from(100_000_000_000_000_000u64)
        );
    }

    #[test]
    fn refuses_more_decimals_than_the_token_has() {
        let err = "0.0000001"
            .parse::<Decimal>()
            .unwrap()
            .to_atomic(6)
            .unwrap_err();
        assert!(matches!(
            err,
            PriceError::TooManyDecimals {
                given: 7,
                max: 6,
                ..
            }
        ));
        // Trailing zeros are not extra precision.
        assert!("0.0100000".parse::<Decimal>().unwrap().to_atomic(6).is_ok());
    }

    #[test]
    fn detects_overflow() {
        let huge = "9".repeat(78);
        assert!(matches!(huge.parse::<Decimal>(), Err(PriceError::Overflow)));
        let big: Decimal = "1".repeat(70).parse().unwrap();
        assert!(matches!(big.to_atomic(18), Err(PriceError::Overflow)));
    }

    #[test]
    fn formats_round_trip() {
        for (atomic, decimals, text) in [
            (10_000u64, 6, "0.01"),
            (0, 6, "0"),
            (123, 0, "123"),
            (5, 3, "0.005"),
        ] {
            assert_eq!(format_units(U256::from(atomic), decimals), text);
            let back: Decimal = text.parse().unwrap();
            assert_eq!(back.to_atomic(decimals).unwrap(), U256::from(atomic));
        }
    }
}
