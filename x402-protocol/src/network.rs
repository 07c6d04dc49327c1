//! Networks (EVM chains and Solana clusters) and the tokens they pay in.
//!
//! Each network has a short name (the v1 wire id, e.g. `base`), a CAIP-2 id (the v2 wire id,
//! e.g. `eip155:8453` or `solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1`), a [`NetworkKind`] (an EVM
//! chain id, or Solana), and a default stablecoin (with its EIP-712 domain name and version on
//! EVM, its token program on Solana). [`NetworkRegistry::builtin`] knows the public networks;
//! local chains and extra tokens are added with [`NetworkRegistry::register_network`] and
//! [`NetworkRegistry::register_asset`].

use std::borrow::Cow;
use std::fmt;

use alloy_primitives::{Address, U256, address};

use crate::address::{ChainAddress, Family, SolanaAddress};
use crate::price::{Price, PriceError, PriceUnit};

/// The SPL Token program.
pub const SPL_TOKEN_PROGRAM: SolanaAddress =
    SolanaAddress::from_base58_const("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
/// The SPL Token-2022 program.
pub const SPL_TOKEN_2022_PROGRAM: SolanaAddress =
    SolanaAddress::from_base58_const("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");

/// A token x402 can charge in: an ERC-20 on EVM (paid with EIP-3009 or Permit2), or an SPL
/// mint on Solana.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetInfo {
    /// The token contract (EVM; also the EIP-712 `verifyingContract`) or mint (Solana).
    pub address: ChainAddress,
    /// Ticker symbol, e.g. `USDC`. Prices such as `"0.01 USDC"` name it.
    pub symbol: Cow<'static, str>,
    /// Number of fractional digits (6 for USDC).
    pub decimals: u8,
    /// The EIP-712 domain `name` (the token's `name()`), e.g. `USD Coin`; empty on Solana.
    pub eip712_name: Cow<'static, str>,
    /// The EIP-712 domain `version` (the token's `version()`), e.g. `2`; empty on Solana.
    pub eip712_version: Cow<'static, str>,
    /// Whether one token is worth one US dollar, so `"$0.01"` prices may use it.
    pub usd_stablecoin: bool,
    /// The program that owns the mint (Token or Token-2022) on Solana; `None` on EVM.
    pub token_program: Option<SolanaAddress>,
}

impl AssetInfo {
    /// A USD stablecoin with 6 decimals and symbol `USDC` on an EVM chain, the shape of
    /// Circle's USDC deployments; give the token's EIP-712 `name()` and `version()`.
    pub fn usdc(address: Address, eip712_name: &str, eip712_version: &str) -> Self {
        AssetInfo {
            address: ChainAddress::Evm(address),
            symbol: Cow::Borrowed("USDC"),
            decimals: 6,
            eip712_name: Cow::Owned(eip712_name.to_owned()),
            eip712_version: Cow::Owned(eip712_version.to_owned()),
            usd_stablecoin: true,
            token_program: None,
        }
    }

    /// An SPL token on Solana: its mint, symbol, decimals and owning program
    /// ([`SPL_TOKEN_PROGRAM`] or [`SPL_TOKEN_2022_PROGRAM`]).
    pub fn spl(
        mint: SolanaAddress,
        symbol: &str,
        decimals: u8,
        program: SolanaAddress,
        usd_stablecoin: bool,
    ) -> Self {
        AssetInfo {
            address: ChainAddress::Solana(mint),
            symbol: Cow::Owned(symbol.to_owned()),
            decimals,
            eip712_name: Cow::Borrowed(""),
            eip712_version: Cow::Borrowed(""),
            usd_stablecoin,
            token_program: Some(program),
        }
    }

    /// The token contract, when this is an EVM token.
    pub fn evm_address(&self) -> Option<Address> {
        self.address.as_evm()
    }
}

/// What kind of chain a network is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkKind {
    /// An EVM chain with its EIP-155 chain id.
    Evm {
        /// The EIP-155 chain id.
        chain_id: u64,
    },
    /// A Solana cluster (its CAIP-2 reference is the genesis hash prefix).
    Solana,
}

