//! The `erc20ApprovalGasSponsoring` extension of Permit2 `exact` payments: a signed EIP-1559
//! transaction in which the payer calls `approve(Permit2, amount)` on the token, for the
//! facilitator to broadcast (and fund) before settling (schemes notes §1.8).
//!
//! [`Erc20ApprovalGasSponsoring::check`] runs the reference facilitator's offline checks in its
//! order: the `info` fields (`from`, `asset`, `spender`), then the transaction: it decodes, it
//! calls the token, its calldata is `approve(Permit2, …)`, and its signature recovers to the
//! payer. It also checks the transaction's chain, which the reference leaves to the chain.
//! Nonce and fee freshness are chain questions.

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use serde::{Deserialize, Serialize};

use crate::eip3009::{LocalSigner, RecoveryBackend, SignatureError};
use crate::permit2::{PERMIT2_ADDRESS, Permit2Authorization};
use crate::reason::Reason;
use crate::serde_util::checksummed;

/// The extension's key in `PaymentPayload.extensions` (and in the 402's `extensions`).
pub const EXTENSION: &str = "erc20ApprovalGasSponsoring";

/// The fields of a signed `info`; without all of them an entry is only an echoed declaration.
const INFO_FIELDS: [&str; 6] = [
    "from",
    "asset",
    "spender",
    "amount",
    "signedTransaction",
    "version",
];

/// The extension's `info.version`.
pub const VERSION: &str = "1";

/// The `info.description` this implementation declares.
pub const DESCRIPTION: &str = "The facilitator broadcasts (and funds the gas of) a signed ERC-20 `approve` of the canonical `Permit2` contract before settling.";

/// The gas limit of the approval transactions [`Erc20ApprovalGasSponsoring::sign`] builds (the
/// reference client's).
pub const APPROVAL_GAS_LIMIT: u64 = 70_000;

/// The declaration a server puts in a 402's `extensions.erc20ApprovalGasSponsoring`:
/// `{info: {description, version: "1"}, schema}`, the same envelope as `eip2612GasSponsoring`
/// (schemes notes §1.8), where `schema` is the JSON Schema (draft 2020-12) of the `info` a
/// client returns.
pub fn declaration(description: &str) -> serde_json::Value {
    serde_json::json!({
        "info": { "description": description, "version": VERSION },
        "schema": schema(),
    })
}

/// The JSON Schema of the `info` object a paying client fills in.
pub fn schema() -> serde_json::Value {
    let field = |pattern: &str, description: &str| serde_json::json!({ "type": "string", "pattern": pattern, "description": description });
    let address = "^0x[a-fA-F0-9]{40}$";
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "from": field(address, "The address of the sender."),
            "asset": field(address, "The address of the ERC-20 token contract."),
            "spender": field(address, "The address of the spender (Canonical Permit2)."),
            "amount": field("^[0-9]+$", "The amount to approve (uint256). Typically MaxUint."),
            "signedTransaction": field(
                "^0x[a-fA-F0-9]+$",
                "The RLP-encoded signed EIP-1559 transaction calling approve(Permit2, amount)."
            ),
            "version": field("^[0-9]+(\\.[0-9]+)*$", "Schema version identifier."),
        },
        "required": ["from", "asset", "spender", "amount", "signedTransaction", "version"],
    })
}

/// The fee and nonce fields of an approval transaction a client signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalFees {
    /// The payer's next transaction nonce on the chain (`eth_getTransactionCount(…, "pending")`).
    pub nonce: u64,
    /// `maxFeePerGas`, wei.
    pub max_fee_per_gas: u128,
    /// `maxPriorityFeePerGas`, wei.
    pub max_priority_fee_per_gas: u128,
    /// The gas limit ([`APPROVAL_GAS_LIMIT`] as the reference client).
    pub gas_limit: u64,
}

/// The selector of `approve(address,uint256)`.
pub const APPROVE_SELECTOR: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];

/// `extensions.erc20ApprovalGasSponsoring.info` of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Erc20ApprovalGasSponsoring {
    /// Free text copied from the 402.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Schema version, `"1"`.
    pub version: String,
    /// The payer.
    #[serde(with = "checksummed")]
    pub from: Address,
    /// The token.
    #[serde(with = "checksummed")]
    pub asset: Address,
    /// Who is approved; must be Permit2.
    #[serde(with = "checksummed")]
    pub spender: Address,
    /// The approved amount, base 10 (the reference client approves 2^256 − 1).
    pub amount: String,
    /// The signed transaction: `0x02 ‖ rlp([...])`.
    pub signed_transaction: Bytes,
}

