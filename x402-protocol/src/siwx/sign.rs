//! The client side: answer a declaration with a signed sign-in.

use super::check::{SiwxError, evm_signing_hash};
use super::{SignatureType, SiwxInfo, SiwxPayload, SupportedChain, message};
use crate::eip3009::LocalSigner;

/// The unsigned payload for `info` on `chain` by `address`.
fn unsigned(info: &SiwxInfo, chain: &SupportedChain, address: String) -> SiwxPayload {
    SiwxPayload {
        domain: info.domain.clone(),
        address,
        statement: info.statement.clone(),
        uri: info.uri.clone(),
        version: info.version.clone(),
        chain_id: chain.chain_id.clone(),
        signature_type: chain.signature_type,
        nonce: info.nonce.clone(),
        issued_at: info.issued_at.clone(),
        expiration_time: info.expiration_time.clone(),
        not_before: info.not_before.clone(),
        request_id: info.request_id.clone(),
        resources: info.resources.clone(),
        signature_scheme: chain.signature_scheme,
        signature: String::new(),
    }
}

/// Signs in to a declaration's challenge with an EVM key, on one of its `eip191` chains:
/// EIP-191 `personal_sign` over the EIP-4361 message.
///
/// The caller should first check that `info.domain` and `info.uri` belong to the server it
/// asked (the reference client refuses challenges from other origins).
pub fn sign_evm(
    info: &SiwxInfo,
    chain: &SupportedChain,
    signer: &LocalSigner,
) -> Result<SiwxPayload, SiwxError> {
    if chain.signature_type != SignatureType::Eip191 {
        return Err(SiwxError::TypeMismatch {
            chain_id: chain.chain_id.clone(),
            signature_type: chain.signature_type,
        });
    }
    let mut payload = unsigned(info, chain, signer.address().to_checksum(None));
    let (_, hash) = evm_signing_hash(&payload)?;
    payload.signature = format!(
        "0x{}",
        alloy_primitives::hex::encode(signer.sign_hash(&hash))
    );
    Ok(payload)
}

/// Signs in to a declaration's challenge with a Solana (ed25519) key, on one of its
/// `ed25519` chains: the signature covers the UTF-8 SIWS message and is sent in base58.
#[cfg(feature = "siws")]
pub fn sign_solana(
    info: &SiwxInfo,
    chain: &SupportedChain,
    key: &ed25519_dalek::SigningKey,
) -> Result<SiwxPayload, SiwxError> {
    use ed25519_dalek::Signer as _;
    if chain.signature_type != SignatureType::Ed25519 {
        return Err(SiwxError::TypeMismatch {
            chain_id: chain.chain_id.clone(),
            signature_type: chain.signature_type,
        });
    }
    let address = bs58::encode(key.verifying_key().as_bytes()).into_string();
    let mut payload = unsigned(info, chain, address);
    let text = message(&payload)?;
    payload.signature = bs58::encode(key.sign(text.as_bytes()).to_bytes()).into_string();
    Ok(payload)
}

/// A base58 Solana address as an ed25519 public key.
#[cfg(feature = "siws")]
pub(super) fn solana_key(address: &str) -> Result<ed25519_dalek::VerifyingKey, SiwxError> {
    let bad = || SiwxError::Address(address.to_owned());
    let bytes = bs58::decode(address).into_vec().map_err(|_| bad())?;
    let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| bad())?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| bad())
}

// `message` is used only by the Solana signer.
#[cfg(not(feature = "siws"))]
const _: fn(&SiwxPayload) -> Result<String, SiwxError> = message;
