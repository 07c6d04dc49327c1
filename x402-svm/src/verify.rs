//! Checking an `exact` Solana payment offline: what the requirement asks ([`SvmTerms`]), the
//! layout of the transaction the client signed ([`check_transaction`]), the payer's ed25519
//! signature ([`verify_payer_signature`]) and what makes the payment unique ([`payment_key`]).
//!
//! The rules are the reference facilitator's (x402 `exact` on SVM), tightened where the
//! specification asks for more: the fee payer may appear in no instruction, address lookup
//! tables are refused (they cannot be resolved without a chain), the only signers are the fee
//! payer and the payer, and the compute unit limit is capped. Each refusal carries its own
//! reason code. What needs a chain (balances, the blockhash still being valid, simulation) is
//! the settler's question.

use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};
use solana_address::Address;
use solana_hash::Hash;
use solana_message::VersionedMessage;
use solana_message::compiled_instruction::CompiledInstruction;
use solana_transaction::versioned::VersionedTransaction;
use x402_protocol::facilitator::PaymentRequirements;
use x402_protocol::verify::{InvalidPayment, PaymentKey};
use x402_protocol::{ChainAddress, NetworkInfo, NetworkRegistry, Reason, SolanaAddress};

use crate::programs::{
    COMPUTE_BUDGET, LIGHTHOUSE, MEMO, TOKEN, associated_token_account, is_token_program,
};
use crate::wire::{ComputeBudget, TransferChecked};

/// The longest `extra.memo` a requirement may ask for, in bytes of UTF-8.
pub const MAX_MEMO_BYTES: usize = 256;
/// The fewest instructions a payment may have: compute limit, compute price, transfer.
pub const MIN_INSTRUCTIONS: usize = 3;
/// The most instructions a payment may have: the three, then up to four Memo or Lighthouse
/// instructions (wallets such as Phantom append Lighthouse assertions).
pub const MAX_INSTRUCTIONS: usize = 7;
/// The highest compute unit price accepted, in micro-lamports per unit (5 lamports).
pub const MAX_COMPUTE_UNIT_PRICE: u64 = 5_000_000;
/// The highest compute unit limit accepted.
pub const MAX_COMPUTE_UNIT_LIMIT: u32 = 400_000;

