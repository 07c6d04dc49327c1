//! The configuration file as written: serde shapes that mirror the TOML, checked for unknown
//! keys, before [`super`] turns them into typed settings with a sentence for every mistake.

use std::path::PathBuf;

use serde::Deserialize;

/// `key = "one"` or `key = ["one", "two"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

/// A duration: `"30s"`, `"500ms"`, `"2m"`, `"1h"`, or a number of seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum RawDuration {
    Seconds(u64),
    Text(String),
}

/// A gas price: `"2 gwei"`, `"1500000000 wei"`, or a number of wei.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum RawGasPrice {
    Wei(u64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) server: Option<RawServer>,
    #[serde(default)]
    pub(super) network: Vec<RawNetwork>,
    #[serde(default)]
    pub(super) facilitator: Option<RawFacilitator>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) facilitator: Option<String>,
    pub(super) facilitator_token_env: Option<String>,
    pub(super) facilitator_token_file: Option<PathBuf>,
    pub(super) pay_to: Option<OneOrMany>,
    pub(super) networks: Option<OneOrMany>,
    pub(super) public_url: Option<String>,
    pub(super) settlement_timeout: Option<RawDuration>,
    pub(super) facilitator_timeout: Option<RawDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    pub(super) name: Option<String>,
    pub(super) chain_id: Option<u64>,
    pub(super) cluster: Option<String>,
    pub(super) testnet: Option<bool>,
    pub(super) rpc_url: Option<String>,
    pub(super) rpc_url_env: Option<String>,
    #[serde(default)]
    pub(super) signers: Vec<RawKey>,
    #[serde(default)]
    pub(super) token: Vec<RawToken>,
    pub(super) settlement: Option<RawSettlement>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKey {
    pub(super) key_env: Option<String>,
    pub(super) key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawToken {
    pub(super) address: Option<String>,
    pub(super) symbol: Option<String>,
    pub(super) decimals: Option<u8>,
    pub(super) eip712_name: Option<String>,
    pub(super) eip712_version: Option<String>,
    pub(super) usd: Option<bool>,
    pub(super) program: Option<String>,
    pub(super) default: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSettlement {
    pub(super) call_timeout: Option<RawDuration>,
    pub(super) receipt_timeout: Option<RawDuration>,
    pub(super) poll_interval: Option<RawDuration>,
    pub(super) bump_after: Option<RawDuration>,
    pub(super) max_fee_per_gas: Option<RawGasPrice>,
    pub(super) eip6492_allowed_factories: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFacilitator {
    pub(super) listen: Option<String>,
    pub(super) auth_tokens_env: Option<String>,
    pub(super) auth_tokens_file: Option<PathBuf>,
    pub(super) max_body_bytes: Option<u64>,
    pub(super) rate_limit_per_second: Option<f64>,
    pub(super) rate_limit_burst: Option<u32>,
    pub(super) settle_wait: Option<RawDuration>,
    pub(super) shutdown_grace: Option<RawDuration>,
    pub(super) reconcile_every: Option<RawDuration>,
    pub(super) journal: Option<String>,
    pub(super) journal_env: Option<String>,
}
