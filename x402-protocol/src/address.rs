//! Addresses of any chain family x402 pays on: EVM (`0x` + 20 bytes, EIP-55 checksummed) and
//! Solana (32-byte ed25519 public keys, base58).
//!
//! Payers, recipients (`payTo`) and tokens (`asset`: an ERC-20 contract or an SPL mint) are
//! [`ChainAddress`]es. Their text form is the one each chain writes, so the two can never be
//! confused: `0x…` is always EVM, anything else is base58.
//!
//! ```
//! use x402_protocol::ChainAddress;
//!
//! let evm: ChainAddress = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc".parse()?;
//! assert_eq!(evm.to_string(), "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
//! let mint: ChainAddress = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v".parse()?;
//! assert!(mint.as_solana().is_some());
//! # Ok::<(), x402_protocol::address::AddressError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use alloy_primitives::Address;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The chain families this crate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// EVM chains (`eip155:<chain id>`).
    Evm,
    /// Solana clusters (`solana:<genesis hash prefix>`).
    Solana,
}

impl Family {
    /// The CAIP-2 namespace: `eip155` or `solana`.
    pub const fn namespace(self) -> &'static str {
        match self {
            Family::Evm => "eip155",
            Family::Solana => "solana",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Evm => "EVM",
            Family::Solana => "Solana",
        })
    }
}

/// A Solana address: a 32-byte public key (or program-derived address), written in base58.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SolanaAddress(pub [u8; 32]);

impl SolanaAddress {
    /// The address from base58 text, evaluated at compile time when used in a `const`.
    ///
    /// # Panics
    ///
    /// When `text` is not the base58 form of exactly 32 bytes (in a `const`, that is a build
    /// error). Use [`str::parse`] for text from outside the program.
    // A panic here is evaluated at compile time for constants: a typo fails the build.
    #[allow(clippy::panic)]
    pub const fn from_base58_const(text: &str) -> Self {
        match decode_base58_32(text.as_bytes()) {
            Some(bytes) => SolanaAddress(bytes),
            None => panic!("not the base58 form of a 32-byte Solana address"),
        }
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for SolanaAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).into_string())
    }
}

impl fmt::Debug for SolanaAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SolanaAddress({self})")
    }
}

impl FromStr for SolanaAddress {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        match bs58::decode(text).onto(&mut bytes) {
            Ok(32) => Ok(SolanaAddress(bytes)),
            _ => Err(AddressError::Solana(text.to_owned())),
        }
    }
}

/// Why text is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// `0x`-prefixed text that is not 20 bytes of hex.
    #[error("{0:?} is not an EVM address (0x followed by 40 hex digits)")]
    Evm(String),
    /// Text that is not the base58 form of 32 bytes.
    #[error("{0:?} is not a Solana address (base58 of 32 bytes)")]
    Solana(String),
}

/// An address on an EVM chain or on Solana.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChainAddress {
    /// A 20-byte EVM address.
    Evm(Address),
    /// A 32-byte Solana address.
    Solana(SolanaAddress),
}

impl ChainAddress {
    /// The chain family the address belongs to.
    pub const fn family(&self) -> Family {
        match self {
            ChainAddress::Evm(_) => Family::Evm,
            ChainAddress::Solana(_) => Family::Solana,
        }
    }

    /// The EVM address, if this is one.
    pub const fn as_evm(&self) -> Option<Address> {
        match self {
            ChainAddress::Evm(address) => Some(*address),
            ChainAddress::Solana(_) => None,
        }
    }

    /// The Solana address, if this is one.
    pub const fn as_solana(&self) -> Option<SolanaAddress> {
        match self {
            ChainAddress::Solana(address) => Some(*address),
            ChainAddress::Evm(_) => None,
        }
    }

    /// Parses `text` as an address of `family`, with an error that says which form was
    /// expected.
    pub fn parse_for(family: Family, text: &str) -> Result<Self, AddressError> {
        match family {
            Family::Evm => Address::from_str(text)
                .map(ChainAddress::Evm)
                .map_err(|_| AddressError::Evm(text.to_owned())),
            Family::Solana => SolanaAddress::from_str(text).map(ChainAddress::Solana),
        }
    }
}

