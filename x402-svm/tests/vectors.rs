//! The official `@x402/svm` 2.27 client's payments: `ExactSvm` accepts them, `build_payment`
//! reproduces them byte for byte, and each rule refuses a payment broken in its one way.

use std::sync::Arc;

use serde_json::Value;
use solana_address::Address;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_message::compiled_instruction::CompiledInstruction;
use solana_message::v0::MessageAddressTableLookup;
use solana_message::{VersionedMessage, v0};
use solana_signer::Signer as _;
use solana_transaction::versioned::VersionedTransaction;
use x402_protocol::facilitator::FacilitatorRequest;
use x402_protocol::verify::{InvalidPayment, SignatureCheck, VerifiedPayment};
use x402_protocol::{ChainAddress, NetworkRegistry, U256};
use x402_runtime::AcceptOption;
use x402_runtime::scheme::Scheme;
use x402_svm::client::build_payment;
use x402_svm::programs::{SYSTEM, TOKEN, associated_token_account};
use x402_svm::scheme::ExactSvm;
use x402_svm::verify::{SvmTerms, message_bytes, reasons};
use x402_svm::wire::{ComputeBudget, TransferChecked, decode_transaction, encode_transaction};

const VECTORS: &str = include_str!("data/official-svm-vectors.json");

/// One official payment.
struct Vector {
    name: String,
    request: Value,
    signed_at: u64,
    payer: String,
    payer_seed: [u8; 32],
    blockhash: Hash,
    memo_text: String,
    transaction: String,
}

fn vectors() -> Vec<Vector> {
    let all: Value = serde_json::from_str(VECTORS).unwrap();
    all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let decoded = &v["transaction_decoded"];
            Vector {
                name: v["name"].as_str().unwrap().to_owned(),
                request: v["official_verify"]["request"].clone(),
                signed_at: v["signed_at_unix"].as_u64().unwrap(),
                payer: v["payer"].as_str().unwrap().to_owned(),
                payer_seed: seed(&v["keys"]["payer"]["seed_hex"]),
                blockhash: decoded["recent_blockhash"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap(),
                memo_text: decoded["instructions"][3]["decoded"]["text"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                transaction: v["transaction_base64"].as_str().unwrap().to_owned(),
            }
        })
        .collect()
}

