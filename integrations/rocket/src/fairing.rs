use std::sync::Arc;

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::{Build, Request, Response, Rocket};
use x402_runtime::{Completion, Gate, HandlerResponse};

use crate::catcher::ChallengeCatcher;
use crate::guard::NOT_SERVED;
use crate::response::{append_headers, build, make_private, render_over};
use crate::slot::{Installed, Outcome, ParkedCount, RouteId, Slot};

/// The fairing that makes `Payment` guards work and settles after the handler.
///
/// Get one from [`X402::fairing`](crate::X402::fairing); attaching it is the whole setup:
/// 1. on ignition it makes the configuration available to `Payment` guards (their sentinel
///    checks for it) and registers a 402 catcher for `/`, unless the application has its own;
/// 2. after each response to a request a `Payment` guard admitted, it settles the payment if
///    the status is below 400 and adds the receipt header of the client's protocol version
///    (`X-PAYMENT-RESPONSE` or `PAYMENT-RESPONSE`) and any entitlement token; a failed
///    settlement replaces the response with a 402 (or 502/504) carrying the reason; a status of
///    400 or more — a handler's `Err`, a failed later guard — settles nothing. The status is the
///    one Rocket sends, after any catcher: a catcher that answers errors with a success status
///    (a single-page-app fallback serving 200) turns a failed paid handler into a success;
///    a request admitted by a route that then forwarded is never settled by another route;
/// 3. for a request a `Payment` guard refused, it sends the runtime's response (status,
///    `PAYMENT-REQUIRED` header, JSON body with the reason) in place of whatever error page a
///    catcher made, for every status the runtime uses.
///
/// Attach it before fairings that post-process responses (CORS, compression), so that they see
/// the final response.
pub struct X402Fairing {
    pub(crate) gate: Arc<Gate>,
    pub(crate) parked: ParkedCount,
}

impl std::fmt::Debug for X402Fairing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X402Fairing")
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

#[rocket::async_trait]
impl Fairing for X402Fairing {
    fn info(&self) -> Info {
        Info {
            name: "x402",
            // Singleton: attaching a second x402 fairing replaces the first.
            kind: Kind::Ignite | Kind::Response | Kind::Singleton,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        if rocket.state::<Installed>().is_some() {
            log::error!(target: "x402::rocket", "the x402 fairing ran twice on one instance");
            return Err(rocket);
        }
        let catcher = ChallengeCatcher::for_app(rocket.catchers());
        let rocket = rocket.manage(Installed {
            gate: self.gate.clone(),
            parked: self.parked.clone(),
        });
        Ok(match catcher {
            Some(catcher) => rocket.register("/", vec![catcher]),
            None => rocket,
        })
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        // The fast path: no request in flight has anything parked.
        if self.parked.is_zero() {
            return;
        }
        let slot = Slot::of(request);
        let route = RouteId::of(request);
        let status = response.status().code;
        // A refusal that no catcher of ours rendered: a status other than 402, or an
        // application with its own 402 catcher.
        if let Some(parts) = slot.take_rejection(route, status) {
            render_over(response, parts);
            return;
        }
        let Some(parked) = slot.take() else {
            return;
        };
        let Outcome::Admitted(pending) = parked.outcome else {
            // A refusal the handler saw (it took `Option<Payment>` or `Result<Payment, _>`)
            // and answered in its own way.
            return;
        };
        // A route that admitted the request but forwarded it did not serve this response.
        let status = if parked.route == route {
            status
        } else {
            NOT_SERVED
        };
        let handled = if status < 400 && pending.keeps_response() {
            capture(response, self.gate.keep_response_bytes()).await
        } else {
            HandlerResponse::status(status)
        };
        match self.gate.finish_with(pending, handled).await {
            Completion::Deliver { headers, private } => {
                append_headers(response, headers);
                if private {
                    make_private(response);
                }
            }
            // The handler's response is withdrawn entirely, headers included.
            Completion::Replace(parts) => *response = build(parts),
        }
    }
}

/// The handler's response as the gate keeps it (status, headers, and the body when its size is
/// known and at most `limit`); the body is put back for sending.
async fn capture(response: &mut Response<'_>, limit: usize) -> HandlerResponse {
    let status = response.status().code;
    let headers = response
        .headers()
        .iter()
        .map(|header| (header.name().as_str().to_owned(), header.value().to_owned()))
        .collect();
    let small = response
        .body()
        .preset_size()
        .is_some_and(|len| len <= limit);
    if !small {
        // Streamed or large: sent as it is, not kept.
        return HandlerResponse {
            status,
            headers,
            body: None,
        };
    }
    match response.body_mut().to_bytes().await {
        Ok(bytes) => {
            let body = bytes::Bytes::from(bytes);
            response.set_sized_body(body.len(), std::io::Cursor::new(body.clone()));
            HandlerResponse {
                status,
                headers,
                body: Some(body),
            }
        }
        Err(error) => {
            // The body failed while being produced: the client cannot get it, so it is not
            // paid for either.
            log::error!(target: "x402::rocket", "the handler's response body failed: {error}");
            response.set_status(rocket::http::Status::InternalServerError);
            response.set_sized_body(0, std::io::Cursor::new(Vec::new()));
            HandlerResponse::status(500)
        }
    }
}
