//! The settler: checks, submission, receipts, and resolving outcomes that were not known in
//! time.

use std::fmt;
use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use alloy_network::ReceiptResponse;
use alloy_primitives::Bytes;
use alloy_provider::{DynProvider, Provider};
use alloy_rpc_types_eth::{Filter, TransactionInput, TransactionRequest};
use alloy_sol_types::{SolCall, SolEvent, SolValue};
use alloy_transport::TransportError;
use async_trait::async_trait;
use tokio::time::{Instant, timeout};
use x402_protocol::eip2612::Eip2612GasSponsoring;
use x402_protocol::eip6492::{self, Erc6492Signature};
use x402_protocol::erc20_approval::{ApprovalTransaction, Erc20ApprovalGasSponsoring};
use x402_protocol::exact::ExactEvmPayload;
use x402_protocol::facilitator::PaymentPayload;
use x402_protocol::permit2::{
    EXACT_PERMIT2_PROXY, ExactPermit2Payload, PERMIT2_ADDRESS, Permit2Authorization,
    UPTO_PERMIT2_PROXY, UptoPermit2Payload,
};
use x402_protocol::verify::{InvalidPayment, SignatureCheck, VerifiedPayment};
use x402_protocol::{Address, B256, ChainAddress, NetworkInfo, Reason, SchemePayload, U256};
use x402_runtime::facilitator::{SettleObserver, SettleOutcome, Settler, SettlerError};

use crate::abi::{Eip3009Token, Permit2};
use crate::builder::{
    DEFAULT_BUMP_AFTER, DEFAULT_CALL_TIMEOUT, DEFAULT_POLL_INTERVAL, DEFAULT_RECEIPT_TIMEOUT,
    EvmSettlerBuilder,
};
use crate::eip3009::transfer_call;
use crate::permit2::{
    exact_settle_call, exact_settle_with_permit_call, nonce_position, upto_charged,
    upto_settle_call, upto_settle_with_permit_call,
};
use crate::sender::{Event, Pacing, Sender, SubmitError, Submitted};
use crate::text::{describe_revert, redact};
use crate::wallet::{
    ERC1271_MAGIC, WalletSignature, is_valid_signature_call, signature_of, validator_call,
    with_signature,
};

/// Settles verified payments on an EVM chain: submits the payer's signed EIP-3009
/// `transferWithAuthorization` to the token (or a signed Permit2 transfer to the x402 Permit2
/// proxy, see below) from the facilitator's own account and waits for the receipt. Plug it into an
/// [`EmbeddedFacilitator`](x402_runtime::facilitator::EmbeddedFacilitator) with
/// [`settler`](x402_runtime::facilitator::EmbeddedFacilitatorBuilder::settler).
///
/// - [`check`](Settler::check) (before verifying and again before settling) reads
///   `authorizationState(from, nonce)` (used → `invalid_exact_evm_nonce_already_used`) and
///   `balanceOf(from)` (short → `insufficient_funds`), and simulates the transfer with
///   `eth_call` (revert → `invalid_exact_evm_transaction_simulation_failed`, with the decoded
///   revert in the message).
/// - [`settle`](Settler::settle) estimates gas (a revert there means the transfer would fail:
///   nothing is sent), sends the `(v, r, s)` form of `transferWithAuthorization` for 65-byte
///   signatures and the `bytes` form otherwise, and waits for the receipt. It ends in one of
///   three outcomes:
///   - settled: the receipt says success;
///   - failed (provably not executed): the estimate reverted, the node refused the
///     transaction before taking it, or the mined transaction reverted
///     (`invalid_transaction_state`);
///   - unknown: the send timed out or broke after the transaction left, or no receipt came
///     within the receipt timeout. The transaction may still be mined.
/// - [`resolve`](Settler::resolve) turns an unknown into a verdict: a receipt for the known
///   transaction, else the authorization's on-chain state (`authorizationState`; when used, the
///   `AuthorizationUsed` log names the transaction). An authorization still unused after its
///   `validBefore` can never execute: failed.
/// - Payments for any other chain than the node's are refused with `invalid_network`.
///
/// Permit2 payments (`exact` with `assetTransferMethod: "permit2"`, and `upto`) go through the
/// x402 Permit2 proxies at their canonical addresses
/// ([`EXACT_PERMIT2_PROXY`](x402_protocol::permit2::EXACT_PERMIT2_PROXY),
/// [`UPTO_PERMIT2_PROXY`](x402_protocol::permit2::UPTO_PERMIT2_PROXY)), which call Permit2:
/// - `check` reads the payer's token allowance to Permit2 (short →
///   `permit2_allowance_required`, which a gate answers with 412), the balance
///   (`insufficient_funds`), Permit2's `nonceBitmap` (used →
///   `invalid_exact_evm_nonce_already_used`), and simulates the proxy's `settle` (an `upto`
///   payment with its maximum, from the witness's facilitator).
/// - `settle` sends `settle(permit, owner, witness, signature)` to the exact proxy (the whole
///   permitted amount moves), or `settle(permit, amount, owner, witness, signature)` to the
///   upto proxy with `amount` the charge. An `upto` payment may only be sent by
///   `witness.facilitator`, so it goes out from that account, and is refused with
///   `upto_facilitator_mismatch` when that is none of the settler's keys; a zero charge is
///   settled with no transaction (the Permit2 nonce stays unused), a charge above the maximum
///   is refused with `invalid_upto_evm_payload_settlement_exceeds_amount`.
/// - `eip2612GasSponsoring`: a payment carrying the extension has it checked offline (`from`,
///   `asset`, `spender`, deadline, value = permitted amount, each refusal with its own reason;
///   the signature in the token's domain is the scheme's check, since only the requirement
///   names that domain). When the payer's allowance to Permit2 is short, `check` simulates and
///   `settle` sends the proxy's `settleWithPermit` instead of `settle` (the proxy submits the
///   token's `permit` approving Permit2, then transfers); with enough allowance the permit is
///   left unused. Without the extension a short allowance stays `permit2_allowance_required`.
/// - `erc20ApprovalGasSponsoring`: a payment carrying a signed `approve(Permit2, …)`
///   transaction has it checked offline (the reference's `info` and transaction checks, and its
///   chain, each refusal with its own reason). When the allowance is short (and no EIP-2612
///   permit is carried), `check` also requires the transaction's nonce to be the payer's pending
///   nonce and its amount to cover the payment (then the proxy's deployment, the balance and the
///   Permit2 nonce are checked, but `settle` is not simulated: it would revert before the
///   approval); `settle` first funds the payer's gas when needed (sends exactly
///   `gas × maxFeePerGas − balance` wei from a facilitator account), broadcasts the raw
///   approval (`eth_sendRawTransaction`), waits for its receipt (reverted, or not mined in
///   time → failed, nothing else sent), then sends the usual proxy `settle`. This is **not
///   atomic** (a plain node has no bundles): between the approval and the settlement the
///   payer could move the tokens (or replace the approval under the same nonce), and then the
///   facilitator lost the funded gas, which is bounded by the approval transaction's own
///   maximum cost per settlement attempt. An approval the node takes but does not mine within
///   the receipt timeout fails the settlement as unavailable (the approval may still be mined
///   later; the payment itself was not sent).
/// - `resolve`: the receipt of the known transaction, else Permit2's nonce bitmap: a used nonce
///   is settled (by the transaction found in the token's `Transfer` logs, whose input also
///   gives an `upto` charge), an unused one after the `deadline` has failed, anything else is
///   still unknown. A used nonce whose transaction cannot be found stays unknown for `upto`,
///   since the charge is then unknown; for `exact` it counts as settled, although a payer
///   could also have spent the nonce with Permit2's `invalidateUnorderedNonces` (only a
///   settlement whose receipt was lost gets here).
///
/// Sending: each key is an account with its own local nonce allocator, so concurrent
/// settlements are signed and sent in parallel without ever taking the same nonce (the node's
/// count is read once, and again only after a node reports a nonce used elsewhere). Several
/// keys ([`private_key`](EvmSettlerBuilder::private_key) once per key) share the load: each
/// settlement goes to the account with the fewest transactions in flight. Transactions are
/// signed locally, so their hash is known (and reported to a
/// [`SettleObserver`](x402_runtime::facilitator::SettleObserver)) before they are sent; one not
/// mined within [`bump_after`](EvmSettlerBuilder::bump_after) is sent again under the same
/// nonce with at least an eighth more on every fee (up to
/// [`max_fee_per_gas`](EvmSettlerBuilder::max_fee_per_gas)); a nonce given back by a refused
/// send is reused, or filled with a zero-value transfer, so no later transaction waits behind
/// a gap. A nonce used by another process sending from the same account is skipped and the
/// settlement retried, which works but wastes time: give each facilitator its own keys.
///
/// The keys never leave the settler: `Debug` shows the facilitator's addresses, and the RPC URL
/// only as scheme, host and port (paths often carry provider API keys). Messages returned to
/// clients never contain RPC error details; those go to the `x402::settlement` log target.
///
/// ```no_run
/// use std::time::Duration;
///
/// use x402_evm::EvmSettler;
/// use x402_runtime::facilitator::EmbeddedFacilitator;
/// use x402_runtime::protocol::{Address, AssetInfo, NetworkInfo, NetworkRegistry};
/// use x402_runtime::Gate;
/// use std::sync::Arc;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let settler = EvmSettler::builder("http://127.0.0.1:8545")
///     .private_key(&std::env::var("FACILITATOR_KEY")?)
///     .chain_id(31337)
///     .receipt_timeout(Duration::from_secs(20))
///     .connect()
///     .await?;
///
/// let token: Address = "0x5FbDB2315678afecb367f032d93F642f64180aa3".parse()?;
/// let anvil = NetworkInfo::new("anvil", 31337, AssetInfo::usdc(token, "X402 Test USD", "2"));
/// let mut registry = NetworkRegistry::builtin();
/// registry.register_network(anvil.clone())?;
///
/// let facilitator = EmbeddedFacilitator::builder()
///     .registry(Arc::new(registry))
///     .settler(Arc::new(settler))
///     .build();
/// let gate = Gate::builder()
///     .embedded_facilitator_with(facilitator)
///     .settlement_timeout(Duration::from_secs(40))
///     .network(anvil)
///     .default_network("anvil")
///     .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
///     .build()?;
/// # let _ = gate;
/// # Ok(())
/// # }
/// ```
pub struct EvmSettler {
    /// Reads, estimates and raw sends (no wallet: every transaction is signed by a sender).
    pub(crate) provider: DynProvider,
    pub(crate) chain_id: u64,
    /// The accounts that submit transfers, each with its own nonces.
    pub(crate) senders: Vec<Arc<Sender>>,
    /// Round-robin start among equally busy senders.
    pub(crate) turn: AtomicUsize,
    /// Whether code was seen at the x402 exact and upto proxies (code cannot go away, so one
    /// look each is enough).
    pub(crate) proxies_seen: [AtomicBool; 2],
    /// The RPC URL reduced to scheme, host and port, for logs and `Debug`.
    pub(crate) rpc: String,
    /// The full RPC URL, only to scrub it out of error texts.
    pub(crate) rpc_url: String,
    pub(crate) call_timeout: Duration,
    pub(crate) receipt_timeout: Duration,
    pub(crate) pacing: Pacing,
    /// Factories an ERC-6492 signature may name (empty: none).
    pub(crate) eip6492_factories: Vec<Address>,
}

