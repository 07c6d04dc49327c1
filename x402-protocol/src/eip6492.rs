//! ERC-6492 signatures: a contract wallet that is not deployed yet signs with
//! `abi.encode(address factory, bytes factoryCalldata, bytes innerSignature) ‖ 0x6492…6492`, so
//! that a verifier can deploy it (by calling `factory` with `factoryCalldata`) and then ask it,
//! through ERC-1271, whether `innerSignature` is valid (schemes and extensions notes §4).
//!
//! ```
//! use x402_protocol::eip6492::{unwrap, wrap, Erc6492Signature};
//! use x402_protocol::{Address, Bytes};
//!
//! let wrapped = wrap(Address::repeat_byte(7), &[1, 2, 3], &[9; 65]);
//! let unwrapped = unwrap(&wrapped).unwrap().unwrap();
//! assert_eq!(unwrapped.factory, Address::repeat_byte(7));
//! assert_eq!(unwrapped.signature, Bytes::from(vec![9u8; 65]));
//! assert_eq!(unwrap(&[9; 65]), Ok(None)); // not wrapped
//! ```

use alloy_primitives::{Address, Bytes, hex};
use alloy_sol_types::SolValue;

/// The 32 bytes that end every ERC-6492 signature.
pub const MAGIC_SUFFIX: [u8; 32] =
    hex!("6492649264926492649264926492649264926492649264926492649264926492");

/// An ERC-6492 signature taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erc6492Signature {
    /// The contract that deploys the wallet.
    pub factory: Address,
    /// The call to `factory` that deploys it.
    pub factory_calldata: Bytes,
    /// The wallet's own (ERC-1271) signature, for once it is deployed.
    pub signature: Bytes,
}

/// An ERC-6492 suffix on something that does not decode as `(address, bytes, bytes)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature ends with the ERC-6492 suffix but is not abi.encode(address, bytes, bytes)")]
pub struct MalformedErc6492;

/// Whether `signature` ends with [`MAGIC_SUFFIX`].
pub fn is_wrapped(signature: &[u8]) -> bool {
    signature.len() >= 32 && signature[signature.len() - 32..] == MAGIC_SUFFIX
}

/// Takes an ERC-6492 signature apart: `Ok(None)` when it is not one (no suffix).
pub fn unwrap(signature: &[u8]) -> Result<Option<Erc6492Signature>, MalformedErc6492> {
    if !is_wrapped(signature) {
        return Ok(None);
    }
    let body = &signature[..signature.len() - 32];
    let (factory, factory_calldata, signature) =
        <(Address, Bytes, Bytes)>::abi_decode_params(body).map_err(|_| MalformedErc6492)?;
    Ok(Some(Erc6492Signature {
        factory,
        factory_calldata,
        signature,
    }))
}

/// Wraps a wallet's signature for verifiers that may have to deploy it first.
pub fn wrap(factory: Address, factory_calldata: &[u8], signature: &[u8]) -> Bytes {
    let mut out = (
        factory,
        Bytes::copy_from_slice(factory_calldata),
        Bytes::copy_from_slice(signature),
    )
        .abi_encode_params();
    out.extend_from_slice(&MAGIC_SUFFIX);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_a_bare_suffix() {
        let wrapped = wrap(Address::repeat_byte(1), &[0xaa; 68], &[0xbb; 65]);
        assert!(is_wrapped(&wrapped));
        assert_eq!(
            unwrap(&wrapped),
            Ok(Some(Erc6492Signature {
                factory: Address::repeat_byte(1),
                factory_calldata: vec![0xaa; 68].into(),
                signature: vec![0xbb; 65].into(),
            }))
        );
        assert_eq!(unwrap(&MAGIC_SUFFIX), Err(MalformedErc6492));
        assert_eq!(unwrap(&[0x64; 65]), Ok(None));
        assert!(!is_wrapped(&[0x64, 0x92]));
    }
}
