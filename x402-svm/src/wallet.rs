//! [`SolanaWallet`]: a keypair that pays `exact` Solana offers for `x402-client`'s `Payer`
//! (and so for `reqwest-x402` and `rmcp-x402`), and loading keypairs from the formats Solana
//! tools export.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use solana_address::Address;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer as _;
use x402_client::{SignerError, SolanaPaymentSigner, SolanaSignedPayment, async_trait};
use x402_protocol::facilitator::PaymentRequirements;
use x402_protocol::{AssetInfo, B256, ChainAddress, NetworkRegistry, SolanaAddress, SvmPayload};
use zeroize::Zeroizing;

use crate::chain::SvmChain;
use crate::client::build_payment;
use crate::verify::{SvmTerms, message_bytes, to_solana};
use crate::wire::encode_transaction;

/// Pays `exact` Solana offers from a keypair: resolves the offer's terms (the mint through
/// the registry, or through the chain when the registry does not know it), takes the
/// blockhash from the offer's `extra.recentBlockhash` when the server put one there and asks
/// the chain otherwise, then builds and signs the transaction the official `@x402/svm` client
/// builds ([`build_payment`]).
///
/// Give it to a payer with `Payer::solana_builder(wallet)` (Solana only) or
/// `Payer::builder(evm_signer).solana(wallet)` (both).
///
/// ```
/// use std::sync::Arc;
/// use x402_client::Payer;
/// use x402_svm::{RpcChain, SolanaWallet};
///
/// let keypair = solana_keypair::Keypair::new();
/// let wallet = SolanaWallet::new(keypair, Arc::new(RpcChain::new("https://api.devnet.solana.com")));
/// let address = wallet.address();
/// let payer = Payer::solana_builder(wallet).max_per_request("$0.05").build()?;
/// assert_eq!(payer.solana_address(), Some(x402_svm::verify::to_solana(&address)));
/// # Ok::<(), x402_client::ConfigError>(())
/// ```
pub struct SolanaWallet {
    keypair: Keypair,
    chain: Option<Arc<dyn SvmChain>>,
}

impl std::fmt::Debug for SolanaWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SolanaWallet")
            .field("address", &self.keypair.pubkey())
            .field("chain", &self.chain.is_some())
            .finish_non_exhaustive()
    }
}

impl SolanaWallet {
    /// A wallet that asks `chain` (an [`RpcChain`](crate::RpcChain) in practice) for recent
    /// blockhashes and for mints its registry does not know.
    pub fn new(keypair: Keypair, chain: Arc<dyn SvmChain>) -> Self {
        SolanaWallet {
            keypair,
            chain: Some(chain),
        }
    }

    /// A wallet without a chain: it pays only offers that carry `extra.recentBlockhash`, in
    /// mints its registry knows.
    pub fn offline(keypair: Keypair) -> Self {
        SolanaWallet {
            keypair,
            chain: None,
        }
    }

    /// The paying address.
    pub fn address(&self) -> Address {
        self.keypair.pubkey()
    }

    /// The terms of `requirements`; a mint the registry does not know is looked up on the
    /// chain (its program and decimals).
    async fn terms(
        &self,
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
    ) -> Result<SvmTerms, String> {
        let network = registry
            .network(requirements.network())
            .map_err(|e| e.to_string())?;
        let mint: Address = requirements
            .asset()
            .parse()
            .map_err(|_| format!("asset {:?} is not a Solana mint", requirements.asset()))?;
        if registry
            .asset(network, ChainAddress::Solana(to_solana(&mint)))
            .is_some()
        {
            return SvmTerms::resolve(requirements, registry).map_err(|e| e.message);
        }
        let Some(chain) = &self.chain else {
            return Err(format!(
                "mint {mint} is not known on {} and the wallet has no RPC node to look it up (register the token, or give the wallet a chain)",
                network.name
            ));
        };
        let info = chain
            .mint(&mint)
            .await
            .map_err(|e| format!("looking up mint {mint} on {}: {e}", network.name))?
            .ok_or_else(|| {
                format!(
                    "mint {mint} does not exist on {} (no token mint account at that address)",
                    network.name
                )
            })?;
        let mut known = registry.clone();
        known
            .register_asset(
                &network.caip2,
                AssetInfo::spl(
                    to_solana(&mint),
                    "?",
                    info.decimals,
                    to_solana(&info.program),
                    false,
                ),
            )
            .map_err(|e| e.to_string())?;
        SvmTerms::resolve(requirements, &known).map_err(|e| e.message)
    }

