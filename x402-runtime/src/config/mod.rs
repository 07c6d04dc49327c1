//! One configuration format for networks, tokens, RPC endpoints, signer keys, servers and the
//! facilitator: a TOML file (or the same TOML in an environment variable), read by
//! [`X402Builder::config_file`](crate::X402Builder::config_file) and
//! [`X402Builder::read_env`](crate::X402Builder::read_env) (`X402_CONFIG=path`), by
//! `x402ctl pay --config`, and by the `x402ctl serve` facilitator.
//!
//! ```toml
//! # A local anvil chain with the workspace's test token.
//! [[network]]
//! name = "anvil"
//! chain_id = 31337
//! rpc_url = "http://127.0.0.1:8545"          # or rpc_url_env = "ANVIL_RPC_URL"
//! signers = [{ key_env = "FACILITATOR_KEY" }, { key_file = "/run/secrets/signer-2" }]
//!
//! [[network.token]]                          # the first token is the network's default
//! address = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
//! symbol = "USDC"
//! decimals = 6
//! eip712_name = "X402 Test USD"              # the token's name() and version(): the
//! eip712_version = "2"                       # EIP-712 domain payers sign under
//! usd = true                                 # one token is one dollar: "$0.01" prices work
//!
//! [network.settlement]                       # optional, per chain
//! receipt_timeout = "30s"
//! bump_after = "15s"                         # re-price a transaction not mined by then
//! max_fee_per_gas = "200 gwei"
//! eip6492_allowed_factories = []             # factories that may deploy a payer's wallet
//!
//! [server]                                   # what X402Builder reads
//! facilitator = "http://127.0.0.1:4022"      # or "embedded"
//! facilitator_token_env = "X402_FACILITATOR_TOKEN"
//! pay_to = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
//! networks = ["anvil"]                       # for routes that name none
//!
//! [facilitator]                              # what `x402ctl serve` reads
//! listen = "127.0.0.1:4022"
//! auth_tokens_env = "X402_FACILITATOR_TOKENS"  # "name:token,name:token"
//! journal = "sqlite://facilitator.db"
//! ```
//!
//! A `[[network]]` whose `name` is a built-in network (`base`, `base-sepolia`, …) adds an RPC
//! URL, signers or tokens to it; any other name declares a new network, which needs a
//! `chain_id` (EVM) or a `cluster = "solana:<genesis hash>"` (Solana) and at least one token.
//!
//! Secrets never sit in the file: keys, bearer tokens and URLs with credentials are named by
//! the environment variable or file that holds them (`*_env`, `*_file`), read only when needed
//! ([`KeySource::read`]) and never printed (`Debug` shows where they come from, not what they
//! are).
//!
//! Every mistake is reported as one sentence naming the file, the line and the key, and what to
//! write instead ([`ConfigFileError`]).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use x402_protocol::network::{
    SPL_TOKEN_2022_PROGRAM, SPL_TOKEN_PROGRAM, builtin_network, check_network_id,
};
use x402_protocol::{
    Address, AssetInfo, ChainAddress, Decimal, NetworkInfo, NetworkKind, NetworkRegistry,
    SolanaAddress,
};
use zeroize::Zeroizing;

mod networks;
mod parse;
mod raw;
mod server;

use networks::*;
use parse::*;
pub use parse::{parse_duration, parse_gas_price};
use server::*;

use raw::{RawDuration, RawFile, RawGasPrice, RawKey, RawNetwork, RawToken};

/// The environment variable naming a configuration file.
pub const CONFIG_ENV: &str = "X402_CONFIG";

/// The environment variable holding a whole configuration as TOML text (for containers that
/// pass settings through the environment only).
pub const CONFIG_TOML_ENV: &str = "X402_CONFIG_TOML";

