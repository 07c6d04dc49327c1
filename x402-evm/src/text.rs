//! Text the settler writes: revert reasons in words, keys parsed without leaking, RPC URLs
//! without their secrets.

use std::str::FromStr;

use alloy_primitives::{B256, Bytes};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolInterface;

use crate::EvmSettlerError;
use crate::abi::{Eip3009Token, Permit2, X402Permit2Proxy};

/// Revert data in words: a known custom error (the test token's, Permit2's, the x402 proxies'),
/// `Error(string)`, `Panic(uint256)`, or the raw bytes.
pub(crate) fn describe_revert(data: &[u8]) -> String {
    if data.is_empty() {
        return "no reason given".to_owned();
    }
    if let Ok(error) = Eip3009Token::Eip3009TokenErrors::abi_decode(data) {
        return format!("{error:?}");
    }
    if let Ok(error) = Permit2::Permit2Errors::abi_decode(data) {
        return format!("Permit2: {error:?}");
    }
    if let Ok(error) = X402Permit2Proxy::X402Permit2ProxyErrors::abi_decode(data) {
        return format!("x402 Permit2 proxy: {error:?}");
    }
    match alloy_sol_types::decode_revert_reason(data) {
        Some(reason) if !reason.is_empty() => reason,
        _ => format!("revert data {}", Bytes::copy_from_slice(data)),
    }
}

pub(crate) fn parse_key(hex: &str) -> Result<PrivateKeySigner, EvmSettlerError> {
    let hex = hex.trim();
    let hex = hex.strip_prefix("0x").unwrap_or(hex);
    let mut bytes = B256::ZERO;
    let decoded = alloy_primitives::hex::decode_to_slice(hex, bytes.as_mut_slice());
    let signer = decoded
        .ok()
        .and_then(|()| PrivateKeySigner::from_bytes(&bytes).ok())
        .ok_or(EvmSettlerError::InvalidKey);
    bytes.as_mut_slice().fill(0);
    signer
}

/// `scheme://host[:port]` of a URL: paths, queries and credentials often carry API keys.
pub(crate) fn redact_url(url: &str) -> String {
    match reqwest::Url::from_str(url.trim()) {
        Ok(url) => match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
            (Some(host), None) => format!("{}://{host}", url.scheme()),
            (None, _) => "<rpc>".to_owned(),
        },
        Err(_) => "<invalid rpc url>".to_owned(),
    }
}

/// `text` with every copy of the full RPC URL replaced by its redacted form.
pub(crate) fn redact(text: &str, url: &str, redacted: &str) -> String {
    let url = url.trim();
    let mut text = text.to_owned();
    for form in [url, url.trim_end_matches('/')] {
        if !form.is_empty() {
            text = text.replace(form, redacted);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use x402_protocol::{Address, U256};

    use super::*;
    use crate::EvmSettler;

    #[test]
    fn reverts_are_described() {
        let expired = Eip3009Token::AuthorizationExpired {
            validBefore: U256::from(5u64),
            timestamp: U256::from(9u64),
        };
        let text = describe_revert(&alloy_sol_types::SolError::abi_encode(&expired));
        assert!(
            text.contains("AuthorizationExpired") && text.contains('9'),
            "{text}"
        );
        let fiat = alloy_sol_types::Revert::from("FiatTokenV2: invalid signature");
        assert_eq!(
            describe_revert(&alloy_sol_types::SolError::abi_encode(&fiat)),
            "revert: FiatTokenV2: invalid signature"
        );
        assert_eq!(describe_revert(&[]), "no reason given");
        let nonce = alloy_sol_types::SolError::abi_encode(&Permit2::InvalidNonce {});
        assert_eq!(
            describe_revert(&nonce),
            "Permit2: InvalidNonce(InvalidNonce)"
        );
        let facilitator =
            alloy_sol_types::SolError::abi_encode(&X402Permit2Proxy::UnauthorizedFacilitator {});
        assert!(
            describe_revert(&facilitator).contains("UnauthorizedFacilitator"),
            "{}",
            describe_revert(&facilitator)
        );
        assert_eq!(
            describe_revert(&[0xde, 0xad, 0xbe, 0xef]),
            "revert data 0xdeadbeef"
        );
    }

    #[test]
    fn keys_parse_and_urls_are_redacted() {
        let anvil0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
        let signer = parse_key(anvil0).unwrap();
        assert_eq!(
            signer.address(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
                .parse::<Address>()
                .unwrap()
        );
        assert_eq!(parse_key(&anvil0[2..]).unwrap().address(), signer.address());
        for bad in ["", "0x12", &"0".repeat(64), &"g".repeat(64)] {
            assert_eq!(
                parse_key(bad).unwrap_err(),
                EvmSettlerError::InvalidKey,
                "{bad:?}"
            );
        }

        let url = "https://user:pw@base-mainnet.example.com/v2/SECRETKEY?x=1";
        assert_eq!(redact_url(url), "https://base-mainnet.example.com");
        assert_eq!(redact_url("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        let text = redact(
            &format!("error sending request for url ({url})"),
            url,
            &redact_url(url),
        );
        assert!(!text.contains("SECRETKEY"), "{text}");

        let builder = EvmSettler::builder(url).private_key(anvil0).chain_id(8453);
        let debug = format!("{builder:?}");
        assert!(
            !debug.contains("SECRETKEY") && !debug.contains(&anvil0[2..12]),
            "{debug}"
        );
        assert!(debug.to_lowercase().contains("0xf39fd6e5"), "{debug}");
    }
}