/// Reason codes of Solana refusals, for matching in tests and callers. The names of the
/// reference facilitator where it names the condition; the rest in the same style.
pub mod reasons {
    /// `extra.feePayer` is missing or not an address.
    pub const MISSING_FEE_PAYER: &str = "invalid_exact_svm_payload_missing_fee_payer";
    /// `payload.transaction` is not a transaction.
    pub const COULD_NOT_BE_DECODED: &str =
        "invalid_exact_svm_payload_transaction_could_not_be_decoded";
    /// A message version other than legacy or v0.
    pub const TRANSACTION_VERSION: &str = "invalid_exact_svm_payload_transaction_version";
    /// The message loads accounts through address lookup tables.
    pub const ADDRESS_LOOKUP_TABLES: &str = "invalid_exact_svm_payload_address_lookup_tables";
    /// The transaction's fee payer is not `extra.feePayer`.
    pub const FEE_PAYER_MISMATCH: &str = "invalid_exact_svm_payload_fee_payer_mismatch";
    /// Fewer than 3 or more than 7 instructions.
    pub const INSTRUCTIONS_LENGTH: &str =
        "invalid_exact_svm_payload_transaction_instructions_length";
    /// The first instruction is not `SetComputeUnitLimit`.
    pub const COMPUTE_LIMIT_INSTRUCTION: &str =
        "invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction";
    /// The compute unit limit is above [`MAX_COMPUTE_UNIT_LIMIT`](super::MAX_COMPUTE_UNIT_LIMIT).
    pub const COMPUTE_LIMIT_TOO_HIGH: &str =
        "invalid_exact_svm_payload_transaction_instructions_compute_limit_too_high";
    /// The second instruction is not `SetComputeUnitPrice`.
    pub const COMPUTE_PRICE_INSTRUCTION: &str =
        "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction";
    /// The compute unit price is above [`MAX_COMPUTE_UNIT_PRICE`](super::MAX_COMPUTE_UNIT_PRICE).
    pub const COMPUTE_PRICE_TOO_HIGH: &str =
        "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction_too_high";
    /// The third instruction is not a `TransferChecked` of SPL Token or Token-2022.
    pub const NO_TRANSFER_INSTRUCTION: &str = "invalid_exact_svm_payload_no_transfer_instruction";
    /// The transfer runs under a token program other than the mint's.
    pub const TOKEN_PROGRAM_MISMATCH: &str = "invalid_exact_svm_payload_token_program_mismatch";
    /// The fee payer is the transfer's authority, or its token account the source.
    pub const FEE_PAYER_TRANSFERRING_FUNDS: &str =
        "invalid_exact_svm_payload_transaction_fee_payer_transferring_funds";
    /// The fee payer is named in an instruction's accounts.
    pub const FEE_PAYER_IN_INSTRUCTION_ACCOUNTS: &str =
        "invalid_exact_svm_payload_fee_payer_in_instruction_accounts";
    /// The signers are not exactly the fee payer and the payer.
    pub const UNEXPECTED_SIGNERS: &str = "invalid_exact_svm_payload_unexpected_signers";
    /// The transfer's mint is not the requirement's asset.
    pub const MINT_MISMATCH: &str = "invalid_exact_svm_payload_mint_mismatch";
    /// The transfer's destination is not `payTo`'s associated token account.
    pub const RECIPIENT_MISMATCH: &str = "invalid_exact_svm_payload_recipient_mismatch";
    /// The transfer's amount is not the requirement's.
    pub const AMOUNT_MISMATCH: &str = "invalid_exact_svm_payload_amount_mismatch";
    /// The transfer's decimals are not the mint's.
    pub const DECIMALS_MISMATCH: &str = "invalid_exact_svm_payload_decimals_mismatch";
    /// The fourth instruction is neither Memo nor Lighthouse.
    pub const UNKNOWN_FOURTH_INSTRUCTION: &str =
        "invalid_exact_svm_payload_unknown_fourth_instruction";
    /// The fifth instruction is neither Memo nor Lighthouse.
    pub const UNKNOWN_FIFTH_INSTRUCTION: &str =
        "invalid_exact_svm_payload_unknown_fifth_instruction";
    /// The sixth instruction is neither Memo nor Lighthouse.
    pub const UNKNOWN_SIXTH_INSTRUCTION: &str =
        "invalid_exact_svm_payload_unknown_sixth_instruction";
    /// The seventh instruction is neither Memo nor Lighthouse.
    pub const UNKNOWN_SEVENTH_INSTRUCTION: &str =
        "invalid_exact_svm_payload_unknown_seventh_instruction";
    /// `extra.memo` is set and the transaction has not exactly one Memo instruction.
    pub const MEMO_COUNT: &str = "invalid_exact_svm_payload_memo_count";
    /// The Memo instruction's text is not `extra.memo`.
    pub const MEMO_MISMATCH: &str = "invalid_exact_svm_payload_memo_mismatch";
    /// The payer's signature does not verify.
    pub const TRANSACTION_SIGNATURE: &str = "invalid_exact_svm_payload_transaction_signature";
}

/// What a requirements entry asks of a Solana payment, resolved against a registry. Built the
/// same way by the facilitator (to check a payment) and the client (to build one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvmTerms {
    /// The Solana cluster.
    pub network: NetworkInfo,
    /// The token's mint (`asset`).
    pub mint: Address,
    /// The program that owns the mint: SPL Token or Token-2022.
    pub token_program: Address,
    /// The mint's decimals, which `TransferChecked` repeats.
    pub decimals: u8,
    /// The recipient (`payTo`), whose associated token account receives the payment.
    pub pay_to: Address,
    /// The amount in atomic units.
    pub amount: u64,
    /// The account that pays the fees and co-signs (`extra.feePayer`).
    pub fee_payer: Address,
    /// The text the Memo instruction must carry (`extra.memo`), when the requirement sets one.
    pub memo: Option<String>,
}

