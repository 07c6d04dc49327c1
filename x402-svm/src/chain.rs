//! What a Solana settler needs from a chain, whatever serves it: a JSON-RPC node
//! ([`RpcChain`](crate::RpcChain)) or, for tests and local development, an in-process LiteSVM
//! (`LiteSvmChain`, feature `litesvm`).

use async_trait::async_trait;
use solana_address::Address;
use solana_hash::Hash;
use solana_signature::Signature;
use solana_transaction::versioned::VersionedTransaction;

/// Why a chain call did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The chain refused the transaction before executing it (a failed preflight
    /// simulation, a bad signature, an unknown blockhash): nothing was executed.
    #[error("the chain refused the transaction: {0}")]
    Rejected(String),
    /// The chain could not be reached; the request was never delivered.
    #[error("the chain could not be reached: {0}")]
    Unavailable(String),
    /// The request may have been delivered, but no answer came back (a timeout, a connection
    /// cut after sending, an answer that could not be read).
    #[error("no answer from the chain: {0}")]
    NoAnswer(String),
}

/// What became of a transaction the chain knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionStatus {
    /// Executed and confirmed: its instructions took effect.
    Succeeded,
    /// Included but failed: none of its instructions took effect (the fee was charged).
    Failed(String),
}

/// A mint as a client needs it: the program that owns it and its decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MintInfo {
    /// SPL Token or Token-2022.
    pub program: Address,
    /// Decimals, which `TransferChecked` checks.
    pub decimals: u8,
}

/// A Solana cluster, as far as settling payments and building them needs.
#[async_trait]
pub trait SvmChain: Send + Sync + 'static {
    /// The latest blockhash (commitment `confirmed`), for new transactions.
    async fn latest_blockhash(&self) -> Result<Hash, ChainError>;

    /// Whether `blockhash` can still carry a transaction. Once it cannot, a transaction built on
    /// it that the chain does not know will never land.
    async fn is_blockhash_valid(&self, blockhash: &Hash) -> Result<bool, ChainError>;

    /// Runs `transaction` without committing it, signatures checked; `Err(Rejected)` says why
    /// it would fail.
    async fn simulate(&self, transaction: &VersionedTransaction) -> Result<(), ChainError>;

    /// Submits `transaction` (after a preflight simulation) and returns its signature.
    async fn send(&self, transaction: &VersionedTransaction) -> Result<Signature, ChainError>;

    /// The status of a transaction by signature: `None` while the chain does not know it.
    async fn status(&self, signature: &Signature) -> Result<Option<TransactionStatus>, ChainError>;

    /// The owning program and decimals of `mint`, `None` when there is no such account.
    async fn mint(&self, mint: &Address) -> Result<Option<MintInfo>, ChainError>;
}

/// The owner and decimals of a mint account, from its owner and data (the decimals byte of
/// the base mint layout, shared by Token and Token-2022).
pub fn mint_info(owner: &Address, data: &[u8]) -> Option<MintInfo> {
    if !crate::programs::is_token_program(owner) || data.len() < 82 {
        return None;
    }
    Some(MintInfo {
        program: *owner,
        decimals: data[44],
    })
}

#[async_trait]
impl<C: SvmChain + ?Sized> SvmChain for std::sync::Arc<C> {
    async fn latest_blockhash(&self) -> Result<Hash, ChainError> {
        (**self).latest_blockhash().await
    }
    async fn is_blockhash_valid(&self, blockhash: &Hash) -> Result<bool, ChainError> {
        (**self).is_blockhash_valid(blockhash).await
    }
    async fn simulate(&self, transaction: &VersionedTransaction) -> Result<(), ChainError> {
        (**self).simulate(transaction).await
    }
    async fn send(&self, transaction: &VersionedTransaction) -> Result<Signature, ChainError> {
        (**self).send(transaction).await
    }
    async fn status(&self, signature: &Signature) -> Result<Option<TransactionStatus>, ChainError> {
        (**self).status(signature).await
    }
    async fn mint(&self, mint: &Address) -> Result<Option<MintInfo>, ChainError> {
        (**self).mint(mint).await
    }
}
