//! The bytes of a payment: the base64 transaction of `payload.transaction`, and the three
//! instructions an x402 payment is made of (compute budget, `TransferChecked`, memo).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use solana_transaction::versioned::VersionedTransaction;

/// The largest transaction Solana accepts, in bytes (the IPv6 MTU minus headers).
pub const MAX_TRANSACTION_BYTES: usize = 1232;

/// Why `payload.transaction` is not a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Longer than any transaction Solana accepts.
    #[error("the transaction is {0} bytes; Solana accepts at most {MAX_TRANSACTION_BYTES}")]
    TooLarge(usize),
    /// Not standard base64.
    #[error("the transaction is not base64: {0}")]
    Base64(String),
    /// Not a serialized versioned transaction (or bytes left after it).
    #[error("the transaction does not deserialize: {0}")]
    Transaction(String),
}

/// Decodes `payload.transaction`: standard base64 of a serialized versioned transaction,
/// refused before decoding when it could not fit in a Solana packet.
pub fn decode_transaction(base64: &str) -> Result<VersionedTransaction, DecodeError> {
    // 4 base64 characters per 3 bytes, padded.
    let limit = MAX_TRANSACTION_BYTES.div_ceil(3) * 4;
    if base64.len() > limit {
        return Err(DecodeError::TooLarge(base64.len() / 4 * 3));
    }
    let bytes = STANDARD
        .decode(base64)
        .map_err(|e| DecodeError::Base64(e.to_string()))?;
    if bytes.len() > MAX_TRANSACTION_BYTES {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    let transaction: VersionedTransaction =
        wincode::deserialize(&bytes).map_err(|e| DecodeError::Transaction(e.to_string()))?;
    let canonical = encode_bytes(&transaction);
    if canonical != bytes {
        return Err(DecodeError::Transaction(
            "trailing or non-canonical bytes after the transaction".to_owned(),
        ));
    }
    Ok(transaction)
}

/// The serialized bytes of `transaction`.
pub fn encode_bytes(transaction: &VersionedTransaction) -> Vec<u8> {
    wincode::serialize(transaction).expect("a versioned transaction always serializes")
}

/// `payload.transaction` for `transaction`: standard base64 of its bytes.
pub fn encode_transaction(transaction: &VersionedTransaction) -> String {
    STANDARD.encode(encode_bytes(transaction))
}

/// A Compute Budget instruction, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComputeBudget {
    /// `SetComputeUnitLimit(units)` (discriminator 2).
    UnitLimit(u32),
    /// `SetComputeUnitPrice(micro_lamports)` (discriminator 3).
    UnitPrice(u64),
}

impl ComputeBudget {
    /// Decodes the instruction data of a Compute Budget instruction of one of the two kinds an
    /// x402 payment may carry; `None` for anything else.
    pub fn decode(data: &[u8]) -> Option<ComputeBudget> {
        match data {
            [2, rest @ ..] => Some(ComputeBudget::UnitLimit(u32::from_le_bytes(
                rest.try_into().ok()?,
            ))),
            [3, rest @ ..] => Some(ComputeBudget::UnitPrice(u64::from_le_bytes(
                rest.try_into().ok()?,
            ))),
            _ => None,
        }
    }

    /// The instruction data.
    pub fn encode(self) -> Vec<u8> {
        match self {
            ComputeBudget::UnitLimit(units) => {
                let mut data = vec![2];
                data.extend_from_slice(&units.to_le_bytes());
                data
            }
            ComputeBudget::UnitPrice(price) => {
                let mut data = vec![3];
                data.extend_from_slice(&price.to_le_bytes());
                data
            }
        }
    }
}

/// The data of an SPL Token / Token-2022 `TransferChecked` instruction (discriminator 12):
/// accounts are `[source, mint, destination, authority]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferChecked {
    /// Atomic amount.
    pub amount: u64,
    /// The mint's decimals, which the program checks.
    pub decimals: u8,
}

impl TransferChecked {
    /// Decodes `TransferChecked` instruction data; `None` for any other instruction.
    pub fn decode(data: &[u8]) -> Option<TransferChecked> {
        match data {
            [12, rest @ ..] if rest.len() == 9 => Some(TransferChecked {
                amount: u64::from_le_bytes(rest[..8].try_into().ok()?),
                decimals: rest[8],
            }),
            _ => None,
        }
    }

    /// The instruction data.
    pub fn encode(self) -> Vec<u8> {
        let mut data = Vec::with_capacity(10);
        data.push(12);
        data.extend_from_slice(&self.amount.to_le_bytes());
        data.push(self.decimals);
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruction_data_round_trips() {
        for ix in [
            ComputeBudget::UnitLimit(20_000),
            ComputeBudget::UnitPrice(1),
        ] {
            assert_eq!(ComputeBudget::decode(&ix.encode()), Some(ix));
        }
        let transfer = TransferChecked {
            amount: 10_000,
            decimals: 6,
        };
        assert_eq!(hex(&transfer.encode()), "0c102700000000000006");
        assert_eq!(TransferChecked::decode(&transfer.encode()), Some(transfer));
        assert_eq!(TransferChecked::decode(&[3, 0, 0]), None);
        assert_eq!(ComputeBudget::decode(&[2, 1]), None);
    }

    #[test]
    fn hostile_transactions_are_refused_with_a_reason() {
        assert!(matches!(
            decode_transaction("!!"),
            Err(DecodeError::Base64(_))
        ));
        assert!(matches!(
            decode_transaction("AAAA"),
            Err(DecodeError::Transaction(_))
        ));
        let huge = "A".repeat(4000);
        assert!(matches!(
            decode_transaction(&huge),
            Err(DecodeError::TooLarge(_))
        ));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