    /// The blockhash to build on: the offer's `extra.recentBlockhash`, else the chain's latest.
    async fn blockhash(&self, requirements: &PaymentRequirements) -> Result<Hash, String> {
        let offered = requirements
            .extra()
            .and_then(|extra| extra.get("recentBlockhash"));
        match offered {
            Some(serde_json::Value::String(text)) => text
                .parse()
                .map_err(|_| format!("extra.recentBlockhash {text:?} is not a blockhash")),
            Some(other) if !other.is_null() => {
                Err("extra.recentBlockhash is not a string".to_owned())
            }
            _ => match &self.chain {
                Some(chain) => chain
                    .latest_blockhash()
                    .await
                    .map_err(|e| format!("getting a recent blockhash: {e}")),
                None => Err(
                    "the offer carries no extra.recentBlockhash and the wallet has no RPC node to ask for one"
                        .to_owned(),
                ),
            },
        }
    }
}

#[async_trait]
impl SolanaPaymentSigner for SolanaWallet {
    fn address(&self) -> SolanaAddress {
        to_solana(&self.keypair.pubkey())
    }

    async fn sign_payment(
        &self,
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
    ) -> Result<SolanaSignedPayment, SignerError> {
        let terms = self
            .terms(requirements, registry)
            .await
            .map_err(SignerError)?;
        let blockhash = self.blockhash(requirements).await.map_err(SignerError)?;
        let tx = build_payment(&terms, &self.keypair, blockhash, None)
            .map_err(|e| SignerError(e.to_string()))?;
        let digest: [u8; 32] = Sha256::digest(message_bytes(&tx.message)).into();
        Ok(SolanaSignedPayment {
            payload: SvmPayload {
                transaction: encode_transaction(&tx),
            },
            id: B256::from(digest),
        })
    }
}

/// Why a keypair could not be loaded. Never contains the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeypairError {
    /// The text is not base58.
    #[error("the key is not base58 text (expected the 64-byte keypair a wallet exports)")]
    NotBase58,
    /// The bytes are not a keypair's 64 (32 secret, 32 public).
    #[error(
        "the key is {0} bytes; a Solana keypair is 64 (a 32-byte secret followed by its 32-byte public key)"
    )]
    Length(usize),
    /// The public half is not the secret's.
    #[error("the key's public half does not belong to its secret half")]
    Mismatch,
    /// The text is not a JSON array of bytes (solana-keygen's `id.json`).
    #[error("the key is not a JSON array of 64 numbers from 0 to 255 (the id.json format)")]
    NotJsonBytes,
    /// The file could not be read.
    #[error("cannot read the key file {path}: {error}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        error: String,
    },
    /// Text taken for a path (it holds `/` or ends in `.json`) names no file. The text is not
    /// repeated: it may be a mistyped key.
    #[error(
        "the key names no file (text with '/' or ending in .json is read as the path of a key file)"
    )]
    NoSuchFile,
    /// The environment variable is not set.
    #[error(
        "environment variable {0} is not set; put a base58 Solana keypair or the path of an id.json in it"
    )]
    NotSet(String),
}

fn from_bytes(bytes: &[u8]) -> Result<Keypair, KeypairError> {
    if bytes.len() != 64 {
        return Err(KeypairError::Length(bytes.len()));
    }
    Keypair::try_from(bytes).map_err(|_| KeypairError::Mismatch)
}

