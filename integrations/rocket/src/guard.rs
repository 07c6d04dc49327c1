use std::marker::PhantomData;
use std::ops::Deref;

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome};
use rocket::response::{self, Responder};
use rocket::{Ignite, Request, Rocket, Sentinel};
use x402_runtime::{PaymentInfo, PriceTag, Reason, Rejection};

use crate::response::build;
use crate::slot::{self, Installed, RouteId, Slot};
use crate::view::RocketView;

/// What a request to a route forwarded elsewhere reports to the gate: Rocket's own status for
/// a forward. The paid handler did not answer, so nothing is settled.
pub(crate) const NOT_SERVED: u16 = 404;

/// The payment behind a request to a `#[paid]` handler.
///
/// Taking it as a parameter is what makes a handler paid: as a request guard it evaluates the
/// request's payment header against the route's price and only succeeds for a verified payment
/// (or a valid entitlement); otherwise the client gets the 402 challenge or the rejection with
/// its reason, and the handler does not run. `#[paid]` fills in the type parameter; it derefs
/// to [`PaymentInfo`].
///
/// It is also a [`Sentinel`]: a Rocket instance with a route that takes a `Payment` refuses to
/// launch unless [`X402::fairing`](crate::X402::fairing) is attached.
///
/// ```
/// use rocket::get;
/// use rocket_x402::{Payment, PriceTag, RouteSpec};
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
/// #[get("/weather")]
/// fn weather(payment: Payment<Weather>) -> String {
///     format!("thanks for {} from {}", payment.amount_display(), payment.payer())
/// }
/// # let _ = rocket::routes![weather];
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

/// Why a `Payment` guard failed: a 402 challenge, a rejected payment or an infrastructure
/// failure. Its response (status, headers, JSON body with a reason code) comes from the
/// runtime; the fairing sends it in place of Rocket's error page, and a handler that takes
/// `Result<Payment<T>, PaymentRejection>` can return it as a responder.
pub struct PaymentRejection(Rejection);

impl PaymentRejection {
    /// The runtime's rejection.
    pub fn rejection(&self) -> &Rejection {
        &self.0
    }
}

/// Short, because Rocket logs a failed guard's error with `{:?}`: the reason, status and
/// message, without the whole challenge.
impl std::fmt::Debug for PaymentRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PaymentRejection")
            .field(&format_args!("{}", self.0))
            .finish()
    }
}

impl std::fmt::Display for PaymentRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for PaymentRejection {}

impl<'r, 'o: 'r> Responder<'r, 'o> for PaymentRejection {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'o> {
        // Rendered here, so the fairing must not render it again.
        let _ = Slot::of(request).take_rejection(RouteId::of(request), self.0.status());
        Ok(build(self.0.to_response()))
    }
}

#[rocket::async_trait]
impl<'r, T: PriceTag> FromRequest<'r> for Payment<T> {
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
                Outcome::Success(Payment {
                    info: admission.payment,
                    tag: PhantomData,
                })
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
