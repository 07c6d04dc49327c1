//! The client side: building and signing the transaction of an `exact` Solana payment, the
//! way the official `@x402/svm` client does, so that any facilitator accepts it.
//!
//! The terms come from the requirements entry the client pays, resolved with the same
//! [`SvmTerms::resolve`] a facilitator uses. The recent blockhash is the caller's: fetched
//! from an RPC node, or taken from the requirement's `extra.recentBlockhash` when the server
//! put one there.

use std::cmp::Ordering;

use solana_address::Address;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_message::compiled_instruction::CompiledInstruction;
use solana_message::{MessageHeader, VersionedMessage, v0};
use solana_signature::Signature;
use solana_signer::Signer as _;
use solana_transaction::versioned::VersionedTransaction;

use crate::programs::{COMPUTE_BUDGET, MEMO, associated_token_account};
use crate::verify::{SvmTerms, message_bytes};
use crate::wire::{ComputeBudget, MAX_TRANSACTION_BYTES, TransferChecked, encode_bytes};

/// The compute unit limit the official client sets.
pub const COMPUTE_UNIT_LIMIT: u32 = 20_000;
/// The compute unit price the official client sets, in micro-lamports per unit.
pub const COMPUTE_UNIT_PRICE: u64 = 1;

/// Why a payment transaction could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The payer is the fee payer named by the requirement: no facilitator accepts a payment
    /// its own fee payer funds.
    #[error("the payer {0} is the requirement's fee payer")]
    PayerIsFeePayer(Address),
    /// The memo makes the transaction larger than Solana accepts.
    #[error("the transaction would be {0} bytes; Solana accepts at most {MAX_TRANSACTION_BYTES}")]
    TooLarge(usize),
    /// The system's random source failed (needed for a memo when none is given).
    #[error("no randomness for the memo: {0}")]
    Random(String),
}

/// Builds and signs the transaction paying `terms` from `payer`, exactly as the official
/// `@x402/svm` client does: a v0 message whose fee payer is `terms.fee_payer`, with
/// `SetComputeUnitLimit(20000)`, `SetComputeUnitPrice(1)`, a `TransferChecked` of
/// `terms.amount` from the payer's associated token account to `payTo`'s under the mint's
/// program (authority: the payer), and a Memo carrying `terms.memo`, else `memo`, else 16
/// random bytes as 32 lower-case hex characters (which makes each payment's message unique).
/// Signed by the payer; the fee payer's signature slot is left zero for the facilitator.
///
/// Put [`encode_transaction`](crate::wire::encode_transaction) of the result in
/// `payload.transaction`.
///
/// ```
/// use solana_hash::Hash;
/// use solana_keypair::Keypair;
/// use solana_signer::Signer as _;
/// use x402_protocol::NetworkRegistry;
/// use x402_protocol::facilitator::PaymentRequirements;
/// use x402_svm::client::build_payment;
/// use x402_svm::verify::{SvmTerms, check_transaction, verify_payer_signature};
///
/// let requirements: PaymentRequirements = serde_json::from_value(serde_json::json!({
///     "scheme": "exact",
///     "network": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
///     "amount": "10000",
///     "asset": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
///     "payTo": "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse",
///     "maxTimeoutSeconds": 300,
///     "extra": { "feePayer": "9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu" }
/// }))
/// .unwrap();
/// let terms = SvmTerms::resolve(&requirements, &NetworkRegistry::builtin()).unwrap();
/// let payer = Keypair::new_from_array([1; 32]);
/// let blockhash: Hash = "78mPnfMuFcvcJMbiYbC3DLKy5x5pYkZfM6TfWYVbNCAC".parse().unwrap();
///
/// let tx = build_payment(&terms, &payer, blockhash, Some("order-42")).unwrap();
/// let payment = check_transaction(&tx, &terms).unwrap();
/// verify_payer_signature(&payment).unwrap();
/// assert_eq!(payment.payer, payer.pubkey());
/// assert_eq!(payment.amount, 10_000);
/// ```
pub fn build_payment(
    terms: &SvmTerms,
    payer: &Keypair,
    blockhash: Hash,
    memo: Option<&str>,
) -> Result<VersionedTransaction, BuildError> {
    let owner = payer.pubkey();
    if owner == terms.fee_payer {
        return Err(BuildError::PayerIsFeePayer(owner));
    }
    let memo = match (terms.memo.as_deref(), memo) {
        (Some(memo), _) | (None, Some(memo)) => memo.as_bytes().to_vec(),
        (None, None) => random_memo()?.into_bytes(),
    };
    let source = associated_token_account(&owner, &terms.mint, &terms.token_program);
    let transfer = TransferChecked {
        amount: terms.amount,
        decimals: terms.decimals,
    };
    let instructions = [
        Ix {
            program: COMPUTE_BUDGET,
            accounts: vec![],
            data: ComputeBudget::UnitLimit(COMPUTE_UNIT_LIMIT).encode(),
        },
        Ix {
            program: COMPUTE_BUDGET,
            accounts: vec![],
            data: ComputeBudget::UnitPrice(COMPUTE_UNIT_PRICE).encode(),
        },
        Ix {
            program: terms.token_program,
            accounts: vec![
                Meta::writable(source),
                Meta::readonly(terms.mint),
                Meta::writable(terms.destination()),
                Meta::signer(owner),
            ],
            data: transfer.encode(),
        },
        Ix {
            program: MEMO,
            accounts: vec![],
            data: memo,
        },
    ];
    let message = VersionedMessage::V0(compile(terms.fee_payer, &instructions, blockhash));
    let bytes = message_bytes(&message);
    let signers = usize::from(message.header().num_required_signatures);
    let signatures = message.static_account_keys()[..signers]
        .iter()
        .map(|key| {
            if *key == owner {
                payer.sign_message(&bytes)
            } else {
                Signature::default()
            }
        })
        .collect();
    let tx = VersionedTransaction {
        signatures,
        message,
    };
    let size = encode_bytes(&tx).len();
    if size > MAX_TRANSACTION_BYTES {
        return Err(BuildError::TooLarge(size));
    }
    Ok(tx)
}

