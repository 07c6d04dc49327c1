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

use alloy_primitives::{Address, B256, Bytes, U256};

use crate::eip3009::{self, LocalSigner};
use crate::exact::{Eip3009Authorization, ExactEvmPayload};
use crate::facilitator::{PaymentPayload, PaymentRequirements};
use crate::permit2::{
    self, ExactWitness, Permit2Authorization, Permit2Payload, TokenPermissions, UptoWitness,
};
use crate::verify::{
    EvmTerms, InvalidPayment, RequirementTerms, extra_str, parse_address, resolve_evm,
};
use crate::{NetworkRegistry, Reason, SchemePayload, v1, v2};

/// Signs a payment for one requirements entry at unix time `now`.
///
/// The authorization is valid from `now - 600` (the reference clients' skew allowance) until
/// `now + maxTimeoutSeconds`, with a random nonce. A v2 payment echoes the entry verbatim in
/// `accepted` and copies `resource` when given.
///
/// This is [`prepare_payment`] followed by [`PreparedPayment::finish`] with a signature from
/// `signer`; split the two to sign with a key held elsewhere (a hardware wallet, a remote
/// signer).
pub fn sign_payment(
    requirements: &PaymentRequirements,
    resource: Option<&v2::ResourceInfo>,
    signer: &LocalSigner,
    registry: &NetworkRegistry,
    now: u64,
) -> Result<PaymentPayload, InvalidPayment> {
    let prepared = prepare_payment(requirements, resource, signer.address(), registry, now)?;
    let signature = signer.sign_hash(&prepared.digest());
    Ok(prepared.finish(Bytes::copy_from_slice(&signature)))
}

/// An unsigned payment: the EIP-3009 authorization for one requirements entry and the EIP-712
/// digest the payer must sign. Made by [`prepare_payment`]; turned into a payment by
/// [`PreparedPayment::finish`].
///
/// ```
/// use x402_protocol::client::prepare_payment;
/// use x402_protocol::eip3009::LocalSigner;
/// use x402_protocol::facilitator::PaymentRequirements;
/// use x402_protocol::verify::verify_payment;
/// use x402_protocol::{NetworkRegistry, U256, v2};
///
/// let requirement = PaymentRequirements::V2(v2::PaymentRequirements {
///     scheme: "exact".into(),
///     network: "eip155:84532".into(),
///     amount: U256::from(10_000u64),
///     asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
///     pay_to: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".into(),
///     max_timeout_seconds: 300,
///     extra: Some(serde_json::json!({"name": "USDC", "version": "2"})),
/// });
/// let registry = NetworkRegistry::builtin();
/// let key = LocalSigner::random(); // stands in for any signer of 32-byte digests
/// let now = 1_800_000_000;
/// let prepared = prepare_payment(&requirement, None, key.address(), &registry, now)?;
/// let signature = key.sign_hash(&prepared.digest()); // e.g. sent to a hardware wallet
/// let payment = prepared.finish(signature.to_vec());
/// assert_eq!(verify_payment(&payment, &requirement, &registry, now)?.payer, key.address());
/// # Ok::<(), x402_protocol::verify::InvalidPayment>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedPayment {
    requirements: PaymentRequirements,
    resource: Option<v2::ResourceInfo>,
    unsigned: Unsigned,
    digest: B256,
}

/// What the payer signs, by transfer method.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unsigned {
    Eip3009(Eip3009Authorization),
    Permit2Exact(Permit2Authorization<ExactWitness>),
    Permit2Upto(Permit2Authorization<UptoWitness>),
}

impl PreparedPayment {
    /// The EIP-3009 authorization to be signed, when the entry is paid with EIP-3009 (the
    /// default for `exact`); `None` for Permit2 and `upto`.
    pub fn authorization(&self) -> Option<&Eip3009Authorization> {
        match &self.unsigned {
            Unsigned::Eip3009(authorization) => Some(authorization),
            _ => None,
        }
    }

    /// What makes the payment unique, as 32 bytes: the EIP-3009 nonce, or the Permit2 nonce.
    pub fn nonce(&self) -> B256 {
        match &self.unsigned {
            Unsigned::Eip3009(authorization) => authorization.nonce,
            Unsigned::Permit2Exact(authorization) => B256::from(authorization.nonce),
            Unsigned::Permit2Upto(authorization) => B256::from(authorization.nonce),
        }
    }