/// A network x402 pays on: an EVM chain or a Solana cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    /// Short name; the v1 wire id (`base`, `base-sepolia`, `solana-devnet`, …).
    pub name: Cow<'static, str>,
    /// CAIP-2 id; the v2 wire id (`eip155:8453`, `solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1`).
    pub caip2: Cow<'static, str>,
    /// EVM chain id or Solana.
    pub kind: NetworkKind,
    /// Whether legacy v1 clients (npm `x402` 1.x, PyPI `x402` 1.x) recognise `name`. Those
    /// clients reject a whole 402 body that lists a network they do not know, so v1 bodies
    /// leave such networks out when any other option remains.
    pub legacy_v1: bool,
    /// Whether this is a test network.
    pub testnet: bool,
    /// The network's default stablecoin, used for `$` prices.
    pub default_asset: AssetInfo,
}

impl NetworkInfo {
    /// Describes a network not in the built-in table, such as a local dev chain.
    ///
    /// ```
    /// use alloy_primitives::address;
    /// use x402_protocol::{AssetInfo, NetworkInfo, NetworkRegistry};
    ///
    /// let token = AssetInfo::usdc(address!("0x5FbDB2315678afecb367f032d93F642f64180aa3"), "USD Coin", "2");
    /// let mut registry = NetworkRegistry::builtin();
    /// registry.register_network(NetworkInfo::new("anvil", 31337, token)).unwrap();
    /// assert_eq!(registry.network("eip155:31337").unwrap().name, "anvil");
    /// ```
    pub fn new(name: impl Into<String>, chain_id: u64, default_asset: AssetInfo) -> Self {
        NetworkInfo {
            name: Cow::Owned(name.into()),
            caip2: Cow::Owned(format!("eip155:{chain_id}")),
            kind: NetworkKind::Evm { chain_id },
            legacy_v1: false,
            testnet: true,
            default_asset,
        }
    }

    /// Describes a Solana cluster not in the built-in table (a local validator, a test
    /// harness): `reference` is its CAIP-2 reference (the first 32 base58 characters of the
    /// genesis hash).
    pub fn solana(
        name: impl Into<String>,
        reference: impl AsRef<str>,
        default_asset: AssetInfo,
    ) -> Self {
        NetworkInfo {
            name: Cow::Owned(name.into()),
            caip2: Cow::Owned(format!("solana:{}", reference.as_ref())),
            kind: NetworkKind::Solana,
            legacy_v1: false,
            testnet: true,
            default_asset,
        }
    }

    /// The chain family.
    pub fn family(&self) -> Family {
        match self.kind {
            NetworkKind::Evm { .. } => Family::Evm,
            NetworkKind::Solana => Family::Solana,
        }
    }

    /// The EIP-155 chain id, for EVM networks.
    pub fn chain_id(&self) -> Option<u64> {
        match self.kind {
            NetworkKind::Evm { chain_id } => Some(chain_id),
            NetworkKind::Solana => None,
        }
    }

    /// The id to put on the wire for a protocol version (v1 name or CAIP-2).
    pub fn wire_id(&self, version: crate::ProtocolVersion) -> &str {
        match version {
            crate::ProtocolVersion::V1 => &self.name,
            crate::ProtocolVersion::V2 => &self.caip2,
        }
    }
}

impl fmt::Display for NetworkInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.caip2)
    }
}

const fn usdc(address: Address, eip712_name: &'static str) -> AssetInfo {
    AssetInfo {
        address: ChainAddress::Evm(address),
        symbol: Cow::Borrowed("USDC"),
        decimals: 6,
        eip712_name: Cow::Borrowed(eip712_name),
        eip712_version: Cow::Borrowed("2"),
        usd_stablecoin: true,
        token_program: None,
    }
}

