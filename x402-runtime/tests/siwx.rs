//! The runtime's sign-in verifier on the official client's headers: each verifies once at the
//! time it was made, and is refused when replayed (memory and Redis nonce stores), after it
//! expired, for another domain, or signed by another wallet. Plus the nonce store
//! conformance suite and the smart-wallet verifier hook.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::siwx::{self, reasons};
use x402_runtime::clock::ManualClock;
use x402_runtime::siwx::{ContractSignature, ContractWalletVerifier, SiwxVerifier};
use x402_runtime::store::{MemoryNonceStore, NonceStore};

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    signed_at_unix: u64,
    payer: String,
    request_url: String,
    payment_required: serde_json::Value,
    header_name: String,
    header_value: String,
}

fn vectors() -> Vec<Vector> {
    let file: File = serde_json::from_str(include_str!("data/siwx-official.json")).unwrap();
    assert_eq!(file.vectors.len(), 3);
    file.vectors
        .into_iter()
        // Solana sign-ins need the `siws` feature.
        .filter(|v| cfg!(feature = "siws") || v.payer.starts_with("0x"))
        .collect()
}

fn chains(v: &Vector) -> Vec<String> {
    v.payment_required["extensions"][siwx::EXTENSION_KEY]["supportedChains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["chainId"].as_str().unwrap().to_owned())
        .collect()
}

fn verifier_at(now: u64, store: impl NonceStore) -> (SiwxVerifier, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(now));
    let verifier = SiwxVerifier::builder()
        .nonce_store(store)
        .clock(clock.clone())
        .build();
    (verifier, clock)
}

struct View<'a>(&'a str, &'a str);
impl x402_runtime::RequestView for View<'_> {
    fn method(&self) -> &str {
        "GET"
    }
    fn path_and_query(&self) -> &str {
        "/"
    }
    fn header(&self, name: &str) -> Option<&str> {
        name.eq_ignore_ascii_case(self.0).then_some(self.1)
    }
}

/// Every official sign-in verifies once, then its nonce is spent, on `store`.
async fn once_then_refused(store: Arc<dyn NonceStore>) {
    for v in vectors() {
        let (verifier, _) = verifier_at(v.signed_at_unix, store.clone());
        // The header as the official client names it (lower case) is found.
        let view = View(&v.header_name, &v.header_value);
        let signed_in = verifier
            .verify_request(&view, &v.request_url, &chains(&v))
            .await
            .expect("a header was sent")
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(signed_in.signer.to_string(), v.payer, "{}", v.name);
        let replay = verifier
            .verify_header(&v.header_value, &v.request_url, &chains(&v))
            .await
            .unwrap_err();
        assert_eq!(replay.reason().as_str(), reasons::NONCE, "{}", v.name);
        // A second verifier (another replica) on the same store refuses it too.
        let (replica, _) = verifier_at(v.signed_at_unix, store.clone());
        let replay = replica
            .verify_header(&v.header_value, &v.request_url, &chains(&v))
            .await
            .unwrap_err();
        assert_eq!(replay.reason().as_str(), reasons::NONCE, "{}", v.name);
    }
}