/// Builds and signs the raw EIP-1559 transaction `approve(Permit2, amount)` on `token`,
/// ready for `eth_sendRawTransaction` (see [`sign_call`]).
pub fn sign_approval(
    signer: &LocalSigner,
    chain_id: u64,
    token: Address,
    amount: U256,
    fees: ApprovalFees,
) -> Vec<u8> {
    sign_call(
        signer,
        chain_id,
        token,
        &approve_calldata(PERMIT2_ADDRESS, amount),
        fees,
    )
}

/// The calldata of `approve(spender, amount)`.
pub fn approve_calldata(spender: Address, amount: U256) -> Vec<u8> {
    let mut calldata = Vec::with_capacity(68);
    calldata.extend_from_slice(&APPROVE_SELECTOR);
    calldata.extend_from_slice(&[0u8; 12]);
    calldata.extend_from_slice(spender.as_slice());
    calldata.extend_from_slice(&amount.to_be_bytes::<32>());
    calldata
}

/// Builds and signs a raw EIP-1559 transaction calling `to` with `calldata` and no value:
/// `0x02 ‖ rlp([chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gas, to, 0, calldata, [],
/// yParity, r, s])`.
pub fn sign_call(
    signer: &LocalSigner,
    chain_id: u64,
    to: Address,
    calldata: &[u8],
    fees: ApprovalFees,
) -> Vec<u8> {
    let mut fields = Vec::with_capacity(160);
    rlp::uint(U256::from(chain_id), &mut fields);
    rlp::uint(U256::from(fees.nonce), &mut fields);
    rlp::uint(U256::from(fees.max_priority_fee_per_gas), &mut fields);
    rlp::uint(U256::from(fees.max_fee_per_gas), &mut fields);
    rlp::uint(U256::from(fees.gas_limit), &mut fields);
    rlp::bytes(to.as_slice(), &mut fields);
    rlp::uint(U256::ZERO, &mut fields);
    rlp::bytes(calldata, &mut fields);
    rlp::list_header(0, &mut fields);
    let mut preimage = vec![0x02];
    rlp::list_header(fields.len(), &mut preimage);
    preimage.extend_from_slice(&fields);
    let signature = signer.sign_hash(&keccak256(&preimage));
    let y_parity = match signature[64] {
        27 | 28 => signature[64] - 27,
        v => v,
    };
    rlp::uint(U256::from(y_parity), &mut fields);
    rlp::uint(U256::from_be_slice(&signature[..32]), &mut fields);
    rlp::uint(U256::from_be_slice(&signature[32..64]), &mut fields);
    let mut raw = vec![0x02];
    rlp::list_header(fields.len(), &mut raw);
    raw.extend_from_slice(&fields);
    raw
}

/// What a signed approval transaction says, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalTransaction {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The sender's nonce.
    pub nonce: u64,
    /// Gas limit.
    pub gas_limit: u64,
    /// `maxFeePerGas`, wei.
    pub max_fee_per_gas: u128,
    /// `maxPriorityFeePerGas`, wei.
    pub max_priority_fee_per_gas: u128,
    /// The called contract (`None` for a contract creation).
    pub to: Option<Address>,
    /// The calldata.
    pub input: Bytes,
    /// The signer.
    pub signer: Address,
}

impl ApprovalTransaction {
    /// The amount the `approve` calldata approves (`None` unless the calldata is
    /// `approve(address,uint256)`'s 68 bytes).
    pub fn approved_amount(&self) -> Option<U256> {
        (self.input.len() == 68 && self.input[..4] == APPROVE_SELECTOR)
            .then(|| U256::from_be_slice(&self.input[36..68]))
    }

    /// The most the transaction can cost its sender in gas: `gas_limit × maxFeePerGas`, wei.
    pub fn max_gas_cost(&self) -> U256 {
        U256::from(self.gas_limit) * U256::from(self.max_fee_per_gas)
    }
}