const fn spl_usdc(mint: &'static str) -> AssetInfo {
    AssetInfo {
        address: ChainAddress::Solana(SolanaAddress::from_base58_const(mint)),
        symbol: Cow::Borrowed("USDC"),
        decimals: 6,
        eip712_name: Cow::Borrowed(""),
        eip712_version: Cow::Borrowed(""),
        usd_stablecoin: true,
        token_program: Some(SPL_TOKEN_PROGRAM),
    }
}

const fn builtin(
    name: &'static str,
    caip2: &'static str,
    chain_id: u64,
    legacy_v1: bool,
    testnet: bool,
    default_asset: AssetInfo,
) -> NetworkInfo {
    NetworkInfo {
        name: Cow::Borrowed(name),
        caip2: Cow::Borrowed(caip2),
        kind: NetworkKind::Evm { chain_id },
        legacy_v1,
        testnet,
        default_asset,
    }
}

const fn builtin_solana(
    name: &'static str,
    caip2: &'static str,
    testnet: bool,
    default_asset: AssetInfo,
) -> NetworkInfo {
    NetworkInfo {
        name: Cow::Borrowed(name),
        caip2: Cow::Borrowed(caip2),
        kind: NetworkKind::Solana,
        legacy_v1: true,
        testnet,
        default_asset,
    }
}

/// The built-in networks. Addresses, chain ids and EIP-712 names follow the x402 reference
/// tables (TypeScript `@x402/evm` defaults and legacy `x402` network config); Optimism, which
/// those tables lack, uses Circle's native USDC, whose domain is also `USD Coin`/`2`. Solana
/// cluster ids and USDC mints follow `@x402/svm`'s table.
#[rustfmt::skip]
pub static BUILTIN_NETWORKS: &[NetworkInfo] = &[
    builtin("base", "eip155:8453", 8453, true, false,
        usdc(address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"), "USD Coin")),
    builtin("base-sepolia", "eip155:84532", 84532, true, true,
        usdc(address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e"), "USDC")),
    builtin("ethereum", "eip155:1", 1, false, false,
        usdc(address!("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"), "USD Coin")),
    builtin("polygon", "eip155:137", 137, true, false,
        usdc(address!("0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359"), "USD Coin")),
    builtin("polygon-amoy", "eip155:80002", 80002, true, true,
        usdc(address!("0x41E94Eb019C0762f9Bfcf9Fb1E58725BfB0e7582"), "USDC")),
    builtin("arbitrum", "eip155:42161", 42161, false, false,
        usdc(address!("0xaf88d065e77c8cC2239327C5EDb3A432268e5831"), "USD Coin")),
    builtin("arbitrum-sepolia", "eip155:421614", 421614, false, true,
        usdc(address!("0x75faf114eafb1BDbe2F0316DF893fd58CE46AA4d"), "USD Coin")),
    builtin("optimism", "eip155:10", 10, false, false,
        usdc(address!("0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85"), "USD Coin")),
    builtin("avalanche", "eip155:43114", 43114, true, false,
        usdc(address!("0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E"), "USD Coin")),
    builtin("avalanche-fuji", "eip155:43113", 43113, true, true,
        usdc(address!("0x5425890298aed601595a70AB815c96711a31Bc65"), "USD Coin")),
    builtin_solana("solana", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", false,
        spl_usdc("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")),
    builtin_solana("solana-devnet", "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", true,
        spl_usdc("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU")),
];

/// Looks up a built-in network by v1 name or CAIP-2 id, without a registry.
///
/// This is what compile-time checks use; at run time prefer a [`NetworkRegistry`], which also
/// knows user-registered networks.
pub fn builtin_network(id: &str) -> Option<&'static NetworkInfo> {
    BUILTIN_NETWORKS
        .iter()
        .find(|n| n.name == id || n.caip2 == id)
}

/// Why a network id was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// The id is well formed but no network with it is known.
    #[error("unknown network {id:?}; known networks: {known}{hint}")]
    Unknown {
        /// The id as given.
        id: String,
        /// Known names, comma-separated.
        known: String,
        /// Extra advice (for CAIP-2 ids: how to register the chain).
        hint: String,
    },
    /// A CAIP-2 id outside the namespaces this crate knows (`eip155`, `solana`).
    #[error(
        "network {0:?} is neither an EVM network (eip155:<chain id>) nor a Solana cluster (solana:<genesis hash>)"
    )]
    UnsupportedNamespace(String),
    /// A malformed id.
    #[error(
        "{0:?} is not a network id; use a name such as \"base\" or a CAIP-2 id such as \"eip155:8453\""
    )]
    Malformed(String),
    /// A token registered on a network of another chain family.
    #[error("{address} cannot be a token on {network}: it is an address of another chain family")]
    WrongFamily {
        /// The network.
        network: String,
        /// The token address.
        address: String,
    },
    /// Registration would give two networks the same name or chain id.
    #[error("a different network is already registered as {0:?}")]
    Conflict(String),
}