fn seed(hex: &Value) -> [u8; 32] {
    let hex = hex.as_str().unwrap();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

fn vector(name: &str) -> Vector {
    vectors().into_iter().find(|v| v.name == name).unwrap()
}

impl Vector {
    fn payer_keypair(&self) -> Keypair {
        Keypair::new_from_array(self.payer_seed)
    }

    fn parsed(&self, transaction: &str) -> FacilitatorRequest {
        let mut request = self.request.clone();
        request["paymentPayload"]["payload"]["transaction"] = Value::String(transaction.into());
        serde_json::from_value(request).unwrap()
    }

    fn terms(&self) -> SvmTerms {
        let request = self.parsed(&self.transaction);
        SvmTerms::resolve(&request.payment_requirements, &NetworkRegistry::builtin()).unwrap()
    }

    /// `ExactSvm::verify` of the vector's request carrying `transaction`.
    fn verify(&self, transaction: &str) -> Result<VerifiedPayment, InvalidPayment> {
        let request = self.parsed(transaction);
        ExactSvm.verify(
            &request.payment_payload,
            &request.payment_requirements,
            &NetworkRegistry::builtin(),
            self.signed_at,
        )
    }

    /// The vector's transaction with its v0 message changed by `change`, signed again by the
    /// payer (so that only the changed rule can fail), as base64.
    fn mutated(&self, change: impl FnOnce(&mut v0::Message)) -> String {
        let mut tx = decode_transaction(&self.transaction).unwrap();
        let VersionedMessage::V0(message) = &mut tx.message else {
            panic!("the official client builds v0 messages");
        };
        change(message);
        resign(&mut tx, &self.payer_keypair());
        encode_transaction(&tx)
    }

    fn refusal(&self, transaction: &str) -> InvalidPayment {
        match self.verify(transaction) {
            Ok(_) => panic!("{}: a broken payment was accepted", self.name),
            Err(e) => e,
        }
    }
}

/// Signs the message again with `payer` in the payer's slot (and resizes the slots to the
/// header's signer count, the others zero).
fn resign(tx: &mut VersionedTransaction, payer: &Keypair) {
    let bytes = message_bytes(&tx.message);
    let signers = usize::from(tx.message.header().num_required_signatures);
    tx.signatures = tx.message.static_account_keys()[..signers]
        .iter()
        .map(|k| {
            if *k == payer.pubkey() {
                payer.sign_message(&bytes)
            } else {
                Default::default()
            }
        })
        .collect();
}

fn key_index(message: &v0::Message, key: &Address) -> u8 {
    u8::try_from(message.account_keys.iter().position(|k| k == key).unwrap()).unwrap()
}

/// The transfer's accounts: source, mint, destination, authority.
fn transfer_accounts(message: &v0::Message) -> [Address; 4] {
    let ix = &message.instructions[2];
    [0, 1, 2, 3].map(|i| message.account_keys[usize::from(ix.accounts[i])])
}

/// Adds `key` as a read-only, unsigned account (at the end, where no index moves) and returns
/// its index.
fn add_readonly(message: &mut v0::Message, key: Address) -> u8 {
    message.account_keys.push(key);
    message.header.num_readonly_unsigned_accounts += 1;
    u8::try_from(message.account_keys.len() - 1).unwrap()
}

fn assert_reason(result: InvalidPayment, code: &str) {
    assert_eq!(result.reason.as_str(), code, "{}", result.message);
}

const DEVNET: &str = "svm-exact-devnet-10000";
const MAINNET_MEMO: &str = "svm-exact-mainnet-memo-20000";

#[test]
fn every_official_payment_verifies() {
    let all = vectors();
    assert_eq!(all.len(), 3);
    for v in &all {
        decode_transaction(&v.transaction).unwrap();
        let verified = v
            .verify(&v.transaction)
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(verified.payer.to_string(), v.payer, "{}", v.name);
        let request = v.parsed(&v.transaction);
        let requirements = &request.payment_requirements;
        assert_eq!(verified.amount, requirements.amount());
        assert_eq!(verified.asset.to_string(), requirements.asset());
        assert_eq!(verified.pay_to.to_string(), requirements.pay_to());
        assert_eq!(verified.network.caip2, requirements.network());
        assert_eq!(verified.signature, SignatureCheck::Recovered);
        assert_eq!(verified.expires_at, None);
        assert!(
            verified
                .key
                .as_str()
                .starts_with(&format!("{}/svm/", requirements.network())),
            "{}",
            verified.key
        );
        assert_eq!(verified.key.as_str().rsplit('/').next().unwrap().len(), 64);
    }
}

#[test]
fn build_payment_reproduces_the_official_transactions_byte_for_byte() {
    for v in vectors() {
        let tx = build_payment(
            &v.terms(),
            &v.payer_keypair(),
            v.blockhash,
            Some(&v.memo_text),
        )
        .unwrap();
        assert_eq!(encode_transaction(&tx), v.transaction, "{}", v.name);
    }
}

#[test]
fn build_payment_with_no_memo_makes_a_unique_verifiable_payment() {
    let v = vector(DEVNET);
    let terms = v.terms();
    let a = build_payment(&terms, &v.payer_keypair(), v.blockhash, None).unwrap();
    let b = build_payment(&terms, &v.payer_keypair(), v.blockhash, None).unwrap();
    assert_ne!(a, b);
    let (a, b) = (
        v.verify(&encode_transaction(&a)),
        v.verify(&encode_transaction(&b)),
    );
    assert_ne!(a.unwrap().key, b.unwrap().key);
}

#[test]
fn identify_reads_the_payment_without_its_signature() {
    let v = vector(DEVNET);
    let mut tx = decode_transaction(&v.transaction).unwrap();
    tx.signatures[1] = Default::default();
    let request = v.parsed(&encode_transaction(&tx));
    let identified = ExactSvm
        .identify(
            &request.payment_payload,
            &request.payment_requirements,
            &NetworkRegistry::builtin(),
        )
        .unwrap();
    assert_eq!(identified.signature, SignatureCheck::Unchecked);
    assert_eq!(identified.payer.to_string(), v.payer);
    let verified = v.verify(&v.transaction).unwrap();
    assert_eq!(identified.key, verified.key);
}

#[test]
fn the_fee_payer_signature_does_not_change_the_payment() {
    let v = vector(DEVNET);
    let mut tx = decode_transaction(&v.transaction).unwrap();
    let fee_payer = Keypair::new_from_array([2; 32]);
    tx.signatures[0] = fee_payer.sign_message(&message_bytes(&tx.message));
    let cosigned = v.verify(&encode_transaction(&tx)).unwrap();
    assert_eq!(cosigned.key, v.verify(&v.transaction).unwrap().key);
}

#[test]
fn an_amount_changed_is_refused() {
    let v = vector(DEVNET);
    let tx = v.mutated(|m| {
        m.instructions[2].data = TransferChecked {
            amount: 10_001,
            decimals: 6,
        }
        .encode();
    });
    let refusal = v.refusal(&tx);
    assert_eq!(refusal.payer.unwrap().to_string(), v.payer);
    assert_reason(refusal, reasons::AMOUNT_MISMATCH);
}

#[test]
fn decimals_changed_are_refused() {
    let v = vector(DEVNET);
    let tx = v.mutated(|m| {
        m.instructions[2].data = TransferChecked {
            amount: 10_000,
            decimals: 9,
        }
        .encode();
    });
    assert_reason(v.refusal(&tx), reasons::DECIMALS_MISMATCH);
}

#[test]
fn a_mint_changed_is_refused() {
    let v = vector(DEVNET);
    let tx = v.mutated(|m| {
        let [_, mint, _, _] = transfer_accounts(m);
        let i = key_index(m, &mint);
        m.account_keys[usize::from(i)] = Address::new_from_array([9; 32]);
    });
    assert_reason(v.refusal(&tx), reasons::MINT_MISMATCH);
}

#[test]
fn a_destination_of_another_owner_is_refused() {
    let v = vector(DEVNET);
    let tx = v.mutated(|m| {
        let [_, mint, destination, _] = transfer_accounts(m);
        let thief = Keypair::new_from_array([5; 32]).pubkey();
        let i = key_index(m, &destination);
        m.account_keys[usize::from(i)] = associated_token_account(&thief, &mint, &TOKEN);
    });
    assert_reason(v.refusal(&tx), reasons::RECIPIENT_MISMATCH);
}

#[test]
fn a_system_transfer_added_is_refused() {
    let v = vector(DEVNET);
    let tx = v.mutated(|m| {
        let system = add_readonly(m, SYSTEM);
        let mut data = vec![2, 0, 0, 0];
        data.extend_from_slice(&1_000_000u64.to_le_bytes());
        let ix = CompiledInstruction::new_from_raw_parts(system, data, vec![1, 2]);
        m.instructions.insert(3, ix);
    });
    assert_reason(v.refusal(&tx), reasons::UNKNOWN_FOURTH_INSTRUCTION);
    let tx = v.mutated(|m| {
        let system = add_readonly(m, SYSTEM);
        let ix = CompiledInstruction::new_from_raw_parts(system, vec![2, 0, 0, 0], vec![1, 2]);
        m.instructions.push(ix);
    });
    assert_reason(v.refusal(&tx), reasons::UNKNOWN_FIFTH_INSTRUCTION);
}

#[test]
fn too_many_or_too_few_instructions_are_refused() {
    let v = vector(DEVNET);
    let tx = v.mutated(|m| {
        let memo = m.instructions[3].clone();
        m.instructions.extend(std::iter::repeat_n(memo, 4));
    });
    assert_reason(v.refusal(&tx), reasons::INSTRUCTIONS_LENGTH);
    let tx = v.mutated(|m| m.instructions.truncate(2));
    assert_reason(v.refusal(&tx), reasons::INSTRUCTIONS_LENGTH);
    // Seven is the most: three, then four Memo or Lighthouse instructions.
    let tx = v.mutated(|m| {
        let memo = m.instructions[3].clone();
        m.instructions.extend(std::iter::repeat_n(memo, 3));
    });
    v.verify(&tx).unwrap();
}

#[test]
fn the_fee_payer_as_authority_or_source_is_refused() {
    let v = vector(DEVNET);
    let as_authority = v.mutated(|m| m.instructions[2].accounts[3] = 0);
    assert_reason(
        v.refusal(&as_authority),
        reasons::FEE_PAYER_TRANSFERRING_FUNDS,
    );
    let as_source = v.mutated(|m| m.instructions[2].accounts[0] = 0);
    assert_reason(v.refusal(&as_source), reasons::FEE_PAYER_TRANSFERRING_FUNDS);
    let its_token_account = v.mutated(|m| {
        let [source, mint, _, _] = transfer_accounts(m);
        let i = key_index(m, &source);
        m.account_keys[usize::from(i)] =
            associated_token_account(&m.account_keys[0], &mint, &TOKEN);
    });
    assert_reason(
        v.refusal(&its_token_account),
        reasons::FEE_PAYER_TRANSFERRING_FUNDS,
    );
}

#[test]
fn the_fee_payer_in_another_instruction_is_refused() {
    let v = vector(DEVNET);
    let tx = v.mutated(|m| m.instructions[3].accounts.push(0));
    assert_reason(v.refusal(&tx), reasons::FEE_PAYER_IN_INSTRUCTION_ACCOUNTS);
}

#[test]
fn a_fee_payer_other_than_extra_fee_payer_is_refused() {
    let v = vector(DEVNET);
    let tx = v.mutated(|m| m.account_keys[0] = Keypair::new_from_array([6; 32]).pubkey());
    assert_reason(v.refusal(&tx), reasons::FEE_PAYER_MISMATCH);
}

#[test]
fn compute_budget_rules_are_enforced() {
    let v = vector(DEVNET);
    let tx = v.mutated(|m| m.instructions[1].data = ComputeBudget::UnitPrice(5_000_001).encode());
    assert_reason(v.refusal(&tx), reasons::COMPUTE_PRICE_TOO_HIGH);
    let tx = v.mutated(|m| m.instructions[1].data = ComputeBudget::UnitPrice(5_000_000).encode());
    v.verify(&tx).unwrap();
    let tx = v.mutated(|m| m.instructions[0].data = ComputeBudget::UnitLimit(400_001).encode());
    assert_reason(v.refusal(&tx), reasons::COMPUTE_LIMIT_TOO_HIGH);
    let tx = v.mutated(|m| m.instructions.swap(0, 1));
    assert_reason(v.refusal(&tx), reasons::COMPUTE_LIMIT_INSTRUCTION);
    let tx = v.mutated(|m| m.instructions[1].data = ComputeBudget::UnitLimit(1).encode());
    assert_reason(v.refusal(&tx), reasons::COMPUTE_PRICE_INSTRUCTION);
}

#[test]
fn a_transfer_that_is_not_transfer_checked_is_refused() {
    let v = vector(DEVNET);
    // SPL Token `Transfer` (3): no mint, no decimals.
    let tx = v.mutated(|m| {
        let mut data = vec![3];
        data.extend_from_slice(&10_000u64.to_le_bytes());
        m.instructions[2].data = data;
    });
    assert_reason(v.refusal(&tx), reasons::NO_TRANSFER_INSTRUCTION);
}

#[test]
fn memo_rules_are_enforced() {
    let v = vector(MAINNET_MEMO);
    let tx = v.mutated(|m| m.instructions[3].data = b"order-00000000".to_vec());
    assert_reason(v.refusal(&tx), reasons::MEMO_MISMATCH);
    let tx = v.mutated(|m| {
        m.instructions.pop();
    });
    assert_reason(v.refusal(&tx), reasons::MEMO_COUNT);
    let tx = v.mutated(|m| {
        let memo = m.instructions[3].clone();
        m.instructions.push(memo);
    });
    assert_reason(v.refusal(&tx), reasons::MEMO_COUNT);
}

#[test]
fn address_lookup_tables_are_refused() {
    let v = vector(DEVNET);
    let tx = v.mutated(|m| {
        m.address_table_lookups.push(MessageAddressTableLookup {
            account_key: Address::new_from_array([8; 32]),
            writable_indexes: vec![0],
            readonly_indexes: vec![],
        });
    });
    assert_reason(v.refusal(&tx), reasons::ADDRESS_LOOKUP_TABLES);
}

#[test]
fn a_tampered_signature_is_refused() {
    let v = vector(DEVNET);
    let mut tx = decode_transaction(&v.transaction).unwrap();
    let mut bytes: [u8; 64] = tx.signatures[1].into();
    bytes[10] ^= 1;
    tx.signatures[1] = bytes.into();
    let refusal = v.refusal(&encode_transaction(&tx));
    assert_eq!(refusal.payer.unwrap().to_string(), v.payer);
    assert_reason(refusal, reasons::TRANSACTION_SIGNATURE);
    // Signed by someone else over the same message.
    let mut tx = decode_transaction(&v.transaction).unwrap();
    tx.signatures[1] = Keypair::new_from_array([7; 32]).sign_message(&message_bytes(&tx.message));
    assert_reason(
        v.refusal(&encode_transaction(&tx)),
        reasons::TRANSACTION_SIGNATURE,
    );
}

#[test]
fn garbage_is_refused_as_undecodable() {
    let v = vector(DEVNET);
    for garbage in ["not base64 at all!", "AAAA", ""] {
        assert_reason(v.refusal(garbage), reasons::COULD_NOT_BE_DECODED);
    }
    // Signatures missing for the required signers.
    let mut tx = decode_transaction(&v.transaction).unwrap();
    tx.signatures.pop();
    assert_reason(
        v.refusal(&encode_transaction(&tx)),
        reasons::COULD_NOT_BE_DECODED,
    );
}

#[test]
fn requirements_without_fee_payer_or_with_an_unknown_mint_are_refused() {
    let v = vector(DEVNET);
    let registry = NetworkRegistry::builtin();
    let mut request = v.request.clone();
    request["paymentRequirements"]["extra"] = serde_json::json!({});
    let parsed: FacilitatorRequest = serde_json::from_value(request.clone()).unwrap();
    let refusal = SvmTerms::resolve(&parsed.payment_requirements, &registry).unwrap_err();
    assert_reason(refusal, reasons::MISSING_FEE_PAYER);

    request["paymentRequirements"]["extra"] = serde_json::json!({"feePayer": "not-an-address"});
    let parsed: FacilitatorRequest = serde_json::from_value(request.clone()).unwrap();
    let refusal = SvmTerms::resolve(&parsed.payment_requirements, &registry).unwrap_err();
    assert_reason(refusal, reasons::MISSING_FEE_PAYER);

    let mut request = v.request.clone();
    request["paymentRequirements"]["asset"] =
        Value::String(Address::new_from_array([9; 32]).to_string());
    let parsed: FacilitatorRequest = serde_json::from_value(request).unwrap();
    let refusal = SvmTerms::resolve(&parsed.payment_requirements, &registry).unwrap_err();
    assert_eq!(
        refusal.reason,
        x402_protocol::Reason::INVALID_PAYMENT_REQUIREMENTS
    );

    let mut request = v.request.clone();
    request["paymentRequirements"]["extra"]["memo"] = Value::String("x".repeat(257));
    let parsed: FacilitatorRequest = serde_json::from_value(request).unwrap();
    let refusal = SvmTerms::resolve(&parsed.payment_requirements, &registry).unwrap_err();
    assert_eq!(
        refusal.reason,
        x402_protocol::Reason::INVALID_PAYMENT_REQUIREMENTS
    );
}

#[test]
fn extra_names_the_fee_payer() {
    let registry = NetworkRegistry::builtin();
    let network = registry.network("solana-devnet").unwrap().clone();
    let fee_payer: ChainAddress = "9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu"
        .parse()
        .unwrap();
    let mut option = AcceptOption {
        scheme: Arc::new(ExactSvm),
        asset: Arc::new(network.default_asset.clone()),
        network: Arc::new(network),
        amount: U256::from(10_000u64),
        pay_to: "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse"
            .parse()
            .unwrap(),
        prepaid: false,
        facilitator: Some(fee_payer),
        blockhash: None,
    };
    assert_eq!(
        ExactSvm.extra(&option),
        Some(serde_json::json!({"feePayer": "9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu"}))
    );
    option.facilitator = None;
    assert_eq!(ExactSvm.extra(&option), None);
}

#[test]
fn handles_only_solana_payloads_of_exact() {
    let v = vector(DEVNET);
    let request = v.parsed(&v.transaction);
    assert!(ExactSvm.handles(
        &request.payment_requirements,
        request.payment_payload.payload()
    ));
}

#[test]
fn a_third_signer_is_refused() {
    let v = vector(DEVNET);
    let tx = v.mutated(|m| {
        // A read-only signer after the payer: every later index moves up by one.
        m.account_keys
            .insert(2, Keypair::new_from_array([4; 32]).pubkey());
        m.header.num_required_signatures += 1;
        m.header.num_readonly_signed_accounts += 1;
        for ix in &mut m.instructions {
            if ix.program_id_index >= 2 {
                ix.program_id_index += 1;
            }
            for a in &mut ix.accounts {
                if *a >= 2 {
                    *a += 1;
                }
            }
        }
    });
    assert_reason(v.refusal(&tx), reasons::UNEXPECTED_SIGNERS);
}

#[test]
fn a_transfer_under_the_other_token_program_is_refused() {
    let v = vector(DEVNET);
    let tx = v.mutated(|m| {
        let token_2022 = add_readonly(m, x402_svm::programs::TOKEN_2022);
        m.instructions[2].program_id_index = token_2022;
    });
    assert_reason(v.refusal(&tx), reasons::TOKEN_PROGRAM_MISMATCH);
}
