//! The approval hook: a last say on each payment, before anything is signed.

use std::future::Future;

use alloy_primitives::U256;
use async_trait::async_trait;
use x402_protocol::amount::format_units;
use x402_protocol::facilitator::PaymentRequirements;
use x402_protocol::{AssetInfo, ChainAddress, NetworkInfo, ProtocolVersion};

/// A payment the client is about to sign: everything the hook may want to judge it by.
#[derive(Debug, Clone)]
pub struct PaymentProposal {
    /// The request's method.
    pub method: String,
    /// The request's URL.
    pub url: String,
    /// The resource URL the server names in its 402.
    pub resource: String,
    /// The resource's description, when the server gives one.
    pub description: Option<String>,
    /// The protocol generation that will be used.
    pub version: ProtocolVersion,
    /// The network.
    pub network: NetworkInfo,
    /// The token.
    pub asset: AssetInfo,
    /// The amount in the token's atomic units.
    pub amount: U256,
    /// The recipient (an EVM address or a Solana wallet).
    pub pay_to: ChainAddress,
    /// The requirements entry that would be paid.
    pub requirements: PaymentRequirements,
}

impl PaymentProposal {
    /// The amount for people, e.g. `0.01 USDC`.
    pub fn amount_display(&self) -> String {
        format!(
            "{} {}",
            format_units(self.amount, self.asset.decimals),
            self.asset.symbol
        )
    }
}

/// The hook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// Sign and pay.
    Approve,
    /// Do not pay; the request fails with
    /// [`X402Error::NotApproved`](crate::X402Error::NotApproved) carrying this reason.
    Refuse(String),
}

/// Decides, per payment, whether to pay. Runs after the caps and budget allow the payment and
/// before anything is signed.
///
/// Implemented for async closures taking the proposal by value:
///
/// ```
/// use x402_client::{Approval, LocalSigner, PaymentProposal, Payer};
///
/// let payer = Payer::builder(LocalSigner::random())
///     .approve(|proposal: PaymentProposal| async move {
///         if proposal.pay_to.to_string().starts_with("0x3C44") {
///             Approval::Approve
///         } else {
///             Approval::Refuse(format!("{} is not a known merchant", proposal.pay_to))
///         }
///     })
///     .build()?;
/// # let _ = payer;
/// # Ok::<(), x402_client::ConfigError>(())
/// ```
#[async_trait]
pub trait ApprovePayment: Send + Sync + 'static {
    /// Approves or refuses one payment.
    async fn approve(&self, proposal: &PaymentProposal) -> Approval;
}

#[async_trait]
impl<F, Fut> ApprovePayment for F
where
    F: Fn(PaymentProposal) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Approval> + Send,
{
    async fn approve(&self, proposal: &PaymentProposal) -> Approval {
        (self)(proposal.clone()).await
    }
}
