//! Sign-in-with-x on the server: declare the challenge in each 402, and check a returning
//! payer's `SIGN-IN-WITH-X` header — fields, signature (smart wallets through a pluggable
//! verifier) and single use of its nonce (through a [`NonceStore`]).
//!
//! This module answers "which wallet is this?"; whether that wallet may be served (it paid
//! for this resource and has access left) is the gate's question.
//!
//! ```
//! use x402_protocol::eip3009::LocalSigner;
//! use x402_protocol::siwx;
//! use x402_runtime::siwx::SiwxVerifier;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let verifier = SiwxVerifier::builder().statement("Sign in to reuse your purchase").build();
//! let url = "https://api.example.com/reports/7";
//! let declaration = verifier.declare(url, &["eip155:8453"])?;
//!
//! // The client signs in with the wallet that paid …
//! let wallet = LocalSigner::random();
//! let payload = siwx::sign_evm(&declaration.info, &declaration.supported_chains[0], &wallet)?;
//! let header = siwx::encode_header(&payload);
//!
//! // … and the server learns who it is, once.
//! let chains = ["eip155:8453".to_owned()];
//! let signed_in = verifier.verify_header(&header, url, &chains).await.unwrap();
//! assert_eq!(signed_in.signer.to_string(), wallet.address().to_checksum(None));
//! let again = verifier.verify_header(&header, url, &chains).await.unwrap_err();
//! assert_eq!(again.reason().as_str(), "invalid_siwx_nonce");
//! # Ok::<(), x402_protocol::siwx::SiwxError>(())
//! # }).unwrap();
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use x402_protocol::siwx::{
    self, DeclareOptions, Expectations, SignatureScheme, SignatureType, SiwxDeclaration, SiwxError,
    SiwxPayload, SiwxSigner,
};
use x402_protocol::{Address, B256, Reason};

use crate::clock::{Clock, SystemClock};
use crate::request::RequestView;
use crate::store::{MemoryNonceStore, NonceStore, StoreError};

/// What a smart-contract wallet verifier is asked: is `signature` valid for `hash` by the
/// contract `address` on chain `chain_id`? (EIP-1271 `isValidSignature(hash, signature)`, or
/// ERC-6492 for wallets not deployed yet.)
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ContractSignature<'a> {
    /// EIP-155 chain id the wallet signed for.
    pub chain_id: u64,
    /// The wallet contract.
    pub address: Address,
    /// The EIP-4361 text that was signed.
    pub message: &'a str,
    /// Its EIP-191 `personal_sign` digest.
    pub hash: B256,
    /// The signature bytes as sent (ERC-6492 wrapped or not).
    pub signature: &'a [u8],
    /// The client's hint, if any.
    pub scheme: Option<SignatureScheme>,
}

/// Checks smart-contract wallet signatures over RPC. The `x402-evm` crate implements it; an
/// `Err` refuses the sign-in (`invalid_siwx_verifier_error`).
#[async_trait]
pub trait ContractWalletVerifier: Send + Sync + 'static {
    /// Whether the wallet accepts the signature.
    async fn is_valid_signature(&self, request: ContractSignature<'_>) -> Result<bool, String>;
}

#[async_trait]
impl<V: ContractWalletVerifier + ?Sized> ContractWalletVerifier for Arc<V> {
    async fn is_valid_signature(&self, request: ContractSignature<'_>) -> Result<bool, String> {
        (**self).is_valid_signature(request).await
    }
}

/// A verified sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignedIn {
    /// The wallet.
    pub signer: SiwxSigner,
    /// The CAIP-2 chain it signed for.
    pub chain_id: String,
    /// The header it sent.
    pub payload: SiwxPayload,
}

