//! Prices as people write them: `"$0.01"`, `"0.01 USDC"`, `"10000 atomic"`.
//!
//! A [`Price`] is a decimal amount plus a unit. It becomes an atomic token amount only once it
//! meets a network (which knows the token's address and decimals), in
//! [`NetworkRegistry::resolve_price`](crate::NetworkRegistry::resolve_price).

use std::fmt;
use std::str::FromStr;

use alloy_primitives::U256;

use crate::amount::Decimal;

/// What a price is denominated in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PriceUnit {
    /// US dollars (`"$0.01"` or `"0.01 USD"`): paid in the network's default USD stablecoin.
    Usd,
    /// A token named by its symbol (`"0.01 USDC"`), looked up on the route's network.
    Token(String),
    /// Atomic units of the route's asset (`"10000 atomic"`), used as given.
    Atomic,
}

impl fmt::Display for PriceUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PriceUnit::Usd => f.write_str("USD"),
            PriceUnit::Token(symbol) => f.write_str(symbol),
            PriceUnit::Atomic => f.write_str("atomic"),
        }
    }
}

/// A positive price with its unit, parsed from text.
///
/// Accepted forms:
///
/// | text | meaning |
/// | --- | --- |
/// | `"$0.01"`, `"0.01 USD"` | one cent, paid in the network's default USD stablecoin |
/// | `"0.01 USDC"` | 0.01 of the token with symbol `USDC` on the route's network |
/// | `"10000 atomic"` | 10000 atomic units of the route's asset |
///
/// ```
/// use x402_protocol::{Price, PriceUnit};
///
/// let p: Price = "0.01 USDC".parse().unwrap();
/// assert_eq!(p.unit(), &PriceUnit::Token("USDC".into()));
/// assert_eq!(p.amount().to_atomic(6).unwrap().to::<u64>(), 10_000);
///
/// let err = "0.01".parse::<Price>().unwrap_err();
/// assert!(err.to_string().contains("unit"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Price {
    amount: Decimal,
    unit: PriceUnit,
}

impl Price {
    /// A price in US dollars, e.g. `Price::usd("0.01")`.
    pub fn usd(amount: &str) -> Result<Self, PriceError> {
        Self::new(amount.parse()?, PriceUnit::Usd)
    }

    /// A price in atomic units of the route's asset.
    pub fn atomic(amount: impl Into<U256>) -> Result<Self, PriceError> {
        Self::new(Decimal::new(amount, 0), PriceUnit::Atomic)
    }

    /// A price from parts; fails when the amount is zero or an atomic amount has a fraction.
    pub fn new(amount: Decimal, unit: PriceUnit) -> Result<Self, PriceError> {
        if amount.is_zero() {
            return Err(PriceError::Zero);
        }
        if unit == PriceUnit::Atomic && amount.scale() > 0 {
            return Err(PriceError::AtomicNotInteger(amount.to_string()));
        }
        Ok(Price { amount, unit })
    }

    /// The decimal amount, in [`unit`](Self::unit)s.
    pub fn amount(&self) -> &Decimal {
        &self.amount
    }

    /// The unit the amount is denominated in.
    pub fn unit(&self) -> &PriceUnit {
        &self.unit
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.unit {
            PriceUnit::Usd => write!(f, "${}", self.amount),
            unit => write!(f, "{} {unit}", self.amount),
        }
    }
}

impl FromStr for Price {
    type Err = PriceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let s = text.trim();
        if s.is_empty() {
            return Err(PriceError::Empty);
        }
        if let Some(rest) = s.strip_prefix('$') {
            return Self::new(rest.trim_start().parse()?, PriceUnit::Usd);
        }
        if s.starts_with("-$") || s.starts_with('-') {
            return Err(PriceError::Negative(s.to_owned()));
        }
        let Some((number, unit)) = s.split_once(char::is_whitespace) else {
            // A bare number: check it is one, then ask for a unit.
            s.parse::<Decimal>()?;
            return Err(PriceError::MissingUnit(s.to_owned()));
        };
        let unit = unit.trim();
        let amount: Decimal = number.parse()?;
        let unit = if unit.eq_ignore_ascii_case("usd") {
            PriceUnit::Usd
        } else if unit.eq_ignore_ascii_case("atomic") {
            PriceUnit::Atomic
        } else if is_symbol(unit) {
            PriceUnit::Token(unit.to_owned())
        } else {
            return Err(PriceError::InvalidUnit(unit.to_owned()));
        };
        Self::new(amount, unit)
    }
}