impl SvmTerms {
    /// Resolves a requirements entry: the network must be a Solana cluster of `registry`,
    /// `asset` a mint the registry knows (for its token program and decimals), `payTo` an
    /// address, the amount fit in a `u64`, `extra.feePayer` an address and `extra.memo`, when
    /// present, a string of at most [`MAX_MEMO_BYTES`] bytes.
    pub fn resolve(
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
    ) -> Result<SvmTerms, InvalidPayment> {
        let network = registry
            .network(requirements.network())
            .map_err(|e| InvalidPayment::new(Reason::INVALID_NETWORK, e.to_string()))?;
        if network.family() != x402_protocol::Family::Solana {
            return Err(InvalidPayment::new(
                Reason::INVALID_NETWORK,
                format!(
                    "{} is not a Solana cluster; a Solana transaction cannot pay there",
                    network.name
                ),
            ));
        }
        let mint = parse_requirement("asset", requirements.asset())?;
        let pay_to = parse_requirement("payTo", requirements.pay_to())?;
        let Some(asset) = registry.asset(network, ChainAddress::Solana(to_solana(&mint))) else {
            return Err(InvalidPayment::new(
                Reason::INVALID_PAYMENT_REQUIREMENTS,
                format!(
                    "{mint} is not a known token on {}: its token program and decimals are unknown (register it with NetworkRegistry::register_asset)",
                    network.name
                ),
            ));
        };
        let token_program = asset.token_program.map_or(TOKEN, |p| from_solana(&p));
        if !is_token_program(&token_program) {
            return Err(InvalidPayment::new(
                Reason::INVALID_PAYMENT_REQUIREMENTS,
                format!(
                    "{mint} is registered under {token_program}, which is neither SPL Token nor Token-2022"
                ),
            ));
        }
        let amount = u64::try_from(requirements.amount()).map_err(|_| {
            InvalidPayment::new(
                Reason::INVALID_PAYMENT_REQUIREMENTS,
                format!(
                    "amount {} does not fit an SPL token amount (u64)",
                    requirements.amount()
                ),
            )
        })?;
        let extra = requirements.extra();
        let fee_payer = extra
            .and_then(|e| e.get("feePayer"))
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| {
                InvalidPayment::new(
                    Reason::new(reasons::MISSING_FEE_PAYER),
                    "the requirement's extra has no feePayer: the facilitator's fee payer must be named",
                )
            })?;
        let fee_payer: Address = fee_payer.parse().map_err(|_| {
            InvalidPayment::new(
                Reason::new(reasons::MISSING_FEE_PAYER),
                format!("extra.feePayer {fee_payer:?} is not a Solana address"),
            )
        })?;
        let memo = match extra.and_then(|e| e.get("memo")) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(memo)) if memo.len() <= MAX_MEMO_BYTES => {
                Some(memo.clone())
            }
            Some(serde_json::Value::String(memo)) => {
                return Err(InvalidPayment::new(
                    Reason::INVALID_PAYMENT_REQUIREMENTS,
                    format!(
                        "extra.memo is {} bytes; at most {MAX_MEMO_BYTES} are allowed",
                        memo.len()
                    ),
                ));
            }
            Some(_) => {
                return Err(InvalidPayment::new(
                    Reason::INVALID_PAYMENT_REQUIREMENTS,
                    "extra.memo is not a string",
                ));
            }
        };
        Ok(SvmTerms {
            network: network.clone(),
            mint,
            token_program,
            decimals: asset.decimals,
            pay_to,
            amount,
            fee_payer,
            memo,
        })
    }

    /// The associated token account that must receive the payment.
    pub fn destination(&self) -> Address {
        associated_token_account(&self.pay_to, &self.mint, &self.token_program)
    }
}

/// A transaction that passed [`check_transaction`], with what it pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvmPayment {
    /// The transaction as the client sent it.
    pub transaction: VersionedTransaction,
    /// The serialized message: what every signer signs.
    pub message: Vec<u8>,
    /// The payer: the transfer's authority, a required signer.
    pub payer: Address,
    /// The fee payer (the first account, `extra.feePayer`).
    pub fee_payer: Address,
    /// The token account the funds leave.
    pub source: Address,
    /// The token account the funds reach (`payTo`'s associated token account).
    pub destination: Address,
    /// The mint.
    pub mint: Address,
    /// The amount in atomic units.
    pub amount: u64,
    /// The decimals the transfer states.
    pub decimals: u8,
    /// The blockhash the transaction was made with: it can land only while that is recent.
    pub recent_blockhash: Hash,
}

impl SvmPayment {
    /// The payer as a protocol address.
    pub fn payer_address(&self) -> ChainAddress {
        ChainAddress::Solana(to_solana(&self.payer))
    }
}