/// Why a sign-in was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SiwxRejection {
    /// The sign-in itself is invalid (reason codes `invalid_siwx_*`).
    #[error(transparent)]
    Invalid(#[from] SiwxError),
    /// The nonce store could not answer; the sign-in is refused (`store_unavailable`).
    #[error("sign-in nonce store: {0}")]
    Store(#[from] StoreError),
}

impl SiwxRejection {
    /// The reason code.
    pub fn reason(&self) -> Reason {
        match self {
            SiwxRejection::Invalid(e) => e.reason(),
            SiwxRejection::Store(_) => Reason::STORE_UNAVAILABLE,
        }
    }
}

/// Declares sign-in challenges and verifies sign-ins. Cheap to clone.
#[derive(Clone)]
pub struct SiwxVerifier {
    max_age: Duration,
    clock_skew: Duration,
    options: DeclareOptions,
    nonces: Arc<dyn NonceStore>,
    contract: Option<Arc<dyn ContractWalletVerifier>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SiwxVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiwxVerifier")
            .field("max_age", &self.max_age)
            .field("clock_skew", &self.clock_skew)
            .field("options", &self.options)
            .field("contract_wallets", &self.contract.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`SiwxVerifier`].
#[must_use]
#[derive(Default)]
pub struct SiwxVerifierBuilder {
    max_age: Option<Duration>,
    clock_skew: Option<Duration>,
    options: DeclareOptions,
    nonces: Option<Arc<dyn NonceStore>>,
    contract: Option<Arc<dyn ContractWalletVerifier>>,
    clock: Option<Arc<dyn Clock>>,
}

impl SiwxVerifierBuilder {
    /// Largest accepted age of a sign-in's `issuedAt` (default 5 minutes).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// How far `issuedAt` / `notBefore` may lie in the future (default 5 s).
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = Some(skew);
        self
    }

    /// The statement wallets show (one line).
    pub fn statement(mut self, statement: impl Into<String>) -> Self {
        self.options.statement = Some(statement.into());
        self
    }

    /// Give each challenge an `expirationTime` this far ahead.
    pub fn expiration(mut self, expiration: Duration) -> Self {
        self.options.expiration = Some(expiration);
        self
    }

    /// Offer these CAIP-2 chains instead of each route's networks.
    pub fn networks<I: IntoIterator<Item = S>, S: Into<String>>(mut self, networks: I) -> Self {
        self.options.networks = Some(networks.into_iter().map(Into::into).collect());
        self
    }

    /// Where used nonces are remembered (default: in memory, one process). Replicas need a
    /// shared store such as `RedisNonceStore`.
    pub fn nonce_store(mut self, store: impl NonceStore) -> Self {
        self.nonces = Some(Arc::new(store));
        self
    }

    /// Accept smart-contract wallets, checked by this verifier.
    pub fn contract_wallets(mut self, verifier: impl ContractWalletVerifier) -> Self {
        self.contract = Some(Arc::new(verifier));
        self
    }

    /// The clock (tests use a manual one).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The verifier.
    pub fn build(self) -> SiwxVerifier {
        SiwxVerifier {
            max_age: self.max_age.unwrap_or(siwx::DEFAULT_MAX_AGE),
            clock_skew: self.clock_skew.unwrap_or(siwx::DEFAULT_CLOCK_SKEW),
            options: self.options,
            nonces: self
                .nonces
                .unwrap_or_else(|| Arc::new(MemoryNonceStore::new())),
            contract: self.contract,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
        }
    }
}

impl SiwxVerifier {
    /// A builder with the defaults: 5-minute maximum age, 5 s skew, nonces in memory, EOA
    /// and (with the `siws` feature) Solana wallets only.
    pub fn builder() -> SiwxVerifierBuilder {
        SiwxVerifierBuilder::default()
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_unix().saturating_mul(1000)
    }

    /// The `extensions["sign-in-with-x"]` declaration for one 402 of the resource at
    /// `resource_url`, whose route accepts `route_networks`: a fresh nonce, issued now.
    pub fn declare<N: AsRef<str>>(
        &self,
        resource_url: &str,
        route_networks: &[N],
    ) -> Result<SiwxDeclaration, SiwxError> {
        siwx::declare(
            resource_url,
            route_networks,
            &self.options,
            siwx::random_nonce(),
            self.now_ms(),
        )
    }

    /// The request's `SIGN-IN-WITH-X` header, if it sent one.
    pub fn header(view: &dyn RequestView) -> Option<&str> {
        view.header(siwx::HEADER)
    }

    /// Verifies the request's sign-in, if it sent one (`None` otherwise). See
    /// [`verify_header`](Self::verify_header).
    pub async fn verify_request(
        &self,
        view: &dyn RequestView,
        resource_url: &str,
        accepted_chains: &[String],
    ) -> Option<Result<SignedIn, SiwxRejection>> {
        let header = Self::header(view)?;
        Some(
            self.verify_header(header, resource_url, accepted_chains)
                .await,
        )
    }

    /// Verifies a `SIGN-IN-WITH-X` header value received for `resource_url`:
    ///
    /// 1. decode it;
    /// 2. check the fields ([`siwx::check_message`]): `domain` is the resource's host,
    ///    `uri` is on its origin, `issuedAt` younger than the maximum age and not in the
    ///    future, `expirationTime` not passed, `notBefore` reached, the chain among
    ///    `accepted_chains` (the declaration's; empty accepts any verifiable chain);
    /// 3. check the signature: EOA recovery or ed25519 offline; EVM signatures that do not
    ///    recover to the address go to the smart-wallet verifier when one is configured;
    /// 4. claim the nonce (per chain and wallet) in the nonce store, for as long as the
    ///    message could still be accepted: a second use is refused.
    pub async fn verify_header(
        &self,
        header: &str,
        resource_url: &str,
        accepted_chains: &[String],
    ) -> Result<SignedIn, SiwxRejection> {
        let payload = siwx::parse_header(header)?;
        let mut expected = Expectations::for_resource(resource_url)?;
        expected.max_age = self.max_age;
        expected.clock_skew = self.clock_skew;
        expected.chains = accepted_chains.to_vec();
        let now_ms = self.now_ms();
        siwx::check_message(&payload, &expected, now_ms)?;
        let signer = match siwx::verify_signature(&payload) {
            Ok(signer) => signer,
            Err(SiwxError::Signature(detail)) => self.contract_wallet(&payload, detail).await?,
            Err(other) => return Err(other.into()),
        };
        let issued = siwx::parse_timestamp(&payload.issued_at).unwrap_or(0);
        let until = issued
            .saturating_add(i64::try_from(self.max_age.as_millis()).unwrap_or(i64::MAX))
            .saturating_add(i64::try_from(self.clock_skew.as_millis()).unwrap_or(i64::MAX));
        let ttl_ms = until
            .saturating_sub(i64::try_from(now_ms).unwrap_or(i64::MAX))
            .max(0)
            .unsigned_abs()
            .saturating_add(1000);
        let key = format!("{}:{signer}:{}", payload.chain_id, payload.nonce);
        if !self
            .nonces
            .claim(&key, Duration::from_millis(ttl_ms))
            .await?
        {
            return Err(SiwxError::NonceReused.into());
        }
        Ok(SignedIn {
            signer,
            chain_id: payload.chain_id.clone(),
            payload,
        })
    }

    /// The smart-wallet path of an EVM signature that did not recover to its address.
    async fn contract_wallet(
        &self,
        payload: &SiwxPayload,
        detail: String,
    ) -> Result<SiwxSigner, SiwxRejection> {
        let Some(verifier) = self
            .contract
            .as_ref()
            .filter(|_| payload.signature_type == SignatureType::Eip191)
        else {
            return Err(SiwxError::Signature(detail).into());
        };
        let (address, hash) = siwx::evm_signing_hash(payload)?;
        let message = siwx::message(payload)?;
        let chain_id = payload
            .chain_id
            .strip_prefix("eip155:")
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| SiwxError::ChainId(payload.chain_id.clone()))?;
        let signature = payload
            .signature
            .strip_prefix("0x")
            .and_then(|hex| alloy_primitives::hex::decode(hex).ok())
            .ok_or_else(|| SiwxError::MalformedSignature("not 0x-prefixed hex".into()))?;
        let request = ContractSignature {
            chain_id,
            address,
            message: &message,
            hash,
            signature: &signature,
            scheme: payload.signature_scheme,
        };
        match verifier.is_valid_signature(request).await {
            Ok(true) => Ok(SiwxSigner::Evm(address)),
            Ok(false) => Err(SiwxError::Signature(format!(
                "{detail}; the wallet contract did not accept it either"
            ))
            .into()),
            Err(error) => {
                tracing::warn!(target: "x402::siwx", %address, chain_id, %error, "smart-wallet verifier failed");
                Err(SiwxError::Verifier(error).into())
            }
        }
    }
}
