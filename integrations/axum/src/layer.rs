use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum_core::body::Body;
use axum_core::response::Response;
use futures_util::future::BoxFuture;
use http::Request;
use http_body::Body as _;
use http_body_util::BodyExt;
use tower_layer::Layer;
use tower_service::Service;
use x402_runtime::{Completion, Gate, HandlerResponse, SettlementSlot};

use crate::response::{append_headers, into_response, make_private};

/// The tower layer that makes `Payment` extractors work and settles after the handler.
///
/// Get one from [`X402::layer`](crate::X402::layer). For each request it:
/// 1. lets `Payment` extractors below it find the gate;
/// 2. after the handler, settles the payment if the response status is below 400 and adds the
///    receipt header of the client's protocol version (`X-PAYMENT-RESPONSE` or
///    `PAYMENT-RESPONSE`) and `cache-control: private`; a failed settlement replaces the
///    response with a 402 (or 502), one whose outcome is not known in time with a 504
///    `settlement_pending`; a status of 400 or more settles nothing.
#[derive(Clone)]
pub struct X402Layer {
    pub(crate) gate: Arc<Gate>,
}

impl<S> Layer<S> for X402Layer {
    type Service = X402Service<S>;

    fn layer(&self, inner: S) -> Self::Service {
        X402Service {
            inner,
            gate: self.gate.clone(),
        }
    }
}

/// The service [`X402Layer`] wraps around a router or handler.
#[derive(Clone)]
pub struct X402Service<S> {
    inner: S,
    gate: Arc<Gate>,
}

impl<S, B> Service<Request<B>> for X402Service<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = X402Future<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let slot = SettlementSlot::new(self.gate.clone());
        request.extensions_mut().insert(slot.clone());
        // Called here, on the service that was polled ready: the future it returns owns what
        // it needs, so no clone of the inner service (a boxed route: an allocation) is made.
        let future = self.inner.call(request);
        X402Future {
            inner: future,
            slot: Some(slot),
            keep: self.gate.keep_response_bytes(),
            finishing: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`X402Service`]: the inner service's response, then, only when
    /// a `Payment` extractor parked a payment or a drawn use for this request, the work owed
    /// after the handler (settling, the receipt headers). A request that parked nothing (an
    /// unpaid route) is answered without that second step or any allocation for it.
    pub struct X402Future<F, E> {
        #[pin]
        inner: F,
        slot: Option<SettlementSlot>,
        keep: usize,
        finishing: Option<BoxFuture<'static, Result<Response, E>>>,
    }
}

impl<F, E> Future for X402Future<F, E>
where
    F: Future<Output = Result<Response, E>>,
    E: Send + 'static,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(finishing) = this.finishing {
            return finishing.as_mut().poll(cx);
        }
        let response = ready!(this.inner.poll(cx))?;
        let Some(slot) = this.slot.take().filter(SettlementSlot::is_parked) else {
            return Poll::Ready(Ok(response));
        };
        let mut finishing = Box::pin(finish(slot, response, *this.keep));
        let poll = finishing.as_mut().poll(cx);
        *this.finishing = Some(finishing);
        poll
    }
}

/// After the handler of a request that parked work: settles (or gives back a drawn use) and
/// adds or replaces what the outcome says.
async fn finish<E>(slot: SettlementSlot, response: Response, keep: usize) -> Result<Response, E> {
    let (mut response, handled) = if slot.keeps_response() {
        capture(response, keep).await
    } else {
        let status = response.status().as_u16();
        (response, HandlerResponse::status(status))
    };
    match slot.finish_with(handled).await {
        None => Ok(response),
        Some(Completion::Deliver { headers, private }) => {
            append_headers(&mut response, headers);
            if private {
                make_private(&mut response);
            }
            Ok(response)
        }
        Some(Completion::Replace(parts)) => Ok(into_response(parts)),
    }
}

async fn capture(response: Response, limit: usize) -> (Response, HandlerResponse) {
    let (parts, body) = response.into_parts();
    let headers = parts
        .headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let status = parts.status.as_u16();
    let small = body
        .size_hint()
        .exact()
        .is_some_and(|len| usize::try_from(len).is_ok_and(|len| len <= limit));
    if !small {
        // Streamed or large: sent as it is, not kept.
        let response = Response::from_parts(parts, body);
        return (
            response,
            HandlerResponse {
                status,
                headers,
                body: None,
            },
        );
    }
    match body.collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            let response = Response::from_parts(parts, Body::from(bytes.clone()));
            (
                response,
                HandlerResponse {
                    status,
                    headers,
                    body: Some(bytes),
                },
            )
        }
        Err(error) => {
            // The body failed while being produced: the client cannot get it, so it is not
            // paid for either.
            tracing::error!(target: "x402::axum", %error, "the handler's response body failed");
            let mut response = Response::new(Body::from("the response body failed"));
            *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            (response, HandlerResponse::status(500))
        }
    }
}