    /// Unix time after which the payment can no longer be settled (`validBefore`, or the
    /// Permit2 `deadline`).
    pub fn valid_before(&self) -> u64 {
        match &self.unsigned {
            Unsigned::Eip3009(authorization) => authorization.valid_before.saturating_to(),
            Unsigned::Permit2Exact(authorization) => authorization.deadline.saturating_to(),
            Unsigned::Permit2Upto(authorization) => authorization.deadline.saturating_to(),
        }
    }

    /// The EIP-712 digest the payer signs: `keccak256(0x1901 ‖ domainSeparator ‖ hashStruct)`
    /// (the token's domain for EIP-3009, Permit2's for Permit2 and `upto`).
    pub fn digest(&self) -> B256 {
        self.digest
    }

    /// The requirements entry being paid.
    pub fn requirements(&self) -> &PaymentRequirements {
        &self.requirements
    }

    /// The `payload` object of the payment: the authorization with `signature` attached.
    ///
    /// The signature is not checked here; a wrong one is refused by the verifier.
    pub fn scheme_payload(&self, signature: impl Into<Bytes>) -> SchemePayload {
        let signature = signature.into();
        match &self.unsigned {
            Unsigned::Eip3009(authorization) => ExactEvmPayload {
                signature,
                authorization: authorization.clone(),
            }
            .into(),
            Unsigned::Permit2Exact(authorization) => Permit2Payload {
                signature,
                permit2_authorization: authorization.clone(),
            }
            .into(),
            Unsigned::Permit2Upto(authorization) => Permit2Payload {
                signature,
                permit2_authorization: authorization.clone(),
            }
            .into(),
        }
    }

    /// The payment, in the requirements' generation, with `signature` (65 bytes `r ‖ s ‖ v`
    /// from an ordinary account) attached.
    pub fn finish(self, signature: impl Into<Bytes>) -> PaymentPayload {
        let payload = self.scheme_payload(signature);
        match self.requirements {
            PaymentRequirements::V1(r) => PaymentPayload::V1(v1::PaymentPayload {
                x402_version: Default::default(),
                scheme: r.scheme,
                network: r.network,
                payload,
            }),
            PaymentRequirements::V2(r) => PaymentPayload::V2(v2::PaymentPayload {
                x402_version: Default::default(),
                resource: self.resource,
                accepted: r,
                payload,
                extensions: None,
            }),
        }
    }
}

