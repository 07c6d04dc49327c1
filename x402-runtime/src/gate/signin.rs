//! Step 2b: sign-in-with-x. A payer who bought access (an `access` or `uses` grant, a prepaid
//! session) and lost its token proves with a `SIGN-IN-WITH-X` header that it is the wallet
//! that paid; the grant that wallet bought for this scope is then redeemed as if the token had
//! been sent (same scope, route, price and counter checks), and the token is delivered again.
//!
//! The 402 of such a route declares the extension (a fresh nonce each time); a sign-in is
//! checked by [`SiwxVerifier`](crate::siwx::SiwxVerifier): its fields against this resource,
//! its signature, and the single use of its nonce.

use std::sync::Arc;
use std::time::Duration;

use x402_protocol::Reason;

use super::redeem::Scope;
use super::{Admission, Gate, PendingKind, store_rejection};
use crate::challenge::Challenge;
use crate::entitlement::EntitlementError;
use crate::hooks::RequestSummary;
use crate::rejection::Rejection;
use crate::request::RequestView;
use crate::siwx::{SiwxRejection, SiwxVerifier};

/// The request's `SIGN-IN-WITH-X` header, read before the gate's future runs.
pub(super) fn header(view: &dyn RequestView) -> Option<String> {
    SiwxVerifier::header(view).map(str::to_owned)
}

/// The CAIP-2 networks a route accepts, each once, in the order it offers them.
pub(crate) fn route_chains(challenge: &Challenge) -> Vec<String> {
    let mut chains: Vec<String> = Vec::new();
    for option in challenge.options() {
        let chain = option.network.caip2.to_string();
        if !chains.contains(&chain) {
            chains.push(chain);
        }
    }
    chains
}

impl Gate {
    /// Admits a request signed in with the wallet that bought a grant for `scope`, or says
    /// why not: an invalid sign-in with its `invalid_siwx_*` reason, a wallet without a grant
    /// here with `siwx_no_grant` (both 402, with a fresh challenge), a store failure with 503.
    pub(super) async fn sign_in(
        &self,
        header: &str,
        scope: &Scope,
        method: &str,
        challenge: &Arc<Challenge>,
        summary: Option<&RequestSummary>,
    ) -> Result<Admission, Rejection> {
        let Some(verifier) = &self.siwx else {
            return Err(Rejection::new(
                Reason::PAYMENT_REQUIRED,
                "sign-in-with-x is not enabled on this server",
            ));
        };
        let chains = route_chains(challenge);
        let signed_in = verifier
            .verify_header(header, challenge.resource(), &chains)
            .await
            .map_err(|rejection| match rejection {
                SiwxRejection::Store(error) => store_rejection(error),
                invalid => {
                    tracing::info!(target: "x402::siwx", reason = %invalid.reason(), %invalid, "sign-in refused");
                    Rejection::new(invalid.reason(), invalid.to_string())
                }
            })?;
        let payer = signed_in.signer.to_string();
        let Some(token) = self
            .entitlements
            .recall_grant(&scope.id, &payer)
            .await
            .map_err(store_rejection)?
        else {
            tracing::info!(target: "x402::siwx", %payer, scope = %scope.id, "signed in without a grant here");
            return Err(Rejection::new(
                Reason::SIWX_NO_GRANT,
                format!("{payer} signed in but holds no grant for this resource here; pay for it"),
            ));
        };
        let now = self.clock.now_unix();
        let expires_at = match self.entitlement_keys.verify_shared(&token, now) {
            Ok(claims) => claims.expires_at,
            Err(error) => return Err(grant_problem(&error)),
        };
        let mut admission = self
            .redeem(
                std::slice::from_ref(&token),
                scope,
                method,
                challenge,
                summary,
            )
            .await?;
        tracing::info!(target: "x402::siwx", %payer, scope = %scope.id, "returning payer signed in; grant delivered again");
        let headers = self.token_headers(
            token,
            scope,
            Duration::from_secs(expires_at.saturating_sub(now)),
        );
        match &mut admission.pending.0 {
            PendingKind::Drawn { deliver, .. } | PendingKind::Nothing { deliver } => {
                *deliver = headers;
            }
            // Redeeming a grant never yields a payment to settle.
            PendingKind::Payment(_) => {}
        }
        Ok(admission)
    }
}

/// A kept grant that no longer verifies (expired, or signed with a retired key).
fn grant_problem(error: &EntitlementError) -> Rejection {
    Rejection::new(
        error.reason(),
        format!("the grant this wallet bought here cannot be used: {error}"),
    )
}
