//! [`LiteSvmChain`]: a real SVM in process (LiteSVM, with the real SPL Token, Token-2022,
//! Associated Token Account and Memo programs), behind the same [`SvmChain`] trait as a
//! JSON-RPC node. For tests and local development: blocks are not produced, a transaction
//! executes when it is sent.

use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use litesvm::LiteSVM;
use solana_address::Address;
use solana_hash::Hash;
use solana_signature::Signature;
use solana_transaction::versioned::VersionedTransaction;

use solana_account::Account;
use solana_instruction::{AccountMeta, Instruction};
use solana_keypair::Keypair;
use solana_message::{Message, VersionedMessage};
use solana_signer::Signer as _;

use crate::chain::{ChainError, MintInfo, SvmChain, TransactionStatus, mint_info};
use crate::programs::{ASSOCIATED_TOKEN, MEMO, SYSTEM, associated_token_account};

/// A LiteSVM shared by a settler, a client and a test.
///
/// ```
/// use x402_svm::{LiteSvmChain, SvmChain};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let chain = LiteSvmChain::new();
/// let blockhash = chain.latest_blockhash().await.unwrap();
/// assert!(chain.is_blockhash_valid(&blockhash).await.unwrap());
/// chain.with(|svm| svm.expire_blockhash());
/// assert!(!chain.is_blockhash_valid(&blockhash).await.unwrap());
/// # });
/// ```
pub struct LiteSvmChain {
    svm: Mutex<LiteSVM>,
    mint_authority: Keypair,
}

impl std::fmt::Debug for LiteSvmChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiteSvmChain").finish_non_exhaustive()
    }
}

impl Default for LiteSvmChain {
    fn default() -> Self {
        Self::new()
    }
}

impl LiteSvmChain {
    /// A fresh SVM with the default programs, signature checks and blockhash checks on.
    pub fn new() -> Self {
        Self::from_svm(LiteSVM::new())
    }

    /// Wraps an SVM configured by the caller.
    pub fn from_svm(svm: LiteSVM) -> Self {
        LiteSvmChain {
            svm: Mutex::new(svm),
            mint_authority: Keypair::new(),
        }
    }

    /// Installs a mint at `address` (any address: the registry's USDC mints too) owned by
    /// `program` (Token or Token-2022), with this chain's own mint authority, so that
    /// [`fund`](Self::fund) can mint it.
    pub fn install_mint(&self, address: Address, decimals: u8, program: Address) {
        // The base mint layout (82 bytes), shared by Token and Token-2022: mint authority
        // (COption<Pubkey>), supply, decimals, is_initialized, freeze authority (None).
        let mut data = vec![0u8; 82];
        data[..4].copy_from_slice(&1u32.to_le_bytes());
        data[4..36].copy_from_slice(self.mint_authority.pubkey().as_ref());
        data[44] = decimals;
        data[45] = 1;
        let mut svm = self.lock();
        let lamports = svm.minimum_balance_for_rent_exemption(data.len());
        svm.set_account(
            address,
            Account {
                lamports,
                data,
                owner: program,
                executable: false,
                rent_epoch: 0,
            },
        )
        .expect("a mint account is a valid account");
    }

    /// Gives `owner` SOL for fees and rent.
    pub fn airdrop(&self, owner: &Address, lamports: u64) -> Result<(), ChainError> {
        self.lock()
            .airdrop(owner, lamports)
            .map(|_| ())
            .map_err(|failed| ChainError::Rejected(format!("{:?}", failed.err)))
    }

