//! Settling on an EVM chain: EIP-3009 `transferWithAuthorization` over JSON-RPC (alloy).

use std::fmt;
use std::future::IntoFuture;
use std::str::FromStr;
use std::time::Duration;

use alloy_network::{Ethereum, EthereumWallet, ReceiptResponse};
use alloy_provider::{DynProvider, Provider, ProviderBuilder, RootProvider};
use alloy_rpc_client::RpcClient;
use alloy_rpc_types_eth::{TransactionInput, TransactionRequest};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolInterface};
use alloy_transport::TransportError;
use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio::time::{Instant, timeout};
use x402_protocol::exact::ExactEvmPayload;
use x402_protocol::verify::{InvalidPayment, VerifiedPayment};
use x402_protocol::{Address, B256, Bytes, Reason};

use super::Settler;

mod abi {
    #![allow(missing_docs, unreachable_pub)]
    alloy_sol_types::sol! {
        /// The EIP-3009 surface the settler uses, and the custom errors of the workspace's own
        /// test token (`contracts/src/X402TestToken.sol`) so its reverts read well in messages.
        /// Other tokens' `Error(string)` reverts (FiatToken's, for example) decode generically.
        #[sol(all_derives)]
        interface Eip3009Token {
            function balanceOf(address account) external view returns (uint256);
            function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
            function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
            function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, bytes signature) external;

            error ZeroAddress();
            error InsufficientBalance(address account, uint256 balance, uint256 needed);
            error AuthorizationNotYetValid(uint256 validAfter, uint256 timestamp);
            error AuthorizationExpired(uint256 validBefore, uint256 timestamp);
            error AuthorizationAlreadyUsed(address authorizer, bytes32 nonce);
            error InvalidSignatureLength(uint256 length);
            error InvalidSignatureV(uint8 v);
            error InvalidSignatureS(bytes32 s);
            error InvalidSignature();
            error WrongSigner(address signer, address from);
        }
    }
}

use abi::Eip3009Token;

/// Default limit for one JSON-RPC call.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Default limit for a submitted transaction to be mined.
pub const DEFAULT_RECEIPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default pause between receipt polls.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Why an [`EvmSettler`] could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvmSettlerError {
    /// The RPC URL does not parse as an http(s) URL.
    #[error("the RPC URL is not a valid http(s) URL")]
    InvalidUrl,
    /// No private key was given.
    #[error("no facilitator key: call EvmSettlerBuilder::private_key")]
    MissingKey,
    /// The private key is not 32 bytes of hex, or not a valid secp256k1 key.
    #[error(
        "the private key must be 64 hex digits (optionally 0x-prefixed) of a valid secp256k1 key"
    )]
    InvalidKey,
    /// The node serves another chain than the one configured.
    #[error("the RPC node serves chain {found}, but chain {expected} was configured")]
    ChainMismatch {
        /// The configured chain id.
        expected: u64,
        /// What `eth_chainId` answered.
        found: u64,
    },
    /// The node failed or could not be reached.
    #[error("the RPC node failed: {0}")]
    Rpc(String),
    /// The node did not answer in time.
    #[error("the RPC node did not answer within {0:?}")]
    Timeout(Duration),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

/// Configures an [`EvmSettler`]; finish with [`connect`](Self::connect).
#[must_use]
pub struct EvmSettlerBuilder {
    rpc_url: String,
    signer: Option<Result<PrivateKeySigner, EvmSettlerError>>,
    chain_id: Option<u64>,
    call_timeout: Duration,
    receipt_timeout: Duration,
    poll_interval: Duration,
}

impl fmt::Debug for EvmSettlerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvmSettlerBuilder")
            .field("rpc", &redact_url(&self.rpc_url))
            .field(
                "facilitator",
                &self
                    .signer
                    .as_ref()
                    .map(|s| s.as_ref().map(PrivateKeySigner::address)),
            )
            .field("chain_id", &self.chain_id)
            .field("call_timeout", &self.call_timeout)
            .field("receipt_timeout", &self.receipt_timeout)
            .field("poll_interval", &self.poll_interval)
            .finish()
    }
}

impl EvmSettlerBuilder {
    /// The facilitator's private key (64 hex digits, `0x` optional). Its account submits the
    /// transfers and pays their gas; it needs the chain's native coin, not the token.
    pub fn private_key(mut self, hex: &str) -> Self {
        self.signer = Some(parse_key(hex));
        self
    }