/// Why an `erc20ApprovalGasSponsoring` extension is refused. Each variant maps to a reason code
/// with [`ApprovalError::reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalError {
    /// A field of `info` is missing or malformed.
    #[error("malformed erc20ApprovalGasSponsoring extension: {0}")]
    Format(String),
    /// `info.from` is not the payer.
    #[error("the approval is from {found}, but the payer is {expected}")]
    FromMismatch {
        /// The payer.
        expected: Address,
        /// `info.from`.
        found: Address,
    },
    /// `info.asset` is not the payment's token.
    #[error("the approval is for token {found}, but the payment is in {expected}")]
    AssetMismatch {
        /// The payment's token.
        expected: Address,
        /// `info.asset`.
        found: Address,
    },
    /// `info.spender` is not Permit2.
    #[error("the approval names spender {0}, not Permit2")]
    SpenderNotPermit2(Address),
    /// The transaction is not a well-formed signed EIP-1559 transaction.
    #[error("the signed approval transaction does not decode: {0}")]
    Parse(String),
    /// The transaction is for another chain.
    #[error("the approval transaction is for chain {found}, but the payment is on {expected}")]
    WrongChain {
        /// The payment's chain.
        expected: u64,
        /// The transaction's chain id.
        found: u64,
    },
    /// The transaction does not call the token.
    #[error("the approval transaction calls {found:?}, not the token {expected}")]
    WrongTarget {
        /// The token.
        expected: Address,
        /// The transaction's `to`.
        found: Option<Address>,
    },
    /// The calldata is not an `approve` call.
    #[error("the approval transaction does not call approve(address,uint256)")]
    WrongSelector,
    /// The calldata is `approve` with malformed arguments.
    #[error("the approval transaction's approve arguments are malformed")]
    InvalidCalldata,
    /// The calldata approves someone other than Permit2.
    #[error("the approval transaction approves {0}, not Permit2")]
    WrongSpender(Address),
    /// The signature is malformed or unrecoverable.
    #[error("the approval transaction's signature is invalid: {0}")]
    Signature(#[from] SignatureError),
    /// The transaction was signed by someone other than the payer.
    #[error("the approval transaction was signed by {recovered}, not by the payer {expected}")]
    SignerMismatch {
        /// The payer.
        expected: Address,
        /// Who signed.
        recovered: Address,
    },
}

impl ApprovalError {
    /// The reason code for this failure, spelled as the reference facilitator does (the chain
    /// check is this implementation's own).
    pub fn reason(&self) -> Reason {
        match self {
            ApprovalError::Format(_) => Reason::ERC20_APPROVAL_EXTENSION_FORMAT,
            ApprovalError::FromMismatch { .. } => Reason::ERC20_APPROVAL_FROM_MISMATCH,
            ApprovalError::AssetMismatch { .. } => Reason::ERC20_APPROVAL_ASSET_MISMATCH,
            ApprovalError::SpenderNotPermit2(_) => Reason::ERC20_APPROVAL_SPENDER_NOT_PERMIT2,
            ApprovalError::Parse(_) => Reason::ERC20_APPROVAL_TX_PARSE_FAILED,
            ApprovalError::WrongChain { .. } => Reason::ERC20_APPROVAL_TX_WRONG_CHAIN,
            ApprovalError::WrongTarget { .. } => Reason::ERC20_APPROVAL_TX_WRONG_TARGET,
            ApprovalError::WrongSelector => Reason::ERC20_APPROVAL_TX_WRONG_SELECTOR,
            ApprovalError::InvalidCalldata => Reason::ERC20_APPROVAL_TX_INVALID_CALLDATA,
            ApprovalError::WrongSpender(_) => Reason::ERC20_APPROVAL_TX_WRONG_SPENDER,
            ApprovalError::Signature(_) => Reason::ERC20_APPROVAL_TX_INVALID_SIGNATURE,
            ApprovalError::SignerMismatch { .. } => Reason::ERC20_APPROVAL_TX_SIGNER_MISMATCH,
        }
    }
}

impl Erc20ApprovalGasSponsoring {
    /// The client side: signs, as `signer` (the Permit2 payer), an EIP-1559 transaction on
    /// `chain_id` calling `approve(Permit2, amount)` on `token` with the given nonce and fees,
    /// and wraps it as the extension's `info` (the reference client approves `U256::MAX`).
    pub fn sign(
        signer: &LocalSigner,
        chain_id: u64,
        token: Address,
        amount: U256,
        fees: ApprovalFees,
    ) -> Self {
        let signed_transaction = Bytes::from(sign_approval(signer, chain_id, token, amount, fees));
        Erc20ApprovalGasSponsoring {
            description: None,
            version: VERSION.to_owned(),
            from: signer.address(),
            asset: token,
            spender: PERMIT2_ADDRESS,
            amount: amount.to_string(),
            signed_transaction,
        }
    }

