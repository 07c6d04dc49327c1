//! Who signs payments: the [`PaymentSigner`] trait, its implementations, and loading keys.
//!
//! A payment is an EIP-3009 authorization; signing it means signing one 32-byte EIP-712
//! digest. Anything that can do that for a fixed address can pay: a key in memory
//! ([`LocalSigner`]), or any alloy signer (hardware wallet, KMS, …) through
//! [`AlloySigner`] with the `alloy` feature.
//!
//! A Solana payment is a transaction; a [`SolanaPaymentSigner`] builds and signs it
//! (`x402-svm`'s `SolanaWallet` is one).

use std::sync::Arc;

use alloy_primitives::{Address, B256};
use async_trait::async_trait;
use x402_protocol::facilitator::PaymentRequirements;
use x402_protocol::{NetworkRegistry, SolanaAddress, SvmPayload};
use zeroize::Zeroizing;

pub use x402_protocol::eip3009::{KeyError, LocalSigner};

/// Why a signer could not sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the payment signer failed: {0}")]
pub struct SignerError(pub String);

/// Signs EIP-712 digests for one address.
///
/// Implemented for [`LocalSigner`], for `Arc<S>`, and (feature `alloy`) for any alloy signer
/// wrapped in [`AlloySigner`]. Implement it to sign with a remote or hardware key.
///
/// ```
/// use x402_client::{LocalSigner, PaymentSigner, SignerError};
/// use x402_protocol::{Address, B256};
///
/// /// Signs with an inner key and counts signatures.
/// struct Counting(LocalSigner, std::sync::atomic::AtomicUsize);
///
/// #[async_trait::async_trait]
/// impl PaymentSigner for Counting {
///     fn address(&self) -> Address {
///         self.0.address()
///     }
///     async fn sign_digest(&self, digest: B256) -> Result<[u8; 65], SignerError> {
///         self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
///         self.0.sign_digest(digest).await
///     }
/// }
/// ```
#[async_trait]
pub trait PaymentSigner: Send + Sync + 'static {
    /// The address that pays; the signature must recover to it (unless it is a
    /// [contract wallet](Self::is_contract_wallet)).
    fn address(&self) -> Address;

    /// Signs a 32-byte digest; returns `r ‖ s ‖ v` (65 bytes, `v` = 27 or 28).
    async fn sign_digest(&self, digest: B256) -> Result<[u8; 65], SignerError>;

    /// Whether [`address`](Self::address) is a smart-contract wallet, whose signatures the
    /// verifier checks on chain (ERC-1271, or ERC-6492 before the wallet is deployed) rather
    /// than by recovering a key. The payer then skips its own recovery check. Default: no.
    fn is_contract_wallet(&self) -> bool {
        false
    }

    /// The signature sent with a payment over `digest`: by default the 65 bytes of
    /// [`sign_digest`](Self::sign_digest); a contract wallet returns whatever its
    /// `isValidSignature` accepts, ERC-6492-wrapped while it is not deployed.
    async fn sign_payment_digest(&self, digest: B256) -> Result<Vec<u8>, SignerError> {
        Ok(self.sign_digest(digest).await?.to_vec())
    }
}

/// A smart-contract wallet (ERC-1271) that accepts its owner's ECDSA signature over the digest
/// itself, as a [`PaymentSigner`]: payments name the wallet as payer and carry the owner's
/// signature, ERC-6492-wrapped with the wallet's factory call while the wallet is not
/// deployed ([`counterfactual`](Self::counterfactual)). Wallets that sign a wrapped hash
/// (a replay-safe domain of their own) need a `PaymentSigner` of their own.
///
/// ```
/// use x402_client::{LocalSigner, PaymentSigner, SmartWalletSigner};
/// use x402_protocol::Address;
///
/// let owner = LocalSigner::random();
/// let wallet: Address = "0x1111111111111111111111111111111111111111".parse().unwrap();
/// let signer = SmartWalletSigner::new(wallet, owner);
/// assert_eq!(signer.address(), wallet);
/// assert!(signer.is_contract_wallet());
/// ```
#[derive(Debug, Clone)]
pub struct SmartWalletSigner<S> {
    wallet: Address,
    owner: S,
    deploy: Option<(Address, Vec<u8>)>,
}

