//! The CAIP-122 text a wallet signs: EIP-4361 for EVM chains, the SIWS variant for Solana.

use std::fmt::Write as _;

use super::check::{SiwxError, chain_reference, check_fields, evm_address, nonempty};
use super::{SignatureType, SiwxPayload};

/// The exact text a sign-in's signature covers.
///
/// - `eip155:*`: EIP-4361 ("Sign-In with Ethereum") as `@signinwithethereum/siwe`'s
///   `prepareMessage` writes it: the address EIP-55 checksummed, `Chain ID` the decimal
///   chain id, a statement paragraph only when the field is present, `Request ID` when
///   present, `Resources` when present (even empty).
/// - `solana:*`: the same layout with "… sign in with your Solana account:", the base58
///   address, `Chain ID` = the CAIP-2 reference (genesis-hash prefix), and empty optional
///   fields left out.
///
/// Fields are checked first, so no value can add a line to the text.
///
/// ```
/// use x402_protocol::siwx::{message, SiwxPayload};
///
/// let payload: SiwxPayload = serde_json::from_value(serde_json::json!({
///     "domain": "api.example.test",
///     "address": "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
///     "uri": "https://api.example.test/a",
///     "version": "1",
///     "chainId": "eip155:8453",
///     "type": "eip191",
///     "nonce": "0123456789abcdef",
///     "issuedAt": "2026-11-30T14:47:34.004Z",
///     "signature": "0x"
/// }))?;
/// assert_eq!(message(&payload)?, "api.example.test wants you to sign in with your Ethereum account:\n\
///     0x70997970C51812dc3A010C7d01b50e0d17dc79C8\n\n\n\
///     URI: https://api.example.test/a\nVersion: 1\nChain ID: 8453\n\
///     Nonce: 0123456789abcdef\nIssued At: 2026-11-30T14:47:34.004Z");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn message(payload: &SiwxPayload) -> Result<String, SiwxError> {
    check_fields(payload)?;
    let reference = chain_reference(&payload.chain_id)?;
    match SignatureType::for_chain(&payload.chain_id) {
        Some(SignatureType::Eip191) => evm(payload, reference),
        Some(SignatureType::Ed25519) => solana(payload, reference),
        None => Err(SiwxError::UnsupportedChain(payload.chain_id.clone())),
    }
}

fn evm(p: &SiwxPayload, reference: &str) -> Result<String, SiwxError> {
    let address = evm_address(&p.address)?.to_checksum(None);
    let chain_id: u64 = reference
        .parse()
        .map_err(|_| SiwxError::ChainId(p.chain_id.clone()))?;
    let mut text = format!(
        "{} wants you to sign in with your Ethereum account:\n{address}\n",
        p.domain
    );
    // siwe writes "\n\n" after the address without a statement, and "\n\n<statement>\n"
    // with one (even an empty one); a further "\n" joins the fields.
    match &p.statement {
        None => text.push('\n'),
        Some(statement) => {
            let _ = write!(text, "\n{statement}\n");
        }
    }
    let _ = write!(
        text,
        "\nURI: {}\nVersion: {}\nChain ID: {chain_id}\nNonce: {}\nIssued At: {}",
        p.uri, p.version, p.nonce, p.issued_at
    );
    if let Some(expiration) = nonempty(&p.expiration_time) {
        let _ = write!(text, "\nExpiration Time: {expiration}");
    }
    if let Some(not_before) = nonempty(&p.not_before) {
        let _ = write!(text, "\nNot Before: {not_before}");
    }
    if let Some(request_id) = &p.request_id {
        let _ = write!(text, "\nRequest ID: {request_id}");
    }
    if let Some(resources) = &p.resources {
        text.push_str("\nResources:");
        for resource in resources {
            let _ = write!(text, "\n- {resource}");
        }
    }
    Ok(text)
}

fn solana(p: &SiwxPayload, reference: &str) -> Result<String, SiwxError> {
    let base58 = |b: u8| b.is_ascii_alphanumeric() && !b"0OIl".contains(&b);
    if !(32..=44).contains(&p.address.len()) || !p.address.bytes().all(base58) {
        return Err(SiwxError::Address(p.address.clone()));
    }
    let mut text = format!(
        "{} wants you to sign in with your Solana account:\n{}\n\n",
        p.domain, p.address
    );
    if let Some(statement) = nonempty(&p.statement) {
        let _ = write!(text, "{statement}\n\n");
    }
    let _ = write!(
        text,
        "URI: {}\nVersion: {}\nChain ID: {reference}\nNonce: {}\nIssued At: {}",
        p.uri, p.version, p.nonce, p.issued_at
    );
    if let Some(expiration) = nonempty(&p.expiration_time) {
        let _ = write!(text, "\nExpiration Time: {expiration}");
    }
    if let Some(not_before) = nonempty(&p.not_before) {
        let _ = write!(text, "\nNot Before: {not_before}");
    }
    if let Some(request_id) = nonempty(&p.request_id) {
        let _ = write!(text, "\nRequest ID: {request_id}");
    }
    if let Some(resources) = p.resources.as_ref().filter(|r| !r.is_empty()) {
        text.push_str("\nResources:");
        for resource in resources {
            let _ = write!(text, "\n- {resource}");
        }
    }
    Ok(text)
}
