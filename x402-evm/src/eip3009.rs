//! EIP-3009 calldata: `transferWithAuthorization` in the form the signature needs.

use alloy_primitives::{B256, Bytes};
use alloy_sol_types::SolCall;
use x402_protocol::exact::ExactEvmPayload;

use crate::abi::Eip3009Token;

/// The calldata of `transferWithAuthorization`: the `(v, r, s)` form for a 65-byte signature
/// (with `v` as 27/28 even when the signature says 0/1), the `bytes` form for anything else
/// (contract wallets).
pub(crate) fn transfer_call(payload: &ExactEvmPayload) -> Bytes {
    let auth = &payload.authorization;
    let signature = &payload.signature;
    if let Ok(bytes) = <&[u8; 65]>::try_from(signature.as_ref()) {
        let v = match bytes[64] {
            v @ (0 | 1) => v + 27,
            v => v,
        };
        Eip3009Token::transferWithAuthorization_0Call {
            from: auth.from,
            to: auth.to,
            value: auth.value,
            validAfter: auth.valid_after,
            validBefore: auth.valid_before,
            nonce: auth.nonce,
            v,
            r: B256::from_slice(&bytes[..32]),
            s: B256::from_slice(&bytes[32..64]),
        }
        .abi_encode()
        .into()
    } else {
        Eip3009Token::transferWithAuthorization_1Call {
            from: auth.from,
            to: auth.to,
            value: auth.value,
            validAfter: auth.valid_after,
            validBefore: auth.valid_before,
            nonce: auth.nonce,
            signature: signature.clone(),
        }
        .abi_encode()
        .into()
    }
}

#[cfg(test)]
mod tests {
    use x402_protocol::Address;
    use x402_protocol::U256;
    use x402_protocol::exact::Eip3009Authorization;

    use super::*;

    fn payload(signature: Vec<u8>) -> ExactEvmPayload {
        ExactEvmPayload {
            signature: signature.into(),
            authorization: Eip3009Authorization {
                from: Address::repeat_byte(1),
                to: Address::repeat_byte(2),
                value: U256::from(10_000u64),
                valid_after: U256::from(1u64),
                valid_before: U256::from(2u64),
                nonce: B256::repeat_byte(3),
            },
        }
    }

    #[test]
    fn picks_the_overload_by_signature_length() {
        let mut signature = vec![0x11; 32];
        signature.extend([0x22; 32]);
        signature.push(28);
        let call = transfer_call(&payload(signature.clone()));
        assert_eq!(call[..4], [0xe3, 0xee, 0x16, 0x0e]);
        let decoded = Eip3009Token::transferWithAuthorization_0Call::abi_decode(&call).unwrap();
        assert_eq!(
            (decoded.v, decoded.r, decoded.s),
            (28, B256::repeat_byte(0x11), B256::repeat_byte(0x22))
        );
        assert_eq!(decoded.nonce, B256::repeat_byte(3));
        assert_eq!(decoded.value, U256::from(10_000u64));

        // A 0/1 recovery byte is sent as 27/28, the form ecrecover takes.
        signature[64] = 0;
        let decoded = Eip3009Token::transferWithAuthorization_0Call::abi_decode(&transfer_call(
            &payload(signature),
        ))
        .unwrap();
        assert_eq!(decoded.v, 27);

        for len in [64, 66, 200] {
            let call = transfer_call(&payload(vec![7; len]));
            assert_eq!(call[..4], [0xcf, 0x09, 0x29, 0x95], "{len} bytes");
            let decoded = Eip3009Token::transferWithAuthorization_1Call::abi_decode(&call).unwrap();
            assert_eq!(decoded.signature.len(), len);
        }
    }
}