/// Checks the layout of a payment transaction against `terms`, in the reference
/// facilitator's order; every rule refuses with its own reason (see [`reasons`]):
///
/// - a legacy or v0 message without address lookup tables, whose fee payer is
///   `extra.feePayer`;
/// - 3 to 7 instructions: `SetComputeUnitLimit` (≤ [`MAX_COMPUTE_UNIT_LIMIT`]),
///   `SetComputeUnitPrice` (≤ [`MAX_COMPUTE_UNIT_PRICE`] micro-lamports), a `TransferChecked`
///   under the mint's token program, then only Memo or Lighthouse instructions;
/// - the fee payer is neither the transfer's authority nor its source's owner, appears in no
///   instruction's accounts and is no program;
/// - the required signers are exactly the fee payer and the transfer's authority (the payer);
/// - the transfer's mint, destination (`payTo`'s associated token account), amount and
///   decimals are the requirement's;
/// - with `extra.memo`, exactly one Memo instruction, carrying that text.
///
/// Signatures are not checked here ([`verify_payer_signature`]).
pub fn check_transaction(
    tx: &VersionedTransaction,
    terms: &SvmTerms,
) -> Result<SvmPayment, InvalidPayment> {
    let refuse =
        |code: &'static str, message: String| InvalidPayment::new(Reason::new(code), message);
    let message = &tx.message;
    if let VersionedMessage::V1(_) = message {
        return Err(refuse(
            reasons::TRANSACTION_VERSION,
            "the transaction is a v1 message; x402 payments are legacy or v0 transactions".into(),
        ));
    }
    if message
        .address_table_lookups()
        .is_some_and(|l| !l.is_empty())
    {
        return Err(refuse(
            reasons::ADDRESS_LOOKUP_TABLES,
            "the transaction loads accounts from address lookup tables, which cannot be checked without a chain".into(),
        ));
    }
    message.sanitize().map_err(|e| {
        refuse(
            reasons::COULD_NOT_BE_DECODED,
            format!("the message is malformed: {e}"),
        )
    })?;
    let header = message.header();
    let signer_count = usize::from(header.num_required_signatures);
    if tx.signatures.len() != signer_count {
        return Err(refuse(
            reasons::COULD_NOT_BE_DECODED,
            format!(
                "the transaction has {} signatures for {signer_count} required signers",
                tx.signatures.len()
            ),
        ));
    }
    let keys = message.static_account_keys();
    let Some(&fee_payer) = keys.first() else {
        return Err(refuse(
            reasons::COULD_NOT_BE_DECODED,
            "the message names no accounts".into(),
        ));
    };
    if fee_payer != terms.fee_payer {
        return Err(refuse(
            reasons::FEE_PAYER_MISMATCH,
            format!(
                "the transaction's fee payer is {fee_payer}, not extra.feePayer {}",
                terms.fee_payer
            ),
        ));
    }
    let instructions = message.instructions();
    if !(MIN_INSTRUCTIONS..=MAX_INSTRUCTIONS).contains(&instructions.len()) {
        return Err(refuse(
            reasons::INSTRUCTIONS_LENGTH,
            format!(
                "the transaction has {} instructions; a payment has {MIN_INSTRUCTIONS} to {MAX_INSTRUCTIONS}",
                instructions.len()
            ),
        ));
    }
    let program = |ix: &CompiledInstruction| keys[usize::from(ix.program_id_index)];
    let account = |ix: &CompiledInstruction, i: usize| keys[usize::from(ix.accounts[i])];

    // Compute budget.
    match (
        program(&instructions[0]),
        ComputeBudget::decode(&instructions[0].data),
    ) {
        (p, Some(ComputeBudget::UnitLimit(units))) if p == COMPUTE_BUDGET => {
            if units > MAX_COMPUTE_UNIT_LIMIT {
                return Err(refuse(
                    reasons::COMPUTE_LIMIT_TOO_HIGH,
                    format!(
                        "the compute unit limit is {units}; at most {MAX_COMPUTE_UNIT_LIMIT} is accepted"
                    ),
                ));
            }
        }
        _ => {
            return Err(refuse(
                reasons::COMPUTE_LIMIT_INSTRUCTION,
                "the first instruction is not a Compute Budget SetComputeUnitLimit".into(),
            ));
        }
    }
    match (
        program(&instructions[1]),
        ComputeBudget::decode(&instructions[1].data),
    ) {
        (p, Some(ComputeBudget::UnitPrice(price))) if p == COMPUTE_BUDGET => {
            if price > MAX_COMPUTE_UNIT_PRICE {
                return Err(refuse(
                    reasons::COMPUTE_PRICE_TOO_HIGH,
                    format!(
                        "the compute unit price is {price} micro-lamports; at most {MAX_COMPUTE_UNIT_PRICE} is accepted"
                    ),
                ));
            }
        }
        _ => {
            return Err(refuse(
                reasons::COMPUTE_PRICE_INSTRUCTION,
                "the second instruction is not a Compute Budget SetComputeUnitPrice".into(),
            ));
        }
    }

    // The transfer.
    let transfer_ix = &instructions[2];
    let transfer_program = program(transfer_ix);
    let transfer = TransferChecked::decode(&transfer_ix.data);
    let (Some(transfer), true) = (transfer, is_token_program(&transfer_program)) else {
        return Err(refuse(
            reasons::NO_TRANSFER_INSTRUCTION,
            "the third instruction is not an SPL Token or Token-2022 TransferChecked".into(),
        ));
    };
    if transfer_ix.accounts.len() != 4 {
        return Err(refuse(
            reasons::NO_TRANSFER_INSTRUCTION,
            format!(
                "the TransferChecked names {} accounts; a payment's names 4 (source, mint, destination, authority), without multisig signers",
                transfer_ix.accounts.len()
            ),
        ));
    }
    let (source, mint, destination, authority) = (
        account(transfer_ix, 0),
        account(transfer_ix, 1),
        account(transfer_ix, 2),
        account(transfer_ix, 3),
    );
    let payer = Some(ChainAddress::Solana(to_solana(&authority)));
    let refuse_payer =
        |code: &'static str, message: String| refuse(code, message).with_payer(payer);
    if transfer_program != terms.token_program {
        return Err(refuse_payer(
            reasons::TOKEN_PROGRAM_MISMATCH,
            format!(
                "the transfer runs under {transfer_program}, but {} belongs to {}",
                terms.mint, terms.token_program
            ),
        ));
    }
    if authority == fee_payer
        || source == fee_payer
        || source == associated_token_account(&fee_payer, &mint, &transfer_program)
    {
        return Err(refuse_payer(
            reasons::FEE_PAYER_TRANSFERRING_FUNDS,
            "the fee payer would pay: it is the transfer's authority or source".into(),
        ));
    }
    for (i, ix) in instructions.iter().enumerate() {
        if program(ix) == fee_payer {
            return Err(refuse_payer(
                reasons::FEE_PAYER_IN_INSTRUCTION_ACCOUNTS,
                format!("instruction {i} invokes the fee payer as a program"),
            ));
        }
        if ix
            .accounts
            .iter()
            .any(|&a| keys[usize::from(a)] == fee_payer)
        {
            return Err(refuse_payer(
                reasons::FEE_PAYER_IN_INSTRUCTION_ACCOUNTS,
                format!("instruction {i} names the fee payer among its accounts"),
            ));
        }
    }
    if signer_count != 2 || keys[1] != authority {
        return Err(refuse_payer(
            reasons::UNEXPECTED_SIGNERS,
            format!(
                "the transaction requires {signer_count} signatures; a payment is signed by exactly the fee payer and the transfer's authority, in that order"
            ),
        ));
    }
    if mint != terms.mint {
        return Err(refuse_payer(
            reasons::MINT_MISMATCH,
            format!("the transfer moves {mint}, not {}", terms.mint),
        ));
    }
    let expected = terms.destination();
    if destination != expected {
        return Err(refuse_payer(
            reasons::RECIPIENT_MISMATCH,
            format!(
                "the transfer pays {destination}, not {expected} (the associated token account of {})",
                terms.pay_to
            ),
        ));
    }
    if transfer.amount != terms.amount {
        return Err(refuse_payer(
            reasons::AMOUNT_MISMATCH,
            format!(
                "the transfer pays {}, the requirement asks {}",
                transfer.amount, terms.amount
            ),
        ));
    }
    if transfer.decimals != terms.decimals {
        return Err(refuse_payer(
            reasons::DECIMALS_MISMATCH,
            format!(
                "the transfer states {} decimals; {} has {}",
                transfer.decimals, terms.mint, terms.decimals
            ),
        ));
    }

    // What may follow: Memo and Lighthouse only.
    const UNKNOWN: [&str; 4] = [
        reasons::UNKNOWN_FOURTH_INSTRUCTION,
        reasons::UNKNOWN_FIFTH_INSTRUCTION,
        reasons::UNKNOWN_SIXTH_INSTRUCTION,
        reasons::UNKNOWN_SEVENTH_INSTRUCTION,
    ];
    for (i, ix) in instructions.iter().enumerate().skip(3) {
        let p = program(ix);
        if p != MEMO && p != LIGHTHOUSE {
            return Err(refuse_payer(
                UNKNOWN[i - 3],
                format!(
                    "instruction {} calls {p}; after the transfer only Memo and Lighthouse may follow",
                    i + 1
                ),
            ));
        }
    }
    if let Some(memo) = &terms.memo {
        let memos: Vec<_> = instructions[3..]
            .iter()
            .filter(|ix| program(ix) == MEMO)
            .collect();
        if memos.len() != 1 {
            return Err(refuse_payer(
                reasons::MEMO_COUNT,
                format!(
                    "the requirement sets extra.memo, and the transaction has {} Memo instructions instead of one",
                    memos.len()
                ),
            ));
        }
        if memos[0].data != memo.as_bytes() {
            return Err(refuse_payer(
                reasons::MEMO_MISMATCH,
                format!(
                    "the memo is {:?}, the requirement's extra.memo is {memo:?}",
                    String::from_utf8_lossy(&memos[0].data)
                ),
            ));
        }
    }

    Ok(SvmPayment {
        transaction: tx.clone(),
        message: message_bytes(message),
        payer: authority,
        fee_payer,
        source,
        destination,
        mint,
        amount: transfer.amount,
        decimals: transfer.decimals,
        recent_blockhash: *message.recent_blockhash(),
    })
}

