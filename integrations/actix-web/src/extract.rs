use std::marker::PhantomData;
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use futures_util::future::LocalBoxFuture;
use x402_runtime::{PaymentInfo, PriceTag, Reason, Rejection, SettlementSlot};

use crate::X402;
use crate::response::into_response;
use crate::view::RequestViewOf;

/// The payment behind a request to a `#[paid]` handler.
///
/// Taking it as a parameter is what makes a handler paid: extraction evaluates the request's
/// payment header against the route's price and only succeeds for a verified payment; otherwise
/// the client gets the 402 challenge or the rejection with its reason, and the handler does not
/// run. `#[paid]` fills in the type parameter; it derefs to [`PaymentInfo`].
///
/// The gate comes from an [`X402`] in the app data of the request's scope when there is one,
/// else from the [`X402Middleware`](crate::X402Middleware), which must wrap the route either
/// way (it settles after the handler).
///
/// ```
/// use actix_web_x402::{Payment, PriceTag, RouteSpec};
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
/// # let _ = actix_web::App::new().route("/weather", actix_web::web::get().to(weather));
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
/// infrastructure failure, or a missing middleware. Its response (status, headers, JSON body
/// with a reason code) comes from the runtime.
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

impl ResponseError for PaymentRejection {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        into_response(self.0.to_response())
    }
}

impl<T: PriceTag> FromRequest for Payment<T> {
    type Error = PaymentRejection;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let slot = request.extensions().get::<SettlementSlot>().cloned();
            let Some(slot) = slot else {
                tracing::error!(target: "x402::actix", "Payment extracted without the x402 middleware");
                return Err(PaymentRejection(Rejection::new(
                    Reason::NOT_CONFIGURED,
                    "the x402 middleware is missing: add `.wrap(x402.middleware())` to the App or scope that serves paid routes",
                )));
            };
            let gate = request
                .app_data::<X402>()
                .or_else(|| {
                    request
                        .app_data::<web::Data<X402>>()
                        .map(|data| data.get_ref())
                })
                .map_or_else(|| slot.gate().clone(), |x402| x402.gate().clone());
            let decision = gate.evaluate(&RequestViewOf(&request), T::spec()).await;
            match decision.into_result() {
                Ok(admission) => {
                    slot.park(gate, admission.pending);
                    Ok(Payment {
                        info: admission.payment,
                        tag: PhantomData,
                    })
                }
                Err(rejection) => Err(PaymentRejection(rejection)),
            }
        })
    }
}
