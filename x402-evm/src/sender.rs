//! One sending account: local nonces, locally signed transactions, and a monitor that finds
//! receipts, re-prices transactions that are not mined in time, and fills nonce gaps.
//!
//! Every transaction is signed here, so its hash is known before it is sent: a send that
//! breaks half way is not a mystery, just a transaction the monitor keeps watching (and sends
//! again). The monitor asks the chain for the account's mined count once per poll, looks up
//! receipts only for nonces that count has passed, and re-sends anything older than
//! `bump_after` with higher fees under the same nonce (so only one version can ever be mined).

use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use alloy_network::eip2718::Encodable2718;
use alloy_network::{
    Ethereum, EthereumWallet, NetworkTransactionBuilder, ReceiptResponse, TransactionBuilder,
};
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_provider::{DynProvider, Provider};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_transport::TransportError;
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, timeout};
use x402_runtime::facilitator::SettleObserver;

use crate::nonce::NonceAllocator;
use crate::text::describe_revert;

/// How one account paces its transactions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pacing {
    pub(crate) call_timeout: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) bump_after: Duration,
    pub(crate) max_fee_per_gas: Option<u128>,
}

/// What a transaction pays for gas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fees {
    Eip1559 { max_fee: u128, tip: u128 },
    Legacy { gas_price: u128 },
}

impl Fees {
    /// At least 12.5 % more on every component (nodes want 10 % to accept a replacement), and
    /// at least what the chain asks now; capped at `cap`.
    fn bumped(self, now: Fees, cap: Option<u128>) -> Fees {
        let up = |old: u128| old.saturating_add(old / 8).saturating_add(1);
        let capped = |fee: u128| cap.map_or(fee, |c| fee.min(c));
        match (self, now) {
            (
                Fees::Eip1559 { max_fee, tip },
                Fees::Eip1559 {
                    max_fee: now_fee,
                    tip: now_tip,
                },
            ) => {
                let tip = up(tip).max(now_tip);
                let max_fee = capped(up(max_fee).max(now_fee).max(tip));
                Fees::Eip1559 {
                    max_fee,
                    tip: tip.min(max_fee),
                }
            }
            (Fees::Legacy { gas_price }, Fees::Legacy { gas_price: now }) => Fees::Legacy {
                gas_price: capped(up(gas_price).max(now)),
            },
            // The chain changed fee markets under us: take what it asks now.
            (_, now) => now.capped(cap),
        }
    }

    fn capped(self, cap: Option<u128>) -> Fees {
        let Some(cap) = cap else { return self };
        match self {
            Fees::Eip1559 { max_fee, tip } => Fees::Eip1559 {
                max_fee: max_fee.min(cap),
                tip: tip.min(cap),
            },
            Fees::Legacy { gas_price } => Fees::Legacy {
                gas_price: gas_price.min(cap),
            },
        }
    }

    /// Whether every component of `self` is above `other` (a replacement nodes accept).
    fn above(self, other: Fees) -> bool {
        match (self, other) {
            (Fees::Eip1559 { max_fee, tip }, Fees::Eip1559 { max_fee: f, tip: t }) => {
                max_fee > f && tip > t
            }
            (Fees::Legacy { gas_price }, Fees::Legacy { gas_price: p }) => gas_price > p,
            _ => true,
        }
    }

    fn apply(self, request: TransactionRequest) -> TransactionRequest {
        match self {
            Fees::Eip1559 { max_fee, tip } => request
                .max_fee_per_gas(max_fee)
                .max_priority_fee_per_gas(tip),
            Fees::Legacy { gas_price } => request.gas_price(gas_price),
        }
    }
}

/// What happened to a submitted payment transaction, as the monitor learns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// The transaction was re-priced and sent again: this is the new version's hash.
    Replaced(B256),
    /// A version of it was mined.
    Mined {
        hash: B256,
        success: bool,
        block: Option<u64>,
    },
    /// Its nonce was used by a transaction this account did not send from here (another
    /// process shares the key): it was never mined.
    Displaced,
}

/// A payment transaction on its way.
#[derive(Debug)]
pub(crate) struct Submitted {
    pub(crate) hash: B256,
    pub(crate) nonce: u64,
    pub(crate) events: mpsc::UnboundedReceiver<Event>,
}

