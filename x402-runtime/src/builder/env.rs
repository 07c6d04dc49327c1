//! Settings from the environment.

use super::*;

impl<T: From<Gate>> X402Builder<T> {
    /// Reads settings from the environment, overriding what was set before
    /// (`X402_PAY_TO` may list one address per chain family, comma-separated). A
    /// configuration named by `X402_CONFIG` (a file) or held in `X402_CONFIG_TOML` is applied
    /// first, so the variables below override it:
    ///
    /// | variable | meaning |
    /// | --- | --- |
    /// | `X402_CONFIG` | path of a configuration file ([`config`](crate::config)) |
    /// | `X402_CONFIG_TOML` | the configuration itself, as TOML text |
    /// | `X402_FACILITATOR_URL` | facilitator base URL, or `embedded` for the dev facilitator |
    /// | `X402_FACILITATOR_AUTHORIZATION` | `Authorization` header value for the facilitator |
    /// | `X402_PAY_TO` | default recipient |
    /// | `X402_NETWORKS` | default networks, comma-separated |
    /// | `X402_PUBLIC_URL` | public origin for `resource` URLs |
    /// | `X402_TRUST_FORWARDED_HEADERS` | `true` / `false` |
    /// | `X402_FACILITATOR_TIMEOUT_MS` | facilitator timeout in milliseconds |
    /// | `X402_ENTITLEMENT_KEYS` | `id:hexsecret[,id:hexsecret…]`, current key first, then previous keys |
    /// | `X402_JOURNAL_URL` | the payment journal: `sqlite://payments.db`, `postgres://…`, `memory:` |
    ///
    /// Bad values are reported by [`build`](Self::build).
    pub fn read_env(self) -> Self {
        self.read_env_with(|var| std::env::var(var).ok())
    }

    pub(super) fn read_env_with(mut self, get: impl Fn(&str) -> Option<String>) -> Self {
        use crate::config::{CONFIG_ENV, CONFIG_TOML_ENV, Config};
        if let Some(path) = get(CONFIG_ENV).filter(|v| !v.trim().is_empty()) {
            self = self.config_file(path.trim());
        } else if let Some(text) = get(CONFIG_TOML_ENV).filter(|v| !v.trim().is_empty()) {
            self = match Config::parse(&text, CONFIG_TOML_ENV) {
                Ok(config) => self.config(&config),
                Err(error) => {
                    self.deferred_error.get_or_insert(ConfigError::File(error));
                    self
                }
            };
        }
        if let Some(url) = get("X402_FACILITATOR_URL").filter(|v| !v.trim().is_empty()) {
            self = if url.trim().eq_ignore_ascii_case("embedded") {
                self.embedded_facilitator()
            } else {
                match get("X402_FACILITATOR_AUTHORIZATION") {
                    Some(auth) => self.facilitator_with_auth(url.trim(), auth),
                    None => self.facilitator(url.trim()),
                }
            };
        }
        if let Some(pay_to) = get("X402_PAY_TO") {
            for address in pay_to.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                self = self.pay_to(address);
            }
        }
        if let Some(networks) = get("X402_NETWORKS") {
            self.default_networks = networks
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(String::from)
                .collect();
        }
        if let Some(url) = get("X402_PUBLIC_URL") {
            self = self.public_url(url.trim());
        }
        if let Some(trust) = get("X402_TRUST_FORWARDED_HEADERS") {
            match trust.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => self.resource_policy.trust_forwarded_headers = true,
                "0" | "false" | "no" | "" => self.resource_policy.trust_forwarded_headers = false,
                other => {
                    self.deferred_error.get_or_insert(ConfigError::Env {
                        var: "X402_TRUST_FORWARDED_HEADERS",
                        message: format!("expected true or false, found {other:?}"),
                    });
                }
            }
        }
        if let Some(keys) = get("X402_ENTITLEMENT_KEYS").filter(|v| !v.trim().is_empty()) {
            match EntitlementKeys::parse(&keys) {
                Ok(keys) => self.entitlement_keys = Some(keys),
                Err(error) => {
                    self.deferred_error.get_or_insert(ConfigError::Env {
                        var: "X402_ENTITLEMENT_KEYS",
                        message: error.to_string(),
                    });
                }
            }
        }
        if let Some(url) = get("X402_JOURNAL_URL").filter(|v| !v.trim().is_empty()) {
            self = self.journal_url(url.trim());
        }
        if let Some(ms) = get("X402_FACILITATOR_TIMEOUT_MS") {
            match ms.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => self.facilitator_timeout = Duration::from_millis(ms),
                _ => {
                    self.deferred_error.get_or_insert(ConfigError::Env {
                        var: "X402_FACILITATOR_TIMEOUT_MS",
                        message: format!(
                            "expected a positive number of milliseconds, found {ms:?}"
                        ),
                    });
                }
            }
        }
        self
    }
}
