use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use x402_runtime::{PaidRoute, Reason, Rejection, SettlementSlot};

use crate::view::AxumView;

x402_runtime::__payment_types!(SettlementSlot);

impl IntoResponse for PaymentRejection {
    /// The runtime's `http` rendering: a route's repeated 402 shares the cached header values.
    fn into_response(self) -> Response {
        self.0.to_http_response().map(Body::from)
    }
}

/// Extraction evaluates the request against the route's price; the [`X402Layer`] it finds in
/// the request settles after the handler.
///
/// ```
/// use axum_x402::{PaidRoute, Payment, RouteSpec};
///
/// // What #[paid(price = "0.01 USDC", network = "base")] generates, written by hand:
/// struct Weather;
/// impl PaidRoute for Weather {
///     fn spec() -> &'static RouteSpec {
///         static SPEC: RouteSpec = RouteSpec::fixed("0.01 USDC").networks(&["base"]);
///         &SPEC
///     }
/// }
///
/// async fn weather(payment: Payment<Weather>) -> String {
///     format!("thanks for {} from {}", payment.amount_display(), payment.payer())
/// }
/// # let _ = axum::Router::<()>::new().route("/weather", axum::routing::get(weather));
/// ```
///
/// [`X402Layer`]: crate::X402Layer
impl<T: PaidRoute, S: Send + Sync> FromRequestParts<S> for Payment<T> {
    type Rejection = PaymentRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(slot) = parts.extensions.get::<SettlementSlot>().cloned() else {
            tracing::error!(target: "x402::axum", "Payment extracted without the x402 layer");
            return Err(PaymentRejection(Rejection::new(
                Reason::NOT_CONFIGURED,
                "the x402 layer is missing: add `.layer(x402.layer())` to the router that serves paid routes",
            )));
        };
        let decision = slot.gate().evaluate(&AxumView(parts), T::spec()).await;
        match decision.into_result() {
            Ok(admission) => {
                slot.park(slot.gate().clone(), admission.pending);
                Ok(Payment::new(admission.payment, Some(slot)))
            }
            Err(rejection) => Err(PaymentRejection(rejection)),
        }
    }
}