/// Why a transaction was not sent.
#[derive(Debug)]
pub(crate) enum SubmitError {
    /// The node says the nonce was already used (another process sends from this account):
    /// nothing was sent; try again with a fresh nonce.
    NonceTaken(String),
    /// The node refused the transaction, so it will not be mined; `reverted` when the refusal
    /// is the EVM's (the transfer itself would fail).
    Refused { detail: String, reverted: bool },
    /// The node could not be asked (nonce count, fees): nothing was sent.
    Unavailable(String),
}

/// A transaction this account sent and still watches.
struct Tracked {
    /// The transaction without nonce and fees (sender, target, data, gas limit).
    base: TransactionRequest,
    fees: Fees,
    /// Every version signed, newest last: hash and raw bytes.
    versions: Vec<(B256, Bytes)>,
    last_sent: Instant,
    /// Where the payment hears about it; `None` for gap fillers.
    events: Option<mpsc::UnboundedSender<Event>>,
    /// Polls for which its nonce was mined without a receipt of ours.
    missing: u8,
}

#[derive(Default)]
struct State {
    nonces: NonceAllocator,
    txs: BTreeMap<u64, Tracked>,
}

/// One account that sends settlement transactions.
pub(crate) struct Sender {
    pub(crate) address: Address,
    wallet: EthereumWallet,
    provider: DynProvider,
    chain_id: u64,
    chain: String,
    pacing: Pacing,
    state: Mutex<State>,
    sync_lock: tokio::sync::Mutex<()>,
    fees: tokio::sync::Mutex<Option<(Instant, Fees)>>,
    wake: Arc<Notify>,
    in_flight: AtomicUsize,
}

/// How a raw send went.
enum Sent {
    /// The node took it (or already had it).
    Accepted,
    /// The request broke without an answer: the node may or may not have it.
    Unclear(String),
    /// The node refused it.
    Failed(SubmitError),
}

impl Sender {
    /// A sender for `address`, with its monitor running.
    pub(crate) fn start(
        address: Address,
        wallet: EthereumWallet,
        provider: DynProvider,
        chain_id: u64,
        pacing: Pacing,
    ) -> Arc<Sender> {
        let sender = Arc::new(Sender {
            address,
            wallet,
            provider,
            chain_id,
            chain: format!("eip155:{chain_id}"),
            pacing,
            state: Mutex::new(State::default()),
            sync_lock: tokio::sync::Mutex::new(()),
            fees: tokio::sync::Mutex::new(None),
            wake: Arc::new(Notify::new()),
            in_flight: AtomicUsize::new(0),
        });
        tokio::spawn(monitor(Arc::downgrade(&sender), sender.wake.clone()));
        sender
    }

