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

mod raw;

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

/// A toml error as a sentence with the file, line and key.
fn toml_error(error: &toml::de::Error, text: &str, origin: &str) -> ConfigFileError {
    let (line, key) = match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let source_line = text.lines().nth(line - 1).unwrap_or_default();
            let key = source_line
                .split_once('=')
                .map(|(k, _)| k.trim().to_owned())
                .filter(|k| !k.is_empty() && !k.starts_with('['));
            (Some(line), key)
        }
        None => (None, None),
    };
    let mut message = hide_secrets(error.message().trim());
    if message.starts_with("unknown field") {
        message.push_str("; check the spelling (keys are lower case with underscores)");
    }
    ConfigFileError {
        origin: origin.to_owned(),
        line,
        key,
        message,
    }
}

/// `text` with every quoted value that could be a key (a run of 40 or more hex or base58
/// characters) replaced by `"<hidden>"`: parse errors quote values, and a key pasted in the
/// wrong place must not reach a log.
fn hide_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let quoted = &after[..end];
        let longest_run = quoted
            .split(|c: char| !c.is_ascii_alphanumeric())
            .map(str::len)
            .max()
            .unwrap_or(0);
        if longest_run >= 40 {
            out.push_str("\"<hidden>\"");
        } else {
            out.push('"');
            out.push_str(quoted);
            out.push('"');
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// `"30s"`, `"500ms"`, `"2m"`, `"1h"`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| {
        format!("{text:?} is not a duration; write \"30s\", \"500ms\", \"2m\" or \"1h\"")
    })?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => number,
        "ms" => number / 1000.0,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?}; use ms, s, m or h"
            ));
        }
    };
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 7.0 * 24.0 * 3600.0 {
        return Err(format!(
            "{text:?} is out of range; give a positive duration of at most a week"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn duration(
    raw: Option<RawDuration>,
    origin: &str,
    key: &str,
) -> Result<Option<Duration>, ConfigFileError> {
    match raw {
        None => Ok(None),
        Some(RawDuration::Seconds(0)) => Err(ConfigFileError::new(
            origin,
            key,
            "must be positive; write a duration such as \"30s\"",
        )),
        Some(RawDuration::Seconds(s)) => Ok(Some(Duration::from_secs(s))),
        Some(RawDuration::Text(text)) => parse_duration(&text)
            .map(Some)
            .map_err(|message| ConfigFileError::new(origin, key, message)),
    }
}

/// `"2 gwei"`, `"1.5 gwei"`, `"1000 wei"`, or a plain number of wei.
pub fn parse_gas_price(text: &str) -> Result<u128, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => (text[..at].trim(), text[at..].trim()),
        None => (text, "wei"),
    };
    let decimals = match unit.to_ascii_lowercase().as_str() {
        "wei" => 0,
        "gwei" => 9,
        "ether" | "eth" => 18,
        other => return Err(format!("{text:?}: unknown unit {other:?}; use wei or gwei")),
    };
    let amount = Decimal::from_str(number)
        .map_err(|_| format!("{text:?} is not a gas price; write \"2 gwei\" or a number of wei"))?;
    let wei = amount
        .to_atomic(decimals)
        .map_err(|e| format!("{text:?}: {e}"))?;
    u128::try_from(wei)
        .ok()
        .filter(|w| *w > 0)
        .ok_or_else(|| format!("{text:?} is out of range; give a positive gas price"))
}

fn key_source(
    env: Option<String>,
    file: Option<PathBuf>,
    origin: &str,
    key: &str,
    what: &str,
) -> Result<Option<KeySource>, ConfigFileError> {
    match (env, file) {
        (Some(_), Some(_)) => Err(ConfigFileError::new(
            origin,
            key,
            format!(
                "give {what} either from an environment variable (`{key}_env`) or from a file (`{key}_file`), not both"
            ),
        )),
        (Some(var), None) if valid_env_name(&var) => Ok(Some(KeySource::Env(var))),
        (Some(_), None) => Err(ConfigFileError::new(
            origin,
            format!("{key}_env"),
            format!(
                "is not an environment variable name (the value is not shown, in case it is the secret itself); name the variable that holds {what} (letters, digits, _)"
            ),
        )),
        (None, Some(path)) => Ok(Some(KeySource::File(path))),
        (None, None) => Ok(None),
    }
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn signer(raw: RawKey, origin: &str, key: &str) -> Result<KeySource, ConfigFileError> {
    match (raw.key_env, raw.key_file) {
        (Some(var), None) if valid_env_name(&var) => Ok(KeySource::Env(var)),
        (Some(_), None) => Err(ConfigFileError::new(
            origin,
            format!("{key}.key_env"),
            "is not an environment variable name (the value is not shown, in case it is a key); name the variable that holds the private key, never the key itself",
        )),
        (None, Some(path)) => Ok(KeySource::File(path)),
        _ => Err(ConfigFileError::new(
            origin,
            key,
            "a signer is { key_env = \"VARIABLE\" } or { key_file = \"/path/to/key\" } (exactly one of them); private keys never go in the file itself",
        )),
    }
}

fn parse_network(
    raw: RawNetwork,
    i: usize,
    origin: &str,
) -> Result<NetworkConfig, ConfigFileError> {
    let key = format!("network[{i}]");
    let Some(name) = raw.name.map(|n| n.trim().to_owned()) else {
        return Err(ConfigFileError::new(
            origin,
            &key,
            "every [[network]] needs a `name` (\"anvil\", or a built-in network such as \"base-sepolia\" to add an RPC URL or signers to it)",
        ));
    };
    if check_network_id(&name).is_err() || name.contains(':') {
        return Err(ConfigFileError::new(
            origin,
            format!("{key}.name"),
            format!(
                "{name:?} is not a network name; use lower-case letters, digits and dashes, such as \"anvil\""
            ),
        ));
    }
    let builtin = builtin_network(&name);
    let rpc_url = key_source(
        raw.rpc_url_env,
        None,
        origin,
        &format!("{key}.rpc_url"),
        "the RPC URL",
    )?
    .or_else(|| raw.rpc_url.map(|url| KeySource::Value(Zeroizing::new(url))));
    let mut signers = Vec::new();
    for (j, s) in raw.signers.into_iter().enumerate() {
        signers.push(signer(s, origin, &format!("{key}.signers[{j}]"))?);
    }
    let settlement = match raw.settlement {
        None => SettlementSettings::default(),
        Some(s) => {
            let at = |k: &str| format!("{key}.settlement.{k}");
            SettlementSettings {
                call_timeout: duration(s.call_timeout, origin, &at("call_timeout"))?,
                receipt_timeout: duration(s.receipt_timeout, origin, &at("receipt_timeout"))?,
                poll_interval: duration(s.poll_interval, origin, &at("poll_interval"))?,
                bump_after: duration(s.bump_after, origin, &at("bump_after"))?,
                max_fee_per_gas: match s.max_fee_per_gas {
                    None => None,
                    Some(RawGasPrice::Wei(0)) => {
                        return Err(ConfigFileError::new(
                            origin,
                            at("max_fee_per_gas"),
                            "must be positive, such as \"200 gwei\"",
                        ));
                    }
                    Some(RawGasPrice::Wei(wei)) => Some(u128::from(wei)),
                    Some(RawGasPrice::Text(text)) => Some(
                        parse_gas_price(&text)
                            .map_err(|m| ConfigFileError::new(origin, at("max_fee_per_gas"), m))?,
                    ),
                },
            }
        }
    };

    // What kind of chain it is: a built-in network by name, an EVM chain id or a Solana
    // cluster.
    let kind = match (raw.chain_id, raw.cluster.as_deref(), builtin) {
        (Some(_), Some(_), _) => {
            return Err(ConfigFileError::new(
                origin,
                &key,
                "give either `chain_id` (an EVM chain) or `cluster` (a Solana cluster), not both",
            ));
        }
        (Some(0), _, _) => {
            return Err(ConfigFileError::new(
                origin,
                format!("{key}.chain_id"),
                "must be the chain's EIP-155 id, a positive integer (31337 for anvil)",
            ));
        }
        (Some(chain_id), None, Some(b)) if b.chain_id() != Some(chain_id) => {
            return Err(ConfigFileError::new(
                origin,
                format!("{key}.chain_id"),
                format!(
                    "{name:?} is the built-in network {b}; its chain id is {}, not {chain_id}. Pick another name for chain {chain_id}",
                    b.chain_id().map_or("-".to_owned(), |c| c.to_string())
                ),
            ));
        }
        (Some(chain_id), None, _) => NetworkKind::Evm { chain_id },
        (None, Some(cluster), _) => {
            let reference = cluster.strip_prefix("solana:").unwrap_or(cluster);
            if check_network_id(&format!("solana:{reference}")).is_err() {
                return Err(ConfigFileError::new(
                    origin,
                    format!("{key}.cluster"),
                    format!(
                        "{cluster:?} is not a Solana cluster id; write \"solana:<first 32 characters of the genesis hash>\""
                    ),
                ));
            }
            NetworkKind::Solana
        }
        (None, None, Some(b)) => b.kind,
        (None, None, None) => {
            return Err(ConfigFileError::new(
                origin,
                &key,
                format!(
                    "{name:?} is not a built-in network, so say which chain it is: `chain_id = <EIP-155 id>` for an EVM chain, or `cluster = \"solana:<genesis hash>\"` for a Solana cluster"
                ),
            ));
        }
    };
    if let (Some(b), NetworkKind::Solana) = (builtin, kind)
        && let Some(cluster) = raw.cluster.as_deref()
        && b.caip2
            != format!(
                "solana:{}",
                cluster.strip_prefix("solana:").unwrap_or(cluster)
            )
    {
        return Err(ConfigFileError::new(
            origin,
            format!("{key}.cluster"),
            format!(
                "{name:?} is the built-in network {b}; pick another name for cluster {cluster}"
            ),
        ));
    }

    let mut tokens = Vec::new();
    let mut default = None;
    for (j, token) in raw.token.into_iter().enumerate() {
        let token_key = format!("{key}.token[{j}]");
        let is_default = token.default.unwrap_or(false);
        let asset = parse_token(token, kind, origin, &token_key)?;
        if is_default {
            if default.is_some() {
                return Err(ConfigFileError::new(
                    origin,
                    format!("{token_key}.default"),
                    "only one token of a network can be its default",
                ));
            }
            default = Some(tokens.len());
        }
        if tokens
            .iter()
            .any(|t: &AssetInfo| t.address == asset.address)
        {
            return Err(ConfigFileError::new(
                origin,
                format!("{token_key}.address"),
                format!("token {} is listed twice", asset.address),
            ));
        }
        tokens.push(asset);
    }

    let network = match builtin {
        Some(b) => {
            if default.is_some() {
                return Err(ConfigFileError::new(
                    origin,
                    format!("{key}.token"),
                    format!(
                        "the default token of the built-in network {b} is fixed ({} {}); drop `default = true` (extra tokens can still be priced by symbol)",
                        b.default_asset.symbol, b.default_asset.address
                    ),
                ));
            }
            b.clone()
        }
        None => {
            if tokens.is_empty() {
                return Err(ConfigFileError::new(
                    origin,
                    &key,
                    format!(
                        "{name:?} needs at least one [[network.token]] (its first token is the default, used for \"$\" prices)"
                    ),
                ));
            }
            let default_asset = tokens.remove(default.unwrap_or(0));
            let mut info = match kind {
                NetworkKind::Evm { chain_id } => {
                    NetworkInfo::new(name.clone(), chain_id, default_asset)
                }
                NetworkKind::Solana => {
                    let cluster = raw.cluster.as_deref().unwrap_or_default();
                    NetworkInfo::solana(
                        name.clone(),
                        cluster.strip_prefix("solana:").unwrap_or(cluster),
                        default_asset,
                    )
                }
            };
            info.testnet = raw.testnet.unwrap_or(true);
            info
        }
    };
    Ok(NetworkConfig {
        network,
        tokens,
        declared: builtin.is_none(),
        rpc_url,
        signers,
        settlement,
        key,
    })
}

fn parse_token(
    raw: RawToken,
    kind: NetworkKind,
    origin: &str,
    key: &str,
) -> Result<AssetInfo, ConfigFileError> {
    let missing = |field: &str, example: &str| {
        ConfigFileError::new(
            origin,
            format!("{key}.{field}"),
            format!("is missing; write {field} = {example}"),
        )
    };
    let address = raw
        .address
        .ok_or_else(|| missing("address", "\"0x…\" (the token contract) or the SPL mint"))?;
    let symbol = raw.symbol.ok_or_else(|| missing("symbol", "\"USDC\""))?;
    if symbol.trim().is_empty() || symbol.contains(char::is_whitespace) {
        return Err(ConfigFileError::new(
            origin,
            format!("{key}.symbol"),
            "must be one word, such as \"USDC\"",
        ));
    }
    let decimals = raw.decimals.ok_or_else(|| missing("decimals", "6"))?;
    if decimals > 36 {
        return Err(ConfigFileError::new(
            origin,
            format!("{key}.decimals"),
            "must be at most 36",
        ));
    }
    let usd = raw.usd.unwrap_or(false);
    match kind {
        NetworkKind::Evm { .. } => {
            let address = Address::from_str(address.trim()).map_err(|_| {
                ConfigFileError::new(origin, format!("{key}.address"), format!("{address:?} is not an EVM address; write the token contract's address, 0x followed by 40 hex digits"))
            })?;
            if raw.program.is_some() {
                return Err(ConfigFileError::new(
                    origin,
                    format!("{key}.program"),
                    "`program` is for Solana tokens; drop it on an EVM chain",
                ));
            }
            let name = raw.eip712_name.ok_or_else(|| {
                missing(
                    "eip712_name",
                    "the token's name() (\"USD Coin\"), the EIP-712 domain payers sign under",
                )
            })?;
            let version = raw.eip712_version.ok_or_else(|| {
                missing("eip712_version", "the token's version() (\"2\" for USDC)")
            })?;
            Ok(AssetInfo {
                address: ChainAddress::Evm(address),
                symbol: symbol.into(),
                decimals,
                eip712_name: name.into(),
                eip712_version: version.into(),
                usd_stablecoin: usd,
                token_program: None,
            })
        }
        NetworkKind::Solana => {
            let mint = SolanaAddress::from_str(address.trim()).map_err(|_| {
                ConfigFileError::new(
                    origin,
                    format!("{key}.address"),
                    format!("{address:?} is not a Solana address; write the mint's base58 address"),
                )
            })?;
            if raw.eip712_name.is_some() || raw.eip712_version.is_some() {
                return Err(ConfigFileError::new(
                    origin,
                    key,
                    "`eip712_name` and `eip712_version` are for EVM tokens; drop them on a Solana cluster",
                ));
            }
            let program = match raw.program.as_deref().map(str::trim) {
                None | Some("token") | Some("spl-token") => SPL_TOKEN_PROGRAM,
                Some("token-2022") | Some("token2022") => SPL_TOKEN_2022_PROGRAM,
                Some(other) => {
                    return Err(ConfigFileError::new(
                        origin,
                        format!("{key}.program"),
                        format!(
                            "{other:?} is not a token program; write \"token\" or \"token-2022\""
                        ),
                    ));
                }
            };
            Ok(AssetInfo::spl(mint, &symbol, decimals, program, usd))
        }
    }
}

fn parse_server(raw: raw::RawServer, origin: &str) -> Result<ServerSettings, ConfigFileError> {
    let facilitator_token = key_source(
        raw.facilitator_token_env,
        raw.facilitator_token_file,
        origin,
        "server.facilitator_token",
        "the facilitator's bearer token",
    )?;
    let pay_to = raw.pay_to.map(raw::OneOrMany::into_vec).unwrap_or_default();
    for (i, address) in pay_to.iter().enumerate() {
        if ChainAddress::from_str(address.trim()).is_err() {
            return Err(ConfigFileError::new(
                origin,
                format!("server.pay_to[{i}]"),
                format!(
                    "{address:?} is not an address; give an EVM address (0x followed by 40 hex digits) or a Solana address (base58)"
                ),
            ));
        }
    }
    if let Some(url) = &raw.facilitator
        && !url.trim().eq_ignore_ascii_case("embedded")
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(ConfigFileError::new(
            origin,
            "server.facilitator",
            format!("{url:?} is neither an http(s) URL nor \"embedded\""),
        ));
    }
    Ok(ServerSettings {
        facilitator: raw.facilitator.map(|f| f.trim().to_owned()),
        facilitator_token,
        pay_to,
        networks: raw
            .networks
            .map(raw::OneOrMany::into_vec)
            .unwrap_or_default(),
        public_url: raw.public_url,
        settlement_timeout: duration(raw.settlement_timeout, origin, "server.settlement_timeout")?,
        facilitator_timeout: duration(
            raw.facilitator_timeout,
            origin,
            "server.facilitator_timeout",
        )?,
    })
}

fn parse_facilitator(
    raw: raw::RawFacilitator,
    origin: &str,
) -> Result<FacilitatorSettings, ConfigFileError> {
    let listen = match raw.listen {
        None => None,
        Some(text) => Some(SocketAddr::from_str(text.trim()).map_err(|_| {
            ConfigFileError::new(origin, "facilitator.listen", format!("{text:?} is not an address to listen on; write \"127.0.0.1:4022\" or \"0.0.0.0:4022\""))
        })?),
    };
    if let Some(var) = &raw.auth_tokens_env
        && !valid_env_name(var)
    {
        return Err(ConfigFileError::new(
            origin,
            "facilitator.auth_tokens_env",
            "is not an environment variable name (the value is not shown, in case it is a token); name the variable that holds the tokens, never the tokens themselves",
        ));
    }
    let max_body_bytes = match raw.max_body_bytes {
        None => None,
        Some(n) if (1024..=16 * 1024 * 1024).contains(&n) => usize::try_from(n).ok(),
        Some(n) => {
            return Err(ConfigFileError::new(
                origin,
                "facilitator.max_body_bytes",
                format!("{n} is out of range; give between 1024 and 16777216 bytes"),
            ));
        }
    };
    if let Some(rate) = raw.rate_limit_per_second
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(ConfigFileError::new(
            origin,
            "facilitator.rate_limit_per_second",
            "must be a positive number of requests per second",
        ));
    }
    if raw.rate_limit_burst == Some(0) {
        return Err(ConfigFileError::new(
            origin,
            "facilitator.rate_limit_burst",
            "must be at least 1",
        ));
    }
    let journal = key_source(
        raw.journal_env,
        None,
        origin,
        "facilitator.journal",
        "the journal URL",
    )?
    .or_else(|| raw.journal.map(|url| KeySource::Value(Zeroizing::new(url))));
    Ok(FacilitatorSettings {
        listen,
        auth_tokens_env: raw.auth_tokens_env,
        auth_tokens_file: raw.auth_tokens_file,
        max_body_bytes,
        rate_limit_per_second: raw.rate_limit_per_second,
        rate_limit_burst: raw.rate_limit_burst,
        settle_wait: duration(raw.settle_wait, origin, "facilitator.settle_wait")?,
        shutdown_grace: duration(raw.shutdown_grace, origin, "facilitator.shutdown_grace")?,
        reconcile_every: duration(raw.reconcile_every, origin, "facilitator.reconcile_every")?,
        journal,
    })
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