    /// Puts this approval into a payment's `extensions` (creating the object if needed) as
    /// `erc20ApprovalGasSponsoring: {info}`, keeping the other extensions.
    pub fn insert_into(&self, extensions: &mut Option<serde_json::Value>) {
        let object = extensions.get_or_insert_with(|| serde_json::json!({}));
        if !object.is_object() {
            *object = serde_json::json!({});
        }
        if let Some(map) = object.as_object_mut() {
            map.insert(
                EXTENSION.to_owned(),
                serde_json::json!({ "info": serde_json::to_value(self).unwrap_or_default() }),
            );
        }
    }

    /// Reads the extension from a payment's `extensions`: `Ok(None)` when the payment carries
    /// none, an error when it is malformed.
    ///
    /// As for `eip2612GasSponsoring` (the reference's `extractErc20ApprovalGasSponsoringInfo`),
    /// an entry whose `info` lacks any of the six fields (or has one empty: `""`) counts as
    /// absent: clients echo the 402's declaration (`info: {description, version}`) when they
    /// do not sign an approval. Only a complete `info` with a malformed field is an error.
    pub fn from_extensions(
        extensions: Option<&serde_json::Value>,
    ) -> Result<Option<Self>, ApprovalError> {
        let Some(info) = extensions
            .and_then(|e| e.get(EXTENSION))
            .and_then(|entry| entry.get("info"))
        else {
            return Ok(None);
        };
        let present = |key: &str| match info.get(key) {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::String(text)) => !text.is_empty(),
            Some(_) => true,
        };
        if !INFO_FIELDS.iter().all(|key| present(key)) {
            return Ok(None);
        }
        let parsed = Self::deserialize(info).map_err(|e| ApprovalError::Format(e.to_string()))?;
        if parsed.amount.is_empty() || !parsed.amount.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApprovalError::Format(format!(
                "amount {:?} is not a base-10 integer",
                parsed.amount
            )));
        }
        Ok(Some(parsed))
    }

    /// Checks the extension against the Permit2 authorization it funds, on chain `chain_id`,
    /// and returns the decoded transaction.
    pub fn check<W>(
        &self,
        backend: RecoveryBackend,
        authorization: &Permit2Authorization<W>,
        chain_id: u64,
    ) -> Result<ApprovalTransaction, ApprovalError> {
        let payer = authorization.from;
        let token = authorization.permitted.token;
        if self.from != payer {
            return Err(ApprovalError::FromMismatch {
                expected: payer,
                found: self.from,
            });
        }
        if self.asset != token {
            return Err(ApprovalError::AssetMismatch {
                expected: token,
                found: self.asset,
            });
        }
        if self.spender != PERMIT2_ADDRESS {
            return Err(ApprovalError::SpenderNotPermit2(self.spender));
        }
        let tx = decode_eip1559(backend, &self.signed_transaction)?;
        if tx.chain_id != chain_id {
            return Err(ApprovalError::WrongChain {
                expected: chain_id,
                found: tx.chain_id,
            });
        }
        if tx.to != Some(token) {
            return Err(ApprovalError::WrongTarget {
                expected: token,
                found: tx.to,
            });
        }
        if tx.input.get(..4) != Some(&APPROVE_SELECTOR[..]) {
            return Err(ApprovalError::WrongSelector);
        }
        // approve(address spender, uint256 amount): two words; the address word's first 12
        // bytes are zero.
        let args = &tx.input[4..];
        if args.len() != 64 || args[..12].iter().any(|b| *b != 0) {
            return Err(ApprovalError::InvalidCalldata);
        }
        let spender = Address::from_slice(&args[12..32]);
        if spender != PERMIT2_ADDRESS {
            return Err(ApprovalError::WrongSpender(spender));
        }
        if tx.signer != payer {
            return Err(ApprovalError::SignerMismatch {
                expected: payer,
                recovered: tx.signer,
            });
        }
        Ok(tx)
    }
}

