//! Contract wallets on chain: ERC-1271 `isValidSignature` for deployed ones, and ERC-6492 for
//! ones not deployed yet (checked by simulating their deployment, deployed for real at
//! settlement through an allowlisted factory).

use alloy_primitives::{Address, B256, Bytes, hex};
use alloy_sol_types::{SolCall, SolValue};
use x402_protocol::SchemePayload;
use x402_protocol::eip6492::Erc6492Signature;
use x402_protocol::facilitator::PaymentPayload;

use crate::abi::Erc1271;

/// ERC-1271's answer for a valid signature.
pub(crate) const ERC1271_MAGIC: [u8; 4] = [0x16, 0x26, 0xba, 0x7e];

/// The creation code of `contracts/src/X402Erc6492Validator.sol` (its artifact's `bytecode`):
/// run with `eth_call` and no `to`, its constructor deploys a counterfactual wallet inside the
/// simulation and answers `(bool deployed, bool valid)`.
pub(crate) const VALIDATOR_CREATION_CODE: &str = concat!(
    "608060405234801561000f575f5ffd5b506040516103f13803806103f183398101604081905261002e916102ba565b80",
    "5181905f602082106100415750828101515b7f9b6d9b6d9b6d9b6d9b6d9b6d9b6d9b6d9b6d9b6d9b6d9b6d9b6d9b6d9b",
    "6d9b6e81016100f957601f19820184525f80806100818786016020890161030f565b925092509250886001600160a01b",
    "03163b5f036100f4575f836001600160a01b0316836040516100b19190610370565b5f604051808303815f865af19150",
    "503d805f81146100ea576040519150601f19603f3d011682016040523d82523d5f602084013e6100ef565b606091505b",
    "505050505b945050505b6001600160a01b0386163b158015905f906101fa575f5f896001600160a01b0316631626ba7e",
    "60e01b8a89604051602401610135929190610386565b60408051601f1981840301815291815260208201805160016001",
    "60e01b03166001600160e01b03199094169390931790925290516101739190610370565b5f60405180830381855afa91",
    "50503d805f81146101ab576040519150601f19603f3d011682016040523d82523d5f602084013e6101b0565b60609150",
    "5b50915091508180156101c457506020815110155b80156101f557508051630b135d3f60e11b906101e9908301602090",
    "81019084016103c2565b6001600160e01b031916145b925050505b815f528060205260405ff35b6001600160a01b0381",
    "16811461021a575f5ffd5b50565b634e487b7160e01b5f52604160045260245ffd5b5f82601f830112610240575f5ffd",
    "5b81516001600160401b038111156102595761025961021d565b604051601f8201601f19908116603f01168101600160",
    "0160401b03811182821017156102875761028761021d565b60405281815283820160200185101561029e575f5ffd5b81",
    "60208501602083015e5f918101602001919091529392505050565b5f5f5f606084860312156102cc575f5ffd5b835161",
    "02d781610206565b6020850151604086015191945092506001600160401b038111156102f9575f5ffd5b610305868287",
    "01610231565b9150509250925092565b5f5f5f60608486031215610321575f5ffd5b835161032c81610206565b602085",
    "01519093506001600160401b03811115610347575f5ffd5b61035386828701610231565b604086015190935090506001",
    "600160401b038111156102f9575f5ffd5b5f82518060208501845e5f920191825250919050565b828152604060208201",
    "525f82518060408401528060208501606085015e5f606082850101526060601f19601f83011684010191505093925050",
    "50565b5f602082840312156103d2575f5ffd5b81516001600160e01b0319811681146103e9575f5ffd5b939250505056",
    "fe",
);

/// The calldata of a deployless validation: the validator's creation code followed by its
/// constructor arguments `(wallet, hash, signature)`.
pub(crate) fn validator_call(wallet: Address, hash: B256, signature: &[u8]) -> Bytes {
    let mut code = hex::decode(VALIDATOR_CREATION_CODE).unwrap_or_default();
    code.extend((wallet, hash, Bytes::copy_from_slice(signature)).abi_encode_params());
    code.into()
}

/// `isValidSignature(hash, signature)` calldata.
pub(crate) fn is_valid_signature_call(hash: B256, signature: Bytes) -> Bytes {
    Erc1271::isValidSignatureCall { hash, signature }
        .abi_encode()
        .into()
}

/// The payer's signature in a payload the settler takes.
pub(crate) fn signature_of(payload: &PaymentPayload) -> Option<&Bytes> {
    match payload.payload() {
        SchemePayload::Eip3009(p) => Some(&p.signature),
        SchemePayload::Permit2Exact(p) => Some(&p.signature),
        SchemePayload::Permit2Upto(p) => Some(&p.signature),
        _ => None,
    }
}

/// The payload with its signature replaced (an ERC-6492 signature by the wallet's own, which
/// the token or Permit2 asks the wallet about once it is deployed).
pub(crate) fn with_signature(payload: &PaymentPayload, signature: Bytes) -> PaymentPayload {
    let mut payload = payload.clone();
    let scheme = match &mut payload {
        PaymentPayload::V1(p) => &mut p.payload,
        PaymentPayload::V2(p) => &mut p.payload,
    };
    match scheme {
        SchemePayload::Eip3009(p) => p.signature = signature,
        SchemePayload::Permit2Exact(p) => p.signature = signature,
        SchemePayload::Permit2Upto(p) => p.signature = signature,
        _ => {}
    }
    payload
}

/// What the chain said about a contract wallet's signature.
pub(crate) enum WalletSignature {
    /// The wallet is deployed and accepts the signature (`inner`, unwrapped when it was an
    /// ERC-6492 one).
    Deployed {
        /// The signature to hand the token or Permit2.
        inner: Bytes,
    },
    /// The wallet is not deployed; deploying it through `deploy.factory` (allowlisted) makes it
    /// accept `deploy.signature` (simulated).
    Counterfactual(Erc6492Signature),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_validator_code_is_the_artifact() {
        let artifact: serde_json::Value = serde_json::from_str(include_str!(
            "../../contracts/out/X402Erc6492Validator.json"
        ))
        .unwrap();
        assert_eq!(
            artifact["bytecode"].as_str().unwrap(),
            format!("0x{VALIDATOR_CREATION_CODE}"),
            "contracts/out/X402Erc6492Validator.json changed: update VALIDATOR_CREATION_CODE"
        );
        assert_eq!(
            &is_valid_signature_call(B256::ZERO, Bytes::new())[..4],
            &ERC1271_MAGIC
        );
    }
}
