//! `x402-client`'s `Payer` paying Solana offers with a `SolanaWallet`: which offers a
//! Solana-only payer and a payer with both keys choose, caps and budget on Solana, v1 and v2
//! payloads that `ExactSvm` accepts, the blockhash from the offer or the chain, unknown mints
//! looked up on the chain, and hostile offers refused without panicking. No network: the
//! blockhash comes from `extra.recentBlockhash` or a fake chain.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use solana_address::Address;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signature::Signature;
use solana_signer::Signer as _;
use solana_transaction::versioned::VersionedTransaction;
use x402_client::{Challenge, LocalSigner, Payer, RefusalReason, SolanaPaymentSigner, X402Error};
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
use x402_protocol::{AssetInfo, B256, ChainAddress, Family, NetworkRegistry, ProtocolVersion};
use x402_runtime::scheme::Scheme;
use x402_svm::chain::{ChainError, MintInfo, SvmChain, TransactionStatus};
use x402_svm::programs::TOKEN_2022;
use x402_svm::verify::{message_bytes, payment_key, to_solana};
use x402_svm::wire::decode_transaction;
use x402_svm::{ExactSvm, SolanaWallet};

const DEVNET: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
const DEVNET_USDC: &str = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";
const PAY_TO: &str = "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse";
const FEE_PAYER: &str = "9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu";
const BLOCKHASH: &str = "78mPnfMuFcvcJMbiYbC3DLKy5x5pYkZfM6TfWYVbNCAC";
const EVM_PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const BASE_SEPOLIA_USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";

/// A chain that answers a fixed blockhash and knows one Token-2022 mint.
struct FakeChain {
    blockhash: Hash,
    mint: Address,
    blockhash_calls: AtomicUsize,
}

impl FakeChain {
    fn new(mint: Address) -> Arc<Self> {
        Arc::new(FakeChain {
            blockhash: Hash::new_from_array([9; 32]),
            mint,
            blockhash_calls: AtomicUsize::new(0),
        })
    }
}

#[async_trait::async_trait]
impl SvmChain for FakeChain {
    async fn latest_blockhash(&self) -> Result<Hash, ChainError> {
        self.blockhash_calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.blockhash)
    }
    async fn is_blockhash_valid(&self, _: &Hash) -> Result<bool, ChainError> {
        Ok(true)
    }
    async fn simulate(&self, _: &VersionedTransaction) -> Result<(), ChainError> {
        Ok(())
    }
    async fn send(&self, _: &VersionedTransaction) -> Result<Signature, ChainError> {
        Err(ChainError::Unavailable("fake".into()))
    }
    async fn status(&self, _: &Signature) -> Result<Option<TransactionStatus>, ChainError> {
        Ok(None)
    }
    async fn mint(&self, mint: &Address) -> Result<Option<MintInfo>, ChainError> {
        Ok((*mint == self.mint).then_some(MintInfo {
            program: TOKEN_2022,
            decimals: 9,
        }))
    }
}

fn keypair() -> Keypair {
    Keypair::new_from_array([1; 32])
}

fn svm_entry(amount: &str, blockhash: bool) -> Value {
    let mut extra = json!({ "feePayer": FEE_PAYER });
    if blockhash {
        extra["recentBlockhash"] = json!(BLOCKHASH);
        extra["lastValidBlockHeight"] = json!("376543210");
    }
    json!({
        "scheme": "exact", "network": DEVNET, "amount": amount, "asset": DEVNET_USDC,
        "payTo": PAY_TO, "maxTimeoutSeconds": 300, "extra": extra
    })
}

fn evm_entry(amount: &str) -> Value {
    json!({
        "scheme": "exact", "network": "eip155:84532", "amount": amount,
        "asset": BASE_SEPOLIA_USDC, "payTo": EVM_PAY_TO, "maxTimeoutSeconds": 300,
        "extra": { "name": "USDC", "version": "2" }
    })
}

fn challenge(accepts: Vec<Value>) -> Challenge {
    Challenge::from_json(&json!({
        "x402Version": 2,
        "resource": { "url": "https://api.example.test/data" },
        "accepts": accepts
    }))
    .unwrap()
}

