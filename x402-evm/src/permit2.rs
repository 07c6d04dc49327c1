//! Permit2 calldata: the x402 proxies' `settle` for `exact` and `upto` payments.

use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::SolCall;
use x402_protocol::permit2::{ExactPermit2Payload, Permit2Authorization, UptoPermit2Payload};

use crate::abi::X402Permit2Proxy as Proxy;

fn permit<W>(auth: &Permit2Authorization<W>) -> Proxy::PermitTransferFrom {
    Proxy::PermitTransferFrom {
        permitted: Proxy::TokenPermissions {
            token: auth.permitted.token,
            amount: auth.permitted.amount,
        },
        nonce: auth.nonce,
        deadline: auth.deadline,
    }
}

/// The exact proxy's `settle(permit, owner, witness, signature)`: moves the permitted amount.
pub(crate) fn exact_settle_call(payload: &ExactPermit2Payload) -> Bytes {
    let auth = &payload.permit2_authorization;
    Proxy::settle_0Call {
        permit: permit(auth),
        owner: auth.from,
        witness: Proxy::ExactWitness {
            to: auth.witness.to,
            validAfter: auth.witness.valid_after,
        },
        signature: payload.signature.clone(),
    }
    .abi_encode()
    .into()
}

/// The upto proxy's `settle(permit, amount, owner, witness, signature)`: moves `amount`.
pub(crate) fn upto_settle_call(payload: &UptoPermit2Payload, amount: U256) -> Bytes {
    let auth = &payload.permit2_authorization;
    Proxy::settle_1Call {
        permit: permit(auth),
        amount,
        owner: auth.from,
        witness: Proxy::UptoWitness {
            to: auth.witness.to,
            facilitator: auth.witness.facilitator,
            validAfter: auth.witness.valid_after,
        },
        signature: payload.signature.clone(),
    }
    .abi_encode()
    .into()
}

/// The amount an upto proxy `settle` transaction's calldata charges, if it is one for this
/// payer and nonce.
pub(crate) fn upto_charged(input: &[u8], payload: &UptoPermit2Payload) -> Option<U256> {
    let call = Proxy::settle_1Call::abi_decode(input).ok()?;
    let auth = &payload.permit2_authorization;
    (call.owner == auth.from && call.permit.nonce == auth.nonce).then_some(call.amount)
}

/// Whether `input` is an x402 proxy `settle` (exact or upto) of `owner`'s permit `nonce`.
pub(crate) fn settles(input: &[u8], owner: Address, nonce: U256) -> bool {
    if let Ok(call) = Proxy::settle_0Call::abi_decode(input) {
        return call.owner == owner && call.permit.nonce == nonce;
    }
    if let Ok(call) = Proxy::settle_1Call::abi_decode(input) {
        return call.owner == owner && call.permit.nonce == nonce;
    }
    false
}

/// The word of Permit2's `nonceBitmap` that holds `nonce`, and the nonce's bit in it.
pub(crate) fn nonce_position(nonce: U256) -> (U256, usize) {
    (nonce >> 8, (nonce & U256::from(0xffu64)).to::<usize>())
}

#[cfg(test)]
mod tests {
    use x402_protocol::eip3009::LocalSigner;
    use x402_protocol::permit2::{self, ExactPermit2Terms, UptoTerms};

    use super::*;

    #[test]
    fn selectors_are_the_reference_proxies() {
        let payer = LocalSigner::random();
        let exact = permit2::authorize_exact(
            &payer,
            &ExactPermit2Terms {
                chain_id: 31337,
                token: Address::repeat_byte(1),
                pay_to: Address::repeat_byte(2),
                amount: U256::from(10_000u64),
            },
            1_800_000_000,
            300,
        );
        assert_eq!(exact_settle_call(&exact)[..4], [0x13, 0xcd, 0x3b, 0x53]);

        let facilitator = Address::repeat_byte(3);
        let upto = permit2::authorize_upto(
            &payer,
            &UptoTerms {
                chain_id: 31337,
                token: Address::repeat_byte(1),
                pay_to: Address::repeat_byte(2),
                amount: U256::from(10_000u64),
                facilitators: &[facilitator],
            },
            facilitator,
            1_800_000_000,
            300,
        );
        let call = upto_settle_call(&upto, U256::from(3_700u64));
        assert_eq!(call[..4], [0xff, 0x11, 0xe7, 0xb4]);
        assert_eq!(upto_charged(&call, &upto), Some(U256::from(3_700u64)));
        let mut other = upto.clone();
        other.permit2_authorization.nonce += U256::from(1u64);
        assert_eq!(upto_charged(&call, &other), None);
        assert!(settles(
            &call,
            payer.address(),
            upto.permit2_authorization.nonce
        ));
        assert!(settles(
            &exact_settle_call(&exact),
            payer.address(),
            exact.permit2_authorization.nonce
        ));
        assert!(!settles(
            &call,
            payer.address(),
            other.permit2_authorization.nonce
        ));

        let nonce = (U256::from(7u64) << 8) | U256::from(200u64);
        assert_eq!(nonce_position(nonce), (U256::from(7u64), 200));
        assert_eq!(nonce_position(U256::MAX), (U256::MAX >> 8, 255));
    }
}