impl<S: PaymentSigner> SmartWalletSigner<S> {
    /// The deployed wallet at `wallet`, signed for by `owner`.
    pub fn new(wallet: Address, owner: S) -> Self {
        SmartWalletSigner {
            wallet,
            owner,
            deploy: None,
        }
    }

    /// A wallet not deployed yet: `factory_calldata` sent to `factory` deploys it at the
    /// wallet's address. Signatures are ERC-6492-wrapped, so that a verifier can deploy it in
    /// a simulation, and a facilitator that allows the factory deploys it before settling.
    pub fn counterfactual(mut self, factory: Address, factory_calldata: Vec<u8>) -> Self {
        self.deploy = Some((factory, factory_calldata));
        self
    }
}

#[async_trait]
impl<S: PaymentSigner> PaymentSigner for SmartWalletSigner<S> {
    fn address(&self) -> Address {
        self.wallet
    }

    async fn sign_digest(&self, digest: B256) -> Result<[u8; 65], SignerError> {
        self.owner.sign_digest(digest).await
    }

    fn is_contract_wallet(&self) -> bool {
        true
    }

    async fn sign_payment_digest(&self, digest: B256) -> Result<Vec<u8>, SignerError> {
        let inner = self.owner.sign_digest(digest).await?;
        Ok(match &self.deploy {
            None => inner.to_vec(),
            Some((factory, calldata)) => {
                x402_protocol::eip6492::wrap(*factory, calldata, &inner).to_vec()
            }
        })
    }
}

#[async_trait]
impl PaymentSigner for LocalSigner {
    fn address(&self) -> Address {
        LocalSigner::address(self)
    }

    async fn sign_digest(&self, digest: B256) -> Result<[u8; 65], SignerError> {
        Ok(self.sign_hash(&digest))
    }
}

#[async_trait]
impl<S: PaymentSigner + ?Sized> PaymentSigner for Arc<S> {
    fn address(&self) -> Address {
        (**self).address()
    }

    async fn sign_digest(&self, digest: B256) -> Result<[u8; 65], SignerError> {
        (**self).sign_digest(digest).await
    }

    fn is_contract_wallet(&self) -> bool {
        (**self).is_contract_wallet()
    }

    async fn sign_payment_digest(&self, digest: B256) -> Result<Vec<u8>, SignerError> {
        (**self).sign_payment_digest(digest).await
    }
}

/// Any alloy [`Signer`](alloy_signer::Signer) (local key, Ledger, Trezor, AWS/GCP KMS, …) as a
/// [`PaymentSigner`].
///
/// ```
/// # #[cfg(feature = "alloy")] {
/// use x402_client::{AlloySigner, PaymentSigner};
///
/// # fn take(_: impl PaymentSigner) {}
/// # fn demo(wallet: impl alloy_signer::Signer + Send + Sync + 'static) {
/// take(AlloySigner(wallet));
/// # }
/// # }
/// ```
#[cfg(feature = "alloy")]
#[derive(Debug, Clone)]
pub struct AlloySigner<S>(pub S);

#[cfg(feature = "alloy")]
#[async_trait]
impl<S> PaymentSigner for AlloySigner<S>
where
    S: alloy_signer::Signer + Send + Sync + 'static,
{
    fn address(&self) -> Address {
        self.0.address()
    }

    async fn sign_digest(&self, digest: B256) -> Result<[u8; 65], SignerError> {
        self.0
            .sign_hash(&digest)
            .await
            .map(|signature| signature.as_bytes())
            .map_err(|e| SignerError(e.to_string()))
    }
}

/// Why a key could not be loaded from the environment. Never contains the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyLoadError {
    /// The variable is not set (or not valid UTF-8).
    #[error(
        "environment variable {var} is not set; put a private key (0x + 64 hex digits) in it, or make a dev key with `x402ctl keygen`"
    )]
    NotSet {
        /// The variable.
        var: String,
    },
    /// The variable holds something that is not a private key.
    #[error("environment variable {var} does not hold a usable private key: {error}")]
    Invalid {
        /// The variable.
        var: String,
        /// What is wrong with it.
        error: KeyError,
    },
}

