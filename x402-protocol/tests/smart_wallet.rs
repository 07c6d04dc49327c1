//! Contract-wallet signatures offline: a signature that only a chain can judge (not 65 bytes,
//! ERC-6492-wrapped, or 65 bytes by another key) is left to the chain by the per-kind
//! verifiers, with the refusal to give when there is no chain; every other check still runs
//! first; the one-call verifier refuses them.

use x402_protocol::client::prepare_payment;
use x402_protocol::eip3009::{LocalSigner, RecoveryBackend};
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
use x402_protocol::verify::{SignatureCheck, verify_eip3009, verify_payment};
use x402_protocol::{Address, B256, NetworkRegistry, Reason, U256, eip6492, v1};

const NOW: u64 = 1_800_000_000;

fn requirement(amount: u64) -> PaymentRequirements {
    PaymentRequirements::V1(v1::PaymentRequirements {
        scheme: "exact".into(),
        network: "base".into(),
        max_amount_required: U256::from(amount),
        resource: "https://api.example/weather".into(),
        description: String::new(),
        mime_type: String::new(),
        output_schema: None,
        pay_to: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".into(),
        max_timeout_seconds: 60,
        asset: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913".into(),
        extra: None,
    })
}

/// A payment from `wallet` signed with `sign(digest)`, and the digest.
fn payment(wallet: Address, sign: impl Fn(&B256) -> Vec<u8>) -> (PaymentPayload, B256) {
    let registry = NetworkRegistry::builtin();
    let prepared = prepare_payment(&requirement(10_000), None, wallet, &registry, NOW).unwrap();
    let digest = prepared.digest();
    (prepared.finish(sign(&digest)), digest)
}

fn check(payment: &PaymentPayload, amount: u64) -> Result<SignatureCheck, Reason> {
    let exact = payment.payload().as_eip3009().unwrap();
    verify_eip3009(
        RecoveryBackend::default(),
        exact,
        &requirement(amount),
        &NetworkRegistry::builtin(),
        NOW,
    )
    .map(|v| v.signature)
    .map_err(|e| e.reason)
}

fn without_chain(check: SignatureCheck) -> (B256, Reason) {
    match check {
        SignatureCheck::OnChain {
            digest,
            without_chain,
        } => (digest, without_chain.reason),
        other => panic!("expected a check left to the chain, got {other:?}"),
    }
}

#[test]
fn contract_wallet_signatures_are_left_to_the_chain() {
    let owner = LocalSigner::random();
    let wallet = Address::repeat_byte(0x77);
    let registry = NetworkRegistry::builtin();

    // An EOA's own signature is recovered.
    let (eoa, _) = payment(owner.address(), |d| owner.sign_hash(d).to_vec());
    assert_eq!(check(&eoa, 10_000), Ok(SignatureCheck::Recovered));
    assert!(verify_payment(&eoa, &requirement(10_000), &registry, NOW).is_ok());

    // The owner signs for the wallet (ERC-1271): 65 bytes by another key. Without a chain
    // this reads as a forgery, so its refusal is the invalid signature of today.
    let (owned, digest) = payment(wallet, |d| owner.sign_hash(d).to_vec());
    assert_eq!(
        without_chain(check(&owned, 10_000).unwrap()),
        (digest, Reason::INVALID_SIGNATURE)
    );
    assert_eq!(
        verify_payment(&owned, &requirement(10_000), &registry, NOW)
            .unwrap_err()
            .reason,
        Reason::INVALID_SIGNATURE
    );

    // Longer signatures and ERC-6492 ones can only be a contract wallet's: they need an RPC.
    let wrapped = |d: &B256| {
        eip6492::wrap(Address::repeat_byte(0xfa), &[1, 2, 3], &owner.sign_hash(d)).to_vec()
    };
    let long = |d: &B256| [owner.sign_hash(d).as_slice(), &[0u8; 31]].concat();
    for sign in [&wrapped as &dyn Fn(&B256) -> Vec<u8>, &long] {
        let (smart, digest) = payment(wallet, sign);
        assert_eq!(
            without_chain(check(&smart, 10_000).unwrap()),
            (digest, Reason::SMART_WALLET_NEEDS_RPC)
        );
        let refused = verify_payment(&smart, &requirement(10_000), &registry, NOW).unwrap_err();
        assert_eq!(refused.reason, Reason::SMART_WALLET_NEEDS_RPC);
        assert!(refused.message.contains("RPC"), "{}", refused.message);
        // Every other check still runs offline, first.
        assert_eq!(check(&smart, 9_999), Err(Reason::VALUE_MISMATCH));
    }

    // A malformed 65-byte signature (recovery byte 29) is refused offline, wallet or not.
    let (malformed, _) = payment(wallet, |d| {
        let mut sig = owner.sign_hash(d).to_vec();
        sig[64] = 29;
        sig
    });
    assert_eq!(check(&malformed, 10_000), Err(Reason::INVALID_SIGNATURE));
}