/// 16 random bytes as 32 lower-case hex characters.
fn random_memo() -> Result<String, BuildError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| BuildError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// An account an instruction names, with its role.
#[derive(Clone, Copy)]
struct Meta {
    address: Address,
    signer: bool,
    writable: bool,
}

impl Meta {
    fn writable(address: Address) -> Meta {
        Meta {
            address,
            signer: false,
            writable: true,
        }
    }

    fn readonly(address: Address) -> Meta {
        Meta {
            address,
            signer: false,
            writable: false,
        }
    }

    fn signer(address: Address) -> Meta {
        Meta {
            address,
            signer: true,
            writable: false,
        }
    }
}

/// An instruction before compilation.
struct Ix {
    program: Address,
    accounts: Vec<Meta>,
    data: Vec<u8>,
}

/// Compiles instructions into a v0 message (no lookup tables) with the account order of
/// `@solana/kit`: the fee payer, then signers before non-signers, writable before read-only,
/// and within each group the addresses' base58 text in kit's collation order. The order is part
/// of the signed bytes, so following kit makes the transaction identical to the official
/// client's.
fn compile(fee_payer: Address, instructions: &[Ix], blockhash: Hash) -> v0::Message {
    let mut accounts: Vec<Meta> = vec![Meta {
        address: fee_payer,
        signer: true,
        writable: true,
    }];
    let mut merge = |meta: Meta| match accounts.iter_mut().find(|a| a.address == meta.address) {
        Some(known) => {
            known.signer |= meta.signer;
            known.writable |= meta.writable;
        }
        None => accounts.push(meta),
    };
    for ix in instructions {
        merge(Meta::readonly(ix.program));
        for meta in &ix.accounts {
            merge(*meta);
        }
    }
    let rest = &mut accounts[1..];
    let texts: Vec<(Address, String)> = rest
        .iter()
        .map(|m| (m.address, m.address.to_string()))
        .collect();
    let text = |a: &Address| {
        texts
            .iter()
            .find(|(k, _)| k == a)
            .map(|(_, t)| t.as_str())
            .unwrap_or_default()
    };
    rest.sort_by(|a, b| {
        b.signer
            .cmp(&a.signer)
            .then(b.writable.cmp(&a.writable))
            .then_with(|| kit_collation(text(&a.address), text(&b.address)))
    });
    let count = |f: fn(&Meta) -> bool| {
        u8::try_from(accounts.iter().filter(|m| f(m)).count()).unwrap_or(u8::MAX)
    };
    let header = MessageHeader {
        num_required_signatures: count(|m| m.signer),
        num_readonly_signed_accounts: count(|m| m.signer && !m.writable),
        num_readonly_unsigned_accounts: count(|m| !m.signer && !m.writable),
    };
    let index = |address: &Address| {
        accounts
            .iter()
            .position(|m| m.address == *address)
            .and_then(|i| u8::try_from(i).ok())
            .unwrap_or(u8::MAX)
    };
    let compiled = instructions
        .iter()
        .map(|ix| {
            CompiledInstruction::new_from_raw_parts(
                index(&ix.program),
                ix.data.clone(),
                ix.accounts.iter().map(|m| index(&m.address)).collect(),
            )
        })
        .collect();
    v0::Message {
        header,
        account_keys: accounts.iter().map(|m| m.address).collect(),
        recent_blockhash: blockhash,
        instructions: compiled,
        address_table_lookups: vec![],
    }
}

/// `@solana/kit` orders addresses with `Intl.Collator('en', { caseFirst: 'lower' })`. On base58
/// text (digits and ASCII letters) that is: compare ignoring case, digits before letters; when
/// equal so, the first difference in case decides, lower case first.
fn kit_collation(a: &str, b: &str) -> Ordering {
    let folded = |s: &str| {
        s.bytes()
            .map(|c| c.to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    folded(a).cmp(&folded(b)).then_with(|| {
        a.bytes()
            .map(|c| c.is_ascii_uppercase())
            .cmp(b.bytes().map(|c| c.is_ascii_uppercase()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kit_collation_ignores_case_first_and_puts_lower_case_first() {
        assert_eq!(kit_collation("abc", "ABD"), Ordering::Less);
        assert_eq!(kit_collation("Zeta", "alpha"), Ordering::Greater);
        assert_eq!(kit_collation("9z", "A1"), Ordering::Less);
        assert_eq!(kit_collation("ab", "Ab"), Ordering::Less);
        assert_eq!(kit_collation("aB", "Ab"), Ordering::Less);
        assert_eq!(kit_collation("ab", "abc"), Ordering::Less);
        assert_eq!(kit_collation("same", "same"), Ordering::Equal);
    }

    #[test]
    fn random_memos_are_32_hex_characters_and_differ() {
        let a = random_memo().unwrap();
        let b = random_memo().unwrap();
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}