/// Loads a private key from 64 hex digits (with or without `0x`).
///
/// The parsed key lives in a [`LocalSigner`], whose `Debug` shows only the address and which
/// wipes the key when dropped.
///
/// ```
/// let signer = x402_client::key_from_hex(
///     "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
/// )?;
/// assert_eq!(
///     signer.address().to_checksum(None),
///     "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
/// );
/// assert!(!format!("{signer:?}").contains("59c6995e"));
/// # Ok::<(), x402_client::KeyError>(())
/// ```
pub fn key_from_hex(hex: &str) -> Result<LocalSigner, KeyError> {
    LocalSigner::from_hex(hex)
}

/// Loads a private key from an environment variable (64 hex digits, with or without `0x`).
///
/// The copy read from the environment is wiped after parsing; errors name the variable, never
/// its value.
///
/// ```no_run
/// let signer = x402_client::key_from_env("X402_PRIVATE_KEY")?;
/// println!("paying from {}", signer.address());
/// # Ok::<(), x402_client::KeyLoadError>(())
/// ```
pub fn key_from_env(var: &str) -> Result<LocalSigner, KeyLoadError> {
    let value = std::env::var(var)
        .map(Zeroizing::new)
        .map_err(|_| KeyLoadError::NotSet {
            var: var.to_owned(),
        })?;
    LocalSigner::from_hex(&value).map_err(|error| KeyLoadError::Invalid {
        var: var.to_owned(),
        error,
    })
}

/// A Solana payment, signed: the `payload` of an `exact` payment on Solana and what identifies
/// it.
#[derive(Clone)]
pub struct SolanaSignedPayment {
    /// The partially signed transaction (the payer's signature set, the fee payer's slot
    /// empty), base64, as `payload.transaction`.
    pub payload: SvmPayload,
    /// SHA-256 of the transaction's message: the digest `x402_svm::verify::payment_key` puts
    /// in a payment's key, unique per payment (the memo makes every message differ). Payment
    /// records keep it where an EVM payment keeps its nonce.
    pub id: B256,
}

impl std::fmt::Debug for SolanaSignedPayment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Whoever holds the transaction can have it settled: show only its id.
        f.debug_struct("SolanaSignedPayment")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Signs `exact` payments on Solana for one address: builds the transaction an offer asks for
/// (an SPL `TransferChecked` to `payTo`, fees paid by `extra.feePayer`) and signs it.
///
/// The [`Payer`](crate::Payer) chooses the offer and enforces caps and budget; the signer only
/// builds and signs what it is given. `x402-svm`'s `SolanaWallet` implements it with a
/// keypair and an RPC node (for the recent blockhash and unknown mints). Implement it to sign
/// with a remote or hardware key.
///
/// ```
/// use x402_client::{SolanaPaymentSigner, SolanaSignedPayment, SignerError};
/// use x402_protocol::facilitator::PaymentRequirements;
/// use x402_protocol::{NetworkRegistry, SolanaAddress};
///
/// /// A signer that refuses everything (say, while a hardware wallet is locked).
/// struct Locked(SolanaAddress);
///
/// #[async_trait::async_trait]
/// impl SolanaPaymentSigner for Locked {
///     fn address(&self) -> SolanaAddress {
///         self.0
///     }
///     async fn sign_payment(
///         &self,
///         _requirements: &PaymentRequirements,
///         _registry: &NetworkRegistry,
///     ) -> Result<SolanaSignedPayment, SignerError> {
///         Err(SignerError("the wallet is locked".into()))
///     }
/// }
/// ```
#[async_trait]
pub trait SolanaPaymentSigner: Send + Sync + 'static {
    /// The address that pays: the transfer's authority, owner of the source token account.
    fn address(&self) -> SolanaAddress;

    /// Builds and signs the transaction paying `requirements` (a Solana `exact` entry),
    /// resolving its mint through `registry`.
    async fn sign_payment(
        &self,
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
    ) -> Result<SolanaSignedPayment, SignerError>;
}

#[async_trait]
impl<S: SolanaPaymentSigner + ?Sized> SolanaPaymentSigner for Arc<S> {
    fn address(&self) -> SolanaAddress {
        (**self).address()
    }

    async fn sign_payment(
        &self,
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
    ) -> Result<SolanaSignedPayment, SignerError> {
        (**self).sign_payment(requirements, registry).await
    }
}