    /// The chain the node must serve; [`connect`](Self::connect) fails if `eth_chainId`
    /// answers anything else. Without it, the settler adopts the node's chain.
    pub fn chain_id(mut self, chain_id: u64) -> Self {
        self.chain_id = Some(chain_id);
        self
    }

    /// Limit for each JSON-RPC call, and for preparing and submitting a transaction
    /// (default [`DEFAULT_CALL_TIMEOUT`]).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// How long to wait for a submitted transaction's receipt (default
    /// [`DEFAULT_RECEIPT_TIMEOUT`]).
    pub fn receipt_timeout(mut self, timeout: Duration) -> Self {
        self.receipt_timeout = timeout;
        self
    }

    /// Pause between receipt polls (default [`DEFAULT_POLL_INTERVAL`]).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Checks the configuration, asks the node for its chain id, and builds the settler.
    pub async fn connect(self) -> Result<EvmSettler, EvmSettlerError> {
        let signer = self.signer.ok_or(EvmSettlerError::MissingKey)??;
        let url =
            reqwest::Url::parse(self.rpc_url.trim()).map_err(|_| EvmSettlerError::InvalidUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EvmSettlerError::InvalidUrl);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(self.call_timeout)
            .timeout(self.call_timeout)
            .build()
            .map_err(|e| EvmSettlerError::Client(e.without_url().to_string()))?;
        let client = RpcClient::new_http_with_client(http, url);
        let rpc = redact_url(&self.rpc_url);

        let root = RootProvider::<Ethereum>::new(client.clone());
        let found = match timeout(self.call_timeout, root.get_chain_id().into_future()).await {
            Err(_) => return Err(EvmSettlerError::Timeout(self.call_timeout)),
            Ok(Err(e)) => {
                return Err(EvmSettlerError::Rpc(redact(
                    &e.to_string(),
                    &self.rpc_url,
                    &rpc,
                )));
            }
            Ok(Ok(id)) => id,
        };
        if let Some(expected) = self.chain_id
            && expected != found
        {
            return Err(EvmSettlerError::ChainMismatch { expected, found });
        }

        let address = signer.address();
        // Gas and fees are estimated per transfer; the nonce is read from the node's pending
        // count each time (sends are serialised below), so a failed send leaves no gap.
        let provider = ProviderBuilder::default()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .with_chain_id(found)
            .wallet(EthereumWallet::from(signer))
            .connect_client(client)
            .erased();
        tracing::info!(target: "x402::settlement", %address, chain_id = found, %rpc, "EVM settler connected");
        Ok(EvmSettler {
            provider,
            chain_id: found,
            address,
            rpc,
            rpc_url: self.rpc_url,
            call_timeout: self.call_timeout,
            receipt_timeout: self.receipt_timeout,
            poll_interval: self.poll_interval,
            send_lock: Mutex::new(()),
        })
    }
}