/// Checks the shape of a network id without looking it up: a short name
/// (`[a-z0-9-]+`), `eip155:<decimal chain id>` or `solana:<base58 reference>`. Returns the
/// chain id for EVM CAIP-2 ids.
pub fn check_network_id(id: &str) -> Result<Option<u64>, NetworkError> {
    if let Some((namespace, reference)) = id.split_once(':') {
        if namespace == "solana" {
            let base58 = |b: u8| b.is_ascii_alphanumeric() && !b"0OIl".contains(&b);
            let valid = (1..=44).contains(&reference.len()) && reference.bytes().all(base58);
            return if valid {
                Ok(None)
            } else {
                Err(NetworkError::Malformed(id.to_owned()))
            };
        }
        if namespace != "eip155" {
            return Err(NetworkError::UnsupportedNamespace(id.to_owned()));
        }
        let valid = !reference.is_empty()
            && reference.bytes().all(|b| b.is_ascii_digit())
            && !(reference.len() > 1 && reference.starts_with('0'));
        return reference
            .parse::<u64>()
            .ok()
            .filter(|_| valid)
            .map(Some)
            .ok_or_else(|| NetworkError::Malformed(id.to_owned()));
    }
    let name_ok = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if name_ok {
        Ok(None)
    } else {
        Err(NetworkError::Malformed(id.to_owned()))
    }
}

/// The networks and tokens a server or client knows about.
///
/// Starts from the built-in table; local dev chains and extra tokens are registered on top.
#[derive(Debug, Clone)]
pub struct NetworkRegistry {
    networks: Vec<NetworkInfo>,
    /// Extra tokens per network (by CAIP-2 id), beside each network's default asset.
    assets: Vec<(String, AssetInfo)>,
}

impl Default for NetworkRegistry {
    fn default() -> Self {
        Self::builtin()
    }
}

/// A price resolved on a network: the token to pay in and the exact atomic amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPrice {
    /// The token.
    pub asset: AssetInfo,
    /// The amount in the token's atomic units.
    pub amount: U256,
}

impl NetworkRegistry {
    /// The built-in public networks ([`BUILTIN_NETWORKS`]).
    pub fn builtin() -> Self {
        NetworkRegistry {
            networks: BUILTIN_NETWORKS.to_vec(),
            assets: Vec::new(),
        }
    }

    /// A registry with no networks at all.
    pub fn empty() -> Self {
        NetworkRegistry {
            networks: Vec::new(),
            assets: Vec::new(),
        }
    }

    /// Adds a network. Registering the same network twice is a no-op; a different network with
    /// the same name, CAIP-2 id or chain id is an error.
    pub fn register_network(&mut self, network: NetworkInfo) -> Result<&mut Self, NetworkError> {
        check_network_id(&network.name)?;
        let same_chain = |n: &NetworkInfo| matches!((n.kind, network.kind), (NetworkKind::Evm { chain_id: a }, NetworkKind::Evm { chain_id: b }) if a == b);
        if let Some(existing) = self
            .networks
            .iter()
            .find(|n| n.name == network.name || n.caip2 == network.caip2 || same_chain(n))
        {
            if *existing == network {
                return Ok(self);
            }
            return Err(NetworkError::Conflict(existing.name.to_string()));
        }
        self.networks.push(network);
        Ok(self)
    }

