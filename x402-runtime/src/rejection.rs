//! Why a request was not served, in a form that renders to exactly one response.

use std::borrow::Cow;
use std::sync::Arc;

use x402_protocol::facilitator::SettleResponse;
use x402_protocol::{ChainAddress, ProtocolVersion, Reason};

use crate::challenge::Challenge;
use crate::response::{self, ResponseParts};

/// A request that will not reach the handler (or whose paid response is withdrawn), with a
/// machine-readable reason. A missing payment is the rejection `payment_required`.
///
/// Render it with [`Rejection::to_response`]; its status comes from
/// [`response::status_for`].
#[derive(Debug, Clone)]
pub struct Rejection {
    reason: Reason,
    message: Cow<'static, str>,
    payer: Option<ChainAddress>,
    version: Option<ProtocolVersion>,
    challenge: Option<Arc<Challenge>>,
    settlement: Option<Box<SettleResponse>>,
    answer: Option<Box<ResponseParts>>,
    /// A status chosen by whoever refused (a lifecycle hook), instead of the reason's.
    status: Option<u16>,
}

impl Rejection {
    /// A rejection with a reason and a message for people.
    pub fn new(reason: Reason, message: impl Into<Cow<'static, str>>) -> Self {
        Rejection {
            reason,
            message: message.into(),
            payer: None,
            version: None,
            challenge: None,
            settlement: None,
            answer: None,
            status: None,
        }
    }

    /// A lifecycle hook's refusal: its status (400–599, checked by the
    /// [`HookRunner`](crate::hooks::HookRunner)), reason and message.
    pub(crate) fn from_abort(abort: crate::hooks::Abort) -> Self {
        let mut rejection = Rejection::new(abort.reason, abort.message);
        rejection.status = Some(abort.status);
        rejection
    }

    /// The gate answers in the handler's place with `parts`: the response an earlier request
    /// with the same payment was given (kept in the journal), sent again to a client whose
    /// answer was lost. Not an error, though it travels like one (a framework extractor can
    /// only stop a request by failing).
    pub(crate) fn answer_with(parts: ResponseParts) -> Self {
        let mut rejection =
            Rejection::new(Reason::PAYMENT_REPLAYED, "an earlier answer, sent again");
        rejection.answer = Some(Box::new(parts));
        rejection
    }

    /// The response this stands for when the gate answers in the handler's place (see
    /// [`is_answer`](Self::is_answer)).
    pub(crate) fn answer(&self) -> Option<&ResponseParts> {
        self.answer.as_deref()
    }

    /// Whether this is not a refusal but an answer the gate gives in the handler's place (a
    /// kept response sent again): integrations must send it as it is, whatever its status.
    pub fn is_answer(&self) -> bool {
        self.answer.is_some()
    }

    /// Attaches the route's challenge, so a 402 tells the client how to pay.
    pub fn with_challenge(mut self, challenge: Arc<Challenge>) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// Names the payer whose payment was rejected.
    pub fn with_payer(mut self, payer: Option<ChainAddress>) -> Self {
        self.payer = payer;
        self
    }

    /// Records the protocol generation of the rejected payment, so the JSON body spells the
    /// reason the way that generation does.
    pub fn with_version(mut self, version: ProtocolVersion) -> Self {
        self.version = Some(version);
        self
    }

    /// The protocol generation of the rejected payment, when one was received.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// Attaches a failed or pending settlement receipt (sent as v2 `PAYMENT-RESPONSE`).
    pub(crate) fn with_settlement(mut self, settlement: SettleResponse) -> Self {
        self.settlement = Some(Box::new(settlement));
        self
    }

    /// The reason code.
    pub fn reason(&self) -> &Reason {
        &self.reason
    }

    /// What went wrong, for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The payer, when a payment was received.
    pub fn payer(&self) -> Option<ChainAddress> {
        self.payer
    }

    /// The HTTP status this rejection is sent with.
    pub fn status(&self) -> u16 {
        match &self.answer {
            Some(parts) => parts.status,
            None => self
                .status
                .unwrap_or_else(|| response::status_for(&self.reason)),
        }
    }

    /// The route's challenge, when attached.
    pub fn challenge(&self) -> Option<&Challenge> {
        self.challenge.as_deref()
    }

    /// Whether this is the plain challenge for a request without payment (no payer, no
    /// settlement, nothing particular to the request beyond its URL).
    pub(crate) fn is_bare_challenge(&self) -> bool {
        self.reason == Reason::PAYMENT_REQUIRED
            && self.payer.is_none()
            && self.version.is_none()
            && self.settlement.is_none()
    }

    /// The failed settlement receipt, if settlement was what failed.
    pub fn settlement(&self) -> Option<&SettleResponse> {
        self.settlement.as_deref()
    }

    /// Status, headers and body to send.
    pub fn to_response(&self) -> ResponseParts {
        response::rejection(self)
    }

    /// [`to_response`](Self::to_response) as an `http` response, for integrations built on
    /// the `http` crate (axum, hyper, tower). A route's bare challenge, served again, shares
    /// its header values and body with the one rendered first.
    ///
    /// ```
    /// use x402_runtime::{Reason, Rejection};
    ///
    /// let response = Rejection::new(Reason::STORE_UNAVAILABLE, "try again").to_http_response();
    /// assert_eq!(response.status(), 503);
    /// assert_eq!(response.headers()["cache-control"], "no-store");
    /// assert_eq!(response.headers()["content-type"], "application/json");
    /// ```
    pub fn to_http_response(&self) -> http::Response<bytes::Bytes> {
        response::rejection_http(self)
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.reason, self.status(), self.message)
    }
}

impl std::error::Error for Rejection {}