#[tokio::test]
async fn official_sign_ins_verify_once_with_memory_nonces() {
    once_then_refused(Arc::new(MemoryNonceStore::new())).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn official_sign_ins_verify_once_with_redis_nonces() {
    let Some(url) = support::backends::redis_url() else {
        return;
    };
    let store = x402_runtime::store::RedisNonceStore::connect(url.as_str())
        .await
        .unwrap()
        .with_prefix(support::backends::unique_prefix("siwx"));
    once_then_refused(Arc::new(store)).await;
}

#[cfg(not(feature = "redis"))]
#[test]
fn official_sign_ins_verify_once_with_redis_nonces() {
    support::backends::skip("the redis feature is off (scripts/test runs --all-features)");
}

#[tokio::test]
async fn expired_elsewhere_or_forged_sign_ins_are_refused() {
    for v in vectors() {
        let refuse = |code: &'static str| {
            move |result: Result<_, x402_runtime::siwx::SiwxRejection>| {
                assert_eq!(result.unwrap_err().reason().as_str(), code);
            }
        };
        // Expired: ten minutes later (past expirationTime, or the 5-minute age limit).
        let (verifier, clock) = verifier_at(v.signed_at_unix, MemoryNonceStore::new());
        clock.advance(600);
        let result = verifier
            .verify_header(&v.header_value, &v.request_url, &chains(&v))
            .await;
        let code = result.as_ref().unwrap_err().reason();
        assert!(
            [reasons::EXPIRED, reasons::ISSUED_AT_TOO_OLD].contains(&code.as_str()),
            "{}: {code}",
            v.name
        );
        // Another domain.
        let (verifier, _) = verifier_at(v.signed_at_unix, MemoryNonceStore::new());
        let elsewhere = v
            .request_url
            .replace("api.example.test", "shop.example.test");
        refuse(reasons::DOMAIN_MISMATCH)(
            verifier
                .verify_header(&v.header_value, &elsewhere, &chains(&v))
                .await,
        );
        // Another wallet's signature over the same text (EVM vectors; the Solana one is
        // covered in x402-protocol's tests).
        if v.payer.starts_with("0x") {
            let mut payload = siwx::parse_header(&v.header_value).unwrap();
            let info: siwx::SiwxInfo =
                serde_json::from_value(serde_json::to_value(&payload).unwrap()).unwrap();
            let chain = siwx::SupportedChain {
                chain_id: payload.chain_id.clone(),
                signature_type: payload.signature_type,
                signature_scheme: None,
            };
            payload.signature = siwx::sign_evm(&info, &chain, &LocalSigner::random())
                .unwrap()
                .signature;
            refuse(reasons::SIGNATURE)(
                verifier
                    .verify_header(&siwx::encode_header(&payload), &v.request_url, &chains(&v))
                    .await,
            );
        }
        // A failed attempt spends nothing: the genuine header still verifies afterwards.
        assert!(
            verifier
                .verify_header(&v.header_value, &v.request_url, &chains(&v))
                .await
                .is_ok(),
            "{}",
            v.name
        );
    }
}

#[tokio::test]
async fn declarations_are_fresh_and_dated_by_the_clock() {
    let (verifier, _) = verifier_at(1_796_050_053, MemoryNonceStore::new());
    let a = verifier
        .declare(
            "https://api.example.test/r?x=1",
            &["base", "eip155:8453", "eip155:84532"],
        )
        .unwrap();
    let b = verifier
        .declare("https://api.example.test/r?x=1", &["base"])
        .unwrap();
    assert_ne!(a.info.nonce, b.info.nonce);
    assert_eq!(a.info.nonce.len(), 32);
    assert_eq!(a.info.issued_at, "2026-11-30T14:47:33.000Z");
    assert_eq!(a.info.uri, "https://api.example.test/r?x=1");
    let ids: Vec<_> = a
        .supported_chains
        .iter()
        .map(|c| c.chain_id.as_str())
        .collect();
    assert_eq!(ids, ["eip155:8453", "eip155:84532"]);
}

/// A smart-wallet verifier that accepts one contract's signatures and records what it saw.
#[derive(Default)]
struct Wallets {
    accept: Option<x402_protocol::Address>,
    fail: bool,
    seen: Mutex<Vec<(u64, x402_protocol::Address, x402_protocol::B256, usize)>>,
}

#[async_trait]
impl ContractWalletVerifier for Wallets {
    async fn is_valid_signature(&self, r: ContractSignature<'_>) -> Result<bool, String> {
        self.seen
            .lock()
            .unwrap()
            .push((r.chain_id, r.address, r.hash, r.signature.len()));
        if self.fail {
            return Err("rpc down".into());
        }
        Ok(Some(r.address) == self.accept)
    }
}