/// Checks the payer's ed25519 signature over the message (its slot is the payer's index among
/// the signers). The fee payer's slot is not looked at: it may be empty (64 zero bytes), and the
/// facilitator overwrites it when it co-signs.
pub fn verify_payer_signature(payment: &SvmPayment) -> Result<(), InvalidPayment> {
    let keys = payment.transaction.message.static_account_keys();
    let signers = usize::from(payment.transaction.message.header().num_required_signatures);
    let valid = keys[..signers.min(keys.len())]
        .iter()
        .position(|k| *k == payment.payer)
        .and_then(|i| payment.transaction.signatures.get(i))
        .is_some_and(|sig| sig.verify(payment.payer.as_ref(), &payment.message));
    if valid {
        Ok(())
    } else {
        Err(InvalidPayment::new(
            Reason::new(reasons::TRANSACTION_SIGNATURE),
            format!(
                "the payer's signature does not verify over the transaction's message for {}",
                payment.payer
            ),
        )
        .with_payer(Some(payment.payer_address())))
    }
}

/// What makes a Solana payment unique: `<caip2>/svm/<sha256 of the message, lower-case hex>`.
/// A message can land once (its blockhash and accounts fix it), so a second signature over the
/// same message is the same payment.
pub fn payment_key(network: &NetworkInfo, message: &[u8]) -> PaymentKey {
    let digest = Sha256::digest(message);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    PaymentKey::from_parts([network.caip2.as_ref(), "svm", hex.as_str()])
}

