//! The client's side: turning a requirements entry into a signed payment.
//!
//! ```
//! use x402_protocol::client::sign_payment;
//! use x402_protocol::eip3009::LocalSigner;
//! use x402_protocol::facilitator::PaymentRequirements;
//! use x402_protocol::verify::verify_payment;
//! use x402_protocol::{NetworkRegistry, U256, v2};
//!
//! let requirement = PaymentRequirements::V2(v2::PaymentRequirements {
//!     scheme: "exact".into(),
//!     network: "eip155:84532".into(),
//!     amount: U256::from(10_000u64),
//!     asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
//!     pay_to: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".into(),
//!     max_timeout_seconds: 300,
//!     extra: Some(serde_json::json!({"name": "USDC", "version": "2"})),
//! });
//! let registry = NetworkRegistry::builtin();
//! let signer = LocalSigner::random();
//! let now = 1_800_000_000;
//! let payment = sign_payment(&requirement, None, &signer, &registry, now)?;
//! assert_eq!(verify_payment(&payment, &requirement, &registry, now)?.payer, signer.address());
//! # Ok::<(), x402_protocol::verify::InvalidPayment>(())
//! ```

use crate::eip3009::{self, LocalSigner};
use crate::facilitator::{PaymentPayload, PaymentRequirements};
use crate::verify::{InvalidPayment, RequirementTerms};
use crate::{NetworkRegistry, Reason, v1, v2};

/// Signs a payment for one requirements entry at unix time `now`.
///
/// The authorization is valid from `now - 600` (the reference clients' skew allowance) until
/// `now + maxTimeoutSeconds`, with a random nonce. A v2 payment echoes the entry verbatim in
/// `accepted` and copies `resource` when given.
pub fn sign_payment(
    requirements: &PaymentRequirements,
    resource: Option<&v2::ResourceInfo>,
    signer: &LocalSigner,
    registry: &NetworkRegistry,
    now: u64,
) -> Result<PaymentPayload, InvalidPayment> {
    if requirements.scheme() != crate::exact::EXACT {
        return Err(InvalidPayment::new(
            Reason::UNSUPPORTED_SCHEME,
            format!(
                "cannot pay with scheme {:?}; only \"exact\" is supported",
                requirements.scheme()
            ),
        ));
    }
    let terms = RequirementTerms::resolve(requirements, registry)?;
    let payload = eip3009::authorize(
        signer,
        &terms.as_terms(),
        now,
        requirements.max_timeout_seconds(),
    );
    Ok(match requirements {
        PaymentRequirements::V1(r) => PaymentPayload::V1(v1::PaymentPayload {
            x402_version: Default::default(),
            scheme: r.scheme.clone(),
            network: r.network.clone(),
            payload,
        }),
        PaymentRequirements::V2(r) => PaymentPayload::V2(v2::PaymentPayload {
            x402_version: Default::default(),
            resource: resource.cloned(),
            accepted: r.clone(),
            payload,
            extensions: None,
        }),
    })
}
