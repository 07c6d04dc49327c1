//! Settling x402 payments on an EVM chain over JSON-RPC (alloy), for the runtime's embedded
//! facilitator: EIP-3009 `transferWithAuthorization`, and Permit2 `exact` and `upto` payments
//! through the x402 Permit2 proxies.
//!
//! [`EvmSettler`] is a [`Settler`](x402_runtime::facilitator::Settler): it checks payments
//! against the chain (authorization state or Permit2 allowance and nonce, balance, a simulated
//! transfer), submits them, waits for receipts, and reports one of three outcomes (settled,
//! provably failed, or unknown), and it resolves unknown outcomes later from the chain.
//!
//! Contract-wallet payers are checked here, since only the chain can: a payer with code is
//! asked `isValidSignature` (ERC-1271); one not deployed yet must sign with ERC-6492 through a
//! factory on the allowlist ([`EvmSettlerBuilder::allow_eip6492_factory`], empty by default),
//! is checked by simulating its deployment, and is deployed before its payment is settled.
//!
//! | module | what |
//! | --- | --- |
//! | `builder` | [`EvmSettlerBuilder`]: RPC URL, keys, chain, timeouts, fee policy; connecting |
//! | `config` | [`EvmSettler::from_config`]: a settler for a configured network |
//! | `settler` | [`EvmSettler`]: checks, submission, receipts, resolution |
//! | `sender` | one sending account: signing, nonces, receipts, re-pricing, gap filling |
//! | `nonce` | the local nonce allocator |
//! | `eip3009` | the calldata of `transferWithAuthorization` |
//! | `permit2` | the calldata of the x402 Permit2 proxies' `settle` |
//! | `wallet` | contract wallets: ERC-1271 calls, the deployless ERC-6492 validator |
//! | `text` | revert reasons in words, keys, redacted RPC URLs |

mod abi;
mod builder;
mod config;
mod eip3009;
mod nonce;
mod permit2;
mod sender;
mod settler;
mod text;
mod wallet;

pub use builder::{
    DEFAULT_BUMP_AFTER, DEFAULT_CALL_TIMEOUT, DEFAULT_POLL_INTERVAL, DEFAULT_RECEIPT_TIMEOUT,
    EvmSettlerBuilder, EvmSettlerError,
};
pub use settler::EvmSettler;