/// The bytes signers sign: the serialized message (with its version prefix for v0).
pub fn message_bytes(message: &VersionedMessage) -> Vec<u8> {
    wincode::serialize(message).expect("a message always serializes")
}

/// A `solana-address` address as a protocol address.
pub fn to_solana(address: &Address) -> SolanaAddress {
    SolanaAddress(address.to_bytes())
}

/// A protocol address as a `solana-address` address.
pub fn from_solana(address: &SolanaAddress) -> Address {
    Address::new_from_array(address.0)
}

fn parse_requirement(field: &str, value: &str) -> Result<Address, InvalidPayment> {
    value.parse().map_err(|_| {
        InvalidPayment::new(
            Reason::INVALID_PAYMENT_REQUIREMENTS,
            format!("{field} {value:?} is not a Solana address"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_keys_are_the_network_and_the_message_digest() {
        let registry = NetworkRegistry::builtin();
        let devnet = registry.network("solana-devnet").unwrap();
        let key = payment_key(devnet, b"abc");
        assert_eq!(
            key.as_str(),
            "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1/svm/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mainnet = registry.network("solana").unwrap();
        assert_ne!(payment_key(mainnet, b"abc"), key);
    }

    #[test]
    fn addresses_convert_both_ways() {
        let address = Address::new_from_array([3; 32]);
        let solana = to_solana(&address);
        assert_eq!(from_solana(&solana), address);
        assert_eq!(solana.to_string(), address.to_string());
    }
}
