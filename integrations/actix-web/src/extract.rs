use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use futures_util::future::LocalBoxFuture;
use x402_runtime::{PaidRoute, Reason, Rejection, SettlementSlot};

use crate::X402;
use crate::response::into_response;
use crate::view::ActixView;

x402_runtime::__payment_types!(SettlementSlot);

impl ResponseError for PaymentRejection {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        into_response(self.0.to_response())
    }
}

/// Extraction evaluates the request against the route's price.
///
/// The gate comes from an [`X402`] in the app data of the request's scope when there is one,
/// else from the [`X402Middleware`](crate::X402Middleware), which must wrap the route either
/// way (it settles after the handler).
///
/// ```
/// use actix_web_x402::{PaidRoute, Payment, RouteSpec};
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
/// # let _ = actix_web::App::new().route("/weather", actix_web::web::get().to(weather));
/// ```
impl<T: PaidRoute> FromRequest for Payment<T> {
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
            let decision = gate.evaluate(&ActixView(&request), T::spec()).await;
            match decision.into_result() {
                Ok(admission) => {
                    slot.park(gate, admission.pending);
                    Ok(Payment::new(admission.payment, Some(slot)))
                }
                Err(rejection) => Err(PaymentRejection(rejection)),
            }
        })
    }
}