/// A mistake in a configuration, as one sentence: where (file, line, key) and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.sentence())]
pub struct ConfigFileError {
    /// The file (or environment variable) the configuration came from.
    pub origin: String,
    /// The line, when known.
    pub line: Option<usize>,
    /// The key at fault, as a path (`network[1].token[0].address`), when known.
    pub key: Option<String>,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl ConfigFileError {
    fn new(origin: &str, key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigFileError {
            origin: origin.to_owned(),
            line: None,
            key: Some(key.into()),
            message: message.into(),
        }
    }

    fn sentence(&self) -> String {
        let mut text = format!("configuration {}", self.origin);
        if let Some(line) = self.line {
            text.push_str(&format!(", line {line}"));
        }
        if let Some(key) = &self.key {
            text.push_str(&format!(", key `{key}`"));
        }
        text.push_str(": ");
        text.push_str(&self.message);
        text
    }
}

/// Where a secret (a private key, a bearer token, a URL with credentials) is read from.
///
/// `Debug` and `Display` name the variable or file, never the value.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An environment variable.
    Env(String),
    /// A file (its content, trimmed).
    File(PathBuf),
    /// A value given in place (tests, command-line tools); shown as `<given>`.
    Value(Zeroizing<String>),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeySource({self})")
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Env(var) => write!(f, "environment variable {var}"),
            KeySource::File(path) => write!(f, "file {}", path.display()),
            KeySource::Value(_) => f.write_str("<given>"),
        }
    }
}

impl KeySource {
    /// Reads the secret (trimmed), or says where it was expected and what to do.
    pub fn read(&self) -> Result<Zeroizing<String>, String> {
        let value = match self {
            KeySource::Env(var) => match std::env::var(var) {
                Ok(value) => Zeroizing::new(value),
                Err(std::env::VarError::NotPresent) => {
                    return Err(format!("environment variable {var} is not set; set it"));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(format!("environment variable {var} is not valid UTF-8"));
                }
            },
            KeySource::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => Zeroizing::new(text),
                Err(error) => {
                    return Err(format!("cannot read file {}: {error}", path.display()));
                }
            },
            KeySource::Value(value) => value.clone(),
        };
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(format!("{self} is empty"));
        }
        Ok(Zeroizing::new(trimmed.to_owned()))
    }
}

/// How a chain's settlements are paced (each `None` keeps the settler's default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SettlementSettings {
    /// Limit for one JSON-RPC call.
    pub call_timeout: Option<Duration>,
    /// How long a settlement waits for its receipt before reporting an unknown outcome.
    pub receipt_timeout: Option<Duration>,
    /// Pause between receipt polls.
    pub poll_interval: Option<Duration>,
    /// After how long an unmined transaction is sent again with higher fees.
    pub bump_after: Option<Duration>,
    /// The most the facilitator pays per gas (wei), whatever the bumps.
    pub max_fee_per_gas: Option<u128>,
    /// The factories an ERC-6492 signature (a contract wallet not deployed yet) may name: the
    /// settler deploys the wallet through one of them before settling. Empty: none, and such
    /// payments are refused with `eip6492_factory_not_allowed`.
    pub eip6492_allowed_factories: Vec<x402_protocol::Address>,
}

/// One network of a configuration: what it is, its tokens, and how to settle on it.
#[derive(Clone)]
#[non_exhaustive]
pub struct NetworkConfig {
    /// The network, with its default token.
    pub network: NetworkInfo,
    /// Tokens the configuration adds beside the default one.
    pub tokens: Vec<AssetInfo>,
    /// Whether the configuration declares the network (`false`: it extends a built-in one).
    pub declared: bool,
    /// The JSON-RPC endpoint, when given.
    pub rpc_url: Option<KeySource>,
    /// Keys that submit settlements (they pay the gas).
    pub signers: Vec<KeySource>,
    /// Settlement pacing.
    pub settlement: SettlementSettings,
    /// Where it is in the file (`network[0]`), for messages.
    pub key: String,
}

impl fmt::Debug for NetworkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkConfig")
            .field("network", &self.network.to_string())
            .field("tokens", &self.tokens.len())
            .field("declared", &self.declared)
            .field("rpc_url", &self.rpc_url)
            .field("signers", &self.signers)
            .field("settlement", &self.settlement)
            .finish()
    }
}

