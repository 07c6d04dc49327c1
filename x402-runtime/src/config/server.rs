//! The `[server]` and `[facilitator]` tables.

use super::*;

pub(super) fn parse_server(
    raw: raw::RawServer,
    origin: &str,
) -> Result<ServerSettings, ConfigFileError> {
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

pub(super) fn parse_facilitator(
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
