//! A settler for a network of the configuration file (`x402_runtime::config`).

use x402_runtime::config::{Config, ConfigFileError, NetworkConfig};

use crate::{EvmSettler, EvmSettlerError};

impl EvmSettler {
    /// Connects a settler for one `[[network]]` of `config`: its RPC URL, every signer key
    /// (read from the environment variables or files the configuration names), and its
    /// `[network.settlement]` pacing and ERC-6492 factory allowlist. Problems are sentences naming the file and key.
    ///
    /// ```no_run
    /// use x402_evm::EvmSettler;
    /// use x402_runtime::config::Config;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = Config::load("x402.toml")?;
    /// let anvil = config.network("anvil").ok_or("no anvil network in x402.toml")?;
    /// let settler = EvmSettler::from_config(&config, anvil).await?;
    /// println!("settling on chain {} as {:?}", settler.chain_id(), settler.addresses());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn from_config(
        config: &Config,
        network: &NetworkConfig,
    ) -> Result<EvmSettler, ConfigFileError> {
        let key = &network.key;
        let Some(chain_id) = network.network.chain_id() else {
            return Err(config.error(
                key.clone(),
                format!(
                    "{} is not an EVM chain; the EVM settler cannot settle on it",
                    network.network
                ),
            ));
        };
        let Some(rpc_url) = network.read_rpc_url(&config.origin)? else {
            return Err(config.error(
                format!("{key}.rpc_url"),
                format!(
                    "is missing: settling on {} needs its JSON-RPC endpoint; write rpc_url = \"http://…\" or rpc_url_env = \"VARIABLE\"",
                    network.network
                ),
            ));
        };
        if network.signers.is_empty() {
            return Err(config.error(
                format!("{key}.signers"),
                format!(
                    "is empty: settling on {} needs at least one key that pays the gas; write signers = [{{ key_env = \"FACILITATOR_KEY\" }}]",
                    network.network
                ),
            ));
        }
        let mut builder = EvmSettler::builder(rpc_url.as_str()).chain_id(chain_id);
        let pacing = &network.settlement;
        if let Some(t) = pacing.call_timeout {
            builder = builder.call_timeout(t);
        }
        if let Some(t) = pacing.receipt_timeout {
            builder = builder.receipt_timeout(t);
        }
        if let Some(t) = pacing.poll_interval {
            builder = builder.poll_interval(t);
        }
        if let Some(t) = pacing.bump_after {
            builder = builder.bump_after(t);
        }
        if let Some(wei) = pacing.max_fee_per_gas {
            builder = builder.max_fee_per_gas(wei);
        }
        for factory in &pacing.eip6492_allowed_factories {
            builder = builder.allow_eip6492_factory(*factory);
        }
        for (j, source) in network.signers.iter().enumerate() {
            let secret = source
                .read()
                .map_err(|message| config.error(format!("{key}.signers[{j}]"), message))?;
            if crate::text::parse_key(&secret).is_err() {
                return Err(config.error(
                    format!("{key}.signers[{j}]"),
                    format!("{source} does not hold a private key; it must hold 64 hex digits (0x optional) of a secp256k1 key"),
                ));
            }
            builder = builder.private_key(&secret);
        }
        builder.connect().await.map_err(|error| match error {
            EvmSettlerError::DuplicateSigner(address) => config.error(
                format!("{key}.signers"),
                format!("two signers hold the same key ({address}); give each signer its own key"),
            ),
            EvmSettlerError::ChainMismatch { expected, found } => config.error(
                format!("{key}.rpc_url"),
                format!("the RPC node serves chain {found}, but {} is chain {expected}; point rpc_url at a node of chain {expected}", network.network),
            ),
            other => config.error(
                format!("{key}.rpc_url"),
                format!("cannot connect to {}'s RPC node: {other}", network.network),
            ),
        })
    }
}
