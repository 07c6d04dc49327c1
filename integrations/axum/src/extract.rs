use std::marker::PhantomData;
use std::ops::Deref;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use x402_runtime::{PaymentInfo, PriceTag, Reason, Rejection, SettlementSlot};

use crate::response::into_response;
use crate::view::PartsView;

/// The payment behind a request to a `#[paid]` handler.
///
/// Taking it as a parameter is what makes a handler paid: extraction evaluates the request's
/// payment header against the route's price and only succeeds for a verified payment; otherwise
/// the client gets the 402 challenge or the rejection with its reason, and the handler does not
/// run. `#[paid]` fills in the type parameter; it derefs to [`PaymentInfo`].
///
/// ```
/// use axum_x402::{Payment, PriceTag, RouteSpec};
///
/// // What #[paid(price = "0.01 USDC", network = "base")] generates, written by hand:
/// struct Weather;
/// impl PriceTag for Weather {
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
pub struct Payment<T = Unpriced> {
    info: PaymentInfo,
    tag: PhantomData<fn() -> T>,
}

/// The type parameter of a [`Payment`] whose handler lacks `#[paid]`; it has no price, so such
/// a handler does not compile.
#[derive(Debug)]
pub enum Unpriced {}

impl<T> Payment<T> {
    /// The payment details.
    pub fn info(&self) -> &PaymentInfo {
        &self.info
    }

    /// Takes the payment details.
    pub fn into_info(self) -> PaymentInfo {
        self.info
    }
}

impl<T> Deref for Payment<T> {
    type Target = PaymentInfo;

    fn deref(&self) -> &PaymentInfo {
        &self.info
    }
}

impl<T> std::fmt::Debug for Payment<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Payment").field(&self.info).finish()
    }
}

/// Why a `Payment` could not be extracted: a 402 challenge, a rejected payment, an
/// infrastructure failure, or a missing [`X402Layer`](crate::X402Layer). Its response (status,
/// headers, JSON body with a reason code) comes from the runtime.
#[derive(Debug)]
pub struct PaymentRejection(Rejection);

impl PaymentRejection {
    /// The runtime's rejection.
    pub fn rejection(&self) -> &Rejection {
        &self.0
    }
}

impl std::fmt::Display for PaymentRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for PaymentRejection {}

impl IntoResponse for PaymentRejection {
    fn into_response(self) -> Response {
        into_response(self.0.to_response())
    }
}

impl<T: PriceTag, S: Send + Sync> FromRequestParts<S> for Payment<T> {
    type Rejection = PaymentRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(slot) = parts.extensions.get::<SettlementSlot>().cloned() else {
            tracing::error!(target: "x402::axum", "Payment extracted without the x402 layer");
            return Err(PaymentRejection(Rejection::new(
                Reason::NOT_CONFIGURED,
                "the x402 layer is missing: add `.layer(x402.layer())` to the router that serves paid routes",
            )));
        };
        let decision = slot.gate().evaluate(&PartsView(parts), T::spec()).await;
        match decision.into_result() {
            Ok(admission) => {
                slot.park(slot.gate().clone(), admission.pending);
                Ok(Payment {
                    info: admission.payment,
                    tag: PhantomData,
                })
            }
            Err(rejection) => Err(PaymentRejection(rejection)),
        }
    }
}
