//! How the settler sends: many settlements at once from one account (local nonces, no
//! collisions, no retries), several accounts sharing the load, a transaction not mined in time
//! re-priced under the same nonce, and a nonce another process used skipped.
//!
//! Each test runs its own anvil (`x402_test_support::anvil`), so it may stop mining or send
//! from the settler's account without disturbing any other test.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use x402_evm::EvmSettler;
use x402_protocol::client::sign_payment;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
use x402_protocol::verify::VerifiedPayment;
use x402_protocol::{Address, AssetInfo, NetworkInfo, NetworkRegistry, U256, v2};
use x402_runtime::facilitator::{SettleObserver, SettleOutcome, Settler};
use x402_runtime::scheme::{ExactEip3009, Scheme};
use x402_test_support::anvil::{Anvil, DEV_ADDRESSES, DEV_KEYS, TOKEN_NAME, TOKEN_VERSION};

const PRICE: u64 = 10_000;

struct Chain {
    anvil: Anvil,
    token: Address,
    registry: NetworkRegistry,
    network: NetworkInfo,
}

fn chain(args: &[&str]) -> Option<Chain> {
    let anvil = Anvil::start_with(args)?;
    let token = anvil.deploy_token();
    let network = NetworkInfo::new(
        "anvil",
        anvil.chain_id(),
        AssetInfo::usdc(token, TOKEN_NAME, TOKEN_VERSION),
    );
    let mut registry = NetworkRegistry::builtin();
    registry.register_network(network.clone()).unwrap();
    Some(Chain {
        anvil,
        token,
        registry,
        network,
    })
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Chain {
    async fn settler(&self, keys: &[&str], bump_after: Duration) -> Arc<EvmSettler> {
        let mut builder = EvmSettler::builder(self.anvil.url())
            .chain_id(self.network.chain_id().unwrap())
            .receipt_timeout(Duration::from_secs(60))
            .poll_interval(Duration::from_millis(50))
            .bump_after(bump_after);
        for key in keys {
            builder = builder.private_key(key);
        }
        Arc::new(builder.connect().await.unwrap())
    }

    fn requirement(&self, pay_to: Address) -> PaymentRequirements {
        PaymentRequirements::V2(v2::PaymentRequirements {
            scheme: "exact".into(),
            network: self.network.caip2.to_string(),
            amount: U256::from(PRICE),
            asset: self.token.to_string(),
            pay_to: pay_to.to_string(),
            max_timeout_seconds: 600,
            extra: Some(serde_json::json!({"name": TOKEN_NAME, "version": TOKEN_VERSION})),
        })
    }

    /// `n` payments of [`PRICE`] to `pay_to`, each from its own funded payer, checked by the
    /// `exact` scheme as a facilitator would.
    fn payments(&self, n: usize, pay_to: Address) -> Vec<(VerifiedPayment, PaymentPayload)> {
        let requirement = self.requirement(pay_to);
        (0..n)
            .map(|_| {
                let payer = LocalSigner::random();
                self.anvil
                    .mint(self.token, payer.address(), U256::from(PRICE));
                let payment =
                    sign_payment(&requirement, None, &payer, &self.registry, now()).unwrap();
                let verified = ExactEip3009::default()
                    .verify(&payment, &requirement, &self.registry, now())
                    .unwrap();
                (verified, payment)
            })
            .collect()
    }
}

fn settled(outcome: SettleOutcome) -> String {
    match outcome {
        SettleOutcome::Settled { transaction, .. } => transaction,
        other => panic!("expected a settlement, got {other:?}"),
    }
}

/// Records what the settler reports as sent.
#[derive(Default)]
struct Sent(Mutex<Vec<String>>);

impl SettleObserver for Sent {
    fn submitted(&self, transaction: &str) {
        self.0.lock().unwrap().push(transaction.to_owned());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_settlements_from_one_account_take_consecutive_nonces() {
    let Some(chain) = chain(&[]) else { return };
    let signer: Address = DEV_ADDRESSES[1].parse().unwrap();
    let settler = chain.settler(&[DEV_KEYS[1]], Duration::from_secs(30)).await;
    let pay_to = LocalSigner::random().address();
    let payments = chain.payments(120, pay_to);
    let before = chain.anvil.nonce(signer);

    let tasks: Vec<_> = payments
        .into_iter()
        .map(|(verified, payload)| {
            let settler = settler.clone();
            tokio::spawn(async move { settler.settle(&verified, &payload, verified.amount).await })
        })
        .collect();
    let mut hashes = HashSet::new();
    for task in tasks {
        assert!(hashes.insert(settled(task.await.unwrap())));
    }
    assert_eq!(hashes.len(), 120);
    // One transaction per payment: no nonce was wasted or retried.
    assert_eq!(chain.anvil.nonce(signer) - before, 120);
    assert_eq!(
        chain.anvil.balance(chain.token, pay_to),
        U256::from(120 * PRICE)
    );
    assert_eq!(settler.in_flight(), vec![(signer, 0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_accounts_share_the_load() {
    let Some(chain) = chain(&[]) else { return };
    let keys = [DEV_KEYS[2], DEV_KEYS[3], DEV_KEYS[4]];
    let signers: Vec<Address> = DEV_ADDRESSES[2..5]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    let settler = chain.settler(&keys, Duration::from_secs(30)).await;
    assert_eq!(settler.addresses(), signers);
    assert_eq!(settler.signers().len(), 3);
    let before: Vec<u64> = signers.iter().map(|s| chain.anvil.nonce(*s)).collect();
    let pay_to = LocalSigner::random().address();

    let tasks: Vec<_> = chain
        .payments(60, pay_to)
        .into_iter()
        .map(|(verified, payload)| {
            let settler = settler.clone();
            tokio::spawn(async move { settler.settle(&verified, &payload, verified.amount).await })
        })
        .collect();
    for task in tasks {
        settled(task.await.unwrap());
    }
    let sent: Vec<u64> = signers
        .iter()
        .zip(&before)
        .map(|(s, b)| chain.anvil.nonce(*s) - b)
        .collect();
    assert_eq!(sent.iter().sum::<u64>(), 60, "{sent:?}");
    assert!(
        sent.iter().all(|n| *n >= 10),
        "each account takes a share: {sent:?}"
    );
    assert_eq!(
        chain.anvil.balance(chain.token, pay_to),
        U256::from(60 * PRICE)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_not_mined_in_time_is_repriced_under_the_same_nonce() {
    let Some(chain) = chain(&[]) else { return };
    let settler = chain
        .settler(&[DEV_KEYS[5]], Duration::from_millis(400))
        .await;
    let signer: Address = DEV_ADDRESSES[5].parse().unwrap();
    let pay_to = LocalSigner::random().address();
    let (verified, payload) = chain.payments(1, pay_to).remove(0);

    // Nothing is mined until the test says so: the first transaction waits in the pool, and
    // the settler sends it again with higher fees.
    chain
        .anvil
        .call("evm_setAutomine", serde_json::json!([false]));
    let sent = Arc::new(Sent::default());
    let task = {
        let (settler, sent) = (settler.clone(), sent.clone());
        tokio::spawn(async move {
            settler
                .settle_observed(&verified, &payload, verified.amount, sent.as_ref())
                .await
        })
    };
    let mut waited = 0;
    while sent.0.lock().unwrap().len() < 3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
        assert!(
            waited < 100,
            "the transaction was not re-priced: {:?}",
            sent.0.lock().unwrap()
        );
    }
    let versions = sent.0.lock().unwrap().clone();
    // The pool holds one transaction from the signer: the latest version, at a higher price
    // than the first.
    let pool = chain.anvil.call("txpool_content", serde_json::json!([]));
    let mine = pool["pending"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(from, _)| from.eq_ignore_ascii_case(&signer.to_string()))
        .map(|(_, txs)| txs.as_object().unwrap().clone())
        .unwrap();
    assert_eq!(mine.len(), 1, "{mine:?}");
    let pooled = mine.values().next().unwrap();
    let fee = |tx: &serde_json::Value| {
        u128::from_str_radix(
            tx["maxFeePerGas"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
            16,
        )
        .unwrap()
    };
    let first = chain
        .anvil
        .call("eth_getTransactionByHash", serde_json::json!([versions[0]]));
    assert!(
        first.is_null() || fee(pooled) > fee(&first),
        "the pooled version pays more than the first"
    );

    chain.anvil.call("evm_mine", serde_json::json!([]));
    let outcome = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap();
    let transaction = settled(outcome);
    let versions = sent.0.lock().unwrap().clone();
    assert!(
        versions.contains(&transaction),
        "{transaction} in {versions:?}"
    );
    assert_ne!(transaction, versions[0], "the re-priced version was mined");
    assert!(
        chain
            .anvil
            .call(
                "eth_getTransactionReceipt",
                serde_json::json!([versions[0]])
            )
            .is_null(),
        "the first version was never mined"
    );
    assert_eq!(chain.anvil.balance(chain.token, pay_to), U256::from(PRICE));
    chain
        .anvil
        .call("evm_setAutomine", serde_json::json!([true]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_used_by_another_sender_is_skipped() {
    let Some(chain) = chain(&[]) else { return };
    let settler = chain.settler(&[DEV_KEYS[6]], Duration::from_secs(30)).await;
    let signer: Address = DEV_ADDRESSES[6].parse().unwrap();
    let pay_to = LocalSigner::random().address();
    let mut payments = chain.payments(3, pay_to);

    // The settler learns the account's nonce with its first settlement.
    let (verified, payload) = payments.remove(0);
    settled(settler.settle(&verified, &payload, verified.amount).await);
    // Another process sends from the same account: the nonce the settler would take next is
    // gone.
    chain.anvil.transact(
        serde_json::json!({"from": DEV_ADDRESSES[6], "to": DEV_ADDRESSES[6], "value": "0x0"}),
    );
    for (verified, payload) in payments {
        settled(settler.settle(&verified, &payload, verified.amount).await);
    }
    assert_eq!(
        chain.anvil.balance(chain.token, pay_to),
        U256::from(3 * PRICE)
    );
    assert_eq!(chain.anvil.nonce(signer), 4);
}