impl NetworkConfig {
    /// The RPC URL, read from where the configuration says.
    pub fn read_rpc_url(&self, origin: &str) -> Result<Option<Zeroizing<String>>, ConfigFileError> {
        match &self.rpc_url {
            None => Ok(None),
            Some(source) => source.read().map(Some).map_err(|message| {
                ConfigFileError::new(origin, format!("{}.rpc_url", self.key), message)
            }),
        }
    }
}

/// What a server ([`X402Builder`](crate::X402Builder)) takes from a configuration.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServerSettings {
    /// The facilitator's URL, or `embedded`.
    pub facilitator: Option<String>,
    /// The bearer token sent to the facilitator.
    pub facilitator_token: Option<KeySource>,
    /// Default recipients (one per chain family).
    pub pay_to: Vec<String>,
    /// Networks for routes that name none.
    pub networks: Vec<String>,
    /// The public origin of the server, for `resource` URLs.
    pub public_url: Option<String>,
    /// How long to wait for the facilitator to settle.
    pub settlement_timeout: Option<Duration>,
    /// How long to wait for the facilitator to verify.
    pub facilitator_timeout: Option<Duration>,
}

/// What the `x402ctl serve` facilitator takes from a configuration.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct FacilitatorSettings {
    /// The address to listen on.
    pub listen: Option<SocketAddr>,
    /// Bearer tokens of callers, `name:token` comma-separated (or bare tokens), in this
    /// environment variable.
    pub auth_tokens_env: Option<String>,
    /// Bearer tokens of callers, one `name:token` (or bare token) per line, in this file,
    /// re-read when it changes (rotation without restart).
    pub auth_tokens_file: Option<PathBuf>,
    /// The largest request body accepted.
    pub max_body_bytes: Option<usize>,
    /// Requests per second each caller may make (sustained).
    pub rate_limit_per_second: Option<f64>,
    /// Requests a caller may make in a burst.
    pub rate_limit_burst: Option<u32>,
    /// How long `/settle` waits for a verdict before answering `settlement_pending`.
    pub settle_wait: Option<Duration>,
    /// How long shutdown waits for settlements in flight.
    pub shutdown_grace: Option<Duration>,
    /// How often unknown outcomes are looked up on chain.
    pub reconcile_every: Option<Duration>,
    /// The settlement journal's URL (`sqlite://…`, `postgres://…`, `memory:`).
    pub journal: Option<KeySource>,
}