/// A keypair from its base58 text: the 64 bytes (secret then public key) that the Solana CLI
/// and wallets such as Phantom export.
///
/// ```
/// use solana_signer::Signer as _;
///
/// let keypair = solana_keypair::Keypair::new_from_array([3; 32]);
/// let loaded = x402_svm::wallet::keypair_from_base58(&keypair.to_base58_string())?;
/// assert_eq!(loaded.pubkey(), keypair.pubkey());
/// assert_eq!(
///     x402_svm::wallet::keypair_from_base58("0OIl").unwrap_err(),
///     x402_svm::wallet::KeypairError::NotBase58
/// );
/// # Ok::<(), x402_svm::wallet::KeypairError>(())
/// ```
pub fn keypair_from_base58(text: &str) -> Result<Keypair, KeypairError> {
    let bytes = Zeroizing::new(
        bs58::decode(text.trim())
            .into_vec()
            .map_err(|_| KeypairError::NotBase58)?,
    );
    from_bytes(&bytes)
}

/// A keypair from a JSON array of its 64 bytes, the format of `solana-keygen`'s `id.json`.
///
/// ```
/// use solana_signer::Signer as _;
///
/// let keypair = solana_keypair::Keypair::new_from_array([3; 32]);
/// let json = serde_json::to_string(&keypair.to_bytes().to_vec()).unwrap();
/// assert_eq!(x402_svm::wallet::keypair_from_json(&json)?.pubkey(), keypair.pubkey());
/// assert!(x402_svm::wallet::keypair_from_json("[1, 2, 3]").is_err());
/// # Ok::<(), x402_svm::wallet::KeypairError>(())
/// ```
pub fn keypair_from_json(text: &str) -> Result<Keypair, KeypairError> {
    let bytes: Zeroizing<Vec<u8>> =
        Zeroizing::new(serde_json::from_str(text.trim()).map_err(|_| KeypairError::NotJsonBytes)?);
    from_bytes(&bytes)
}

/// A keypair from a file: an `id.json` (JSON bytes) or a file holding the base58 text. A path
/// that does not exist is [`KeypairError::NoSuchFile`], which does not repeat it.
pub fn keypair_from_file(path: impl AsRef<Path>) -> Result<Keypair, KeypairError> {
    let path = path.as_ref();
    if !path.exists() {
        return Err(KeypairError::NoSuchFile);
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| KeypairError::File {
            path: path.display().to_string(),
            error: e.to_string(),
        })?,
    );
    if text.trim_start().starts_with('[') {
        keypair_from_json(&text)
    } else {
        keypair_from_base58(&text)
    }
}

/// A keypair from what a user typed: a JSON byte array, the path of a key file (anything that
/// names an existing file, or holds `/` or ends in `.json`), or base58 text.
///
/// ```
/// use solana_signer::Signer as _;
///
/// let keypair = solana_keypair::Keypair::new_from_array([5; 32]);
/// let text = keypair.to_base58_string();
/// assert_eq!(x402_svm::wallet::load_keypair(&text)?.pubkey(), keypair.pubkey());
/// assert!(matches!(
///     x402_svm::wallet::load_keypair("/no/such/id.json"),
///     Err(x402_svm::wallet::KeypairError::NoSuchFile)
/// ));
/// # Ok::<(), x402_svm::wallet::KeypairError>(())
/// ```
pub fn load_keypair(text: &str) -> Result<Keypair, KeypairError> {
    let trimmed = text.trim();
    if trimmed.starts_with('[') {
        return keypair_from_json(trimmed);
    }
    let path = Path::new(trimmed);
    if trimmed.contains('/') || trimmed.ends_with(".json") || path.is_file() {
        return keypair_from_file(path);
    }
    keypair_from_base58(trimmed)
}

/// A keypair from an environment variable holding what [`load_keypair`] accepts. Errors name
/// the variable, never its value.
pub fn keypair_from_env(var: &str) -> Result<Keypair, KeypairError> {
    let value = std::env::var(var)
        .map(Zeroizing::new)
        .map_err(|_| KeypairError::NotSet(var.to_owned()))?;
    load_keypair(&value)
}