impl fmt::Debug for EvmSettler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvmSettler")
            .field("signers", &self.addresses())
            .field("chain_id", &self.chain_id)
            .field("rpc", &self.rpc)
            .field("call_timeout", &self.call_timeout)
            .field("receipt_timeout", &self.receipt_timeout)
            .field("bump_after", &self.pacing.bump_after)
            .field("max_fee_per_gas", &self.pacing.max_fee_per_gas)
            .finish_non_exhaustive()
    }
}

/// How an RPC call went wrong.
pub(crate) enum CallError {
    /// The EVM reverted; the decoded reason.
    Reverted(String),
    /// Anything else (transport, node error, undecodable answer); details for the log only.
    Failed(String),
}

/// A payload the settler can submit.
#[derive(Clone, Copy)]
enum Transfer<'p> {
    /// EIP-3009 `transferWithAuthorization` on the token.
    Eip3009(&'p ExactEvmPayload),
    /// Permit2 `exact`, through the exact proxy.
    Permit2Exact(&'p ExactPermit2Payload),
    /// Permit2 `upto`, through the upto proxy.
    Permit2Upto(&'p UptoPermit2Payload),
}

/// What identifies a Permit2 payment on chain.
struct PermitOnChain {
    token: Address,
    owner: Address,
    to: Address,
    nonce: U256,
    deadline: U256,
}

/// What a Permit2 check reads and simulates.
struct Permit2Check {
    token: Address,
    owner: Address,
    nonce: U256,
    amount: U256,
    sender: Address,
    proxy: Address,
    call: Bytes,
    /// The proxy's `settleWithPermit` when the payment carries an `eip2612GasSponsoring`
    /// permit: checked instead of `call` when the allowance is short.
    with_permit: Option<Bytes>,
    /// The payment's `erc20ApprovalGasSponsoring` transaction (checked offline): when the
    /// allowance is short and no permit is carried, it is checked against the chain (nonce,
    /// approved amount) instead of the allowance, and `settle` is not simulated (a plain node
    /// cannot simulate it after a transaction not yet sent).
    with_approval: Option<ApprovalTransaction>,
    /// Whether to simulate the proxy's `settle` (not for a wallet that is not deployed yet:
    /// its signature was checked by simulating its deployment instead).
    simulate: bool,
}

impl EvmSettler {
    /// Starts configuring a settler that talks to the node at `rpc_url` (`http://` or
    /// `https://`).
    pub fn builder(rpc_url: impl Into<String>) -> EvmSettlerBuilder {
        EvmSettlerBuilder {
            rpc_url: rpc_url.into(),
            signers: Vec::new(),
            chain_id: None,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            receipt_timeout: DEFAULT_RECEIPT_TIMEOUT,
            poll_interval: DEFAULT_POLL_INTERVAL,
            bump_after: DEFAULT_BUMP_AFTER,
            max_fee_per_gas: None,
            eip6492_factories: Vec::new(),
        }
    }

    /// The chain it settles on.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The facilitator's (first) account, which submits transfers and pays their gas.
    pub fn address(&self) -> Address {
        self.senders[0].address
    }

    /// Every account that submits transfers, in the order they were configured.
    pub fn addresses(&self) -> Vec<Address> {
        self.senders.iter().map(|s| s.address).collect()
    }

    /// Payment transactions sent and not yet mined, per account.
    pub fn in_flight(&self) -> Vec<(Address, usize)> {
        self.senders
            .iter()
            .map(|s| (s.address, s.in_flight()))
            .collect()
    }

    /// The least busy sender (ties taken in turn).
    fn pick(&self) -> &Arc<Sender> {
        let start = self.turn.fetch_add(1, Ordering::Relaxed);
        let n = self.senders.len();
        (0..n)
            .map(|i| &self.senders[(start + i) % n])
            .min_by_key(|s| s.in_flight())
            .unwrap_or(&self.senders[0])
    }

    fn scrub(&self, text: &str) -> String {
        redact(text, &self.rpc_url, &self.rpc)
    }

    fn same_chain(&self, payment: &VerifiedPayment) -> Result<(), InvalidPayment> {
        if payment.network.chain_id() == Some(self.chain_id) {
            return Ok(());
        }
        Err(InvalidPayment::new(
            Reason::INVALID_NETWORK,
            format!(
                "this facilitator settles on chain {} only; the payment is for {}",
                self.chain_id, payment.network
            ),
        ))
    }

    /// The payload and token of a payment this settler can take.
    fn transfer<'p>(
        &self,
        payment: &VerifiedPayment,
        payload: &'p PaymentPayload,
    ) -> Result<(Transfer<'p>, Address), InvalidPayment> {
        self.same_chain(payment)?;
        let scheme = payload.payload();
        let transfer = if let Some(p) = scheme.as_eip3009() {
            Some(Transfer::Eip3009(p))
        } else if let Some(p) = scheme.as_permit2_exact() {
            Some(Transfer::Permit2Exact(p))
        } else {
            scheme.as_permit2_upto().map(Transfer::Permit2Upto)
        };
        let (Some(transfer), Some(token)) = (transfer, payment.asset.as_evm()) else {
            return Err(InvalidPayment::new(
                Reason::UNSUPPORTED_SCHEME,
                format!(
                    "this settler submits EIP-3009 authorizations and Permit2 transfers; a {} payload cannot be settled here",
                    scheme.kind()
                ),
            ));
        };
        Ok((transfer, token))
    }

    /// Fails unless the x402 proxy has code: a call to an empty address "succeeds" without
    /// moving anything, so a chain without the proxies would otherwise look settled.
    async fn proxy_deployed(&self, proxy: Address) -> Result<(), SettlerError> {
        let seen = &self.proxies_seen[usize::from(proxy == UPTO_PERMIT2_PROXY)];
        if seen.load(Ordering::Relaxed) {
            return Ok(());
        }
        let code = timeout(
            self.call_timeout,
            self.provider.get_code_at(proxy).into_future(),
        )
        .await
        .map_err(|_| {
            self.unavailable(
                "read the x402 Permit2 proxy's code",
                format!("no answer within {:?}", self.call_timeout),
            )
        })?
        .map_err(|e| {
            self.unavailable(
                "read the x402 Permit2 proxy's code",
                self.scrub(&e.to_string()),
            )
        })?;
        if code.is_empty() {
            return Err(self.unavailable(
                "find the x402 Permit2 proxy",
                format!("no contract at {proxy}: the x402 Permit2 proxies are not deployed on this chain"),
            ));
        }
        seen.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The sending account that is the `upto` witness's facilitator (only it may settle).
    fn sender_for(&self, facilitator: Address) -> Result<&Arc<Sender>, InvalidPayment> {
        self.senders
            .iter()
            .find(|s| s.address == facilitator)
            .ok_or_else(|| {
                InvalidPayment::new(
                    Reason::UPTO_FACILITATOR_MISMATCH,
                    format!(
                        "the upto payment may only be settled by {facilitator}, which is not one of this facilitator's accounts {:?}",
                        self.addresses()
                    ),
                )
            })
    }

    fn request(&self, token: Address, input: Vec<u8>) -> TransactionRequest {
        self.request_from(self.address(), token, input)
    }

    fn request_from(&self, from: Address, token: Address, input: Vec<u8>) -> TransactionRequest {
        TransactionRequest::default()
            .from(from)
            .to(token)
            .input(TransactionInput::new(input.into()))
    }

    pub(crate) fn classify(&self, error: &TransportError) -> CallError {
        if let Some(payload) = error.as_error_resp() {
            if let Some(data) = payload.as_revert_data() {
                return CallError::Reverted(describe_revert(&data));
            }
            if payload.message.contains("revert") {
                return CallError::Reverted(payload.message.to_string());
            }
        }
        CallError::Failed(self.scrub(&error.to_string()))
    }

    async fn eth_call<C: SolCall>(&self, token: Address, call: &C) -> Result<C::Return, CallError> {
        let answer = timeout(
            self.call_timeout,
            self.provider
                .call(self.request(token, call.abi_encode()))
                .into_future(),
        )
        .await
        .map_err(|_| {
            CallError::Failed(format!("eth_call timed out after {:?}", self.call_timeout))
        })?
        .map_err(|e| self.classify(&e))?;
        C::abi_decode_returns(&answer).map_err(|e| {
            CallError::Failed(format!(
                "{token} answered {} with {answer} ({e}); is it an EIP-3009 token?",
                C::SIGNATURE
            ))
        })
    }

    /// A read the checks need failed: the node's problem, not the payment's (a 502, not a 402).
    fn unavailable(&self, what: &str, detail: String) -> SettlerError {
        tracing::warn!(target: "x402::settlement", rpc = %self.rpc, %detail, "{what} failed");
        SettlerError::Unavailable(format!(
            "the facilitator could not {what} on chain {}",
            self.chain_id
        ))
    }

    fn unknown(&self, transaction: Option<B256>, detail: String) -> SettleOutcome {
        tracing::warn!(target: "x402::settlement", rpc = %self.rpc, ?transaction, %detail, "settlement outcome unknown");
        SettleOutcome::Unknown {
            transaction: transaction.map(|t| t.to_string()),
            detail,
        }
    }

    fn judge_receipt(
        &self,
        hash: B256,
        receipt: &impl ReceiptResponse,
        amount: U256,
    ) -> SettleOutcome {
        self.judge(hash, receipt.status(), receipt.block_number(), amount)
    }

    fn judge(&self, hash: B256, success: bool, block: Option<u64>, amount: U256) -> SettleOutcome {
        let block = block.map_or_else(|| "?".to_owned(), |n| n.to_string());
        if success {
            tracing::info!(target: "x402::settlement", transaction = %hash, %block, "transfer mined");
            return SettleOutcome::Settled {
                transaction: hash.to_string(),
                amount,
            };
        }
        tracing::warn!(target: "x402::settlement", transaction = %hash, %block, "transfer reverted on chain");
        SettleOutcome::Failed(SettlerError::Rejected(InvalidPayment::new(
            Reason::INVALID_TRANSACTION_STATE,
            format!(
                "the transfer transaction {hash} was mined in block {block} but reverted; nothing was paid"
            ),
        )))
    }

    /// Waits for a submitted transfer until `deadline`: mined (settled or reverted), or its
    /// nonce taken by a transaction not sent from here (`None`: send it again).
    async fn wait(
        &self,
        mut submitted: Submitted,
        amount: U256,
        deadline: Instant,
        observer: &dyn SettleObserver,
    ) -> Option<SettleOutcome> {
        let mut latest = submitted.hash;
        loop {
            match tokio::time::timeout_at(deadline, submitted.events.recv()).await {
                Ok(Some(Event::Replaced(hash))) => {
                    latest = hash;
                    observer.submitted(&hash.to_string());
                }
                Ok(Some(Event::Mined {
                    hash,
                    success,
                    block,
                })) => return Some(self.judge(hash, success, block, amount)),
                Ok(Some(Event::Displaced)) => return None,
                Ok(None) => {
                    return Some(self.unknown(
                        Some(latest),
                        "the transaction monitor stopped before the transfer was mined".to_owned(),
                    ));
                }
                Err(_) => {
                    return Some(self.unknown(
                        Some(latest),
                        format!(
                            "transaction {latest} (nonce {}) was submitted but not mined within {:?}; it stays watched and re-priced",
                            submitted.nonce, self.receipt_timeout
                        ),
                    ));
                }
            }
        }
    }

    /// The reason a bad signature of this payload's kind is refused with.
    fn invalid_signature(payload: &PaymentPayload) -> Reason {
        match payload.payload() {
            SchemePayload::Eip3009(_) => Reason::INVALID_SIGNATURE,
            _ => Reason::PERMIT2_INVALID_SIGNATURE,
        }
    }

    /// `eth_call` of `request`, its raw answer.
    async fn raw_call(&self, request: TransactionRequest) -> Result<Bytes, CallError> {
        timeout(self.call_timeout, self.provider.call(request).into_future())
            .await
            .map_err(|_| {
                CallError::Failed(format!("eth_call timed out after {:?}", self.call_timeout))
            })?
            .map_err(|e| self.classify(&e))
    }

    /// The code at `account`.
    async fn code_at(&self, account: Address) -> Result<Bytes, SettlerError> {
        timeout(
            self.call_timeout,
            self.provider.get_code_at(account).into_future(),
        )
        .await
        .map_err(|_| {
            self.unavailable(
                "read the payer's code",
                format!("no answer within {:?}", self.call_timeout),
            )
        })?
        .map_err(|e| self.unavailable("read the payer's code", self.scrub(&e.to_string())))
    }

    /// Checks on chain a signature the verifier could not ([`SignatureCheck::OnChain`]): a
    /// payer with code is asked `isValidSignature(digest, signature)` (ERC-1271, the inner
    /// signature of an ERC-6492 one); a payer without code must sign with ERC-6492 through an
    /// allowed factory, and its deployment is simulated with the deployless
    /// `X402Erc6492Validator`.
    async fn check_wallet_signature(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        digest: B256,
    ) -> Result<WalletSignature, SettlerError> {
        let invalid = Self::invalid_signature(payload);
        let refuse = |reason: Reason, message: String| {
            Err(SettlerError::Rejected(InvalidPayment::new(reason, message)))
        };
        let (Some(wallet), Some(signature)) = (payment.payer.as_evm(), signature_of(payload))
        else {
            return refuse(
                invalid,
                "the payment has no EVM payer or signature".to_owned(),
            );
        };
        let wrapped = match eip6492::unwrap(signature) {
            Ok(wrapped) => wrapped,
            Err(malformed) => return refuse(invalid, malformed.to_string()),
        };
        let code = self.code_at(wallet).await?;
        if !code.is_empty() {
            let inner = wrapped.map_or_else(|| signature.clone(), |w| w.signature);
            let ask = self.request_from(
                self.address(),
                wallet,
                is_valid_signature_call(digest, inner.clone()).to_vec(),
            );
            return match self.raw_call(ask).await {
                Ok(answer) if answer.len() >= 4 && answer[..4] == ERC1271_MAGIC => {
                    Ok(WalletSignature::Deployed { inner })
                }
                Ok(_) | Err(CallError::Reverted(_)) => refuse(
                    invalid,
                    format!(
                        "the contract wallet {wallet} does not accept the signature (ERC-1271 isValidSignature)"
                    ),
                ),
                Err(CallError::Failed(detail)) => {
                    Err(self.unavailable("ask the wallet isValidSignature", detail))
                }
            };
        }
        let Some(deploy) = wrapped else {
            return if signature.len() == 65 {
                refuse(
                    invalid,
                    format!(
                        "the signature was not made by {wallet}, which has no code (it is not a contract wallet)"
                    ),
                )
            } else {
                refuse(
                    Reason::UNDEPLOYED_SMART_WALLET,
                    format!(
                        "{wallet} has no code and its {}-byte signature is not an ERC-6492 one that could deploy it",
                        signature.len()
                    ),
                )
            };
        };
        self.factory_allowed(&deploy)
            .map_err(SettlerError::Rejected)?;
        let simulate =
            TransactionRequest::default()
                .from(self.address())
                .input(TransactionInput::new(validator_call(
                    wallet, digest, signature,
                )));
        match self.raw_call(simulate).await {
            Ok(answer) => match <(bool, bool)>::abi_decode_params(&answer) {
                Ok((true, true)) => Ok(WalletSignature::Counterfactual(deploy)),
                Ok((false, _)) => refuse(
                    Reason::UNDEPLOYED_SMART_WALLET,
                    format!(
                        "calling the factory {} with the signature's calldata does not deploy {wallet}",
                        deploy.factory
                    ),
                ),
                Ok((true, false)) => refuse(
                    invalid,
                    format!(
                        "the contract wallet {wallet}, once deployed, does not accept the signature (ERC-1271 isValidSignature)"
                    ),
                ),
                Err(e) => Err(self.unavailable(
                    "simulate the wallet's deployment",
                    format!("the validator answered {answer} ({e})"),
                )),
            },
            Err(CallError::Reverted(reason)) => refuse(
                invalid,
                format!(
                    "simulating the deployment of {wallet} and its signature check reverted: {reason}"
                ),
            ),
            Err(CallError::Failed(detail)) => {
                Err(self.unavailable("simulate the wallet's deployment", detail))
            }
        }
    }

    /// Refuses an ERC-6492 factory that is not on the allowlist.
    fn factory_allowed(&self, deploy: &Erc6492Signature) -> Result<(), InvalidPayment> {
        if self.eip6492_factories.contains(&deploy.factory) {
            return Ok(());
        }
        Err(InvalidPayment::new(
            Reason::EIP6492_FACTORY_NOT_ALLOWED,
            format!(
                "the ERC-6492 signature deploys the wallet through {}, which this facilitator does not call",
                deploy.factory
            ),
        ))
    }

    /// Before settling a payment with an ERC-6492 signature: deploys the wallet through its
    /// (allowed) factory when it has no code yet, and returns the wallet's own signature to
    /// settle with. `None` for any other signature.
    async fn prepare_wallet(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
    ) -> Result<Option<Bytes>, SettleOutcome> {
        let Some(signature) = signature_of(payload) else {
            return Ok(None);
        };
        let deploy = match eip6492::unwrap(signature) {
            Ok(Some(deploy)) => deploy,
            Ok(None) => return Ok(None),
            Err(malformed) => {
                return Err(SettleOutcome::Failed(
                    InvalidPayment::new(Self::invalid_signature(payload), malformed.to_string())
                        .into(),
                ));
            }
        };
        let Some(wallet) = payment.payer.as_evm() else {
            return Ok(Some(deploy.signature));
        };
        if !self
            .code_at(wallet)
            .await
            .map_err(SettleOutcome::Failed)?
            .is_empty()
        {
            return Ok(Some(deploy.signature));
        }
        self.factory_allowed(&deploy)
            .map_err(|invalid| SettleOutcome::Failed(invalid.into()))?;
        let failed = |detail: String| {
            SettleOutcome::Failed(SettlerError::Rejected(InvalidPayment::new(
                Reason::UNDEPLOYED_SMART_WALLET,
                format!(
                    "deploying the wallet {wallet} through {}: {detail}",
                    deploy.factory
                ),
            )))
        };
        let sender = self.pick();
        let request = self.request_from(
            sender.address,
            deploy.factory,
            deploy.factory_calldata.to_vec(),
        );
        let request = match timeout(
            self.call_timeout,
            self.provider.estimate_gas(request.clone()).into_future(),
        )
        .await
        {
            Err(_) => {
                return Err(SettleOutcome::Failed(self.unavailable(
                    "estimate the wallet deployment's gas",
                    format!("no answer within {:?}", self.call_timeout),
                )));
            }
            Ok(Err(e)) => {
                return Err(match self.classify(&e) {
                    CallError::Reverted(reason) => {
                        failed(format!("the call would revert: {reason}"))
                    }
                    CallError::Failed(detail) => SettleOutcome::Failed(
                        self.unavailable("estimate the wallet deployment's gas", detail),
                    ),
                });
            }
            Ok(Ok(gas)) => request.gas_limit(gas.saturating_add(gas / 5)),
        };
        let submitted = sender.submit(request, &()).await.map_err(|e| {
            let detail = match e {
                SubmitError::NonceTaken(d) | SubmitError::Unavailable(d) => d,
                SubmitError::Refused { detail, .. } => detail,
            };
            SettleOutcome::Failed(
                self.unavailable("deploy the payer's wallet", self.scrub(&detail)),
            )
        })?;
        tracing::info!(target: "x402::settlement", transaction = %submitted.hash, %wallet, factory = %deploy.factory, "ERC-6492 wallet deployment submitted");
        let deadline = Instant::now() + self.receipt_timeout;
        match self.wait(submitted, U256::ZERO, deadline, &()).await {
            Some(SettleOutcome::Settled { .. }) => {}
            Some(SettleOutcome::Failed(_)) => {
                return Err(failed("the transaction reverted".to_owned()));
            }
            _ => {
                return Err(SettleOutcome::Failed(self.unavailable(
                    "deploy the payer's wallet",
                    "the deployment was not mined in time".to_owned(),
                )));
            }
        }
        if self
            .code_at(wallet)
            .await
            .map_err(SettleOutcome::Failed)?
            .is_empty()
        {
            return Err(failed("the factory did not deploy it".to_owned()));
        }
        Ok(Some(deploy.signature))
    }

    /// `check` of an EIP-3009 payment: authorization state, balance, simulated transfer.
    async fn check_eip3009(
        &self,
        payload: &ExactEvmPayload,
        token: Address,
        simulate: bool,
    ) -> Result<(), SettlerError> {
        let auth = &payload.authorization;
        let state = Eip3009Token::authorizationStateCall {
            authorizer: auth.from,
            nonce: auth.nonce,
        };
        let balance = Eip3009Token::balanceOfCall { account: auth.from };
        let transfer = transfer_call(payload);
        // Three independent reads, in one round trip; judged in order below.
        let (used, balance, simulation) = tokio::join!(
            self.eth_call(token, &state),
            self.eth_call(token, &balance),
            timeout(
                self.call_timeout,
                self.provider
                    .call(self.request(token, transfer.to_vec()))
                    .into_future()
            ),
        );

        match used {
            Ok(true) => {
                return Err(SettlerError::Rejected(InvalidPayment::new(
                    Reason::NONCE_ALREADY_USED,
                    format!(
                        "authorization nonce {} of {} was already used on chain",
                        auth.nonce, auth.from
                    ),
                )));
            }
            Ok(false) => {}
            Err(CallError::Reverted(reason)) => {
                return Err(self.unavailable(
                    "read authorizationState",
                    format!("{token} reverted: {reason}"),
                ));
            }
            Err(CallError::Failed(detail)) => {
                return Err(self.unavailable("read authorizationState", detail));
            }
        }
        match balance {
            Ok(held) if held < auth.value => {
                return Err(SettlerError::Rejected(InvalidPayment::new(
                    Reason::INSUFFICIENT_FUNDS,
                    format!(
                        "{} holds {held} atomic units of {token}, needs {}",
                        auth.from, auth.value
                    ),
                )));
            }
            Ok(_) => {}
            Err(CallError::Reverted(reason)) => {
                return Err(
                    self.unavailable("read balanceOf", format!("{token} reverted: {reason}"))
                );
            }
            Err(CallError::Failed(detail)) => {
                return Err(self.unavailable("read balanceOf", detail));
            }
        }
        match simulation {
            _ if !simulate => Ok(()),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => match self.classify(&e) {
                CallError::Reverted(reason) => Err(InvalidPayment::new(
                    Reason::SIMULATION_FAILED,
                    format!("simulating transferWithAuthorization on {token} reverted: {reason}"),
                )
                .into()),
                CallError::Failed(detail) => Err(self.unavailable("simulate the transfer", detail)),
            },
            Err(_) => Err(self.unavailable(
                "simulate the transfer",
                format!("eth_call timed out after {:?}", self.call_timeout),
            )),
        }
    }

    /// `check` of a Permit2 payment: the payer's allowance to Permit2 (short →
    /// `permit2_allowance_required`), balance, the Permit2 nonce, and the proxy's `settle`
    /// simulated from the account that would send it.
    async fn check_permit2(&self, c: Permit2Check) -> Result<(), SettlerError> {
        self.proxy_deployed(c.proxy).await?;
        let (word, bit) = nonce_position(c.nonce);
        let allowance = Eip3009Token::allowanceCall {
            owner: c.owner,
            spender: PERMIT2_ADDRESS,
        };
        let balance = Eip3009Token::balanceOfCall { account: c.owner };
        let bitmap = Permit2::nonceBitmapCall {
            owner: c.owner,
            word,
        };
        // Four independent reads, in one round trip; judged in order below.
        let (allowance, balance, bitmap, simulation) = tokio::join!(
            self.eth_call(c.token, &allowance),
            self.eth_call(c.token, &balance),
            self.eth_call(PERMIT2_ADDRESS, &bitmap),
            timeout(
                self.call_timeout,
                self.provider
                    .call(self.request_from(c.sender, c.proxy, c.call.to_vec()))
                    .into_future()
            ),
        );
        let read = |what: &str, result: Result<U256, CallError>| {
            result.map_err(|e| match e {
                CallError::Reverted(reason) => {
                    self.unavailable(what, format!("the call reverted: {reason}"))
                }
                CallError::Failed(detail) => self.unavailable(what, detail),
            })
        };
        let allowed = read("read the Permit2 allowance", allowance)?;
        // A short allowance with an EIP-2612 permit: the proxy's `settleWithPermit` approves
        // Permit2 first, so that call is the one simulated.
        let sponsored = match (&c.with_permit, allowed < c.amount) {
            (Some(call), true) => Some(call.clone()),
            _ => None,
        };
        let mut simulate = c.simulate;
        if allowed < c.amount
            && sponsored.is_none()
            && let Some(tx) = &c.with_approval
        {
            self.approval_usable(tx, c.owner, c.amount).await?;
            simulate = false;
        } else if allowed < c.amount && sponsored.is_none() {
            return Err(InvalidPayment::new(
                Reason::PERMIT2_ALLOWANCE_REQUIRED,
                format!(
                    "{} lets Permit2 move {allowed} atomic units of {}, needs {}: approve Permit2 ({PERMIT2_ADDRESS}) on the token first",
                    c.owner, c.token, c.amount
                ),
            )
            .into());
        }
        let held = read("read balanceOf", balance)?;
        if held < c.amount {
            return Err(InvalidPayment::new(
                Reason::INSUFFICIENT_FUNDS,
                format!(
                    "{} holds {held} atomic units of {}, needs {}",
                    c.owner, c.token, c.amount
                ),
            )
            .into());
        }
        let bitmap = read("read the Permit2 nonce bitmap", bitmap)?;
        if bitmap.bit(bit) {
            return Err(InvalidPayment::new(
                Reason::NONCE_ALREADY_USED,
                format!(
                    "Permit2 nonce {} of {} was already used on chain",
                    c.nonce, c.owner
                ),
            )
            .into());
        }
        let what = if sponsored.is_some() {
            "settleWithPermit"
        } else {
            "settle"
        };
        let simulation = match sponsored {
            Some(call) if simulate => {
                timeout(
                    self.call_timeout,
                    self.provider
                        .call(self.request_from(c.sender, c.proxy, call.to_vec()))
                        .into_future(),
                )
                .await
            }
            _ => simulation,
        };
        match simulation {
            _ if !simulate => Ok(()),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => match self.classify(&e) {
                CallError::Reverted(reason) => Err(InvalidPayment::new(
                    Reason::SIMULATION_FAILED,
                    format!(
                        "simulating {what} on the x402 Permit2 proxy {} reverted: {reason}",
                        c.proxy
                    ),
                )
                .into()),
                CallError::Failed(detail) => Err(self.unavailable("simulate the transfer", detail)),
            },
            Err(_) => Err(self.unavailable(
                "simulate the transfer",
                format!("eth_call timed out after {:?}", self.call_timeout),
            )),
        }
    }

    /// Whether the chain would take the signed approval `tx` of `owner` now and it covers
    /// `amount`: its nonce is the payer's pending nonce, it approves at least `amount`.
    async fn approval_usable(
        &self,
        tx: &ApprovalTransaction,
        owner: Address,
        amount: U256,
    ) -> Result<(), SettlerError> {
        let approved = tx.approved_amount().unwrap_or_default();
        if approved < amount {
            return Err(InvalidPayment::new(
                Reason::PERMIT2_ALLOWANCE_REQUIRED,
                format!(
                    "the signed approval lets Permit2 move {approved} atomic units, needs {amount}"
                ),
            )
            .into());
        }
        let pending = timeout(
            self.call_timeout,
            self.provider
                .get_transaction_count(owner)
                .pending()
                .into_future(),
        )
        .await
        .map_err(|_| {
            self.unavailable(
                "read the payer's transaction count",
                format!("no answer within {:?}", self.call_timeout),
            )
        })?
        .map_err(|e| {
            self.unavailable(
                "read the payer's transaction count",
                self.scrub(&e.to_string()),
            )
        })?;
        if tx.nonce != pending {
            return Err(InvalidPayment::new(
                Reason::SIMULATION_FAILED,
                format!(
                    "the signed approval uses nonce {} but {owner}'s next transaction nonce is {pending}: the chain would not include it now",
                    tx.nonce
                ),
            )
            .with_payer(Some(ChainAddress::Evm(owner)))
            .into());
        }
        Ok(())
    }

    /// At settlement, for a payment carrying an `erc20ApprovalGasSponsoring` transaction whose
    /// payer's Permit2 allowance is short (and no EIP-2612 permit): checks it against the chain,
    /// funds the payer's gas if its balance is short of the transaction's maximum cost,
    /// broadcasts it and waits for its receipt. `Ok` when the allowance is (now) there or the
    /// payment carries no approval.
    async fn approve_if_short<W>(
        &self,
        payload: &PaymentPayload,
        auth: &Permit2Authorization<W>,
        token: Address,
    ) -> Result<(), SettleOutcome> {
        let failed = |e: SettlerError| SettleOutcome::Failed(e);
        let tx = match approval(payload, auth, self.chain_id) {
            Ok(Some(tx)) => tx,
            Ok(None) => return Ok(()),
            Err(invalid) => return Err(failed(invalid.into())),
        };
        let allowance = Eip3009Token::allowanceCall {
            owner: auth.from,
            spender: PERMIT2_ADDRESS,
        };
        match self.eth_call(token, &allowance).await {
            Ok(allowed) if allowed >= auth.permitted.amount => return Ok(()),
            Ok(_) => {}
            Err(CallError::Reverted(reason)) => {
                return Err(failed(self.unavailable(
                    "read the Permit2 allowance",
                    format!("the call reverted: {reason}"),
                )));
            }
            Err(CallError::Failed(detail)) => {
                return Err(failed(
                    self.unavailable("read the Permit2 allowance", detail),
                ));
            }
        }
        self.approval_usable(&tx, auth.from, auth.permitted.amount)
            .await
            .map_err(failed)?;
        let deadline = Instant::now() + self.receipt_timeout;
        // Gas for the approval: exactly what the payer lacks of its maximum cost.
        let balance = timeout(
            self.call_timeout,
            self.provider.get_balance(auth.from).into_future(),
        )
        .await
        .map_err(|_| {
            failed(self.unavailable(
                "read the payer's balance",
                format!("no answer within {:?}", self.call_timeout),
            ))
        })?
        .map_err(|e| {
            failed(self.unavailable("read the payer's balance", self.scrub(&e.to_string())))
        })?;
        let cost = tx.max_gas_cost();
        if balance < cost {
            let need = cost - balance;
            let funding = TransactionRequest::default()
                .from(self.pick().address)
                .to(auth.from)
                .value(need)
                .gas_limit(21_000);
            let sender = self.pick();
            let submitted = match sender.submit(funding, &()).await {
                Ok(submitted) => submitted,
                Err(error) => {
                    let detail = match error {
                        SubmitError::NonceTaken(d) | SubmitError::Unavailable(d) => d,
                        SubmitError::Refused { detail, .. } => detail,
                    };
                    return Err(failed(
                        self.unavailable("fund the payer's approval gas", self.scrub(&detail)),
                    ));
                }
            };
            tracing::info!(target: "x402::settlement", transaction = %submitted.hash, payer = %auth.from, wei = %need, "funding the payer's approval gas");
            match self.wait(submitted, U256::ZERO, deadline, &()).await {
                Some(SettleOutcome::Settled { .. }) => {}
                _ => {
                    return Err(failed(self.unavailable(
                        "fund the payer's approval gas",
                        "the funding transfer was not mined".to_owned(),
                    )));
                }
            }
        }
        let raw = approval_raw(payload).unwrap_or_default();
        let hash = match timeout(
            self.call_timeout,
            self.provider.send_raw_transaction(&raw).into_future(),
        )
        .await
        {
            Err(_) => {
                return Err(self.unknown(
                    None,
                    "the signed approval was sent but the node did not answer".to_owned(),
                ));
            }
            Ok(Err(e)) => {
                return Err(failed(
                    InvalidPayment::new(
                        Reason::SIMULATION_FAILED,
                        format!(
                            "the node refused the signed approval: {}",
                            self.scrub(&e.to_string())
                        ),
                    )
                    .into(),
                ));
            }
            Ok(Ok(pending)) => *pending.tx_hash(),
        };
        tracing::info!(target: "x402::settlement", transaction = %hash, payer = %auth.from, "signed approval broadcast");
        loop {
            match self.provider.get_transaction_receipt(hash).await {
                Ok(Some(receipt)) if receipt.status() => return Ok(()),
                Ok(Some(_)) => {
                    return Err(failed(
                        InvalidPayment::new(
                            Reason::SIMULATION_FAILED,
                            format!(
                                "the signed approval {hash} reverted on chain; the payment was not sent"
                            ),
                        )
                        .into(),
                    ));
                }
                Ok(None) | Err(_) => {}
            }
            if Instant::now() >= deadline {
                return Err(failed(self.unavailable(
                    "broadcast the signed approval",
                    format!("{hash} was not mined in time; the payment was not sent"),
                )));
            }
            tokio::time::sleep(self.pacing.poll_interval).await;
        }
    }

    /// At settlement: the payment's EIP-2612 permit when it carries one and the payer's
    /// Permit2 allowance is short of the permitted amount (then `settleWithPermit` is sent),
    /// else `None` (plain `settle`). A malformed or mismatched extension fails the settlement.
    async fn permit_if_short<W>(
        &self,
        payload: &PaymentPayload,
        auth: &Permit2Authorization<W>,
        token: Address,
    ) -> Result<Option<Eip2612GasSponsoring>, SettleOutcome> {
        let info = match sponsoring(payload, auth) {
            Ok(Some(info)) => info,
            Ok(None) => return Ok(None),
            Err(invalid) => return Err(SettleOutcome::Failed(invalid.into())),
        };
        let allowance = Eip3009Token::allowanceCall {
            owner: auth.from,
            spender: PERMIT2_ADDRESS,
        };
        match self.eth_call(token, &allowance).await {
            Ok(allowed) if allowed >= auth.permitted.amount => Ok(None),
            Ok(_) => Ok(Some(info)),
            Err(CallError::Reverted(reason)) => Err(SettleOutcome::Failed(self.unavailable(
                "read the Permit2 allowance",
                format!("the call reverted: {reason}"),
            ))),
            Err(CallError::Failed(detail)) => Err(SettleOutcome::Failed(
                self.unavailable("read the Permit2 allowance", detail),
            )),
        }
    }

    /// `resolve` of an EIP-3009 payment: a receipt, else `authorizationState` and the
    /// `AuthorizationUsed` log, else the expiry.
    async fn resolve_eip3009(
        &self,
        exact: &ExactEvmPayload,
        token: Address,
        transaction: Option<&str>,
    ) -> SettleOutcome {
        let amount = exact.authorization.value;
        if let Some(hash) = transaction.and_then(|t| t.parse::<B256>().ok())
            && let Ok(Ok(Some(receipt))) = timeout(
                self.call_timeout,
                self.provider.get_transaction_receipt(hash).into_future(),
            )
            .await
        {
            return self.judge_receipt(hash, &receipt, amount);
        }
        let state = Eip3009Token::authorizationStateCall {
            authorizer: exact.authorization.from,
            nonce: exact.authorization.nonce,
        };
        match self.eth_call(token, &state).await {
            Ok(true) => {
                let used_by = self.authorization_transaction(token, exact).await;
                SettleOutcome::Settled {
                    transaction: used_by
                        .map(|h| h.to_string())
                        .or_else(|| transaction.map(str::to_owned))
                        .unwrap_or_default(),
                    amount,
                }
            }
            Ok(false) => match self.chain_time().await {
                Some(now) if U256::from(now) >= exact.authorization.valid_before => {
                    SettleOutcome::Failed(SettlerError::Rejected(InvalidPayment::new(
                        Reason::SETTLEMENT_FAILED,
                        "the authorization expired unused: it can never be settled",
                    )))
                }
                _ => self.unknown(
                    transaction.and_then(|t| t.parse().ok()),
                    "the authorization is not used yet and can still be".to_owned(),
                ),
            },
            Err(CallError::Reverted(detail) | CallError::Failed(detail)) => self.unknown(
                transaction.and_then(|t| t.parse().ok()),
                format!("authorizationState could not be read: {detail}"),
            ),
        }
    }

    /// [`Settler::resolve`], knowing the charge of an `upto` settlement sent from here
    /// (otherwise read from the transaction).
    async fn resolve_with(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        transaction: Option<&str>,
        charge: Option<U256>,
    ) -> SettleOutcome {
        match self.transfer(payment, payload) {
            Err(invalid) => SettleOutcome::Failed(invalid.into()),
            Ok((Transfer::Eip3009(exact), token)) => {
                self.resolve_eip3009(exact, token, transaction).await
            }
            Ok((Transfer::Permit2Exact(p), token)) => {
                let auth = &p.permit2_authorization;
                let permit = PermitOnChain {
                    token,
                    owner: auth.from,
                    to: auth.witness.to,
                    nonce: auth.nonce,
                    deadline: auth.deadline,
                };
                self.resolve_permit2(permit, transaction, |_| Some(auth.permitted.amount))
                    .await
            }
            Ok((Transfer::Permit2Upto(p), token)) => {
                let auth = &p.permit2_authorization;
                let permit = PermitOnChain {
                    token,
                    owner: auth.from,
                    to: auth.witness.to,
                    nonce: auth.nonce,
                    deadline: auth.deadline,
                };
                self.resolve_permit2(permit, transaction, |input| {
                    charge.or_else(|| input.and_then(|input| upto_charged(input, p)))
                })
                .await
            }
        }
    }

    /// `resolve` of a Permit2 payment: the receipt of the known transaction, else Permit2's
    /// nonce bitmap (used: settled, by the transaction found in the token's `Transfer` logs
    /// from the payer to the recipient; unused after the deadline: failed; otherwise unknown).
    /// `amount` gives the amount moved from the settling transaction's input (`None` when no
    /// transaction was found).
    async fn resolve_permit2(
        &self,
        permit: PermitOnChain,
        transaction: Option<&str>,
        amount: impl Fn(Option<&[u8]>) -> Option<U256>,
    ) -> SettleOutcome {
        let known = transaction.and_then(|t| t.parse::<B256>().ok());
        if let Some(hash) = known
            && let Ok(Ok(Some(receipt))) = timeout(
                self.call_timeout,
                self.provider.get_transaction_receipt(hash).into_future(),
            )
            .await
        {
            let input = self.transaction_input(hash).await;
            return match amount(input.as_deref()) {
                Some(moved) => self.judge_receipt(hash, &receipt, moved),
                None if !receipt.status() => self.judge_receipt(hash, &receipt, U256::ZERO),
                None => self.unknown(
                    Some(hash),
                    "the transaction was mined but the amount it moved could not be read"
                        .to_owned(),
                ),
            };
        }
        let (word, bit) = nonce_position(permit.nonce);
        let bitmap = Permit2::nonceBitmapCall {
            owner: permit.owner,
            word,
        };
        match self.eth_call(PERMIT2_ADDRESS, &bitmap).await {
            Ok(bitmap) if bitmap.bit(bit) => {
                let found = self.permit2_transaction(&permit).await;
                let input = match found {
                    Some(hash) => self.transaction_input(hash).await,
                    None => None,
                };
                match amount(input.as_deref()) {
                    Some(moved) => SettleOutcome::Settled {
                        transaction: found
                            .map(|h| h.to_string())
                            .or_else(|| transaction.map(str::to_owned))
                            .unwrap_or_default(),
                        amount: moved,
                    },
                    None => self.unknown(
                        known,
                        format!(
                            "Permit2 nonce {} of {} is used, but the transaction that used it (and so the amount) was not found",
                            permit.nonce, permit.owner
                        ),
                    ),
                }
            }
            Ok(_) => match self.chain_time().await {
                // Permit2 refuses a permit once the block time is past its deadline.
                Some(now) if U256::from(now) > permit.deadline => {
                    SettleOutcome::Failed(SettlerError::Rejected(InvalidPayment::new(
                        Reason::SETTLEMENT_FAILED,
                        "the Permit2 permit expired unused: it can never be settled",
                    )))
                }
                _ => self.unknown(
                    known,
                    "the Permit2 nonce is not used yet and can still be".to_owned(),
                ),
            },
            Err(CallError::Reverted(detail) | CallError::Failed(detail)) => self.unknown(
                known,
                format!("Permit2's nonceBitmap could not be read: {detail}"),
            ),
        }
    }

    /// The latest block's timestamp.
    async fn chain_time(&self) -> Option<u64> {
        timeout(
            self.call_timeout,
            self.provider
                .get_block_by_number(alloy_rpc_types_eth::BlockNumberOrTag::Latest)
                .into_future(),
        )
        .await
        .ok()?
        .ok()
        .flatten()
        .map(|block| block.header.timestamp)
    }

    /// The calldata of a transaction.
    async fn transaction_input(&self, hash: B256) -> Option<Vec<u8>> {
        let tx = timeout(
            self.call_timeout,
            self.provider.get_transaction_by_hash(hash).into_future(),
        )
        .await
        .ok()?
        .ok()??;
        tx.into_request()
            .input
            .into_input()
            .map(|input| input.to_vec())
    }

    /// The transaction that settled a Permit2 payment: among the token's `Transfer` logs from
    /// the payer to the recipient, the one sent to an x402 proxy with this payer and nonce.
    async fn permit2_transaction(&self, permit: &PermitOnChain) -> Option<B256> {
        let filter = Filter::new()
            .address(permit.token)
            .event_signature(Eip3009Token::Transfer::SIGNATURE_HASH)
            .topic1(permit.owner.into_word())
            .topic2(permit.to.into_word())
            .from_block(0u64);
        let logs = timeout(
            self.call_timeout,
            self.provider.get_logs(&filter).into_future(),
        )
        .await
        .ok()?
        .ok()?;
        for hash in logs.iter().filter_map(|log| log.transaction_hash) {
            let Some(input) = self.transaction_input(hash).await else {
                continue;
            };
            if crate::permit2::settles(&input, permit.owner, permit.nonce) {
                return Some(hash);
            }
        }
        None
    }

    /// The transaction that used an authorization, from the token's `AuthorizationUsed` log.
    async fn authorization_transaction(
        &self,
        token: Address,
        payload: &ExactEvmPayload,
    ) -> Option<B256> {
        let auth = &payload.authorization;
        let filter = Filter::new()
            .address(token)
            .event_signature(Eip3009Token::AuthorizationUsed::SIGNATURE_HASH)
            .topic1(auth.from.into_word())
            .topic2(auth.nonce)
            .from_block(0u64);
        let logs = timeout(
            self.call_timeout,
            self.provider.get_logs(&filter).into_future(),
        )
        .await
        .ok()?
        .ok()?;
        logs.first().and_then(|log| log.transaction_hash)
    }
}

#[async_trait]
impl Settler for EvmSettler {
    fn settles(&self, network: &NetworkInfo) -> bool {
        network.chain_id() == Some(self.chain_id)
    }

    fn checks_contract_signatures(&self, network: &NetworkInfo) -> bool {
        self.settles(network)
    }

    /// It broadcasts (and funds) `erc20ApprovalGasSponsoring` approvals on its own chain.
    fn broadcasts_approvals(&self, network: &NetworkInfo) -> bool {
        self.settles(network)
    }

    async fn check(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
    ) -> Result<(), SettlerError> {
        self.transfer(payment, payload)?;
        // A contract wallet's signature: asked of the wallet (or of its simulated deployment),
        // then the transfer is checked with the signature the token or Permit2 will see.
        let mut simulate = true;
        let unwrapped;
        let payload = match &payment.signature {
            SignatureCheck::OnChain { digest, .. } => {
                match self
                    .check_wallet_signature(payment, payload, *digest)
                    .await?
                {
                    WalletSignature::Deployed { inner } => {
                        unwrapped = with_signature(payload, inner);
                        &unwrapped
                    }
                    WalletSignature::Counterfactual(deploy) => {
                        simulate = false;
                        unwrapped = with_signature(payload, deploy.signature);
                        &unwrapped
                    }
                }
            }
            _ => payload,
        };
        let (transfer, token) = self.transfer(payment, payload)?;
        match transfer {
            Transfer::Eip3009(payload) => self.check_eip3009(payload, token, simulate).await,
            Transfer::Permit2Exact(p) => {
                let auth = &p.permit2_authorization;
                let with_permit =
                    sponsoring(payload, auth)?.map(|info| exact_settle_with_permit_call(p, &info));
                let with_approval = approval(payload, auth, self.chain_id)?;
                self.check_permit2(Permit2Check {
                    token,
                    owner: auth.from,
                    nonce: auth.nonce,
                    amount: auth.permitted.amount,
                    sender: self.pick().address,
                    proxy: EXACT_PERMIT2_PROXY,
                    call: exact_settle_call(p),
                    with_permit,
                    with_approval,
                    simulate,
                })
                .await
            }
            Transfer::Permit2Upto(p) => {
                let auth = &p.permit2_authorization;
                let sender = self.sender_for(auth.witness.facilitator)?;
                let with_permit = sponsoring(payload, auth)?
                    .map(|info| upto_settle_with_permit_call(p, auth.permitted.amount, &info));
                let with_approval = approval(payload, auth, self.chain_id)?;
                // Simulated with the maximum, as the reference does: a charge is never more.
                self.check_permit2(Permit2Check {
                    token,
                    owner: auth.from,
                    nonce: auth.nonce,
                    amount: auth.permitted.amount,
                    sender: sender.address,
                    proxy: UPTO_PERMIT2_PROXY,
                    call: upto_settle_call(p, auth.permitted.amount),
                    with_permit,
                    with_approval,
                    simulate,
                })
                .await
            }
        }
    }

    async fn settle(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        amount: U256,
    ) -> SettleOutcome {
        self.settle_observed(payment, payload, amount, &()).await
    }

    async fn settle_observed(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        amount: U256,
        observer: &dyn SettleObserver,
    ) -> SettleOutcome {
        if let Err(invalid) = self.transfer(payment, payload) {
            return SettleOutcome::Failed(invalid.into());
        }
        // An ERC-6492 signature: the wallet is deployed first (through an allowed factory),
        // and the token or Permit2 is handed the wallet's own signature.
        let unwrapped;
        let payload = match self.prepare_wallet(payment, payload).await {
            Ok(Some(inner)) => {
                unwrapped = with_signature(payload, inner);
                &unwrapped
            }
            Ok(None) => payload,
            Err(outcome) => return outcome,
        };
        let (transfer, token) = match self.transfer(payment, payload) {
            Ok(found) => found,
            Err(invalid) => return SettleOutcome::Failed(invalid.into()),
        };
        // Who sends what to which contract, the amount that moves, and the payer.
        let (sender, to, input, amount, payer, known) = match transfer {
            Transfer::Eip3009(exact) => (
                self.pick(),
                token,
                transfer_call(exact),
                amount,
                exact.authorization.from,
                None,
            ),
            // The exact proxy always moves the whole permitted amount.
            Transfer::Permit2Exact(p) => {
                let auth = &p.permit2_authorization;
                let input = match self.permit_if_short(payload, auth, token).await {
                    Err(outcome) => return outcome,
                    Ok(Some(info)) => exact_settle_with_permit_call(p, &info),
                    Ok(None) => {
                        if let Err(outcome) = self.approve_if_short(payload, auth, token).await {
                            return outcome;
                        }
                        exact_settle_call(p)
                    }
                };
                (
                    self.pick(),
                    EXACT_PERMIT2_PROXY,
                    input,
                    auth.permitted.amount,
                    auth.from,
                    None,
                )
            }
            Transfer::Permit2Upto(p) => {
                let auth = &p.permit2_authorization;
                let sender = match self.sender_for(auth.witness.facilitator) {
                    Ok(sender) => sender,
                    Err(invalid) => return SettleOutcome::Failed(invalid.into()),
                };
                let charge = match p.settlement_amount(amount) {
                    Err(refused) => {
                        return SettleOutcome::Failed(
                            InvalidPayment::new(refused.reason(), refused.to_string()).into(),
                        );
                    }
                    // Nothing to charge: no transaction, and the nonce stays unused.
                    Ok(None) => {
                        return SettleOutcome::Settled {
                            transaction: String::new(),
                            amount: U256::ZERO,
                        };
                    }
                    Ok(Some(charge)) => charge,
                };
                let input = match self.permit_if_short(payload, auth, token).await {
                    Err(outcome) => return outcome,
                    Ok(Some(info)) => upto_settle_with_permit_call(p, charge, &info),
                    Ok(None) => {
                        if let Err(outcome) = self.approve_if_short(payload, auth, token).await {
                            return outcome;
                        }
                        upto_settle_call(p, charge)
                    }
                };
                (
                    sender,
                    UPTO_PERMIT2_PROXY,
                    input,
                    charge,
                    auth.from,
                    Some(charge),
                )
            }
        };
        let what = match transfer {
            Transfer::Eip3009(_) => format!("transferWithAuthorization on {token}"),
            Transfer::Permit2Exact(_) | Transfer::Permit2Upto(_) => {
                format!("settle on the x402 Permit2 proxy {to}")
            }
        };
        if !matches!(transfer, Transfer::Eip3009(_))
            && let Err(error) = self.proxy_deployed(to).await
        {
            return SettleOutcome::Failed(error);
        }
        let deadline = Instant::now() + self.receipt_timeout;
        let request = self.request_from(sender.address, to, input.to_vec());
        // Estimated first, on its own: a revert or an RPC failure here proves nothing was sent.
        let request = match timeout(
            self.call_timeout,
            self.provider.estimate_gas(request.clone()).into_future(),
        )
        .await
        {
            Err(_) => {
                return SettleOutcome::Failed(self.unavailable(
                    "estimate the transfer's gas",
                    format!("no answer within {:?}", self.call_timeout),
                ));
            }
            Ok(Err(e)) => {
                return SettleOutcome::Failed(match self.classify(&e) {
                    CallError::Reverted(reason) => InvalidPayment::new(
                        Reason::SIMULATION_FAILED,
                        format!("{what} would revert: {reason}"),
                    )
                    .into(),
                    CallError::Failed(detail) => {
                        self.unavailable("estimate the transfer's gas", detail)
                    }
                });
            }
            // A fifth more than estimated: the state may move between estimate and block.
            Ok(Ok(gas)) => request.gas_limit(gas.saturating_add(gas / 5)),
        };
        let chain = format!("eip155:{}", self.chain_id);
        let mut retries = 0u32;
        loop {
            let outcome = match sender.submit(request.clone(), observer).await {
                Ok(submitted) => {
                    tracing::info!(
                        target: "x402::settlement",
                        transaction = %submitted.hash,
                        nonce = submitted.nonce,
                        signer = %sender.address,
                        %payer,
                        %token,
                        value = %amount,
                        "transfer submitted"
                    );
                    match self.wait(submitted, amount, deadline, observer).await {
                        Some(outcome) => return outcome,
                        None => {
                            // Its nonce went to a transaction not sent from here. If that one
                            // carried this authorization, the payment is settled.
                            let resolved = self.resolve_with(payment, payload, None, known).await;
                            if matches!(resolved, SettleOutcome::Settled { .. }) {
                                return resolved;
                            }
                            "displaced"
                        }
                    }
                }
                Err(SubmitError::NonceTaken(detail)) => {
                    tracing::warn!(target: "x402::settlement", %chain, signer = %sender.address, %detail, "the node says the nonce is taken; another process sends from this account");
                    "nonce_taken"
                }
                Err(SubmitError::Refused {
                    detail,
                    reverted: true,
                }) => {
                    return SettleOutcome::Failed(
                        InvalidPayment::new(
                            Reason::SIMULATION_FAILED,
                            format!("{what} would revert: {detail}"),
                        )
                        .into(),
                    );
                }
                Err(SubmitError::Refused { detail, .. }) => {
                    return SettleOutcome::Failed(
                        self.unavailable("submit the transfer", self.scrub(&detail)),
                    );
                }
                Err(SubmitError::Unavailable(detail)) => {
                    return SettleOutcome::Failed(
                        self.unavailable("submit the transfer", self.scrub(&detail)),
                    );
                }
            };
            retries += 1;
            metrics::counter!("x402_evm_nonce_retries_total", "chain" => chain.clone(), "reason" => outcome).increment(1);
            if retries >= 3 || Instant::now() >= deadline {
                return SettleOutcome::Failed(self.unavailable(
                    "submit the transfer",
                    format!("gave up after {retries} nonce conflicts: another process sends from {}; give each facilitator its own key", sender.address),
                ));
            }
        }
    }

    async fn resolve(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        transaction: Option<&str>,
    ) -> SettleOutcome {
        self.resolve_with(payment, payload, transaction, None).await
    }

    fn signers(&self) -> Vec<ChainAddress> {
        self.senders
            .iter()
            .map(|s| ChainAddress::Evm(s.address))
            .collect()
    }
}

/// The payment's `eip2612GasSponsoring` permit, checked offline against its Permit2
/// authorization (`from`, `asset`, `spender`, `deadline`, amount) at the current time. Its
/// signature is left to the token (the caller's scheme checked it in the token's domain, which
/// only the requirement names); a refused permit makes the transfer revert.
fn sponsoring<W>(
    payload: &PaymentPayload,
    auth: &Permit2Authorization<W>,
) -> Result<Option<Eip2612GasSponsoring>, InvalidPayment> {
    let refuse = |e: x402_protocol::eip2612::SponsoringError| {
        InvalidPayment::new(e.reason(), e.to_string())
            .with_payer(Some(ChainAddress::Evm(auth.from)))
    };
    let Some(info) = Eip2612GasSponsoring::from_extensions(payload.extensions()).map_err(refuse)?
    else {
        return Ok(None);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    info.check(auth, now).map_err(refuse)?;
    Ok(Some(info))
}

/// The payment's `erc20ApprovalGasSponsoring` transaction, checked offline against its Permit2
/// authorization on chain `chain_id` (the reference's checks in its order, and the chain).
fn approval<W>(
    payload: &PaymentPayload,
    auth: &Permit2Authorization<W>,
    chain_id: u64,
) -> Result<Option<ApprovalTransaction>, InvalidPayment> {
    let refuse = |e: x402_protocol::erc20_approval::ApprovalError| {
        InvalidPayment::new(e.reason(), e.to_string())
            .with_payer(Some(ChainAddress::Evm(auth.from)))
    };
    let Some(info) =
        Erc20ApprovalGasSponsoring::from_extensions(payload.extensions()).map_err(refuse)?
    else {
        return Ok(None);
    };
    info.check(
        x402_protocol::eip3009::RecoveryBackend::default(),
        auth,
        chain_id,
    )
    .map(Some)
    .map_err(refuse)
}

/// The raw signed approval transaction a payment carries.
fn approval_raw(payload: &PaymentPayload) -> Option<Bytes> {
    Erc20ApprovalGasSponsoring::from_extensions(payload.extensions())
        .ok()
        .flatten()
        .map(|info| info.signed_transaction)
}