    /// Payment transactions sent and not yet mined.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the nonce state half-changed in a way
        // that matters more than stopping: recover the data.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Signs `base` with a fresh nonce and sends it; `observer` hears its hash first.
    pub(crate) async fn submit(
        &self,
        base: TransactionRequest,
        observer: &dyn SettleObserver,
    ) -> Result<Submitted, SubmitError> {
        self.sync_nonces().await?;
        let fees = self.current_fees().await?;
        let nonce = self
            .state()
            .nonces
            .allocate()
            .ok_or_else(|| SubmitError::Unavailable("the nonce count is not known".into()))?;
        let (hash, raw) = match self.sign(&base, nonce, fees).await {
            Ok(signed) => signed,
            Err(error) => {
                self.state().nonces.release(nonce);
                return Err(SubmitError::Unavailable(error));
            }
        };
        let (events, receiver) = mpsc::unbounded_channel();
        {
            let mut state = self.state();
            state.txs.insert(
                nonce,
                Tracked {
                    base,
                    fees,
                    versions: vec![(hash, raw.clone())],
                    last_sent: Instant::now(),
                    events: Some(events),
                    missing: 0,
                },
            );
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        observer.submitted(&hash.to_string());
        match self.send_raw(&raw).await {
            Sent::Accepted => {}
            Sent::Unclear(detail) => {
                // Signed and possibly delivered: the monitor sends it again until it is mined.
                tracing::warn!(target: "x402::settlement", chain = %self.chain, %hash, nonce, %detail, "sending a transaction broke off; it will be sent again");
            }
            Sent::Failed(error) => {
                let mut state = self.state();
                state.txs.remove(&nonce);
                self.in_flight.fetch_sub(1, Ordering::Relaxed);
                match &error {
                    SubmitError::NonceTaken(_) => state.nonces.taken(nonce),
                    _ => state.nonces.release(nonce),
                }
                return Err(error);
            }
        }
        metrics::counter!("x402_evm_transactions_sent_total", "chain" => self.chain.clone(), "kind" => "payment").increment(1);
        self.wake.notify_one();
        tracing::debug!(target: "x402::settlement", chain = %self.chain, signer = %self.address, %hash, nonce, "transaction sent");
        Ok(Submitted {
            hash,
            nonce,
            events: receiver,
        })
    }

    /// Learns the account's pending count when the allocator needs it (once at first, and
    /// again after a node said a nonce was taken and nothing is outstanding).
    async fn sync_nonces(&self) -> Result<(), SubmitError> {
        if !self.state().nonces.needs_sync() {
            return Ok(());
        }
        let _turn = self.sync_lock.lock().await;
        if !self.state().nonces.needs_sync() {
            return Ok(());
        }
        let pending = timeout(
            self.pacing.call_timeout,
            self.provider
                .get_transaction_count(self.address)
                .pending()
                .into_future(),
        )
        .await
        .map_err(|_| SubmitError::Unavailable("reading the account's nonce timed out".into()))?
        .map_err(|e| SubmitError::Unavailable(format!("reading the account's nonce: {e}")))?;
        self.state().nonces.sync(pending);
        metrics::counter!("x402_evm_nonce_syncs_total", "chain" => self.chain.clone()).increment(1);
        tracing::info!(target: "x402::settlement", chain = %self.chain, signer = %self.address, pending, "nonces synced with the chain");
        Ok(())
    }

    /// What the chain asks for gas now (asked at most once a second), capped.
    async fn current_fees(&self) -> Result<Fees, SubmitError> {
        let mut cached = self.fees.lock().await;
        if let Some((at, fees)) = *cached
            && at.elapsed() < Duration::from_secs(1)
        {
            return Ok(fees);
        }
        let estimate = timeout(
            self.pacing.call_timeout,
            self.provider.estimate_eip1559_fees(),
        )
        .await
        .map_err(|_| SubmitError::Unavailable("estimating fees timed out".into()))?;
        let fees = match estimate {
            Ok(estimate) => Fees::Eip1559 {
                max_fee: estimate.max_fee_per_gas,
                tip: estimate.max_priority_fee_per_gas,
            },
            // A chain without EIP-1559: legacy gas price.
            Err(_) => {
                let gas_price = timeout(
                    self.pacing.call_timeout,
                    self.provider.get_gas_price().into_future(),
                )
                .await
                .map_err(|_| SubmitError::Unavailable("reading the gas price timed out".into()))?
                .map_err(|e| SubmitError::Unavailable(format!("reading the gas price: {e}")))?;
                Fees::Legacy { gas_price }
            }
        }
        .capped(self.pacing.max_fee_per_gas);
        *cached = Some((Instant::now(), fees));
        Ok(fees)
    }

    async fn sign(
        &self,
        base: &TransactionRequest,
        nonce: u64,
        fees: Fees,
    ) -> Result<(B256, Bytes), String> {
        let request = fees
            .apply(base.clone())
            .nonce(nonce)
            .with_chain_id(self.chain_id);
        let envelope = <TransactionRequest as NetworkTransactionBuilder<Ethereum>>::build(
            request,
            &self.wallet,
        )
        .await
        .map_err(|e| format!("signing the transaction: {e}"))?;
        let raw = Bytes::from(envelope.encoded_2718());
        Ok((envelope.trie_hash(), raw))
    }

    async fn send_raw(&self, raw: &[u8]) -> Sent {
        match timeout(
            self.pacing.call_timeout,
            self.provider.send_raw_transaction(raw),
        )
        .await
        {
            Err(_) => Sent::Unclear(format!("no answer within {:?}", self.pacing.call_timeout)),
            Ok(Ok(_)) => Sent::Accepted,
            Ok(Err(error)) => classify_send(&error),
        }
    }

    /// One look at the chain: receipts for what was mined, fees raised for what is stuck, gaps
    /// filled. Returns whether anything is still being watched.
    async fn tick(&self) -> bool {
        let mined = match timeout(
            self.pacing.call_timeout,
            self.provider
                .get_transaction_count(self.address)
                .latest()
                .into_future(),
        )
        .await
        {
            Ok(Ok(mined)) => mined,
            Ok(Err(error)) => {
                tracing::warn!(target: "x402::settlement", chain = %self.chain, %error, "reading the account's mined count failed");
                return true;
            }
            Err(_) => {
                tracing::warn!(target: "x402::settlement", chain = %self.chain, "reading the account's mined count timed out");
                return true;
            }
        };

        // Mined nonces: find which of our versions made it.
        let done: Vec<(u64, Vec<B256>)> = {
            let state = self.state();
            state
                .txs
                .range(..mined)
                .map(|(nonce, t)| (*nonce, t.versions.iter().rev().map(|(h, _)| *h).collect()))
                .collect()
        };
        let lookups = done.into_iter().map(|(nonce, hashes)| async move {
            for hash in hashes {
                match timeout(
                    self.pacing.call_timeout,
                    self.provider.get_transaction_receipt(hash).into_future(),
                )
                .await
                {
                    Ok(Ok(Some(receipt))) => {
                        return (
                            nonce,
                            Some(Ok((hash, receipt.status(), receipt.block_number()))),
                        );
                    }
                    Ok(Ok(None)) => {}
                    // Could not ask: try again next time.
                    _ => return (nonce, None),
                }
            }
            (nonce, Some(Err(())))
        });
        let found = futures_util::future::join_all(lookups).await;
        {
            let mut state = self.state();
            for (nonce, result) in found {
                match result {
                    None => {}
                    Some(Ok((hash, success, block))) => {
                        if let Some(tracked) = state.txs.remove(&nonce) {
                            self.finish(
                                tracked,
                                Event::Mined {
                                    hash,
                                    success,
                                    block,
                                },
                            );
                        }
                        state.nonces.used(nonce);
                    }
                    Some(Err(())) => {
                        let displaced = match state.txs.get_mut(&nonce) {
                            Some(tracked) => {
                                tracked.missing += 1;
                                tracked.missing >= 3
                            }
                            None => false,
                        };
                        if displaced {
                            if let Some(tracked) = state.txs.remove(&nonce) {
                                tracing::warn!(target: "x402::settlement", chain = %self.chain, signer = %self.address, nonce, "the nonce was used by a transaction not sent from here");
                                self.finish(tracked, Event::Displaced);
                            }
                            state.nonces.taken(nonce);
                        }
                    }
                }
            }
            state.nonces.mined_below(mined);
        }

        self.reprice(mined).await;
        self.fill_gaps().await;
        !self.state().txs.is_empty()
    }

    fn finish(&self, tracked: Tracked, event: Event) {
        if let Some(events) = tracked.events {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            let _ = events.send(event);
        }
    }

    /// Sends again, with higher fees, every transaction unmined for longer than `bump_after`.
    async fn reprice(&self, mined: u64) {
        let stale: Vec<(u64, TransactionRequest, Fees, Bytes)> = {
            let state = self.state();
            state
                .txs
                .range(mined..)
                .filter(|(_, t)| t.last_sent.elapsed() >= self.pacing.bump_after)
                .filter_map(|(nonce, t)| {
                    let (_, raw) = t.versions.last()?;
                    Some((*nonce, t.base.clone(), t.fees, raw.clone()))
                })
                .collect()
        };
        if stale.is_empty() {
            return;
        }
        let now = match self.current_fees().await {
            Ok(fees) => fees,
            Err(_) => return,
        };
        for (nonce, base, old, raw) in stale {
            let fees = old.bumped(now, self.pacing.max_fee_per_gas);
            if !fees.above(old) {
                // At the fee cap: send the same version again, in case a node dropped it.
                let _ = self.send_raw(&raw).await;
                if let Some(t) = self.state().txs.get_mut(&nonce) {
                    t.last_sent = Instant::now();
                }
                continue;
            }
            let Ok((hash, raw)) = self.sign(&base, nonce, fees).await else {
                continue;
            };
            match self.send_raw(&raw).await {
                Sent::Accepted | Sent::Unclear(_) => {
                    metrics::counter!("x402_evm_fee_bumps_total", "chain" => self.chain.clone())
                        .increment(1);
                    tracing::info!(target: "x402::settlement", chain = %self.chain, signer = %self.address, nonce, %hash, ?fees, "transaction re-priced");
                    if let Some(t) = self.state().txs.get_mut(&nonce) {
                        t.fees = fees;
                        t.versions.push((hash, raw));
                        t.last_sent = Instant::now();
                        if let Some(events) = &t.events {
                            let _ = events.send(Event::Replaced(hash));
                        }
                    }
                }
                Sent::Failed(error) => {
                    // Most often: mined meanwhile ("nonce too low"); the next poll sees it.
                    tracing::debug!(target: "x402::settlement", chain = %self.chain, nonce, ?error, "re-pricing refused");
                    if let Some(t) = self.state().txs.get_mut(&nonce) {
                        t.last_sent = Instant::now();
                    }
                }
            }
        }
    }

    /// Sends a zero-value transfer to itself with every nonce that was given back but sits
    /// below one in flight, so the later transactions are not held up behind the gap.
    async fn fill_gaps(&self) {
        let gaps = self.state().nonces.gaps();
        for nonce in gaps {
            if !self.state().nonces.take_free(nonce) {
                continue;
            }
            let base = TransactionRequest::default()
                .from(self.address)
                .to(self.address)
                .value(U256::ZERO)
                .gas_limit(21_000);
            let fees = match self.current_fees().await {
                Ok(fees) => fees,
                Err(_) => {
                    self.state().nonces.release(nonce);
                    return;
                }
            };
            let Ok((hash, raw)) = self.sign(&base, nonce, fees).await else {
                self.state().nonces.release(nonce);
                continue;
            };
            match self.send_raw(&raw).await {
                Sent::Failed(_) => self.state().nonces.release(nonce),
                Sent::Accepted | Sent::Unclear(_) => {
                    metrics::counter!("x402_evm_transactions_sent_total", "chain" => self.chain.clone(), "kind" => "gap_filler").increment(1);
                    tracing::info!(target: "x402::settlement", chain = %self.chain, signer = %self.address, nonce, %hash, "nonce gap filled");
                    self.state().txs.insert(
                        nonce,
                        Tracked {
                            base,
                            fees,
                            versions: vec![(hash, raw)],
                            last_sent: Instant::now(),
                            events: None,
                            missing: 0,
                        },
                    );
                }
            }
        }
    }
}

/// Watches a sender's transactions until the sender is gone.
async fn monitor(sender: Weak<Sender>, wake: Arc<Notify>) {
    loop {
        let (busy, pause) = match sender.upgrade() {
            None => return,
            Some(sender) => {
                let busy = !sender.state().txs.is_empty() && sender.tick().await;
                (busy, sender.pacing.poll_interval)
            }
        };
        if busy {
            tokio::time::sleep(pause).await;
        } else {
            // Nothing to watch: sleep until a transaction is sent (a permit stored by
            // `notify_one` wakes this at once), or a while passes, to notice the sender is
            // gone.
            let _ = timeout(Duration::from_secs(5), wake.notified()).await;
        }
    }
}

/// What a refused `eth_sendRawTransaction` means.
fn classify_send(error: &TransportError) -> Sent {
    let Some(payload) = error.as_error_resp() else {
        // No JSON-RPC answer: the request may have reached the node.
        return Sent::Unclear(error.to_string());
    };
    let message = payload.message.to_lowercase();
    if message.contains("already known")
        || message.contains("known transaction")
        || message.contains("already imported")
        || message.contains("already exists")
    {
        return Sent::Accepted;
    }
    if message.contains("nonce too low")
        || message.contains("nonce has already been used")
        || message.contains("replacement transaction underpriced")
        || message.contains("replacement fee too low")
        || message.contains("nonce is too low")
    {
        return Sent::Failed(SubmitError::NonceTaken(payload.message.to_string()));
    }
    if let Some(data) = payload.as_revert_data() {
        return Sent::Failed(SubmitError::Refused {
            detail: describe_revert(&data),
            reverted: true,
        });
    }
    Sent::Failed(SubmitError::Refused {
        detail: payload.message.to_string(),
        reverted: message.contains("revert"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bumps_raise_every_component_by_an_eighth_and_respect_the_cap() {
        let old = Fees::Eip1559 {
            max_fee: 800,
            tip: 80,
        };
        let quiet = Fees::Eip1559 {
            max_fee: 100,
            tip: 10,
        };
        let bumped = old.bumped(quiet, None);
        assert_eq!(
            bumped,
            Fees::Eip1559 {
                max_fee: 901,
                tip: 91
            }
        );
        assert!(bumped.above(old));
        // The chain asks more than a bump: take the chain's price.
        let busy = Fees::Eip1559 {
            max_fee: 5000,
            tip: 500,
        };
        assert_eq!(
            old.bumped(busy, None),
            Fees::Eip1559 {
                max_fee: 5000,
                tip: 500
            }
        );
        // Capped: no increase possible, so no replacement.
        let capped = old.bumped(quiet, Some(800));
        assert!(!capped.above(old));
        let legacy = Fees::Legacy { gas_price: 1000 };
        assert_eq!(
            legacy.bumped(Fees::Legacy { gas_price: 1 }, None),
            Fees::Legacy { gas_price: 1126 }
        );
    }
}