/// A parsed configuration. See the [module docs](self) for the format.
///
/// ```
/// use x402_runtime::config::Config;
///
/// let config = Config::parse(r#"
///     [[network]]
///     name = "anvil"
///     chain_id = 31337
///     [[network.token]]
///     address = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
///     symbol = "USDC"
///     decimals = 6
///     eip712_name = "X402 Test USD"
///     eip712_version = "2"
///     usd = true
/// "#, "example.toml")?;
/// let registry = config.registry()?;
/// assert_eq!(registry.network("eip155:31337")?.name, "anvil");
///
/// let error = Config::parse("[[network]]\nname = \"anvil\"\nchainid = 1\n", "bad.toml").unwrap_err();
/// assert!(error.to_string().starts_with("configuration bad.toml, line 3"), "{error}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Config {
    /// Where it came from: a file path or an environment variable's name.
    pub origin: String,
    /// The networks it declares or extends.
    pub networks: Vec<NetworkConfig>,
    /// Server settings.
    pub server: ServerSettings,
    /// Facilitator settings.
    pub facilitator: FacilitatorSettings,
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigFileError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigFileError {
            origin: origin.clone(),
            line: None,
            key: None,
            message: format!("cannot be read ({error}); check the path ({CONFIG_ENV}, --config)"),
        })?;
        Self::parse(&text, &origin)
    }

    /// The configuration the environment names: the file in `X402_CONFIG`, else the TOML text
    /// in `X402_CONFIG_TOML`, else `None`.
    pub fn from_env() -> Result<Option<Config>, ConfigFileError> {
        if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
            return Self::load(PathBuf::from(path)).map(Some);
        }
        match std::env::var(CONFIG_TOML_ENV) {
            Ok(text) if !text.trim().is_empty() => Self::parse(&text, CONFIG_TOML_ENV).map(Some),
            _ => Ok(None),
        }
    }

    /// Parses and checks configuration text; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigFileError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| toml_error(&e, text, origin))?;
        let mut config = Config {
            origin: origin.to_owned(),
            ..Config::default()
        };
        for (i, network) in raw.network.into_iter().enumerate() {
            let parsed = parse_network(network, i, origin)?;
            if let Some(other) = config.networks.iter().find(|n| {
                n.network.name == parsed.network.name || n.network.caip2 == parsed.network.caip2
            }) {
                return Err(ConfigFileError::new(
                    origin,
                    format!("{}.name", parsed.key),
                    format!(
                        "{} is configured twice (also at {}); merge the two entries",
                        parsed.network, other.key
                    ),
                ));
            }
            config.networks.push(parsed);
        }
        if let Some(server) = raw.server {
            config.server = parse_server(server, origin)?;
        }
        if let Some(facilitator) = raw.facilitator {
            config.facilitator = parse_facilitator(facilitator, origin)?;
        }
        // The registry must hold together (no chain id claimed twice, tokens of the right
        // family), and default networks must exist.
        let registry = config.registry()?;
        for (i, id) in config.server.networks.iter().enumerate() {
            if let Err(error) = registry.network(id) {
                return Err(ConfigFileError::new(
                    origin,
                    format!("server.networks[{i}]"),
                    format!("{error}; declare it in a [[network]] entry or pick a known one"),
                ));
            }
        }
        Ok(config)
    }

    /// The built-in networks plus everything this configuration declares.
    pub fn registry(&self) -> Result<NetworkRegistry, ConfigFileError> {
        let mut registry = NetworkRegistry::builtin();
        self.apply(&mut registry)?;
        Ok(registry)
    }

    /// Registers this configuration's networks and tokens in `registry`.
    pub fn apply(&self, registry: &mut NetworkRegistry) -> Result<(), ConfigFileError> {
        for entry in &self.networks {
            if entry.declared {
                registry
                    .register_network(entry.network.clone())
                    .map_err(|error| {
                        ConfigFileError::new(
                            &self.origin,
                            format!("{}.name", entry.key),
                            format!("{} cannot be added: {error}", entry.network),
                        )
                    })?;
            }
            for (j, token) in entry.tokens.iter().enumerate() {
                registry
                    .register_asset(&entry.network.caip2, token.clone())
                    .map_err(|error| {
                        ConfigFileError::new(
                            &self.origin,
                            format!("{}.token[{j}]", entry.key),
                            error.to_string(),
                        )
                    })?;
            }
        }
        Ok(())
    }

    /// The entry for a network, by name or CAIP-2 id.
    pub fn network(&self, id: &str) -> Option<&NetworkConfig> {
        self.networks
            .iter()
            .find(|n| n.network.name == id || n.network.caip2 == id)
    }

    /// An error about `key` of this configuration, as a sentence.
    pub fn error(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigFileError {
        ConfigFileError::new(&self.origin, key, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANVIL: &str = r#"
[[network]]
name = "anvil"
chain_id = 31337
rpc_url = "http://127.0.0.1:8545"
signers = [{ key_env = "FACILITATOR_KEY" }, { key_file = "/run/secrets/k2" }]

[[network.token]]
address = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
symbol = "USDC"
decimals = 6
eip712_name = "X402 Test USD"
eip712_version = "2"
usd = true

[[network.token]]
address = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
symbol = "EURC"
decimals = 6
eip712_name = "Euro Coin"
eip712_version = "1"

[network.settlement]
receipt_timeout = "20s"
bump_after = 5
max_fee_per_gas = "1.5 gwei"
eip6492_allowed_factories = ["0x0000000000ffe8b47b3e2130213b802212439497"]

[[network]]
name = "base-sepolia"
rpc_url_env = "BASE_SEPOLIA_RPC"

[server]
facilitator = "http://127.0.0.1:4022"
facilitator_token_env = "X402_FACILITATOR_TOKEN"
pay_to = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
networks = ["anvil"]

[facilitator]
listen = "127.0.0.1:4022"
auth_tokens_env = "X402_FACILITATOR_TOKENS"
settle_wait = "500ms"
journal = "sqlite://facilitator.db"
"#;

    #[test]
    fn a_full_file_reads_into_networks_tokens_and_settings() {
        let config = Config::parse(ANVIL, "x402.toml").unwrap();
        let anvil = config.network("eip155:31337").unwrap();
        assert!(anvil.declared);
        assert_eq!(anvil.network.name, "anvil");
        assert_eq!(anvil.network.default_asset.eip712_name, "X402 Test USD");
        assert!(anvil.network.default_asset.usd_stablecoin);
        assert_eq!(anvil.tokens.len(), 1);
        assert_eq!(anvil.tokens[0].symbol, "EURC");
        assert!(!anvil.tokens[0].usd_stablecoin);
        assert_eq!(anvil.signers.len(), 2);
        assert_eq!(anvil.signers[0], KeySource::Env("FACILITATOR_KEY".into()));
        assert_eq!(
            anvil.settlement.receipt_timeout,
            Some(Duration::from_secs(20))
        );
        assert_eq!(anvil.settlement.bump_after, Some(Duration::from_secs(5)));
        assert_eq!(anvil.settlement.max_fee_per_gas, Some(1_500_000_000));
        assert_eq!(
            anvil.settlement.eip6492_allowed_factories,
            ["0x0000000000ffe8b47b3e2130213b802212439497"
                .parse::<x402_protocol::Address>()
                .unwrap()]
        );
        assert_eq!(
            anvil
                .read_rpc_url("x")
                .unwrap()
                .as_deref()
                .map(String::as_str),
            Some("http://127.0.0.1:8545")
        );

        let base = config.network("base-sepolia").unwrap();
        assert!(!base.declared);
        assert_eq!(base.network.chain_id(), Some(84532));

        let registry = config.registry().unwrap();
        let network = registry.network("anvil").unwrap();
        assert_eq!(registry.assets(network).count(), 2);
        let price = registry
            .resolve_price(&"0.5 EURC".parse().unwrap(), network, None)
            .unwrap();
        assert_eq!(price.amount, x402_protocol::U256::from(500_000u64));

        assert_eq!(config.server.networks, ["anvil"]);
        assert_eq!(
            config.facilitator.settle_wait,
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            config.facilitator.listen,
            Some("127.0.0.1:4022".parse().unwrap())
        );
        // Secrets are named, never shown.
        let debug = format!("{config:?}");
        assert!(
            debug.contains("FACILITATOR_KEY") && !debug.contains("8545"),
            "{debug}"
        );
    }

    fn error(text: &str) -> String {
        Config::parse(text, "x402.toml").unwrap_err().to_string()
    }

    #[test]
    fn mistakes_are_sentences_naming_file_line_and_key() {
        let e = error("[[network]]\nname = \"anvil\"\nchainid = 31337\n");
        assert!(
            e.starts_with("configuration x402.toml, line 3, key `chainid`: unknown field"),
            "{e}"
        );
        assert!(!e.contains("Error {"), "{e}");

        let e = error("[[network]]\nname = \"anvil\"\nchain_id = \"abc\"\n");
        assert!(e.contains("line 3") && e.contains("chain_id"), "{e}");

        let e = error("[[network]]\nname = \"anvil\"\n");
        assert!(
            e.contains("key `network[0]`") && e.contains("chain_id = <EIP-155 id>"),
            "{e}"
        );

        let e = error("[[network]]\nname = \"anvil\"\nchain_id = 31337\n");
        assert!(e.contains("at least one [[network.token]]"), "{e}");

        let e = error(
            "[[network]]\nname = \"base\"\n[network.settlement]\neip6492_allowed_factories = [\"0x12\"]\n",
        );
        assert!(
            e.contains("key `network[0].settlement.eip6492_allowed_factories[0]`")
                && e.contains("not an EVM address"),
            "{e}"
        );

        let e = error(
            "[[network]]\nname = \"anvil\"\nchain_id = 31337\n[[network.token]]\naddress = \"0x12\"\nsymbol = \"USDC\"\ndecimals = 6\neip712_name = \"X\"\neip712_version = \"2\"\n",
        );
        assert!(
            e.contains("key `network[0].token[0].address`")
                && e.contains("0x followed by 40 hex digits"),
            "{e}"
        );

        let e = error(
            "[[network]]\nname = \"anvil\"\nchain_id = 31337\n[[network.token]]\naddress = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\nsymbol = \"USDC\"\ndecimals = 6\n",
        );
        assert!(
            e.contains("network[0].token[0].eip712_name") && e.contains("is missing"),
            "{e}"
        );

        let e = error("[[network]]\nname = \"base\"\nchain_id = 1\n");
        assert!(e.contains("its chain id is 8453"), "{e}");

        let e = error(
            "[[network]]\nname = \"anvil\"\nchain_id = 8453\n[[network.token]]\naddress = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\nsymbol = \"USDC\"\ndecimals = 6\neip712_name = \"X\"\neip712_version = \"2\"\n",
        );
        assert!(e.contains("anvil") && e.contains("cannot be added"), "{e}");

        let e = error(
            "[[network]]\nname = \"base\"\nsigners = [{ key_env = \"0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80\" }]\n",
        );
        assert!(e.contains("never the key itself"), "{e}");
        assert!(
            !e.contains("ac0974bec"),
            "a key written in place must not be echoed: {e}"
        );

        let e = error(
            "[[network]]\nname = \"base\"\nsigners = [\"0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80\"]\n",
        );
        assert!(
            e.contains("line 3") && e.contains("<hidden>") && !e.contains("ac0974bec"),
            "{e}"
        );

        let e = error("[server]\nnetworks = [\"mars\"]\n");
        assert!(
            e.contains("server.networks[0]") && e.contains("mars"),
            "{e}"
        );

        let e = error("[facilitator]\nlisten = \"localhost\"\n");
        assert!(e.contains("facilitator.listen"), "{e}");

        let e =
            error("[[network]]\nname = \"base\"\n[network.settlement]\nbump_after = \"soon\"\n");
        assert!(
            e.contains("network[0].settlement.bump_after") && e.contains("\"30s\""),
            "{e}"
        );
    }

    #[test]
    fn solana_clusters_are_data() {
        let config = Config::parse(
            "[[network]]\nname = \"solana-local\"\ncluster = \"solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z\"\n[[network.token]]\naddress = \"4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU\"\nsymbol = \"USDC\"\ndecimals = 6\nusd = true\nprogram = \"token-2022\"\n",
            "x402.toml",
        )
        .unwrap();
        let local = config.network("solana-local").unwrap();
        assert_eq!(local.network.kind, NetworkKind::Solana);
        assert_eq!(
            local.network.caip2,
            "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z"
        );
        assert_eq!(
            local.network.default_asset.token_program,
            Some(SPL_TOKEN_2022_PROGRAM)
        );
        assert!(config.registry().unwrap().network("solana-local").is_ok());
    }

    #[test]
    fn durations_and_gas_prices() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("3 weeks").is_err());
        assert_eq!(parse_gas_price("2 gwei").unwrap(), 2_000_000_000);
        assert_eq!(parse_gas_price("1000").unwrap(), 1000);
        assert!(parse_gas_price("0.1 wei").is_err());
        assert!(parse_gas_price("2 dollars").is_err());
    }

    #[test]
    fn key_sources_read_env_and_files_and_say_what_is_missing() {
        let dir = std::env::temp_dir().join(format!("x402-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("key");
        std::fs::write(&file, "  secret-value \n").unwrap();
        assert_eq!(
            KeySource::File(file.clone()).read().unwrap().as_str(),
            "secret-value"
        );
        std::fs::write(&file, "\n").unwrap();
        assert!(
            KeySource::File(file.clone())
                .read()
                .unwrap_err()
                .contains("is empty")
        );
        let missing = KeySource::Env("X402_TEST_SURELY_UNSET_VARIABLE".into());
        assert!(missing.read().unwrap_err().contains("is not set"));
        assert_eq!(
            format!("{:?}", KeySource::Value(Zeroizing::new("s3cret".into()))),
            "KeySource(<given>)"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