/// Settles verified payments on an EVM chain: submits the payer's signed EIP-3009
/// `transferWithAuthorization` to the token from the facilitator's own account and waits for
/// the receipt. Plug it into an [`EmbeddedFacilitator`](super::EmbeddedFacilitator) with
/// [`settler`](super::EmbeddedFacilitatorBuilder::settler). Needs the `evm` feature.
///
/// - [`check`](Settler::check) (before verifying and again before settling) reads
///   `authorizationState(from, nonce)` (used → `invalid_exact_evm_nonce_already_used`) and
///   `balanceOf(from)` (short → `insufficient_funds`), and simulates the transfer with
///   `eth_call` (revert → `invalid_exact_evm_transaction_simulation_failed`, with the decoded
///   revert in the message).
/// - [`settle`](Settler::settle) sends the `(v, r, s)` form of `transferWithAuthorization` for
///   65-byte signatures and the `bytes` form otherwise, waits for the receipt, and returns the
///   transaction hash (`0x…`). A reverted transaction gives `invalid_transaction_state`; an RPC
///   failure or a missing receipt gives `unexpected_settle_error`. Both name the hash in the
///   message when the transaction was sent.
/// - Payments for any other chain than the node's are refused with `invalid_network`.
///
/// Submissions from one settler are serialised (each takes the node's pending nonce), so
/// concurrent settlements never collide. Do not share the key with another settler or
/// wallet: concurrent senders on one account can take the same nonce.
///
/// The key never leaves the settler: `Debug` shows the facilitator's address, and the RPC URL
/// only as scheme, host and port (paths often carry provider API keys). Messages returned to
/// clients never contain RPC error details; those go to the `x402::settlement` log target.
///
/// Timeouts: give the gate a [`facilitator_timeout`](crate::X402Builder::facilitator_timeout)
/// longer than the settler's receipt timeout plus a few call timeouts, or the gate may give up
/// on a transfer that is then mined.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use x402_runtime::facilitator::{EmbeddedFacilitator, EvmSettler};
/// use x402_runtime::protocol::{Address, AssetInfo, NetworkInfo, NetworkRegistry};
/// use x402_runtime::Gate;
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
///     .facilitator_client(Arc::new(facilitator))
///     .facilitator_timeout(Duration::from_secs(40))
///     .network(anvil)
///     .default_network("anvil")
///     .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
///     .build()?;
/// # let _ = gate;
/// # Ok(())
/// # }
/// ```
pub struct EvmSettler {
    provider: DynProvider,
    chain_id: u64,
    address: Address,
    /// The RPC URL reduced to scheme, host and port, for logs and `Debug`.
    rpc: String,
    /// The full RPC URL, only to scrub it out of error texts.
    rpc_url: String,
    call_timeout: Duration,
    receipt_timeout: Duration,
    poll_interval: Duration,
    send_lock: Mutex<()>,
}

impl fmt::Debug for EvmSettler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvmSettler")
            .field("address", &self.address)
            .field("chain_id", &self.chain_id)
            .field("rpc", &self.rpc)
            .field("call_timeout", &self.call_timeout)
            .field("receipt_timeout", &self.receipt_timeout)
            .finish_non_exhaustive()
    }
}

/// How an RPC call went wrong.
enum CallError {
    /// The EVM reverted; the decoded reason.
    Reverted(String),
    /// Anything else (transport, node error, undecodable answer); details for the log only.
    Failed(String),
}