/// Checks a signed v2 payload as a server would: `ExactSvm` verifies it against the entry
/// the client copied into `accepted`.
fn verify_v2(
    payload: &Value,
    registry: &NetworkRegistry,
) -> x402_protocol::verify::VerifiedPayment {
    let payment: PaymentPayload = serde_json::from_value(payload.clone()).unwrap();
    let requirements: PaymentRequirements =
        serde_json::from_value(payload["accepted"].clone()).unwrap();
    assert!(ExactSvm.handles(&requirements, payment.payload()));
    ExactSvm
        .verify(&payment, &requirements, registry, 0)
        .unwrap()
}

fn transaction_of(payload: &Value) -> VersionedTransaction {
    decode_transaction(payload["payload"]["transaction"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_solana_only_payer_pays_the_solana_offer_and_refuses_evm_ones() {
    let wallet = SolanaWallet::offline(keypair());
    let payer = Payer::solana_builder(wallet).budget("$1").build().unwrap();
    let entry = svm_entry("10000", true);
    let offers = challenge(vec![evm_entry("1000"), entry.clone()]);

    let signed = payer
        .pay("GET", "https://api.example.test/data", &offers)
        .await
        .unwrap();
    assert_eq!(signed.version(), ProtocolVersion::V2);
    assert_eq!(signed.header_name(), "payment-signature");
    assert_eq!(
        signed.payload()["accepted"],
        entry,
        "accepted is the entry verbatim"
    );

    let verified = verify_v2(signed.payload(), payer.registry());
    assert_eq!(
        verified.payer,
        ChainAddress::Solana(to_solana(&keypair().pubkey()))
    );
    assert_eq!(verified.amount, x402_protocol::U256::from(10_000u64));

    let tx = transaction_of(signed.payload());
    assert_eq!(tx.message.recent_blockhash().to_string(), BLOCKHASH);
    let record = &payer.history()[0];
    assert_eq!(record.payer, verified.payer);
    assert_eq!(record.pay_to.to_string(), PAY_TO);
    assert_eq!(record.amount_display(), "0.01 USDC");
    let digest: [u8; 32] = Sha256::digest(message_bytes(&tx.message)).into();
    assert_eq!(record.nonce, B256::from(digest));
    assert_eq!(
        verified.key,
        payment_key(&verified.network, &message_bytes(&tx.message))
    );
    assert_eq!(payer.spent()[0].1, "$0.01");
    assert_eq!(payer.evm_address(), None);

    // Only the EVM offer: refused, saying there is no EVM key.
    let error = payer
        .pay(
            "GET",
            "https://api.example.test/data",
            &challenge(vec![evm_entry("1000")]),
        )
        .await
        .unwrap_err();
    let X402Error::NoPayableOffer { refusals, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(refusals[0].reason, RefusalReason::NoSigner(Family::Evm));
    assert!(error.to_string().contains("no EVM key"), "{error}");
}

#[tokio::test]
async fn an_evm_only_payer_refuses_solana_offers_saying_why() {
    let payer = Payer::builder(LocalSigner::random()).build().unwrap();
    let error = payer
        .pay(
            "GET",
            "https://api.example.test/data",
            &challenge(vec![svm_entry("10000", true)]),
        )
        .await
        .unwrap_err();
    let X402Error::NoPayableOffer { refusals, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(refusals[0].reason, RefusalReason::NoSigner(Family::Solana));
    assert!(error.to_string().contains("no Solana key"), "{error}");
}

#[tokio::test]
async fn a_payer_with_both_keys_takes_the_cheapest_or_the_preferred_offer() {
    let evm = LocalSigner::random();
    let evm_address = evm.address();
    let both = || Payer::builder(evm.clone()).solana(SolanaWallet::offline(keypair()));
    let offers = challenge(vec![evm_entry("20000"), svm_entry("10000", true)]);

    // Cheapest first: the Solana offer.
    let payer = both().build().unwrap();
    let signed = payer.pay("GET", "https://a.test/", &offers).await.unwrap();
    assert_eq!(signed.payload()["accepted"]["network"], DEVNET);
    verify_v2(signed.payload(), payer.registry());
    assert_eq!(payer.evm_address(), Some(evm_address));
    assert_eq!(payer.address(), evm_address);
    assert_eq!(payer.solana_address(), Some(to_solana(&keypair().pubkey())));

    // A preferred network wins over price.
    let payer = both().prefer_networks(["base-sepolia"]).build().unwrap();
    let signed = payer.pay("GET", "https://a.test/", &offers).await.unwrap();
    assert_eq!(signed.payload()["accepted"]["network"], "eip155:84532");
    assert_eq!(payer.history()[0].payer, evm_address);

    // Only Solana allowed: the Solana offer even when it costs more.
    let payer = both().networks(["solana-devnet"]).build().unwrap();
    let dearer = challenge(vec![evm_entry("1000"), svm_entry("10000", true)]);
    let signed = payer.pay("GET", "https://a.test/", &dearer).await.unwrap();
    assert_eq!(signed.payload()["accepted"]["network"], DEVNET);

    // Preferring a token by its Solana mint.
    let payer = both().prefer_assets([DEVNET_USDC]).build().unwrap();
    let signed = payer.pay("GET", "https://a.test/", &dearer).await.unwrap();
    assert_eq!(signed.payload()["accepted"]["network"], DEVNET);
}

#[tokio::test]
async fn caps_and_the_budget_count_solana_usdc_as_dollars() {
    let payer = Payer::solana_builder(SolanaWallet::offline(keypair()))
        .max_per_request("$0.02")
        .budget("$0.025")
        .build()
        .unwrap();
    let over_cap = payer
        .pay(
            "GET",
            "https://a.test/",
            &challenge(vec![svm_entry("30000", true)]),
        )
        .await
        .unwrap_err();
    assert!(
        over_cap.to_string().contains("per-request cap of $0.02"),
        "{over_cap}"
    );

    let offer = challenge(vec![svm_entry("20000", true)]);
    payer.pay("GET", "https://a.test/", &offer).await.unwrap();
    assert_eq!(payer.remaining_budget()[0].1, "$0.005");
    let over_budget = payer
        .pay("GET", "https://a.test/", &offer)
        .await
        .unwrap_err();
    assert!(
        over_budget
            .to_string()
            .contains("remaining budget of $0.005"),
        "{over_budget}"
    );

    // A cap in another token does not cover USDC on Solana.
    let payer = Payer::solana_builder(SolanaWallet::offline(keypair()))
        .max_per_request("5 EURC")
        .build()
        .unwrap();
    let error = payer
        .pay("GET", "https://a.test/", &offer)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("no per-request cap covers USDC"),
        "{error}"
    );
}

#[tokio::test]
async fn a_v1_solana_offer_is_paid_in_x_payment() {
    let challenge = Challenge::from_json(&json!({
        "x402Version": 1,
        "error": "X-PAYMENT header is required",
        "accepts": [{
            "scheme": "exact", "network": "solana-devnet", "maxAmountRequired": "10000",
            "resource": "https://a.test/v1", "description": "v1 data", "mimeType": "text/plain",
            "payTo": PAY_TO, "maxTimeoutSeconds": 60, "asset": DEVNET_USDC,
            "extra": { "feePayer": FEE_PAYER, "recentBlockhash": BLOCKHASH }
        }]
    }))
    .unwrap();
    let payer = Payer::solana_builder(SolanaWallet::offline(keypair()))
        .build()
        .unwrap();
    let signed = payer
        .pay("GET", "https://a.test/v1", &challenge)
        .await
        .unwrap();
    assert_eq!(signed.header_name(), "x-payment");
    let payload = signed.payload();
    assert_eq!(payload["x402Version"], 1);
    assert_eq!(payload["network"], "solana-devnet");
    let payment: PaymentPayload = serde_json::from_value(payload.clone()).unwrap();
    let requirements = challenge.accepts[0].requirements.clone().unwrap();
    let verified = ExactSvm
        .verify(&payment, &requirements, payer.registry(), 0)
        .unwrap();
    assert_eq!(
        verified.payer,
        ChainAddress::Solana(to_solana(&keypair().pubkey()))
    );
}

#[tokio::test]
async fn the_wallet_asks_its_chain_for_a_blockhash_and_for_unknown_mints() {
    let mint = Keypair::new_from_array([8; 32]).pubkey();
    let chain = FakeChain::new(mint);
    let wallet = SolanaWallet::new(keypair(), chain.clone());
    let registry = NetworkRegistry::builtin();

    // No blockhash in the offer: the chain's.
    let requirements: PaymentRequirements =
        serde_json::from_value(svm_entry("10000", false)).unwrap();
    let signed = wallet.sign_payment(&requirements, &registry).await.unwrap();
    let tx = decode_transaction(&signed.payload.transaction).unwrap();
    assert_eq!(tx.message.recent_blockhash(), &chain.blockhash);
    assert_eq!(chain.blockhash_calls.load(Ordering::SeqCst), 1);

    // A blockhash in the offer: the chain is not asked.
    let requirements: PaymentRequirements =
        serde_json::from_value(svm_entry("10000", true)).unwrap();
    wallet.sign_payment(&requirements, &registry).await.unwrap();
    assert_eq!(chain.blockhash_calls.load(Ordering::SeqCst), 1);

    // A mint the registry does not know: its program and decimals come from the chain, and
    // the payment verifies once the server knows the token.
    let mut entry = svm_entry("5", true);
    entry["asset"] = json!(mint.to_string());
    let requirements: PaymentRequirements = serde_json::from_value(entry).unwrap();
    let signed = wallet.sign_payment(&requirements, &registry).await.unwrap();
    let mut known = registry.clone();
    known
        .register_asset(
            DEVNET,
            AssetInfo::spl(to_solana(&mint), "TEST", 9, to_solana(&TOKEN_2022), false),
        )
        .unwrap();
    let payment: PaymentPayload = serde_json::from_value(json!({
        "x402Version": 2,
        "accepted": serde_json::to_value(&requirements).unwrap(),
        "payload": { "transaction": signed.payload.transaction }
    }))
    .unwrap();
    ExactSvm.verify(&payment, &requirements, &known, 0).unwrap();

    // A mint nobody knows, and a wallet without a chain: clear refusals.
    let mut entry = svm_entry("5", true);
    entry["asset"] = json!(Keypair::new_from_array([6; 32]).pubkey().to_string());
    let unknown: PaymentRequirements = serde_json::from_value(entry).unwrap();
    let error = wallet.sign_payment(&unknown, &registry).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("does not exist on solana-devnet"),
        "{error}"
    );
    let offline = SolanaWallet::offline(keypair());
    let error = offline.sign_payment(&unknown, &registry).await.unwrap_err();
    assert!(
        error.to_string().contains("no RPC node to look it up"),
        "{error}"
    );
    let no_blockhash: PaymentRequirements =
        serde_json::from_value(svm_entry("10000", false)).unwrap();
    let error = offline
        .sign_payment(&no_blockhash, &registry)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("no extra.recentBlockhash"),
        "{error}"
    );
}

#[tokio::test]
async fn hostile_solana_offers_are_refused_without_panicking() {
    let payer = Payer::solana_builder(SolanaWallet::offline(keypair()))
        .no_per_request_cap()
        .build()
        .unwrap();
    let hostile = |change: &dyn Fn(&mut Value)| {
        let mut entry = svm_entry("10000", true);
        change(&mut entry);
        entry
    };
    let offers = vec![
        hostile(&|e| e["amount"] = json!("18446744073709551616")),
        hostile(&|e| e["amount"] = json!("-1")),
        hostile(&|e| e["payTo"] = json!("0xnot-solana")),
        hostile(&|e| e["asset"] = json!("")),
        hostile(&|e| e["extra"] = json!({})),
        hostile(&|e| e["extra"]["feePayer"] = json!(42)),
        hostile(&|e| e["extra"] = json!("text")),
        hostile(&|e| e["network"] = json!("solana:unknowncluster")),
        hostile(&|e| e["scheme"] = json!("upto")),
    ];
    let error = payer
        .pay("GET", "https://a.test/", &challenge(offers))
        .await
        .unwrap_err();
    let X402Error::NoPayableOffer { refusals, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(refusals.len(), 9, "{error}");

    // Fields the policy does not judge fail at signing, with the budget given back.
    let payer = Payer::solana_builder(SolanaWallet::offline(keypair()))
        .budget("$1")
        .build()
        .unwrap();
    for change in [
        &(|e: &mut Value| e["extra"]["recentBlockhash"] = json!("not a hash"))
            as &dyn Fn(&mut Value),
        &|e: &mut Value| e["extra"]["recentBlockhash"] = json!(7),
        &|e: &mut Value| e["extra"]["memo"] = json!("m".repeat(300)),
        &|e: &mut Value| e["extra"]["feePayer"] = json!(keypair().pubkey().to_string()),
    ] {
        let error = payer
            .pay("GET", "https://a.test/", &challenge(vec![hostile(change)]))
            .await
            .unwrap_err();
        assert!(matches!(error, X402Error::Signer(_)), "{error}");
    }
    assert_eq!(payer.remaining_budget()[0].1, "$1.00");
    assert!(payer.history().is_empty());
}