#[tokio::test]
async fn smart_wallet_signatures_go_to_the_verifier_hook() {
    let now = 1_796_050_053;
    let url = "https://api.example.test/reports/1";
    let contract = x402_protocol::Address::repeat_byte(0x42);
    let declaration = siwx::declare(
        url,
        &["eip155:8453"],
        &Default::default(),
        siwx::random_nonce(),
        now * 1000,
    )
    .unwrap();
    let mut payload = siwx::sign_evm(
        &declaration.info,
        &declaration.supported_chains[0],
        &LocalSigner::random(),
    )
    .unwrap();
    payload.address = contract.to_checksum(None);
    payload.signature = format!("0x{}", "ab".repeat(130)); // an ERC-1271-style blob
    let header = siwx::encode_header(&payload);
    let chains = vec!["eip155:8453".to_owned()];

    // Without a verifier: an ordinary signature check, which fails.
    let (plain, _) = verifier_at(now, MemoryNonceStore::new());
    let error = plain
        .verify_header(&header, url, &chains)
        .await
        .unwrap_err();
    assert_eq!(error.reason().as_str(), reasons::SIGNATURE);

    let build = |wallets: Arc<Wallets>| {
        SiwxVerifier::builder()
            .clock(Arc::new(ManualClock::new(now)))
            .contract_wallets(wallets)
            .build()
    };
    let failing = Arc::new(Wallets {
        fail: true,
        ..Default::default()
    });
    let error = build(failing)
        .verify_header(&header, url, &chains)
        .await
        .unwrap_err();
    assert_eq!(error.reason().as_str(), reasons::VERIFIER_ERROR);

    let refusing = Arc::new(Wallets::default());
    let error = build(refusing.clone())
        .verify_header(&header, url, &chains)
        .await
        .unwrap_err();
    assert_eq!(error.reason().as_str(), reasons::SIGNATURE);

    let accepting = Arc::new(Wallets {
        accept: Some(contract),
        ..Default::default()
    });
    let signed_in = build(accepting.clone())
        .verify_header(&header, url, &chains)
        .await
        .unwrap();
    assert_eq!(signed_in.signer, siwx::SiwxSigner::Evm(contract));
    let (_, hash) = siwx::evm_signing_hash(&payload).unwrap();
    assert_eq!(
        *accepting.seen.lock().unwrap(),
        vec![(8453, contract, hash, 130)]
    );
}

/// The nonce store contract, run against one backend: single use, shared by handles,
/// exactly one winner under concurrency, and claims that lapse after their TTL.
async fn nonce_store_conformance(stores: Vec<Arc<dyn NonceStore>>) {
    let key = format!("eip155:8453:0xabc:{}", siwx::random_nonce());
    let long = Duration::from_secs(60);
    assert!(stores[0].claim(&key, long).await.unwrap());
    assert!(!stores[0].claim(&key, long).await.unwrap());
    assert!(
        !stores[1].claim(&key, long).await.unwrap(),
        "replicas share claims"
    );

    let contested = format!("contested:{}", siwx::random_nonce());
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = stores[i % stores.len()].clone();
        let key = contested.clone();
        tasks.push(tokio::spawn(async move {
            store.claim(&key, long).await.unwrap()
        }));
    }
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);

    let short = format!("short:{}", siwx::random_nonce());
    assert!(
        stores[0]
            .claim(&short, Duration::from_millis(50))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(
        stores[1].claim(&short, long).await.unwrap(),
        "an expired claim can be made again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_nonce_store_conformance() {
    let store: Arc<dyn NonceStore> = Arc::new(MemoryNonceStore::new());
    nonce_store_conformance(vec![store.clone(), store]).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_nonce_store_conformance() {
    use x402_runtime::store::RedisNonceStore;
    let Some(url) = support::backends::redis_url() else {
        return;
    };
    let prefix = support::backends::unique_prefix("nonce");
    let mut stores: Vec<Arc<dyn NonceStore>> = Vec::new();
    for _ in 0..2 {
        let store = RedisNonceStore::connect(url.as_str())
            .await
            .unwrap()
            .with_prefix(prefix.clone());
        stores.push(Arc::new(store));
    }
    nonce_store_conformance(stores).await;
}