impl From<Address> for ChainAddress {
    fn from(address: Address) -> Self {
        ChainAddress::Evm(address)
    }
}

impl From<SolanaAddress> for ChainAddress {
    fn from(address: SolanaAddress) -> Self {
        ChainAddress::Solana(address)
    }
}

impl PartialEq<Address> for ChainAddress {
    fn eq(&self, other: &Address) -> bool {
        self.as_evm() == Some(*other)
    }
}

impl fmt::Display for ChainAddress {
    /// EVM addresses EIP-55 checksummed, Solana addresses in base58.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainAddress::Evm(address) => f.write_str(&crate::checksum::checksummed(address)),
            ChainAddress::Solana(address) => address.fmt(f),
        }
    }
}

impl fmt::Debug for ChainAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainAddress::Evm(address) => {
                write!(f, "Evm({})", crate::checksum::checksummed(address))
            }
            ChainAddress::Solana(address) => write!(f, "Solana({address})"),
        }
    }
}

impl FromStr for ChainAddress {
    type Err = AddressError;

    /// `0x…` is read as an EVM address (any case), everything else as base58.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.starts_with("0x") || text.starts_with("0X") {
            Self::parse_for(Family::Evm, text)
        } else {
            Self::parse_for(Family::Solana, text)
        }
    }
}

impl Serialize for ChainAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ChainAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Base58 (Bitcoin alphabet) decoding of exactly 32 bytes, usable in `const` contexts.
const fn decode_base58_32(text: &[u8]) -> Option<[u8; 32]> {
    const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < text.len() {
        let mut digit = 0;
        while digit < 58 && ALPHABET[digit] != text[i] {
            digit += 1;
        }
        if digit == 58 {
            return None;
        }
        // out = out * 58 + digit, big-endian.
        let mut carry = digit as u32;
        let mut j = 32;
        while j > 0 {
            j -= 1;
            let value = out[j] as u32 * 58 + carry;
            out[j] = (value & 0xff) as u8;
            carry = value >> 8;
        }
        if carry != 0 {
            return None;
        }
        i += 1;
    }
    // Each leading '1' stands for one leading zero byte: a 32-byte value has exactly as many
    // leading zero bytes as its text has leading '1's (fewer zero bytes means the text is
    // longer than 32 bytes would be, more means it is shorter).
    let mut ones = 0;
    while ones < text.len() && text[ones] == b'1' {
        ones += 1;
    }
    let mut zeros = 0;
    while zeros < 32 && out[zeros] == 0 {
        zeros += 1;
    }
    if zeros != ones {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn const_decoding_agrees_with_bs58() {
        for text in [
            "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
            "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
            "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
            "11111111111111111111111111111111",
            "ComputeBudget111111111111111111111111111111",
        ] {
            let parsed: SolanaAddress = text.parse().unwrap();
            assert_eq!(SolanaAddress::from_base58_const(text), parsed, "{text}");
            assert_eq!(parsed.to_string(), text);
        }
        // Too short, too long, and outside the alphabet.
        for bad in [
            "abc",
            "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1vv",
            "0OIl",
        ] {
            assert!(decode_base58_32(bad.as_bytes()).is_none(), "{bad}");
            assert!(bad.parse::<SolanaAddress>().is_err(), "{bad}");
        }
    }

    #[test]
    fn text_form_tells_the_family() {
        let evm: ChainAddress = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"
            .parse()
            .unwrap();
        assert_eq!(evm.family(), Family::Evm);
        assert_eq!(
            evm.to_string(),
            "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
        );
        let sol: ChainAddress = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
            .parse()
            .unwrap();
        assert_eq!(sol.family(), Family::Solana);
        assert!(matches!(
            "0x1234".parse::<ChainAddress>(),
            Err(AddressError::Evm(_))
        ));
        assert!(matches!(
            "bob".parse::<ChainAddress>(),
            Err(AddressError::Solana(_))
        ));
        let json = serde_json::to_string(&sol).unwrap();
        assert_eq!(serde_json::from_str::<ChainAddress>(&json).unwrap(), sol);
    }
}