/// Token symbols: 1–16 ASCII letters, digits, `.`, `-` or `_`, starting with a letter.
fn is_symbol(s: &str) -> bool {
    (1..=16).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Why a price could not be parsed or resolved on a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PriceError {
    /// The text was empty.
    #[error("price is empty; write it like \"$0.01\", \"0.01 USDC\" or \"10000 atomic\"")]
    Empty,
    /// The amount had a minus sign.
    #[error("price {0:?} is negative; prices must be positive")]
    Negative(String),
    /// The amount was zero.
    #[error("price is zero; a paid route must charge a positive amount")]
    Zero,
    /// The amount was not a plain decimal number.
    #[error("{0:?} is not a decimal number (expected digits with an optional fraction, like 0.01)")]
    InvalidNumber(String),
    /// The amount has more fractional digits than the token can represent.
    #[error("{amount} has {given} decimal places but the token has only {max}")]
    TooManyDecimals {
        /// The amount as written (normalised).
        amount: String,
        /// Fractional digits given.
        given: u8,
        /// Fractional digits the token has.
        max: u8,
    },
    /// The amount does not fit in 256 bits once scaled to atomic units.
    #[error("price is too large: it does not fit in a uint256 once scaled to atomic units")]
    Overflow,
    /// A number was given without a unit.
    #[error("price {0:?} has no unit; write \"${0}\", \"{0} USDC\" or \"{0} atomic\"")]
    MissingUnit(String),
    /// The unit is not a plausible token symbol.
    #[error("{0:?} is not a unit; use \"USD\", a token symbol such as \"USDC\", or \"atomic\"")]
    InvalidUnit(String),
    /// An atomic amount had a fractional part.
    #[error("atomic amounts are whole numbers, found {0}")]
    AtomicNotInteger(String),
    /// The unit names a token the network does not know.
    #[error("no token {unit:?} is known on {network}; known: {known}")]
    UnknownToken {
        /// The unit as written.
        unit: String,
        /// The network it was looked up on.
        network: String,
        /// The symbols that are known there, comma-separated.
        known: String,
    },
    /// A dollar price on a network whose default token is not a USD stablecoin.
    #[error(
        "{network} has no default USD stablecoin; give the price in a token, e.g. \"1 {symbol}\""
    )]
    NoUsdStablecoin {
        /// The network.
        network: String,
        /// The symbol of the network's default token.
        symbol: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        let cases = [
            ("$0.01", PriceUnit::Usd, "0.01"),
            ("$ 2", PriceUnit::Usd, "2"),
            ("0.01 USD", PriceUnit::Usd, "0.01"),
            ("0.01 usdc", PriceUnit::Token("usdc".into()), "0.01"),
            ("  1.5   USDC ", PriceUnit::Token("USDC".into()), "1.5"),
            ("10000 atomic", PriceUnit::Atomic, "10000"),
        ];
        for (text, unit, amount) in cases {
            let price: Price = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(price.unit(), &unit, "{text}");
            assert_eq!(price.amount().to_string(), amount, "{text}");
        }
    }

    #[test]
    fn rejects_with_a_reason() {
        use PriceError::*;
        type Check = fn(&PriceError) -> bool;
        let cases: [(&str, Check); 10] = [
            ("", |e| matches!(e, Empty)),
            ("$0", |e| matches!(e, Zero)),
            ("0 USDC", |e| matches!(e, Zero)),
            ("-1 USDC", |e| matches!(e, Negative(_))),
            ("-$1", |e| matches!(e, Negative(_))),
            ("0.01", |e| matches!(e, MissingUnit(_))),
            ("1.5 atomic", |e| matches!(e, AtomicNotInteger(_))),
            ("1 US$", |e| matches!(e, InvalidUnit(_))),
            ("abc USDC", |e| matches!(e, InvalidNumber(_))),
            ("$1e3", |e| matches!(e, InvalidNumber(_))),
        ];
        for (text, check) in cases {
            let err = text.parse::<Price>().unwrap_err();
            assert!(check(&err), "{text:?} gave {err:?}");
        }
    }

    #[test]
    fn displays_as_written() {
        for text in ["$0.01", "0.5 USDC", "10000 atomic"] {
            assert_eq!(text.parse::<Price>().unwrap().to_string(), text);
        }
    }
}
