//! One settler per (network, scheme, payload kind): EIP-3009 `exact` on each configured EVM
//! chain today; Permit2 / `upto` and Solana settlers are added the same way, with the
//! `/supported` `extra` their scheme needs (a facilitator address, a fee payer).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use x402_protocol::facilitator::PaymentPayload;
use x402_protocol::verify::{InvalidPayment, VerifiedPayment};
use x402_protocol::{ChainAddress, NetworkInfo, Reason, U256};
use x402_runtime::facilitator::{SettleObserver, SettleOutcome, Settler, SettlerError};

/// A settler and what it settles.
pub(crate) struct Route {
    /// CAIP-2 id of the network.
    pub(crate) network: String,
    /// The scheme name (`exact`, `upto`).
    pub(crate) scheme: &'static str,
    /// The payload kind it takes ([`x402_protocol::SchemePayload::kind`]).
    pub(crate) payload: &'static str,
    /// `extra` of this kind in `/supported`, when the scheme needs one.
    pub(crate) extra: Option<Value>,
    pub(crate) settler: Arc<dyn Settler>,
}

/// Every configured settler, as one [`Settler`] that hands each payment to its own.
#[derive(Default)]
pub(crate) struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    pub(crate) fn add(&mut self, route: Route) {
        self.routes.push(route);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// `extra` for a `/supported` kind.
    pub(crate) fn extra(&self, network: &str, scheme: &str) -> Option<Value> {
        self.routes
            .iter()
            .find(|r| r.network == network && r.scheme == scheme)
            .and_then(|r| r.extra.clone())
    }

    fn route(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
    ) -> Result<&Arc<dyn Settler>, SettlerError> {
        let kind = payload.payload().kind();
        self.routes
            .iter()
            .find(|r| {
                r.network == payment.network.caip2 && r.scheme == payload.scheme() && r.payload == kind
            })
            .map(|r| &r.settler)
            .ok_or_else(|| {
                SettlerError::Rejected(InvalidPayment::new(
                    Reason::UNSUPPORTED_SCHEME,
                    format!(
                        "this facilitator does not settle {:?} payments with a {kind} payload on {}",
                        payload.scheme(),
                        payment.network
                    ),
                ))
            })
    }
}

#[async_trait]
impl Settler for Routes {
    fn settles(&self, network: &NetworkInfo) -> bool {
        self.routes.iter().any(|r| r.network == network.caip2)
    }

    /// When every Permit2 route on the network goes to a settler that broadcasts
    /// `erc20ApprovalGasSponsoring` approvals (and there is one).
    fn broadcasts_approvals(&self, network: &NetworkInfo) -> bool {
        let mut permit2 = self
            .routes
            .iter()
            .filter(|r| r.network == network.caip2 && r.payload.starts_with("Permit2"))
            .peekable();
        permit2.peek().is_some() && permit2.all(|r| r.settler.broadcasts_approvals(network))
    }

    async fn check(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
    ) -> Result<(), SettlerError> {
        self.route(payment, payload)?.check(payment, payload).await
    }

    async fn settle(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        amount: U256,
    ) -> SettleOutcome {
        self.settle_observed(payment, payload, amount, &()).await
    }

    async fn settle_observed(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        amount: U256,
        observer: &dyn SettleObserver,
    ) -> SettleOutcome {
        match self.route(payment, payload) {
            Ok(settler) => {
                settler
                    .settle_observed(payment, payload, amount, observer)
                    .await
            }
            Err(error) => SettleOutcome::Failed(error),
        }
    }

    async fn resolve(
        &self,
        payment: &VerifiedPayment,
        payload: &PaymentPayload,
        transaction: Option<&str>,
    ) -> SettleOutcome {
        match self.route(payment, payload) {
            Ok(settler) => settler.resolve(payment, payload, transaction).await,
            Err(error) => SettleOutcome::Failed(error),
        }
    }

    fn signers(&self) -> Vec<ChainAddress> {
        let mut all: Vec<ChainAddress> = Vec::new();
        for route in &self.routes {
            for signer in route.settler.signers() {
                if !all.contains(&signer) {
                    all.push(signer);
                }
            }
        }
        all
    }
}
