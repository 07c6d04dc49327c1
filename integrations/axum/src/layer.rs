use std::sync::Arc;
use std::task::{Context, Poll};

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
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let slot = SettlementSlot::new(self.gate.clone());
        request.extensions_mut().insert(slot.clone());
        // Called here, on the service that was polled ready: the future it returns owns what
        // it needs, so no clone of the inner service (a boxed route: an allocation) is made.
        let future = self.inner.call(request);
        let keep = self.gate.keep_response_bytes();
        Box::pin(async move {
            let response = future.await?;
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
        })
    }
}

/// The handler's response as the gate keeps it (status, headers, and the body when its size is
/// known and at most `limit`), and the response to send on, rebuilt from the captured bytes.
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
