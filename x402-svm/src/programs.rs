//! The programs an x402 Solana payment touches, and the token accounts it moves funds between.

use solana_address::Address;

/// The Compute Budget program: `SetComputeUnitLimit` and `SetComputeUnitPrice`.
pub const COMPUTE_BUDGET: Address =
    Address::from_str_const("ComputeBudget111111111111111111111111111111");
/// The SPL Token program.
pub const TOKEN: Address = Address::from_str_const("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
/// The SPL Token-2022 program.
pub const TOKEN_2022: Address =
    Address::from_str_const("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");
/// The SPL Memo program (v2).
pub const MEMO: Address = Address::from_str_const("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr");
/// Lighthouse, whose assertions some wallets (Phantom, Solflare) append to transactions.
pub const LIGHTHOUSE: Address =
    Address::from_str_const("L2TExMFKdjpN9kozasaurPirfHy9P8sbXoAN1qA3S95");
/// The SPL Associated Token Account program.
pub const ASSOCIATED_TOKEN: Address =
    Address::from_str_const("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL");
/// The System program.
pub const SYSTEM: Address = Address::from_str_const("11111111111111111111111111111111");

/// Whether `program` is SPL Token or Token-2022.
pub fn is_token_program(program: &Address) -> bool {
    *program == TOKEN || *program == TOKEN_2022
}

/// The associated token account of `owner` for `mint` under `token_program` (Token or
/// Token-2022): where x402 payments to `owner` must land.
///
/// ```
/// use x402_svm::programs::{associated_token_account, TOKEN};
/// use solana_address::Address;
///
/// let owner: Address = "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse".parse().unwrap();
/// let mint: Address = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU".parse().unwrap();
/// assert_eq!(
///     associated_token_account(&owner, &mint, &TOKEN).to_string(),
///     "6ndWAgFxMAVLobD8WrdBj5w41GrDeJYiQX91nNSrwkZp"
/// );
/// ```
pub fn associated_token_account(
    owner: &Address,
    mint: &Address,
    token_program: &Address,
) -> Address {
    Address::find_program_address(
        &[owner.as_ref(), token_program.as_ref(), mint.as_ref()],
        &ASSOCIATED_TOKEN,
    )
    .0
}
