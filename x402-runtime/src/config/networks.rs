//! The `[[network]]` and `[[network.token]]` tables.

use super::*;

pub(super) fn parse_network(
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
                eip6492_allowed_factories: s
                    .eip6492_allowed_factories
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                    .map(|(i, text)| {
                        text.trim().parse::<x402_protocol::Address>().map_err(|_| {
                            ConfigFileError::new(
                                origin,
                                at(&format!("eip6492_allowed_factories[{i}]")),
                                format!("{text:?} is not an EVM address (0x and 40 hex digits)"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
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

pub(super) fn parse_token(
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
