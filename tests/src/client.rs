//! A client that reads 402 challenges and signs payments for them, honestly or with one
//! deliberate fault.

use x402_protocol::eip3009::{LocalSigner, random_nonce};
use x402_protocol::exact::{Eip3009Authorization, ExactEvmPayload};
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
use x402_protocol::verify::RequirementTerms;
use x402_protocol::{Address, NetworkRegistry, ProtocolVersion, U256, codec, v1, v2};

/// What to get wrong when signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: a valid payment.
    None,
    /// The authorization pays someone else.
    WrongPayTo,
    /// Signed for a network the route does not accept (Base mainnet).
    WrongNetwork,
    /// Signed for another token contract.
    WrongAsset,
    /// `validBefore` has passed.
    Expired,
    /// `validAfter` is in the future.
    NotYetValid,
    /// One byte of the signature flipped.
    BadSignature,
}

/// The two forms of one 402.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// The v1 JSON body, if it parsed.
    pub v1: Option<v1::PaymentRequired>,
    /// The v2 `PAYMENT-REQUIRED` header, if present and valid.
    pub v2: Option<v2::PaymentRequired>,
}

impl Challenge {
    /// Reads a 402's `PAYMENT-REQUIRED` header and body.
    pub fn parse(payment_required: Option<&str>, body: &[u8]) -> Self {
        Challenge {
            v1: serde_json::from_slice(body).ok(),
            v2: payment_required.and_then(|h| codec::decode(h, 1 << 16).ok()),
        }
    }

    /// `(network, amount)` of each v2 entry.
    pub fn v2_accepts(&self) -> Vec<(String, u64)> {
        self.v2
            .iter()
            .flat_map(|r| &r.accepts)
            .map(|r| (r.network.clone(), r.amount.to::<u64>()))
            .collect()
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

const STRANGER: Address = Address::repeat_byte(0x5a);

/// Signs a payment for the first entry of `challenge` in `version` (or, with `network`, the entry
/// for that network), getting `fault` wrong. Returns the header name and value to send.
pub fn pay(
    challenge: &Challenge,
    version: ProtocolVersion,
    network: Option<&str>,
    payer: &LocalSigner,
    fault: Fault,
) -> (&'static str, String) {
    let registry = NetworkRegistry::builtin();
    let (mut requirement, resource) = match version {
        ProtocolVersion::V1 => {
            let body = challenge.v1.as_ref().expect("a v1 challenge body");
            let entry = body
                .accepts
                .iter()
                .find(|r| network.is_none_or(|n| r.network == n))
                .expect("an entry for the network");
            (PaymentRequirements::V1(entry.clone()), None)
        }
        ProtocolVersion::V2 => {
            let header = challenge.v2.as_ref().expect("a v2 PAYMENT-REQUIRED header");
            let entry = header
                .accepts
                .iter()
                .find(|r| network.is_none_or(|n| r.network == n))
                .expect("an entry for the network");
            (
                PaymentRequirements::V2(entry.clone()),
                header.resource.clone(),
            )
        }
    };
    let base = registry.network("base").expect("built-in");
    match (&mut requirement, fault) {
        (PaymentRequirements::V1(r), Fault::WrongNetwork) => {
            r.network = base.name.to_string();
            r.asset = base.default_asset.address.to_string();
            r.extra = Some(serde_json::json!({"name": "USD Coin", "version": "2"}));
        }
        (PaymentRequirements::V2(r), Fault::WrongNetwork) => {
            r.network = base.caip2.to_string();
            r.asset = base.default_asset.address.to_string();
            r.extra = Some(serde_json::json!({"name": "USD Coin", "version": "2"}));
        }
        (PaymentRequirements::V1(r), Fault::WrongAsset) => r.asset = STRANGER.to_checksum(None),
        (PaymentRequirements::V2(r), Fault::WrongAsset) => r.asset = STRANGER.to_checksum(None),
        _ => {}
    }
    let terms = RequirementTerms::resolve(&requirement, &registry).expect("resolvable requirement");
    let now = now();
    let (valid_after, valid_before) = match fault {
        Fault::Expired => (now - 1_000, now - 10),
        Fault::NotYetValid => (now + 600, now + 900),
        _ => (now - 600, now + requirement.max_timeout_seconds()),
    };
    let authorization = Eip3009Authorization {
        from: payer.address(),
        to: if fault == Fault::WrongPayTo {
            STRANGER
        } else {
            terms.pay_to
        },
        value: terms.amount,
        valid_after: U256::from(valid_after),
        valid_before: U256::from(valid_before),
        nonce: random_nonce(),
    };
    let mut signature = payer
        .sign_authorization(&authorization, &terms.as_terms().token)
        .to_vec();
    if fault == Fault::BadSignature {
        signature[10] ^= 0x01;
    }
    let payload = ExactEvmPayload {
        signature: signature.into(),
        authorization,
    };
    let payment = match requirement {
        PaymentRequirements::V1(r) => PaymentPayload::V1(v1::PaymentPayload {
            x402_version: Default::default(),
            scheme: r.scheme,
            network: r.network,
            payload: payload.into(),
        }),
        PaymentRequirements::V2(r) => PaymentPayload::V2(v2::PaymentPayload {
            x402_version: Default::default(),
            resource,
            accepted: r,
            payload: payload.into(),
            extensions: None,
        }),
    };
    (version.payment_header(), codec::encode(&payment))
}