    /// Adds a token on a network (named by v1 name or CAIP-2 id) beside its default asset.
    pub fn register_asset(
        &mut self,
        network: &str,
        asset: AssetInfo,
    ) -> Result<&mut Self, NetworkError> {
        let network = self.network(network)?;
        if asset.address.family() != network.family() {
            return Err(NetworkError::WrongFamily {
                network: network.name.to_string(),
                address: asset.address.to_string(),
            });
        }
        let caip2 = network.caip2.to_string();
        self.assets
            .retain(|(id, a)| !(*id == caip2 && a.address == asset.address));
        self.assets.push((caip2, asset));
        Ok(self)
    }

    /// Finds a network by v1 name or CAIP-2 id.
    pub fn network(&self, id: &str) -> Result<&NetworkInfo, NetworkError> {
        if let Some(found) = self.networks.iter().find(|n| n.name == id || n.caip2 == id) {
            return Ok(found);
        }
        let chain_id = check_network_id(id)?;
        let hint = match chain_id {
            Some(chain_id) => format!(
                " (declare chain {chain_id} in a configuration file: a [[network]] entry with chain_id = {chain_id} and its [[network.token]], in the file named by X402_CONFIG or --config; in code, NetworkRegistry::register_network)"
            ),
            None => String::new(),
        };
        Err(NetworkError::Unknown {
            id: id.to_owned(),
            known: self.names().collect::<Vec<_>>().join(", "),
            hint,
        })
    }

    /// Finds a network by chain id.
    pub fn by_chain_id(&self, chain_id: u64) -> Option<&NetworkInfo> {
        self.networks
            .iter()
            .find(|n| n.chain_id() == Some(chain_id))
    }

    /// All known networks.
    pub fn networks(&self) -> impl Iterator<Item = &NetworkInfo> {
        self.networks.iter()
    }