    /// Creates `owner`'s associated token account for `mint` if it is missing (through the
    /// Associated Token Account program) and mints `amount` into it (through the token
    /// program), as real transactions.
    pub fn fund(&self, owner: &Address, mint: &Address, amount: u64) -> Result<(), ChainError> {
        let program = self
            .lock()
            .get_account(mint)
            .map(|account| account.owner)
            .ok_or_else(|| ChainError::Rejected(format!("no mint {mint}")))?;
        let ata = associated_token_account(owner, mint, &program);
        let authority = self.mint_authority.pubkey();
        if self.lamports(&authority) < 100_000_000 {
            self.airdrop(&authority, 1_000_000_000)?;
        }
        let create = Instruction {
            program_id: ASSOCIATED_TOKEN,
            accounts: vec![
                AccountMeta::new(authority, true),
                AccountMeta::new(ata, false),
                AccountMeta::new_readonly(*owner, false),
                AccountMeta::new_readonly(*mint, false),
                AccountMeta::new_readonly(SYSTEM, false),
                AccountMeta::new_readonly(program, false),
            ],
            // CreateIdempotent.
            data: vec![1],
        };
        let mut mint_to = vec![7u8];
        mint_to.extend_from_slice(&amount.to_le_bytes());
        let mint_to = Instruction {
            program_id: program,
            accounts: vec![
                AccountMeta::new(*mint, false),
                AccountMeta::new(ata, false),
                AccountMeta::new_readonly(authority, true),
            ],
            data: mint_to,
        };
        // A memo of random bytes makes each funding a distinct transaction, so funding the
        // same owner the same amount twice on one blockhash is not refused as a duplicate.
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| ChainError::Rejected(e.to_string()))?;
        let memo = Instruction {
            program_id: MEMO,
            accounts: Vec::new(),
            data: nonce
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes(),
        };
        let mut svm = self.lock();
        let message = Message::new_with_blockhash(
            &[create, mint_to, memo],
            Some(&authority),
            &svm.latest_blockhash(),
        );
        let transaction = VersionedTransaction::try_new(
            VersionedMessage::Legacy(message),
            &[&self.mint_authority],
        )
        .map_err(|e| ChainError::Rejected(e.to_string()))?;
        svm.send_transaction(transaction)
            .map(|_| ())
            .map_err(|failed| {
                ChainError::Rejected(format!("{:?}: {:?}", failed.err, failed.meta.logs))
            })
    }

    /// The balance of `owner`'s associated token account for `mint`, `None` when it does not
    /// exist.
    pub fn token_balance(&self, owner: &Address, mint: &Address) -> Option<u64> {
        let svm = self.lock();
        let program = svm.get_account(mint)?.owner;
        let account = svm.get_account(&associated_token_account(owner, mint, &program))?;
        // The base token account layout: mint, owner, then the amount.
        Some(u64::from_le_bytes(
            account.data.get(64..72)?.try_into().ok()?,
        ))
    }

    /// The SOL balance of `address`, in lamports.
    pub fn lamports(&self, address: &Address) -> u64 {
        self.lock().get_balance(address).unwrap_or(0)
    }

    /// Runs `f` on the SVM (to fund accounts, create mints, expire blockhashes, read balances).
    pub fn with<R>(&self, f: impl FnOnce(&mut LiteSVM) -> R) -> R {
        f(&mut self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, LiteSVM> {
        self.svm.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl SvmChain for LiteSvmChain {
    async fn latest_blockhash(&self) -> Result<Hash, ChainError> {
        Ok(self.lock().latest_blockhash())
    }

    /// LiteSVM accepts only its latest blockhash.
    async fn is_blockhash_valid(&self, blockhash: &Hash) -> Result<bool, ChainError> {
        Ok(self.lock().latest_blockhash() == *blockhash)
    }

    async fn simulate(&self, transaction: &VersionedTransaction) -> Result<(), ChainError> {
        self.lock()
            .simulate_transaction(transaction.clone())
            .map(|_| ())
            .map_err(|failed| ChainError::Rejected(format!("{:?}", failed.err)))
    }

    async fn send(&self, transaction: &VersionedTransaction) -> Result<Signature, ChainError> {
        let mut svm = self.lock();
        let signature = transaction.signatures.first().copied().unwrap_or_default();
        match svm.send_transaction(transaction.clone()) {
            Ok(meta) => Ok(meta.signature),
            // Included and failed: its status says so (the fee was charged).
            Err(_) if svm.get_transaction(&signature).is_some() => Ok(signature),
            Err(failed) => Err(ChainError::Rejected(format!("{:?}", failed.err))),
        }
    }

    async fn status(&self, signature: &Signature) -> Result<Option<TransactionStatus>, ChainError> {
        Ok(self
            .lock()
            .get_transaction(signature)
            .map(|result| match result {
                Ok(_) => TransactionStatus::Succeeded,
                Err(failed) => TransactionStatus::Failed(format!("{:?}", failed.err)),
            }))
    }

    async fn mint(&self, mint: &Address) -> Result<Option<MintInfo>, ChainError> {
        Ok(self
            .lock()
            .get_account(mint)
            .and_then(|account| mint_info(&account.owner, &account.data)))
    }
}
