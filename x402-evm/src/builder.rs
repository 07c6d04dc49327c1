//! Configuring an [`EvmSettler`]: RPC URL, key, chain, timeouts.

use std::fmt;
use std::future::IntoFuture;
use std::time::Duration;

use alloy_network::{Ethereum, EthereumWallet};
use alloy_provider::{Provider, ProviderBuilder, RootProvider};
use alloy_rpc_client::RpcClient;
use alloy_signer_local::PrivateKeySigner;
use tokio::sync::Mutex;
use tokio::time::timeout;

use crate::EvmSettler;
use crate::text::{parse_key, redact, redact_url};

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
    pub(crate) rpc_url: String,
    pub(crate) signer: Option<Result<PrivateKeySigner, EvmSettlerError>>,
    pub(crate) chain_id: Option<u64>,
    pub(crate) call_timeout: Duration,
    pub(crate) receipt_timeout: Duration,
    pub(crate) poll_interval: Duration,
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