/// Decodes a signed EIP-1559 transaction (`0x02 ‖ rlp([chainId, nonce, maxPriorityFeePerGas,
/// maxFeePerGas, gas, to, value, data, accessList, yParity, r, s])`) and recovers its signer
/// from `keccak256(0x02 ‖ rlp(first nine fields))`.
pub fn decode_eip1559(
    backend: RecoveryBackend,
    raw: &[u8],
) -> Result<ApprovalTransaction, ApprovalError> {
    let parse = |what: &str| ApprovalError::Parse(what.to_owned());
    let Some((&0x02, body)) = raw.split_first() else {
        return Err(parse("not an EIP-1559 (type 2) transaction"));
    };
    let (list, rest) = rlp::item(body).ok_or_else(|| parse("malformed RLP"))?;
    if !rest.is_empty() {
        return Err(parse("bytes after the transaction"));
    }
    let rlp::Item::List(mut fields) = list else {
        return Err(parse("the transaction is not an RLP list"));
    };
    let mut items = Vec::with_capacity(12);
    let mut spans = Vec::with_capacity(12);
    while !fields.is_empty() {
        let (item, rest) = rlp::item(fields).ok_or_else(|| parse("malformed RLP field"))?;
        spans.push(&fields[..fields.len() - rest.len()]);
        items.push(item);
        fields = rest;
    }
    if items.len() != 12 {
        return Err(parse("an EIP-1559 transaction has 12 fields"));
    }
    let bytes = |i: usize| match items[i] {
        rlp::Item::Bytes(b) => Ok(b),
        rlp::Item::List(_) => Err(ApprovalError::Parse(format!("field {i} is a list"))),
    };
    let uint = |i: usize, max: usize| -> Result<U256, ApprovalError> {
        let b = bytes(i)?;
        if b.len() > max || b.first() == Some(&0) {
            return Err(ApprovalError::Parse(format!(
                "field {i} is not a canonical integer"
            )));
        }
        Ok(U256::from_be_slice(b))
    };
    let chain_id = uint(0, 8)?.to::<u64>();
    let nonce = uint(1, 8)?.to::<u64>();
    let max_priority_fee_per_gas = uint(2, 16)?.to::<u128>();
    let max_fee_per_gas = uint(3, 16)?.to::<u128>();
    let gas_limit = uint(4, 8)?.to::<u64>();
    let to = match bytes(5)? {
        [] => None,
        b if b.len() == 20 => Some(Address::from_slice(b)),
        _ => return Err(parse("`to` is not an address")),
    };
    uint(6, 32)?;
    let input = Bytes::copy_from_slice(bytes(7)?);
    if !matches!(items[8], rlp::Item::List(_)) {
        return Err(parse("the access list is not a list"));
    }
    let y_parity = uint(9, 1)?.to::<u8>();
    if y_parity > 1 {
        return Err(parse("yParity is not 0 or 1"));
    }
    let mut signature = [0u8; 65];
    let r = uint(10, 32)?;
    let s = uint(11, 32)?;
    signature[..32].copy_from_slice(&r.to_be_bytes::<32>());
    signature[32..64].copy_from_slice(&s.to_be_bytes::<32>());
    signature[64] = y_parity;

    let unsigned: usize = spans[..9].iter().map(|s| s.len()).sum();
    let mut preimage = Vec::with_capacity(unsigned + 10);
    preimage.push(0x02);
    rlp::list_header(unsigned, &mut preimage);
    for span in &spans[..9] {
        preimage.extend_from_slice(span);
    }
    let hash: B256 = keccak256(&preimage);
    let signer = backend.recover(&hash, &signature)?;
    Ok(ApprovalTransaction {
        chain_id,
        nonce,
        gas_limit,
        max_fee_per_gas,
        max_priority_fee_per_gas,
        to,
        input,
        signer,
    })
}