    /// Names of all known networks.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.networks.iter().map(|n| n.name.as_ref())
    }

    /// Tokens payable on a network: its default asset first, then registered ones.
    pub fn assets<'a>(
        &'a self,
        network: &'a NetworkInfo,
    ) -> impl Iterator<Item = &'a AssetInfo> + 'a {
        std::iter::once(&network.default_asset).chain(
            self.assets
                .iter()
                .filter(move |(id, a)| {
                    *id == network.caip2 && a.address != network.default_asset.address
                })
                .map(|(_, a)| a),
        )
    }

    /// The token at `address` on `network`, if known.
    pub fn asset<'a>(
        &'a self,
        network: &'a NetworkInfo,
        address: impl Into<ChainAddress>,
    ) -> Option<&'a AssetInfo> {
        let address = address.into();
        self.assets(network).find(|a| a.address == address)
    }

    /// Turns a price into a token and an exact atomic amount on `network`.
    ///
    /// `asset` pins a specific token (a route's `asset = "0x…"` or an SPL mint); otherwise
    /// `$`/`USD` prices use the network's default stablecoin and symbol prices the token with
    /// that symbol.
    ///
    /// ```
    /// use x402_protocol::{NetworkRegistry, Price};
    ///
    /// let registry = NetworkRegistry::builtin();
    /// let base = registry.network("base").unwrap();
    /// let resolved = registry.resolve_price(&"$0.01".parse::<Price>().unwrap(), base, None).unwrap();
    /// assert_eq!(resolved.amount.to::<u64>(), 10_000);
    /// assert_eq!(resolved.asset.symbol, "USDC");
    /// ```
    pub fn resolve_price(
        &self,
        price: &Price,
        network: &NetworkInfo,
        asset: Option<ChainAddress>,
    ) -> Result<ResolvedPrice, PriceError> {
        let pinned = match asset {
            Some(address) => {
                Some(
                    self.asset(network, address)
                        .ok_or_else(|| PriceError::UnknownToken {
                            unit: address.to_string(),
                            network: network.name.to_string(),
                            known: self.known_symbols(network),
                        })?,
                )
            }
            None => None,
        };
        let asset = match price.unit() {
            PriceUnit::Atomic => pinned.unwrap_or(&network.default_asset),
            PriceUnit::Usd => {
                let asset = pinned.unwrap_or(&network.default_asset);
                if !asset.usd_stablecoin {
                    return Err(PriceError::NoUsdStablecoin {
                        network: network.name.to_string(),
                        symbol: asset.symbol.to_string(),
                    });
                }
                asset
            }
            PriceUnit::Token(symbol) => {
                let matches = |a: &&AssetInfo| a.symbol.eq_ignore_ascii_case(symbol);
                let found = match pinned {
                    Some(asset) => Some(asset).filter(matches),
                    None => self.assets(network).find(matches),
                };
                found.ok_or_else(|| PriceError::UnknownToken {
                    unit: symbol.clone(),
                    network: network.name.to_string(),
                    known: match pinned {
                        Some(asset) => asset.symbol.to_string(),
                        None => self.known_symbols(network),
                    },
                })?
            }
        };
        let amount = price.amount().to_atomic(asset.decimals)?;
        Ok(ResolvedPrice {
            asset: asset.clone(),
            amount,
        })
    }

    fn known_symbols(&self, network: &NetworkInfo) -> String {
        self.assets(network)
            .map(|a| format!("{} ({})", a.symbol, a.address))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Addresses as the reference tables write them (EIP-55), so a typo in the table above
    /// fails here.
    #[test]
    fn builtin_facts_match_the_reference_tables() {
        let expected = [
            (
                "base",
                8453,
                "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
                "USD Coin",
            ),
            (
                "base-sepolia",
                84532,
                "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                "USDC",
            ),
            (
                "ethereum",
                1,
                "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
                "USD Coin",
            ),
            (
                "polygon",
                137,
                "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359",
                "USD Coin",
            ),
            (
                "polygon-amoy",
                80002,
                "0x41E94Eb019C0762f9Bfcf9Fb1E58725BfB0e7582",
                "USDC",
            ),
            (
                "arbitrum",
                42161,
                "0xaf88d065e77c8cC2239327C5EDb3A432268e5831",
                "USD Coin",
            ),
            (
                "optimism",
                10,
                "0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85",
                "USD Coin",
            ),
            (
                "avalanche",
                43114,
                "0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E",
                "USD Coin",
            ),
            (
                "avalanche-fuji",
                43113,
                "0x5425890298aed601595a70AB815c96711a31Bc65",
                "USD Coin",
            ),
        ];
        let registry = NetworkRegistry::builtin();
        for (name, chain_id, address, eip712_name) in expected {
            let by_name = registry.network(name).unwrap();
            let by_caip = registry.network(&format!("eip155:{chain_id}")).unwrap();
            assert_eq!(by_name, by_caip);
            assert_eq!(by_name.chain_id(), Some(chain_id));
            assert_eq!(registry.by_chain_id(chain_id), Some(by_name));
            assert_eq!(by_name.default_asset.address.to_string(), address, "{name}");
            assert_eq!(by_name.default_asset.eip712_name, eip712_name, "{name}");
            assert_eq!(by_name.default_asset.eip712_version, "2");
            assert_eq!(by_name.default_asset.decimals, 6);
        }
    }

    #[test]
    fn solana_clusters_are_built_in() {
        let registry = NetworkRegistry::builtin();
        for (name, caip2, mint) in [
            (
                "solana",
                "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
                "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
            ),
            (
                "solana-devnet",
                "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
                "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
            ),
        ] {
            let network = registry.network(name).unwrap();
            assert_eq!(registry.network(caip2).unwrap(), network);
            assert_eq!(network.family(), Family::Solana);
            assert_eq!(network.chain_id(), None);
            assert_eq!(network.default_asset.address.to_string(), mint);
            assert_eq!(network.default_asset.token_program, Some(SPL_TOKEN_PROGRAM));
            let price = registry
                .resolve_price(&"$0.01".parse().unwrap(), network, None)
                .unwrap();
            assert_eq!(price.amount, U256::from(10_000u64));
        }
        // A Solana mint cannot be registered on an EVM chain.
        let mut registry = registry;
        let mint = SolanaAddress::from_base58_const("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU");
        let spl = AssetInfo::spl(mint, "USDC", 6, SPL_TOKEN_PROGRAM, true);
        assert!(matches!(
            registry.register_asset("base", spl),
            Err(NetworkError::WrongFamily { .. })
        ));
    }

    #[test]
    fn unknown_networks_explain_themselves() {
        let registry = NetworkRegistry::builtin();
        let err = registry.network("eip155:31337").unwrap_err().to_string();
        assert!(err.contains("register_network"), "{err}");
        assert!(matches!(
            registry.network("cosmos:abc"),
            Err(NetworkError::UnsupportedNamespace(_))
        ));
        assert!(matches!(
            registry.network("solana:abc"),
            Err(NetworkError::Unknown { .. })
        ));
        assert!(matches!(
            registry.network("solana:not-base58!"),
            Err(NetworkError::Malformed(_))
        ));
        assert!(matches!(
            registry.network("Base"),
            Err(NetworkError::Malformed(_))
        ));
        assert!(matches!(
            registry.network("eip155:08453"),
            Err(NetworkError::Malformed(_))
        ));
        assert!(matches!(
            registry.network("basee"),
            Err(NetworkError::Unknown { .. })
        ));
    }

    #[test]
    fn registers_local_chains_and_tokens() {
        let mut registry = NetworkRegistry::builtin();
        let token = AssetInfo::usdc(Address::repeat_byte(0x11), "USD Coin", "2");
        registry
            .register_network(NetworkInfo::new("anvil", 31337, token.clone()))
            .unwrap();
        registry
            .register_network(NetworkInfo::new("anvil", 31337, token))
            .unwrap();
        let clash = NetworkInfo::new("other", 8453, AssetInfo::usdc(Address::ZERO, "x", "1"));
        assert!(matches!(
            registry.register_network(clash),
            Err(NetworkError::Conflict(_))
        ));

        let eurc = AssetInfo {
            address: Address::repeat_byte(0x22).into(),
            symbol: "EURC".into(),
            decimals: 6,
            eip712_name: "EURC".into(),
            eip712_version: "2".into(),
            usd_stablecoin: false,
            token_program: None,
        };
        registry.register_asset("base", eurc.clone()).unwrap();
        let base = registry.network("base").unwrap();
        let price: Price = "1.25 EURC".parse().unwrap();
        let resolved = registry.resolve_price(&price, base, None).unwrap();
        assert_eq!(
            (resolved.asset.address, resolved.amount),
            (eurc.address, U256::from(1_250_000u64))
        );
        // A dollar price cannot be paid in a non-USD token.
        let usd: Price = "$1".parse().unwrap();
        assert!(matches!(
            registry.resolve_price(&usd, base, Some(eurc.address)),
            Err(PriceError::NoUsdStablecoin { .. })
        ));
    }

    #[test]
    fn resolution_errors_name_what_is_known() {
        let registry = NetworkRegistry::builtin();
        let base = registry.network("base").unwrap();
        let err = registry
            .resolve_price(&"1 DAI".parse().unwrap(), base, None)
            .unwrap_err();
        assert!(err.to_string().contains("USDC"), "{err}");
        let err = registry
            .resolve_price(&"0.0000001 USDC".parse().unwrap(), base, None)
            .unwrap_err();
        assert!(matches!(
            err,
            PriceError::TooManyDecimals {
                given: 7,
                max: 6,
                ..
            }
        ));
        let err = registry
            .resolve_price(
                &"$1".parse().unwrap(),
                base,
                Some(Address::repeat_byte(9).into()),
            )
            .unwrap_err();
        assert!(matches!(err, PriceError::UnknownToken { .. }));
    }
}
