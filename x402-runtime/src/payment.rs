//! What a handler learns about the payment that let its request through.

use std::sync::{Arc, Mutex, PoisonError};

use x402_protocol::amount::format_units;
use x402_protocol::{AssetInfo, ChainAddress, NetworkInfo, ProtocolVersion, U256};

/// How the request was granted access.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// A payment sent with this request.
    Paid,
    /// An entitlement token bought by an earlier payment (pay once, reuse).
    Entitlement(Grant),
    /// A prepaid session token; this request's price was drawn from its balance.
    Prepaid(Grant),
}

/// An entitlement or prepaid session, and the payment that bought it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Grant {
    /// The grant's id.
    pub id: String,
    /// Where it is good: `path:/reports/daily` or `group:reports`.
    pub scope: String,
    /// The settlement transaction of the payment that bought it.
    pub transaction: String,
    /// The atomic amount of that payment.
    pub paid: U256,
    /// Unix time when it ends.
    pub expires_at: u64,
    /// Uses left (access grants with a use limit) or balance left in atomic units (prepaid
    /// sessions), after this request.
    pub remaining: Option<u64>,
}

/// Why [`PaymentInfo::charge`] refused a charge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChargeError {
    /// The route has a fixed price (`exact`): there is nothing to choose. Only metered routes
    /// (`#[paid(upto = …)]`) take a charge.
    #[error("this payment is for a fixed price; only metered (upto) routes take a charge")]
    NotMetered,
    /// The charge is more than the payer authorized.
    #[error("a charge of {charge} atomic units exceeds the {maximum} the payer authorized")]
    AboveMaximum {
        /// The most the payer authorized.
        maximum: U256,
        /// The charge asked for.
        charge: U256,
    },
}

/// The charge of a metered payment, shared by the handler (which sets it) and the gate
/// (which settles it).
#[derive(Debug)]
pub(crate) struct Meter {
    maximum: U256,
    charge: Mutex<Option<U256>>,
}

impl Meter {
    pub(crate) fn new(maximum: U256) -> Arc<Meter> {
        Arc::new(Meter {
            maximum,
            charge: Mutex::new(None),
        })
    }

    /// What to settle: the handler's charge, or the maximum when it set none.
    pub(crate) fn settlement(&self) -> U256 {
        self.charged().unwrap_or(self.maximum)
    }

    fn charged(&self) -> Option<U256> {
        *self.charge.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The payment behind a request: who paid, how much, in what, where.
#[derive(Debug, Clone)]
pub struct PaymentInfo {
    pub(crate) payer: ChainAddress,
    pub(crate) amount: U256,
    pub(crate) asset: Arc<AssetInfo>,
    pub(crate) network: Arc<NetworkInfo>,
    pub(crate) pay_to: ChainAddress,
    pub(crate) scheme: &'static str,
    pub(crate) version: ProtocolVersion,
    pub(crate) access: Access,
    pub(crate) transaction: Option<String>,
    pub(crate) resource: String,
    /// The charge, on metered (`upto`) payments.
    pub(crate) meter: Option<Arc<Meter>>,
}

impl PaymentInfo {
    /// The payer's address, proven by the payment's signature (an EVM address or a Solana
    /// public key).
    pub fn payer(&self) -> ChainAddress {
        self.payer
    }

    /// The amount, in the token's atomic units. On a metered (`upto`) route, the most the payer
    /// authorized; what is settled is [`charge`](Self::charge)d.
    pub fn amount(&self) -> U256 {
        self.amount
    }

    /// Whether the route is metered (`upto`): the handler chooses the charge.
    pub fn is_metered(&self) -> bool {
        self.meter.is_some()
    }

    /// Sets what a metered (`upto`) payment is charged, in atomic units, at most
    /// [`amount`](Self::amount) (the payer's maximum). Only this is settled, after the handler
    /// answered with success; zero settles nothing and leaves the payer's authorization
    /// unused. A handler that never calls it is charged the maximum. May be called again: the
    /// last charge before the handler returns counts.
    ///
    /// ```
    /// # fn handler(payment: &x402_runtime::PaymentInfo, tokens_used: u64) -> Result<(), x402_runtime::ChargeError> {
    /// use x402_runtime::U256;
    ///
    /// // 0.000002 USDC (2 atomic units) per token, capped by what the payer authorized.
    /// let cost = U256::from(tokens_used * 2).min(payment.amount());
    /// payment.charge(cost)?;
    /// # Ok(()) }
    /// ```
    pub fn charge(&self, amount: U256) -> Result<(), ChargeError> {
        let meter = self.meter.as_ref().ok_or(ChargeError::NotMetered)?;
        if amount > meter.maximum {
            return Err(ChargeError::AboveMaximum {
                maximum: meter.maximum,
                charge: amount,
            });
        }
        *meter.charge.lock().unwrap_or_else(PoisonError::into_inner) = Some(amount);
        Ok(())
    }

    /// The charge set so far on a metered payment (`None`: not metered, or not set yet, which
    /// settles the maximum).
    pub fn charged(&self) -> Option<U256> {
        self.meter.as_ref().and_then(|meter| meter.charged())
    }

    /// The amount for people, e.g. `0.01 USDC`.
    pub fn amount_display(&self) -> String {
        format!(
            "{} {}",
            format_units(self.amount, self.asset.decimals),
            self.asset.symbol
        )
    }

    /// The token paid in.
    pub fn asset(&self) -> &AssetInfo {
        &self.asset
    }

    /// The network paid on.
    pub fn network(&self) -> &NetworkInfo {
        &self.network
    }

    /// Who receives the payment.
    pub fn pay_to(&self) -> ChainAddress {
        self.pay_to
    }

    /// The scheme paid with (`exact`, `upto`).
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// The client's protocol generation.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// How access was granted.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// The settlement transaction: for payments settled before the handler ran
    /// (`settle = "before"`) and for entitlements (the payment that bought them); `None` for a
    /// payment still to be settled after the handler.
    pub fn transaction(&self) -> Option<&str> {
        self.transaction.as_deref()
    }

    /// The entitlement or session that served this request, if any.
    pub fn grant(&self) -> Option<&Grant> {
        match &self.access {
            Access::Paid => None,
            Access::Entitlement(grant) | Access::Prepaid(grant) => Some(grant),
        }
    }

    /// The URL that was paid for.
    pub fn resource(&self) -> &str {
        &self.resource
    }
}
