//! What the page tells a wallet about chains it may not know yet (`wallet_addEthereumChain`),
//! and the names people know them by.

/// A public chain a wallet can be asked to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct KnownChain {
    pub(super) chain_id: u64,
    /// What people call it.
    pub(super) name: &'static str,
    /// A public JSON-RPC endpoint (for the wallet, never called by the page).
    pub(super) rpc_url: &'static str,
    pub(super) explorer_url: &'static str,
    /// Native gas token: name and symbol (18 decimals on every chain here).
    pub(super) currency: (&'static str, &'static str),
}

const ETH: (&str, &str) = ("Ether", "ETH");

const KNOWN: &[KnownChain] = &[
    KnownChain {
        chain_id: 8453,
        name: "Base",
        rpc_url: "https://mainnet.base.org",
        explorer_url: "https://basescan.org",
        currency: ETH,
    },
    KnownChain {
        chain_id: 84532,
        name: "Base Sepolia",
        rpc_url: "https://sepolia.base.org",
        explorer_url: "https://sepolia.basescan.org",
        currency: ETH,
    },
    KnownChain {
        chain_id: 43114,
        name: "Avalanche C-Chain",
        rpc_url: "https://api.avax.network/ext/bc/C/rpc",
        explorer_url: "https://snowtrace.io",
        currency: ("Avalanche", "AVAX"),
    },
    KnownChain {
        chain_id: 43113,
        name: "Avalanche Fuji",
        rpc_url: "https://api.avax-test.network/ext/bc/C/rpc",
        explorer_url: "https://testnet.snowtrace.io",
        currency: ("Avalanche", "AVAX"),
    },
    KnownChain {
        chain_id: 137,
        name: "Polygon",
        rpc_url: "https://polygon-rpc.com",
        explorer_url: "https://polygonscan.com",
        currency: ("POL", "POL"),
    },
    KnownChain {
        chain_id: 80002,
        name: "Polygon Amoy",
        rpc_url: "https://rpc-amoy.polygon.technology",
        explorer_url: "https://amoy.polygonscan.com",
        currency: ("POL", "POL"),
    },
    KnownChain {
        chain_id: 42161,
        name: "Arbitrum One",
        rpc_url: "https://arb1.arbitrum.io/rpc",
        explorer_url: "https://arbiscan.io",
        currency: ETH,
    },
    KnownChain {
        chain_id: 421614,
        name: "Arbitrum Sepolia",
        rpc_url: "https://sepolia-rollup.arbitrum.io/rpc",
        explorer_url: "https://sepolia.arbiscan.io",
        currency: ETH,
    },
];

/// Chains every wallet ships with: a name, but nothing to add.
const BUILT_INTO_WALLETS: &[(u64, &str)] = &[(1, "Ethereum"), (11155111, "Sepolia")];

/// The chain with this id, when the page can ask a wallet to add it.
pub(super) fn known(chain_id: u64) -> Option<&'static KnownChain> {
    KNOWN.iter().find(|chain| chain.chain_id == chain_id)
}

/// What people call the chain, if it is a well-known one.
pub(super) fn display_name(chain_id: u64) -> Option<&'static str> {
    known(chain_id).map(|chain| chain.name).or_else(|| {
        BUILT_INTO_WALLETS
            .iter()
            .find(|(id, _)| *id == chain_id)
            .map(|(_, name)| *name)
    })
}

/// The `wallet_addEthereumChain` parameters (EIP-3085) less `chainId`, which the page adds.
pub(super) fn add_chain_params(chain: &KnownChain) -> serde_json::Value {
    serde_json::json!({
        "chainName": chain.name,
        "rpcUrls": [chain.rpc_url],
        "blockExplorerUrls": [chain.explorer_url],
        "nativeCurrency": { "name": chain.currency.0, "symbol": chain.currency.1, "decimals": 18 },
    })
}
