//! Configuring an [`EvmSettler`]: RPC URL, key, chain, timeouts.

use std::fmt;
use std::future::IntoFuture;
use std::time::Duration;

use alloy_network::{Ethereum, EthereumWallet};
use std::sync::atomic::AtomicUsize;

use alloy_primitives::Address;
use alloy_provider::{Provider, RootProvider};
use alloy_rpc_client::RpcClient;
use alloy_signer_local::PrivateKeySigner;
use tokio::time::timeout;

use crate::EvmSettler;
use crate::sender::{Pacing, Sender};
use crate::text::{parse_key, redact, redact_url};

/// Default limit for one JSON-RPC call.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Default limit for a submitted transaction to be mined.
pub const DEFAULT_RECEIPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default pause between receipt polls.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Default time after which an unmined transaction is sent again with higher fees.
pub const DEFAULT_BUMP_AFTER: Duration = Duration::from_secs(15);

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
    /// The same key was given twice: its two senders would take the same nonces.
    #[error("signer {0} is configured twice; give each signer its own key")]
    DuplicateSigner(Address),
}

/// Configures an [`EvmSettler`]; finish with [`connect`](Self::connect).
#[must_use]
pub struct EvmSettlerBuilder {
    pub(crate) rpc_url: String,
    pub(crate) signers: Vec<Result<PrivateKeySigner, EvmSettlerError>>,
    pub(crate) chain_id: Option<u64>,
    pub(crate) call_timeout: Duration,
    pub(crate) receipt_timeout: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) bump_after: Duration,
    pub(crate) max_fee_per_gas: Option<u128>,
    pub(crate) eip6492_factories: Vec<Address>,
}

impl fmt::Debug for EvmSettlerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvmSettlerBuilder")
            .field("rpc", &redact_url(&self.rpc_url))
            .field(
                "signers",
                &self
                    .signers
                    .iter()
                    .map(|s| s.as_ref().map(PrivateKeySigner::address))
                    .collect::<Vec<_>>(),
            )
            .field("chain_id", &self.chain_id)
            .field("call_timeout", &self.call_timeout)
            .field("receipt_timeout", &self.receipt_timeout)
            .field("poll_interval", &self.poll_interval)
            .field("bump_after", &self.bump_after)
            .field("max_fee_per_gas", &self.max_fee_per_gas)
            .field("eip6492_factories", &self.eip6492_factories)
            .finish()
    }
}

impl EvmSettlerBuilder {
    /// A private key of the facilitator (64 hex digits, `0x` optional). Its account submits
    /// transfers and pays their gas; it needs the chain's native coin, not the token. Call it
    /// once per key: several accounts share the load, each with its own nonces.
    pub fn private_key(mut self, hex: &str) -> Self {
        self.signers.push(parse_key(hex));
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

    /// After how long a transaction that is not mined is sent again with higher fees
    /// (default [`DEFAULT_BUMP_AFTER`]): at least an eighth more on every fee, or what the chain
    /// asks now if that is more, under the same nonce.
    pub fn bump_after(mut self, after: Duration) -> Self {
        self.bump_after = after;
        self
    }

    /// The most the facilitator pays per gas (wei), whatever the chain asks and however often
    /// a transaction is re-priced (default: no cap).
    pub fn max_fee_per_gas(mut self, wei: u128) -> Self {
        self.max_fee_per_gas = Some(wei);
        self
    }

    /// Lets payers whose contract wallet is not deployed yet pay with an ERC-6492 signature
    /// naming `factory`: the settler checks the signature by simulating the deployment, and
    /// deploys the wallet through `factory` (a transaction it pays for) before settling. The
    /// factory call is the payer's choice of calldata, so list only factories you trust. None
    /// is allowed by default: such payments are refused with `eip6492_factory_not_allowed`.
    pub fn allow_eip6492_factory(mut self, factory: Address) -> Self {
        if !self.eip6492_factories.contains(&factory) {
            self.eip6492_factories.push(factory);
        }
        self
    }

    /// Checks the configuration, asks the node for its chain id, and builds the settler.
    pub async fn connect(self) -> Result<EvmSettler, EvmSettlerError> {
        if self.signers.is_empty() {
            return Err(EvmSettlerError::MissingKey);
        }
        let mut signers: Vec<PrivateKeySigner> = Vec::with_capacity(self.signers.len());
        for signer in self.signers {
            let signer = signer?;
            if signers.iter().any(|s| s.address() == signer.address()) {
                return Err(EvmSettlerError::DuplicateSigner(signer.address()));
            }
            signers.push(signer);
        }
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

        let root = RootProvider::<Ethereum>::new(client);
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

        // Reads, estimates and raw sends; every transaction is signed by its sender, with
        // nonces kept locally (see `sender`), so no filler runs here.
        let provider = root.erased();
        let pacing = Pacing {
            call_timeout: self.call_timeout,
            poll_interval: self.poll_interval,
            bump_after: self.bump_after,
            max_fee_per_gas: self.max_fee_per_gas,
        };
        let senders: Vec<_> = signers
            .into_iter()
            .map(|signer| {
                let address = signer.address();
                Sender::start(
                    address,
                    EthereumWallet::from(signer),
                    provider.clone(),
                    found,
                    pacing,
                )
            })
            .collect();
        let addresses: Vec<_> = senders.iter().map(|s| s.address).collect();
        tracing::info!(target: "x402::settlement", signers = ?addresses, chain_id = found, %rpc, "EVM settler connected");
        Ok(EvmSettler {
            provider,
            chain_id: found,
            senders,
            turn: AtomicUsize::new(0),
            proxies_seen: Default::default(),
            rpc,
            rpc_url: self.rpc_url,
            call_timeout: self.call_timeout,
            receipt_timeout: self.receipt_timeout,
            pacing,
            eip6492_factories: self.eip6492_factories,
        })
    }
}
