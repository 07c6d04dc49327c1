//! [`ExactSvm`]: the `exact` scheme on Solana as the x402 runtime sees it.

use x402_protocol::exact::EXACT;
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
use x402_protocol::payload::SvmPayload;
use x402_protocol::verify::{InvalidPayment, SignatureCheck, VerifiedPayment, check_common};
use x402_protocol::{ChainAddress, Family, NetworkRegistry, Reason, SchemePayload, U256};
use x402_runtime::AcceptOption;
use x402_runtime::scheme::{Scheme, TransferMethod};

use crate::verify::{
    SvmPayment, SvmTerms, check_transaction, payment_key, reasons, to_solana,
    verify_payer_signature,
};
use crate::wire::decode_transaction;

/// `exact` on Solana: the payer signs a transaction whose only transfer is an SPL
/// `TransferChecked` of exactly the price to `payTo`'s associated token account; the
/// facilitator named in `extra.feePayer` co-signs it as fee payer and sends it.
///
/// `verify` checks everything that needs no chain: the requirement's terms, the transaction's
/// layout ([`check_transaction`]) and the payer's ed25519 signature. Whether the blockhash is
/// still recent and the payer holds the tokens is the settler's question.
///
/// ```
/// use x402_protocol::NetworkRegistry;
/// use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
/// use x402_runtime::scheme::Scheme;
/// use x402_svm::client::build_payment;
/// use x402_svm::scheme::ExactSvm;
/// use x402_svm::verify::SvmTerms;
/// use x402_svm::wire::encode_transaction;
///
/// let entry = serde_json::json!({
///     "scheme": "exact",
///     "network": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
///     "amount": "10000",
///     "asset": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
///     "payTo": "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse",
///     "maxTimeoutSeconds": 300,
///     "extra": { "feePayer": "9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu" }
/// });
/// let requirements: PaymentRequirements = serde_json::from_value(entry.clone()).unwrap();
/// let registry = NetworkRegistry::builtin();
///
/// // The client pays…
/// let terms = SvmTerms::resolve(&requirements, &registry).unwrap();
/// let payer = solana_keypair::Keypair::new_from_array([1; 32]);
/// let tx = build_payment(&terms, &payer, solana_hash::Hash::new_from_array([7; 32]), None).unwrap();
/// let payment: PaymentPayload = serde_json::from_value(serde_json::json!({
///     "x402Version": 2,
///     "accepted": entry,
///     "payload": { "transaction": encode_transaction(&tx) }
/// }))
/// .unwrap();
///
/// // …and the server checks.
/// let scheme = ExactSvm;
/// assert!(scheme.handles(&requirements, payment.payload()));
/// let verified = scheme.verify(&payment, &requirements, &registry, 0).unwrap();
/// assert_eq!(verified.payer.to_string(), "AKnL4NNf3DGWZJS6cPknBuEGnVsV4A4m5tgebLHaRSZ9");
/// assert_eq!(verified.amount.to::<u64>(), 10_000);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ExactSvm;

impl ExactSvm {
    /// Decodes and checks a payment's transaction (not its signature) against the requirement.
    fn check(
        &self,
        payment: &PaymentPayload,
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
    ) -> Result<(SvmTerms, SvmPayment), InvalidPayment> {
        check_common(payment, requirements, registry)?;
        let svm = svm_payload(self, payment)?;
        let terms = SvmTerms::resolve(requirements, registry)?;
        let tx = decode_transaction(&svm.transaction).map_err(|e| {
            InvalidPayment::new(Reason::new(reasons::COULD_NOT_BE_DECODED), e.to_string())
        })?;
        let paid = check_transaction(&tx, &terms)?;
        Ok((terms, paid))
    }
}

impl Scheme for ExactSvm {
    fn name(&self) -> &'static str {
        EXACT
    }

    fn describe(&self) -> &'static str {
        "exact (SPL TransferChecked)"
    }

    fn family(&self) -> Family {
        Family::Solana
    }

    fn method(&self) -> TransferMethod {
        TransferMethod::SplTransfer
    }

    /// `{"feePayer": …}`: the facilitator account that pays the fees and co-signs, taken from
    /// the option's `facilitator`. Without one there is nothing a client could sign. With a
    /// fixed blockhash (the dev ledger's) also `recentBlockhash` and `lastValidBlockHeight`,
    /// so payers need no node.
    fn extra(&self, option: &AcceptOption) -> Option<serde_json::Value> {
        let fee_payer = option.facilitator?;
        let mut extra = serde_json::json!({ "feePayer": fee_payer.to_string() });
        if let Some(blockhash) = &option.blockhash {
            // A fixed blockhash (the dev ledger's) never expires: no block height bounds it.
            extra["recentBlockhash"] = serde_json::json!(blockhash);
            extra["lastValidBlockHeight"] = serde_json::json!(u64::MAX.to_string());
        }
        Some(extra)
    }

    fn handles(&self, requirements: &PaymentRequirements, payload: &SchemePayload) -> bool {
        requirements.scheme() == EXACT && matches!(payload, SchemePayload::Solana(_))
    }

    fn verify(
        &self,
        payment: &PaymentPayload,
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
        _now: u64,
    ) -> Result<VerifiedPayment, InvalidPayment> {
        let (terms, paid) = self.check(payment, requirements, registry)?;
        verify_payer_signature(&paid)?;
        Ok(verified(&terms, &paid, SignatureCheck::Recovered))
    }

    fn identify(
        &self,
        payment: &PaymentPayload,
        requirements: &PaymentRequirements,
        registry: &NetworkRegistry,
    ) -> Result<VerifiedPayment, InvalidPayment> {
        let (terms, paid) = self.check(payment, requirements, registry)?;
        Ok(verified(&terms, &paid, SignatureCheck::Unchecked))
    }
}

/// The verdict for a checked transaction.
fn verified(terms: &SvmTerms, paid: &SvmPayment, signature: SignatureCheck) -> VerifiedPayment {
    VerifiedPayment {
        payer: paid.payer_address(),
        network: terms.network.clone(),
        asset: ChainAddress::Solana(to_solana(&paid.mint)),
        pay_to: ChainAddress::Solana(to_solana(&terms.pay_to)),
        amount: U256::from(paid.amount),
        key: payment_key(&terms.network, &paid.message),
        expires_at: None,
        signature,
    }
}

/// The Solana payload of a payment, or a refusal saying `exact` on Solana cannot check it.
fn svm_payload<'p>(
    scheme: &ExactSvm,
    payment: &'p PaymentPayload,
) -> Result<&'p SvmPayload, InvalidPayment> {
    payment.payload().as_solana().ok_or_else(|| {
        InvalidPayment::new(
            Reason::UNSUPPORTED_SCHEME,
            format!(
                "{} cannot check a {} payload",
                scheme.describe(),
                payment.payload().kind()
            ),
        )
        .with_payer(payment.payload().claimed_payer())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_itself_like_the_other_schemes() {
        let scheme = ExactSvm;
        assert_eq!(scheme.name(), "exact");
        assert_eq!(scheme.describe(), "exact (SPL TransferChecked)");
        assert_eq!(scheme.family(), Family::Solana);
        assert_eq!(scheme.method(), TransferMethod::SplTransfer);
    }
}
