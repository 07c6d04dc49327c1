//! The x402 protocol, without I/O.
//!
//! x402 revives HTTP `402 Payment Required`: a server answers an unpaid request with the ways
//! it accepts payment, the client signs a stablecoin transfer authorization (EIP-3009) and
//! retries with it in a header, and a facilitator verifies and settles it on chain.
//!
//! This crate holds what every party shares, for both protocol generations:
//!
//! - wire types: [`v1`], [`v2`], [`exact`] payloads and the [`facilitator`] API bodies;
//! - the header [`codec`] (standard base64 over JSON);
//! - [`NetworkRegistry`]: v1 names ↔ CAIP-2 ids ↔ chain ids ↔ default USDC and its EIP-712
//!   domain, plus networks and tokens you register;
//! - exact money: [`Price`] (`"$0.01"`, `"0.01 USDC"`, `"10000 atomic"`) and [`Decimal`];
//! - [`eip3009`]: typed-data hashing, signing, signer recovery and the facilitator checks;
//! - [`permit2`]: the same for Permit2 payments, `exact` through the x402 proxy and metered
//!   `upto`; [`eip2612`] and [`erc20_approval`]: the gas-sponsoring extensions that approve
//!   Permit2 for payers without an allowance;
//! - [`Reason`] codes for everything that can be rejected;
//! - extensions: [`siwx`] (sign-in-with-x: returning payers prove their wallet), [`bazaar`]
//!   (discovery metadata) and [`payment_identifier`] (idempotent payments).
//!
//! # Cargo features
//!
//! - `secp256k1`: recover signers with libsecp256k1 (C) instead of `k256`;
//! - `siws`: sign-in-with-x for Solana wallets (ed25519 via `ed25519-dalek`, base58 via
//!   `bs58`).
//!
//! ```
//! use x402_protocol::{codec, v2, NetworkRegistry, Price};
//!
//! let registry = NetworkRegistry::builtin();
//! let base = registry.network("base")?;
//! let price = registry.resolve_price(&"$0.01".parse::<Price>()?, base, None)?;
//! assert_eq!(price.amount.to::<u64>(), 10_000); // USDC has 6 decimals
//!
//! let required = v2::PaymentRequired {
//!     x402_version: Default::default(),
//!     error: Some("payment_required".into()),
//!     resource: None,
//!     accepts: vec![],
//!     extensions: None,
//! };
//! let header = codec::encode(&required);
//! let back: v2::PaymentRequired = codec::decode(&header, codec::DEFAULT_MAX_HEADER_BYTES)?;
//! assert_eq!(back, required);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod address;
pub mod amount;
pub mod bazaar;
pub mod checksum;
pub mod client;
pub mod codec;
pub mod eip2612;
pub mod eip3009;
pub mod eip6492;
pub mod erc20_approval;
pub mod exact;
pub mod facilitator;
pub mod network;
pub mod payload;
pub mod payment_identifier;
pub mod permit2;
pub mod price;
pub mod reason;
pub mod serde_util;
pub mod siwx;
pub mod v1;
pub mod v2;
pub mod verify;
mod version;

pub use address::{ChainAddress, Family, SolanaAddress};
pub use alloy_primitives::{Address, B256, Bytes, U256};
pub use amount::Decimal;
pub use network::{
    AssetInfo, NetworkError, NetworkInfo, NetworkKind, NetworkRegistry, ResolvedPrice,
};
pub use payload::{SchemePayload, SvmPayload};
pub use price::{Price, PriceError, PriceUnit};
pub use reason::Reason;
pub use version::{ProtocolVersion, V1, V2, Version, headers};
