use rocket::http::Status;
use rocket::request::{FromRequest, Outcome};
use rocket::response::{self, Responder};
use rocket::{Ignite, Request, Rocket, Sentinel};
use x402_runtime::{PaidRoute, Reason, Rejection};

use crate::response::build;
use crate::slot::{self, Installed, RouteId, SettleHandle, Slot};
use crate::view::RocketView;

/// What a request to a route forwarded elsewhere reports to the gate: Rocket's own status for
/// a forward. The paid handler did not answer, so nothing is settled.
pub(crate) const NOT_SERVED: u16 = 404;

x402_runtime::__payment_types!(SettleHandle);

impl<'r, 'o: 'r> Responder<'r, 'o> for PaymentRejection {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'o> {
        // Rendered here, so the fairing must not render it again.
        let _ = Slot::of(request).take_rejection(RouteId::of(request), self.0.status());
        Ok(build(self.0.to_response()))
    }
}

/// As a request guard, `Payment` evaluates the request against the route's price (or an
/// entitlement token); the fairing settles after the handler. It is also a [`Sentinel`]: a
/// Rocket instance with a route that takes a `Payment` refuses to launch unless
/// [`X402::fairing`](crate::X402::fairing) is attached.
///
/// ```
/// use rocket::get;
/// use rocket_x402::{PaidRoute, Payment, RouteSpec};
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
/// #[get("/weather")]
/// fn weather(payment: Payment<Weather>) -> String {
///     format!("thanks for {} from {}", payment.amount_display(), payment.payer())
/// }
/// # let _ = rocket::routes![weather];
/// ```
#[rocket::async_trait]
impl<'r, T: PaidRoute> FromRequest<'r> for Payment<T> {
    type Error = PaymentRejection;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let Some(installed) = request.rocket().state::<Installed>() else {
            // Only reachable past the sentinel, e.g. from a hand-written handler or guard.
            log::error!(target: "x402::rocket", "{FAIRING_MISSING}");
            let rejection = Rejection::new(Reason::NOT_CONFIGURED, FAIRING_MISSING);
            return Outcome::Error((Status::new(rejection.status()), PaymentRejection(rejection)));
        };
        let slot = Slot::of(request);
        // A route tried earlier for this request may have admitted the same payment and then
        // forwarded: give back what it reserved, so this route judges the payment afresh.
        if let Some(earlier) = slot.take()
            && let slot::Outcome::Admitted(pending) = earlier.outcome
        {
            // Its headers have no response to go on: this route answers now. (A payment that
            // route settled before its handler stays settled.)
            let _ = installed.gate.finish(pending, NOT_SERVED).await;
        }
        let route = RouteId::of(request);
        let decision = installed
            .gate
            .evaluate(&RocketView::new(request), T::spec())
            .await;
        match decision.into_result() {
            Ok(admission) => {
                slot.put(
                    &installed.parked,
                    route,
                    slot::Outcome::Admitted(admission.pending),
                );
                Outcome::Success(Payment::new(
                    admission.payment,
                    Some(SettleHandle::new(installed.gate.clone(), slot.clone())),
                ))
            }
            Err(rejection) if rejection.is_answer() => {
                // Not a refusal: a kept response sent again. Rocket only stops a request on an
                // error status, so the guard fails as a 402 and the fairing replaces the
                // response with the answer.
                let parts = rejection.to_response();
                slot.put(&installed.parked, route, slot::Outcome::Answered(parts));
                Outcome::Error((Status::PaymentRequired, PaymentRejection(rejection)))
            }
            Err(rejection) => {
                let parts = rejection.to_response();
                let status = Status::new(parts.status);
                slot.put(&installed.parked, route, slot::Outcome::Rejected(parts));
                Outcome::Error((status, PaymentRejection(rejection)))
            }
        }
    }
}

const FAIRING_MISSING: &str = "the x402 fairing is missing: attach it with \
     `rocket::build().attach(x402.fairing())` (managing an `X402` with `.manage()` is not enough)";

/// Aborts launch when a route takes a `Payment` but the x402 fairing is not attached: without
/// it nothing would settle payments or render challenges.
impl<T> Sentinel for Payment<T> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        if rocket.state::<Installed>().is_some() {
            return false;
        }
        log::error!(
            target: "x402::rocket",
            "a route takes a `Payment` guard (`{}`), but {FAIRING_MISSING}",
            std::any::type_name::<Self>()
        );
        true
    }
}