impl EvmSettler {
    /// Starts configuring a settler that talks to the node at `rpc_url` (`http://` or
    /// `https://`).
    pub fn builder(rpc_url: impl Into<String>) -> EvmSettlerBuilder {
        EvmSettlerBuilder {
            rpc_url: rpc_url.into(),
            signer: None,
            chain_id: None,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            receipt_timeout: DEFAULT_RECEIPT_TIMEOUT,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }

    /// The chain it settles on.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The facilitator's account, which submits transfers and pays their gas.
    pub fn address(&self) -> Address {
        self.address
    }

    fn scrub(&self, text: &str) -> String {
        redact(text, &self.rpc_url, &self.rpc)
    }

    fn same_chain(&self, payment: &VerifiedPayment) -> Result<(), InvalidPayment> {
        if payment.network.chain_id == self.chain_id {
            return Ok(());
        }
        Err(InvalidPayment::new(
            Reason::INVALID_NETWORK,
            format!(
                "this facilitator settles on chain {} only; the payment is for {} (chain {})",
                self.chain_id, payment.network.name, payment.network.chain_id
            ),
        ))
    }

    fn request(&self, token: Address, input: Vec<u8>) -> TransactionRequest {
        TransactionRequest::default()
            .from(self.address)
            .to(token)
            .input(TransactionInput::new(input.into()))
    }

    fn classify(&self, error: &TransportError) -> CallError {
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

    fn verify_failure(&self, what: &str, detail: String) -> InvalidPayment {
        tracing::warn!(target: "x402::settlement", rpc = %self.rpc, %detail, "{what} failed");
        InvalidPayment::new(
            Reason::UNEXPECTED_VERIFY_ERROR,
            format!(
                "the facilitator could not {what} on chain {}; try again later",
                self.chain_id
            ),
        )
    }

    fn settle_failure(&self, what: &str, detail: String) -> InvalidPayment {
        tracing::error!(target: "x402::settlement", rpc = %self.rpc, %detail, "{what}");
        InvalidPayment::new(
            Reason::UNEXPECTED_SETTLE_ERROR,
            format!("{what} on chain {}", self.chain_id),
        )
    }

    /// Polls for the receipt of `hash` until it arrives or the receipt timeout passes.
    async fn wait_for_receipt(&self, hash: B256) -> Result<String, InvalidPayment> {
        let deadline = Instant::now() + self.receipt_timeout;
        let mut last_error = None;
        loop {
            match timeout(
                self.call_timeout,
                self.provider.get_transaction_receipt(hash).into_future(),
            )
            .await
            {
                Ok(Ok(Some(receipt))) => {
                    if receipt.status() {
                        tracing::info!(target: "x402::settlement", transaction = %hash, block = ?receipt.block_number(), "transfer mined");
                        return Ok(hash.to_string());
                    }
                    tracing::warn!(target: "x402::settlement", transaction = %hash, block = ?receipt.block_number(), "transfer reverted on chain");
                    return Err(InvalidPayment::new(
                        Reason::INVALID_TRANSACTION_STATE,
                        format!(
                            "the transfer transaction {hash} was mined in block {} but reverted; nothing was paid",
                            receipt
                                .block_number()
                                .map_or_else(|| "?".to_owned(), |n| n.to_string())
                        ),
                    ));
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => last_error = Some(self.scrub(&e.to_string())),
                Err(_) => {
                    last_error = Some(format!(
                        "eth_getTransactionReceipt timed out after {:?}",
                        self.call_timeout
                    ))
                }
            }
            if Instant::now() + self.poll_interval > deadline {
                return Err(self.settle_failure(
                    &format!(
                        "the transfer was submitted as {hash} but no receipt arrived within {:?}; check that transaction before retrying",
                        self.receipt_timeout
                    ),
                    last_error.unwrap_or_else(|| "not mined yet".to_owned()),
                ));
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }
}

#[async_trait]
impl Settler for EvmSettler {
    async fn check(
        &self,
        payment: &VerifiedPayment,
        payload: &ExactEvmPayload,
    ) -> Result<(), InvalidPayment> {
        self.same_chain(payment)?;
        let auth = &payload.authorization;
        let token = payment.asset;
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
                return Err(InvalidPayment::new(
                    Reason::NONCE_ALREADY_USED,
                    format!(
                        "authorization nonce {} of {} was already used on chain",
                        auth.nonce, auth.from
                    ),
                ));
            }
            Ok(false) => {}
            Err(CallError::Reverted(reason)) => {
                return Err(self.verify_failure(
                    "read authorizationState",
                    format!("{token} reverted: {reason}"),
                ));
            }
            Err(CallError::Failed(detail)) => {
                return Err(self.verify_failure("read authorizationState", detail));
            }
        }
        match balance {
            Ok(held) if held < auth.value => {
                return Err(InvalidPayment::new(
                    Reason::INSUFFICIENT_FUNDS,
                    format!(
                        "{} holds {held} atomic units of {token}, needs {}",
                        auth.from, auth.value
                    ),
                ));
            }
            Ok(_) => {}
            Err(CallError::Reverted(reason)) => {
                return Err(
                    self.verify_failure("read balanceOf", format!("{token} reverted: {reason}"))
                );
            }
            Err(CallError::Failed(detail)) => {
                return Err(self.verify_failure("read balanceOf", detail));
            }
        }
        match simulation {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => match self.classify(&e) {
                CallError::Reverted(reason) => Err(InvalidPayment::new(
                    Reason::SIMULATION_FAILED,
                    format!("simulating transferWithAuthorization on {token} reverted: {reason}"),
                )),
                CallError::Failed(detail) => {
                    Err(self.verify_failure("simulate the transfer", detail))
                }
            },
            Err(_) => Err(self.verify_failure(
                "simulate the transfer",
                format!("eth_call timed out after {:?}", self.call_timeout),
            )),
        }
    }

    async fn settle(
        &self,
        payment: &VerifiedPayment,
        payload: &ExactEvmPayload,
    ) -> Result<String, InvalidPayment> {
        self.same_chain(payment)?;
        let token = payment.asset;
        let request = self.request(token, transfer_call(payload).to_vec());
        let hash = {
            // One submission at a time, so each takes the node's next pending nonce.
            let _turn = self.send_lock.lock().await;
            match timeout(self.call_timeout, self.provider.send_transaction(request)).await {
                Err(_) => {
                    return Err(self.settle_failure(
                        "submitting the transfer timed out; it may still be mined, check the payer's authorization before retrying",
                        format!("no answer within {:?}", self.call_timeout),
                    ));
                }
                Ok(Err(e)) => {
                    return Err(match self.classify(&e) {
                        // Gas estimation runs the transfer first: it would revert on chain.
                        CallError::Reverted(reason) => InvalidPayment::new(
                            Reason::SIMULATION_FAILED,
                            format!("transferWithAuthorization on {token} would revert: {reason}"),
                        ),
                        CallError::Failed(detail) => {
                            self.settle_failure("the transfer could not be submitted", detail)
                        }
                    });
                }
                Ok(Ok(pending)) => *pending.tx_hash(),
            }
        };
        tracing::info!(
            target: "x402::settlement",
            transaction = %hash,
            payer = %payload.authorization.from,
            %token,
            value = %payload.authorization.value,
            "transfer submitted"
        );
        self.wait_for_receipt(hash).await
    }

    fn signers(&self) -> Vec<Address> {
        vec![self.address]
    }
}

/// The calldata of `transferWithAuthorization`: the `(v, r, s)` form for a 65-byte signature
/// (with `v` as 27/28 even when the signature says 0/1), the `bytes` form for anything else
/// (contract wallets).
fn transfer_call(payload: &ExactEvmPayload) -> Bytes {
    let auth = &payload.authorization;
    let signature = &payload.signature;
    if let Ok(bytes) = <&[u8; 65]>::try_from(signature.as_ref()) {
        let v = match bytes[64] {
            v @ (0 | 1) => v + 27,
            v => v,
        };
        Eip3009Token::transferWithAuthorization_0Call {
            from: auth.from,
            to: auth.to,
            value: auth.value,
            validAfter: auth.valid_after,
            validBefore: auth.valid_before,
            nonce: auth.nonce,
            v,
            r: B256::from_slice(&bytes[..32]),
            s: B256::from_slice(&bytes[32..64]),
        }
        .abi_encode()
        .into()
    } else {
        Eip3009Token::transferWithAuthorization_1Call {
            from: auth.from,
            to: auth.to,
            value: auth.value,
            validAfter: auth.valid_after,
            validBefore: auth.valid_before,
            nonce: auth.nonce,
            signature: signature.clone(),
        }
        .abi_encode()
        .into()
    }
}

/// Revert data in words: a known custom error, `Error(string)`, `Panic(uint256)`, or the raw
/// bytes.
fn describe_revert(data: &[u8]) -> String {
    if data.is_empty() {
        return "no reason given".to_owned();
    }
    if let Ok(error) = Eip3009Token::Eip3009TokenErrors::abi_decode(data) {
        return format!("{error:?}");
    }
    match alloy_sol_types::decode_revert_reason(data) {
        Some(reason) if !reason.is_empty() => reason,
        _ => format!("revert data {}", Bytes::copy_from_slice(data)),
    }
}

fn parse_key(hex: &str) -> Result<PrivateKeySigner, EvmSettlerError> {
    let hex = hex.trim();
    let hex = hex.strip_prefix("0x").unwrap_or(hex);
    let mut bytes = B256::ZERO;
    let decoded = alloy_primitives::hex::decode_to_slice(hex, bytes.as_mut_slice());
    let signer = decoded
        .ok()
        .and_then(|()| PrivateKeySigner::from_bytes(&bytes).ok())
        .ok_or(EvmSettlerError::InvalidKey);
    bytes.as_mut_slice().fill(0);
    signer
}

/// `scheme://host[:port]` of a URL: paths, queries and credentials often carry API keys.
fn redact_url(url: &str) -> String {
    match reqwest::Url::from_str(url.trim()) {
        Ok(url) => match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
            (Some(host), None) => format!("{}://{host}", url.scheme()),
            (None, _) => "<rpc>".to_owned(),
        },
        Err(_) => "<invalid rpc url>".to_owned(),
    }
}

/// `text` with every copy of the full RPC URL replaced by its redacted form.
fn redact(text: &str, url: &str, redacted: &str) -> String {
    let url = url.trim();
    let mut text = text.to_owned();
    for form in [url, url.trim_end_matches('/')] {
        if !form.is_empty() {
            text = text.replace(form, redacted);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use x402_protocol::U256;
    use x402_protocol::exact::Eip3009Authorization;

    use super::*;

    fn payload(signature: Vec<u8>) -> ExactEvmPayload {
        ExactEvmPayload {
            signature: signature.into(),
            authorization: Eip3009Authorization {
                from: Address::repeat_byte(1),
                to: Address::repeat_byte(2),
                value: U256::from(10_000u64),
                valid_after: U256::from(1u64),
                valid_before: U256::from(2u64),
                nonce: B256::repeat_byte(3),
            },
        }
    }

    #[test]
    fn picks_the_overload_by_signature_length() {
        let mut signature = vec![0x11; 32];
        signature.extend([0x22; 32]);
        signature.push(28);
        let call = transfer_call(&payload(signature.clone()));
        assert_eq!(call[..4], [0xe3, 0xee, 0x16, 0x0e]);
        let decoded = Eip3009Token::transferWithAuthorization_0Call::abi_decode(&call).unwrap();
        assert_eq!(
            (decoded.v, decoded.r, decoded.s),
            (28, B256::repeat_byte(0x11), B256::repeat_byte(0x22))
        );
        assert_eq!(decoded.nonce, B256::repeat_byte(3));
        assert_eq!(decoded.value, U256::from(10_000u64));

        // A 0/1 recovery byte is sent as 27/28, the form ecrecover takes.
        signature[64] = 0;
        let decoded = Eip3009Token::transferWithAuthorization_0Call::abi_decode(&transfer_call(
            &payload(signature),
        ))
        .unwrap();
        assert_eq!(decoded.v, 27);

        for len in [64, 66, 200] {
            let call = transfer_call(&payload(vec![7; len]));
            assert_eq!(call[..4], [0xcf, 0x09, 0x29, 0x95], "{len} bytes");
            let decoded = Eip3009Token::transferWithAuthorization_1Call::abi_decode(&call).unwrap();
            assert_eq!(decoded.signature.len(), len);
        }
    }

    #[test]
    fn reverts_are_described() {
        let expired = Eip3009Token::AuthorizationExpired {
            validBefore: U256::from(5u64),
            timestamp: U256::from(9u64),
        };
        let text = describe_revert(&alloy_sol_types::SolError::abi_encode(&expired));
        assert!(
            text.contains("AuthorizationExpired") && text.contains('9'),
            "{text}"
        );
        let fiat = alloy_sol_types::Revert::from("FiatTokenV2: invalid signature");
        assert_eq!(
            describe_revert(&alloy_sol_types::SolError::abi_encode(&fiat)),
            "revert: FiatTokenV2: invalid signature"
        );
        assert_eq!(describe_revert(&[]), "no reason given");
        assert_eq!(
            describe_revert(&[0xde, 0xad, 0xbe, 0xef]),
            "revert data 0xdeadbeef"
        );
    }

    #[test]
    fn keys_parse_and_urls_are_redacted() {
        let anvil0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
        let signer = parse_key(anvil0).unwrap();
        assert_eq!(
            signer.address(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
                .parse::<Address>()
                .unwrap()
        );
        assert_eq!(parse_key(&anvil0[2..]).unwrap().address(), signer.address());
        for bad in ["", "0x12", &"0".repeat(64), &"g".repeat(64)] {
            assert_eq!(
                parse_key(bad).unwrap_err(),
                EvmSettlerError::InvalidKey,
                "{bad:?}"
            );
        }

        let url = "https://user:pw@base-mainnet.example.com/v2/SECRETKEY?x=1";
        assert_eq!(redact_url(url), "https://base-mainnet.example.com");
        assert_eq!(redact_url("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        let text = redact(
            &format!("error sending request for url ({url})"),
            url,
            &redact_url(url),
        );
        assert!(!text.contains("SECRETKEY"), "{text}");

        let builder = EvmSettler::builder(url).private_key(anvil0).chain_id(8453);
        let debug = format!("{builder:?}");
        assert!(
            !debug.contains("SECRETKEY") && !debug.contains(&anvil0[2..12]),
            "{debug}"
        );
        assert!(debug.to_lowercase().contains("0xf39fd6e5"), "{debug}");
    }
}