/// Just enough RLP to read a transaction: items with their payloads borrowed.
mod rlp {
    /// An RLP item.
    pub(super) enum Item<'a> {
        /// A byte string.
        Bytes(&'a [u8]),
        /// A list; its payload (the concatenated items).
        List(&'a [u8]),
    }

    /// Reads a big-endian length of `n` bytes (canonical: no leading zero, above 55).
    fn long_length(input: &[u8], n: usize) -> Option<usize> {
        let bytes = input.get(..n)?;
        if n > 8 || bytes.first() == Some(&0) {
            return None;
        }
        let len = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let len = usize::try_from(len).ok()?;
        (len > 55).then_some(len)
    }

    /// The first item of `input` and what follows it.
    pub(super) fn item(input: &[u8]) -> Option<(Item<'_>, &[u8])> {
        let (&first, rest) = input.split_first()?;
        let (is_list, header, len) = match first {
            0x00..=0x7f => return Some((Item::Bytes(&input[..1]), rest)),
            0x80..=0xb7 => (false, 1, usize::from(first - 0x80)),
            0xb8..=0xbf => {
                let n = usize::from(first - 0xb7);
                (false, 1 + n, long_length(rest, n)?)
            }
            0xc0..=0xf7 => (true, 1, usize::from(first - 0xc0)),
            0xf8..=0xff => {
                let n = usize::from(first - 0xf7);
                (true, 1 + n, long_length(rest, n)?)
            }
        };
        let end = header.checked_add(len)?;
        let payload = input.get(header..end)?;
        if !is_list && len == 1 && payload[0] < 0x80 {
            return None; // a single low byte must be encoded as itself
        }
        let item = if is_list {
            Item::List(payload)
        } else {
            Item::Bytes(payload)
        };
        Some((item, &input[end..]))
    }

    /// Appends a byte string.
    pub(super) fn bytes(payload: &[u8], out: &mut Vec<u8>) {
        if payload.len() == 1 && payload[0] < 0x80 {
            out.push(payload[0]);
            return;
        }
        header(0x80, payload.len(), out);
        out.extend_from_slice(payload);
    }

    /// Appends an unsigned integer (big-endian, no leading zeros; zero is the empty string).
    pub(super) fn uint(value: alloy_primitives::U256, out: &mut Vec<u8>) {
        let be = value.to_be_bytes::<32>();
        let skip = be.iter().take_while(|b| **b == 0).count();
        bytes(&be[skip..], out);
    }

    /// Appends the header of a string (`base` 0x80) or list (`base` 0xc0) of `len` bytes.
    fn header(base: u8, len: usize, out: &mut Vec<u8>) {
        if len <= 55 {
            out.push(base + len as u8);
        } else {
            let bytes = (len as u64).to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(base + 55 + (8 - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }

    /// Appends the header of a list whose payload is `len` bytes.
    pub(super) fn list_header(len: usize, out: &mut Vec<u8>) {
        header(0xc0, len, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fees() -> ApprovalFees {
        ApprovalFees {
            nonce: 7,
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1_000_000,
            gas_limit: APPROVAL_GAS_LIMIT,
        }
    }

    #[test]
    fn a_signed_approval_decodes_to_what_was_signed() {
        let payer = LocalSigner::random();
        let token = Address::repeat_byte(0x11);
        let info = Erc20ApprovalGasSponsoring::sign(&payer, 31337, token, U256::MAX, fees());
        let tx = decode_eip1559(RecoveryBackend::default(), &info.signed_transaction).unwrap();
        assert_eq!(tx.signer, payer.address());
        assert_eq!(tx.chain_id, 31337);
        assert_eq!(tx.nonce, 7);
        assert_eq!(tx.gas_limit, APPROVAL_GAS_LIMIT);
        assert_eq!(tx.max_fee_per_gas, 2_000_000_000);
        assert_eq!(tx.max_priority_fee_per_gas, 1_000_000);
        assert_eq!(tx.to, Some(token));
        assert_eq!(tx.approved_amount(), Some(U256::MAX));
        assert_eq!(
            tx.max_gas_cost(),
            U256::from(APPROVAL_GAS_LIMIT) * U256::from(2_000_000_000u64)
        );
        assert_eq!(info.amount, U256::MAX.to_string());
        assert_eq!(info.spender, PERMIT2_ADDRESS);
    }

    #[test]
    fn the_info_round_trips_through_extensions_and_an_echoed_declaration_is_absent() {
        let payer = LocalSigner::random();
        let info = Erc20ApprovalGasSponsoring::sign(
            &payer,
            1,
            Address::repeat_byte(2),
            U256::from(5),
            fees(),
        );
        let mut extensions = Some(serde_json::json!({ "other": 1 }));
        info.insert_into(&mut extensions);
        assert_eq!(extensions.as_ref().unwrap()["other"], 1);
        let read = Erc20ApprovalGasSponsoring::from_extensions(extensions.as_ref()).unwrap();
        assert_eq!(read, Some(info));

        let echoed = serde_json::json!({ EXTENSION: declaration(DESCRIPTION) });
        assert_eq!(
            Erc20ApprovalGasSponsoring::from_extensions(Some(&echoed)).unwrap(),
            None
        );
        let declared = declaration(DESCRIPTION);
        assert_eq!(declared["info"]["version"], VERSION);
        assert_eq!(declared["schema"]["required"].as_array().unwrap().len(), 6);

        let mut bad = extensions.unwrap();
        bad[EXTENSION]["info"]["amount"] = "-1".into();
        assert!(matches!(
            Erc20ApprovalGasSponsoring::from_extensions(Some(&bad)),
            Err(ApprovalError::Format(_))
        ));
    }
}
