//! What a handler learns about the payment that let its request through.

use std::sync::Arc;

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
}

impl PaymentInfo {
    /// The payer's address, proven by the payment's signature (an EVM address or a Solana
    /// public key).
    pub fn payer(&self) -> ChainAddress {
        self.payer
    }

    /// The amount, in the token's atomic units.
    pub fn amount(&self) -> U256 {
        self.amount
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
