//! Permit2 calldata: the x402 proxies' `settle` for `exact` and `upto` payments, and their
//! `settleWithPermit` that first submits the payer's EIP-2612 permit approving Permit2 (the
//! `eip2612GasSponsoring` extension).

use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_sol_types::SolCall;
use x402_protocol::eip2612::Eip2612GasSponsoring;
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

/// The EIP-2612 permit as the proxies take it. A signature that is not 65 bytes is passed as
/// zeros: the token refuses it inside the proxy's try/catch, and the transfer then fails for
/// want of an allowance.
fn permit2612(info: &Eip2612GasSponsoring) -> Proxy::EIP2612Permit {
    let (v, r, s) = info.vrs().unwrap_or((0, B256::ZERO, B256::ZERO));
    Proxy::EIP2612Permit {
        value: info.amount,
        deadline: info.deadline,
        r,
        s,
        v,
    }
}

/// The exact proxy's `settleWithPermit(permit2612, permit, owner, witness, signature)`.
pub(crate) fn exact_settle_with_permit_call(
    payload: &ExactPermit2Payload,
    info: &Eip2612GasSponsoring,
) -> Bytes {
    let auth = &payload.permit2_authorization;
    Proxy::settleWithPermit_0Call {
        permit2612: permit2612(info),
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

/// The upto proxy's `settleWithPermit(permit2612, permit, amount, owner, witness, signature)`.
pub(crate) fn upto_settle_with_permit_call(
    payload: &UptoPermit2Payload,
    amount: U256,
    info: &Eip2612GasSponsoring,
) -> Bytes {
    let auth = &payload.permit2_authorization;
    Proxy::settleWithPermit_1Call {
        permit2612: permit2612(info),
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
    let auth = &payload.permit2_authorization;
    let (owner, nonce, amount) = if let Ok(call) = Proxy::settle_1Call::abi_decode(input) {
        (call.owner, call.permit.nonce, call.amount)
    } else {
        let call = Proxy::settleWithPermit_1Call::abi_decode(input).ok()?;
        (call.owner, call.permit.nonce, call.amount)
    };
    (owner == auth.from && nonce == auth.nonce).then_some(amount)
}

/// Whether `input` is an x402 proxy `settle` (exact or upto) of `owner`'s permit `nonce`.
pub(crate) fn settles(input: &[u8], owner: Address, nonce: U256) -> bool {
    if let Ok(call) = Proxy::settle_0Call::abi_decode(input) {
        return call.owner == owner && call.permit.nonce == nonce;
    }
    if let Ok(call) = Proxy::settle_1Call::abi_decode(input) {
        return call.owner == owner && call.permit.nonce == nonce;
    }
    if let Ok(call) = Proxy::settleWithPermit_0Call::abi_decode(input) {
        return call.owner == owner && call.permit.nonce == nonce;
    }
    if let Ok(call) = Proxy::settleWithPermit_1Call::abi_decode(input) {
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

        let domain = x402_protocol::eip3009::TokenDomain {
            name: "X402 Test Token",
            version: "1",
            chain_id: 31337,
            verifying_contract: Address::repeat_byte(1),
        };
        let info =
            Eip2612GasSponsoring::sign(&payer, &domain, &exact.permit2_authorization, U256::ZERO);
        let with_permit = exact_settle_with_permit_call(&exact, &info);
        assert_eq!(with_permit[..4], [0xfa, 0x34, 0x03, 0x78]);
        assert!(settles(
            &with_permit,
            payer.address(),
            exact.permit2_authorization.nonce
        ));
        let info =
            Eip2612GasSponsoring::sign(&payer, &domain, &upto.permit2_authorization, U256::ZERO);
        let with_permit = upto_settle_with_permit_call(&upto, U256::from(3_700u64), &info);
        assert_eq!(with_permit[..4], [0x01, 0x6c, 0x17, 0x48]);
        assert_eq!(
            upto_charged(&with_permit, &upto),
            Some(U256::from(3_700u64))
        );
        assert!(settles(
            &with_permit,
            payer.address(),
            upto.permit2_authorization.nonce
        ));

        let nonce = (U256::from(7u64) << 8) | U256::from(200u64);
        assert_eq!(nonce_position(nonce), (U256::from(7u64), 200));
        assert_eq!(nonce_position(U256::MAX), (U256::MAX >> 8, 255));
    }
}