/// Builds the authorization `payer` must sign to pay one requirements entry at unix time
/// `now`: valid from `now - 600` until `now + maxTimeoutSeconds`, with a random nonce.
///
/// Pays `exact` with EIP-3009 (the default), `exact` with Permit2 when the entry says
/// `extra.assetTransferMethod: "permit2"`, and `upto` (a Permit2 authorization for the
/// entry's amount, the maximum, settleable by `extra.facilitatorAddress`). A Permit2 payment
/// needs the payer's one-time ERC-20 approval of Permit2 for the token, which is not made here.
///
/// Refuses entries this crate cannot pay: another scheme, a network unknown to `registry`,
/// malformed addresses, or (EIP-3009) a token whose EIP-712 domain is neither in `extra` nor
/// known to `registry`.
pub fn prepare_payment(
    requirements: &PaymentRequirements,
    resource: Option<&v2::ResourceInfo>,
    payer: Address,
    registry: &NetworkRegistry,
    now: u64,
) -> Result<PreparedPayment, InvalidPayment> {
    let scheme = requirements.scheme();
    let permit2 =
        extra_str(requirements, "assetTransferMethod") == Some(permit2::ASSET_TRANSFER_METHOD);
    let valid_for = requirements.max_timeout_seconds();
    let unsigned = if scheme == crate::exact::EXACT && !permit2 {
        let terms = RequirementTerms::resolve(requirements, registry)?;
        let terms = terms.as_terms();
        let authorization = eip3009::authorization(payer, &terms, now, valid_for);
        let digest = terms.token.signing_hash(&authorization);
        return Ok(PreparedPayment {
            requirements: requirements.clone(),
            resource: resource.cloned(),
            unsigned: Unsigned::Eip3009(authorization),
            digest,
        });
    } else if scheme == crate::exact::EXACT || scheme == permit2::UPTO {
        let EvmTerms {
            chain_id,
            asset: token,
            pay_to,
            ..
        } = resolve_evm(requirements, registry, "Permit2")?;
        let permitted = TokenPermissions {
            token,
            amount: requirements.amount(),
        };
        let nonce = permit2::random_permit2_nonce();
        let deadline = U256::from(now.saturating_add(valid_for));
        let valid_after = U256::from(now.saturating_sub(eip3009::VALID_AFTER_SKEW_SECONDS));
        if scheme == crate::exact::EXACT {
            let authorization = Permit2Authorization {
                from: payer,
                permitted,
                spender: permit2::EXACT_PERMIT2_PROXY,
                nonce,
                deadline,
                witness: ExactWitness {
                    to: pay_to,
                    valid_after,
                },
            };
            let digest = authorization.signing_hash(chain_id);
            (Unsigned::Permit2Exact(authorization), digest)
        } else {
            let Some(text) = extra_str(requirements, "facilitatorAddress") else {
                return Err(InvalidPayment::new(
                    Reason::INVALID_PAYMENT_REQUIREMENTS,
                    "an upto entry must name the facilitator that may settle it (extra.facilitatorAddress)",
                ));
            };
            let authorization = Permit2Authorization {
                from: payer,
                permitted,
                spender: permit2::UPTO_PERMIT2_PROXY,
                nonce,
                deadline,
                witness: UptoWitness {
                    to: pay_to,
                    facilitator: parse_address("extra.facilitatorAddress", text)?,
                    valid_after,
                },
            };
            let digest = authorization.signing_hash(chain_id);
            (Unsigned::Permit2Upto(authorization), digest)
        }
    } else {
        return Err(InvalidPayment::new(
            Reason::UNSUPPORTED_SCHEME,
            format!("cannot pay with scheme {scheme:?}; only \"exact\" and \"upto\" are supported"),
        ));
    };
    let (unsigned, digest) = unsigned;
    Ok(PreparedPayment {
        requirements: requirements.clone(),
        resource: resource.cloned(),
        unsigned,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::U256;
    use crate::verify::verify_payment;

    fn v1_requirement() -> PaymentRequirements {
        PaymentRequirements::V1(v1::PaymentRequirements {
            scheme: "exact".into(),
            network: "base".into(),
            max_amount_required: U256::from(10_000u64),
            resource: "https://api.example/weather".into(),
            description: String::new(),
            mime_type: String::new(),
            output_schema: None,
            pay_to: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".into(),
            max_timeout_seconds: 60,
            asset: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913".into(),
            extra: None,
        })
    }

    #[test]
    fn prepare_then_finish_matches_the_one_step_signer() {
        let registry = NetworkRegistry::builtin();
        let key = LocalSigner::random();
        let now = 1_800_000_000;
        let requirement = v1_requirement();
        let prepared = prepare_payment(&requirement, None, key.address(), &registry, now).unwrap();
        let auth = prepared.authorization().unwrap().clone();
        assert_eq!(auth.from, key.address());
        assert_eq!(auth.valid_after, U256::from(now - 600));
        assert_eq!(auth.valid_before, U256::from(now + 60));
        // The digest is the one the verifier recomputes: the signature over it verifies.
        let signature = key.sign_hash(&prepared.digest());
        let payment = prepared.finish(signature.to_vec());
        assert_eq!(payment.payload().as_eip3009().unwrap().authorization, auth);
        assert_eq!(
            verify_payment(&payment, &requirement, &registry, now)
                .unwrap()
                .payer,
            key.address()
        );
        // A signature by another key does not.
        let other = LocalSigner::random();
        let prepared = prepare_payment(&requirement, None, key.address(), &registry, now).unwrap();
        let forged = prepared.finish(other.sign_hash(&B256::ZERO).to_vec());
        assert_eq!(
            verify_payment(&forged, &requirement, &registry, now)
                .unwrap_err()
                .reason,
            Reason::INVALID_SIGNATURE
        );
    }

    #[test]
    fn refuses_what_it_cannot_pay() {
        let registry = NetworkRegistry::builtin();
        let mut requirement = v1_requirement();
        if let PaymentRequirements::V1(r) = &mut requirement {
            r.scheme = "escrow".into();
        }
        let err = prepare_payment(&requirement, None, Address::ZERO, &registry, 0).unwrap_err();
        assert_eq!(err.reason, Reason::UNSUPPORTED_SCHEME);
        if let PaymentRequirements::V1(r) = &mut requirement {
            r.scheme = "exact".into();
            r.network = "mars".into();
        }
        let err = prepare_payment(&requirement, None, Address::ZERO, &registry, 0).unwrap_err();
        assert_eq!(err.reason, Reason::INVALID_NETWORK);
    }
}
