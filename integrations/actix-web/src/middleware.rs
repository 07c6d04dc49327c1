use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{BodySize, to_bytes_limited};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{Error, HttpMessage};
use futures_util::future::LocalBoxFuture;
use x402_runtime::{Completion, Gate, HandlerResponse, SettlementSlot};

use crate::response::{append_headers, into_response, make_private};

/// The middleware that makes `Payment` extractors work and settles after the handler.
///
/// Get it from [`X402::middleware`](crate::X402::middleware). After the handler it settles the
/// payment if the status is below 400 and adds the receipt header of the client's protocol
/// version; a failed settlement replaces the response with the runtime's 402 (or 502/504); a
/// status of 400 or more settles nothing.
#[derive(Clone)]
pub struct X402Middleware {
    pub(crate) gate: Arc<Gate>,
}

impl<S, B> Transform<S, ServiceRequest> for X402Middleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = X402Service<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(X402Service {
            service: Rc::new(service),
            gate: self.gate.clone(),
        }))
    }
}

/// The service [`X402Middleware`] wraps around an app or scope.
pub struct X402Service<S> {
    service: Rc<S>,
    gate: Arc<Gate>,
}

impl<S, B> Service<ServiceRequest> for X402Service<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let slot = SettlementSlot::new(self.gate.clone());
        request.extensions_mut().insert(slot.clone());
        let service = self.service.clone();
        let keep = self.gate.keep_response_bytes();
        Box::pin(async move {
            let response = service.call(request).await?;
            let (mut response, handled) = if slot.keeps_response() {
                capture(response, keep).await
            } else {
                let status = response.status().as_u16();
                (
                    response.map_into_left_body(),
                    HandlerResponse::status(status),
                )
            };
            match slot.finish_with(handled).await {
                None => Ok(response),
                Some(Completion::Deliver { headers, private }) => {
                    append_headers(response.headers_mut(), headers);
                    if private {
                        make_private(response.headers_mut());
                    }
                    Ok(response)
                }
                Some(Completion::Replace(parts)) => {
                    let (request, _discarded) = response.into_parts();
                    Ok(ServiceResponse::new(request, into_response(parts)).map_into_right_body())
                }
            }
        })
    }
}

/// The handler's response as the gate keeps it (status, headers, and the body when its size is
/// known and at most `limit`), and the response to send on, rebuilt from the captured bytes.
async fn capture<B: MessageBody + 'static>(
    response: ServiceResponse<B>,
    limit: usize,
) -> (ServiceResponse<EitherBody<B>>, HandlerResponse) {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let small = match response.response().body().size() {
        BodySize::Sized(len) => usize::try_from(len).is_ok_and(|len| len <= limit),
        BodySize::None => true,
        BodySize::Stream => false,
    };
    if !small {
        // Streamed or large: sent as it is, not kept.
        return (
            response.map_into_left_body(),
            HandlerResponse {
                status,
                headers,
                body: None,
            },
        );
    }
    let (request, response) = response.into_parts();
    let (head, body) = response.into_parts();
    match to_bytes_limited(body, limit).await {
        Ok(Ok(bytes)) => {
            let response = head.set_body(bytes.clone()).map_into_boxed_body();
            (
                ServiceResponse::new(request, response).map_into_right_body(),
                HandlerResponse {
                    status,
                    headers,
                    body: Some(bytes),
                },
            )
        }
        _ => {
            // The body failed while being produced (or outgrew its announced size): the client
            // cannot get it, so it is not paid for either.
            tracing::error!(target: "x402::actix", "the handler's response body failed");
            let response =
                actix_web::HttpResponse::InternalServerError().body("the response body failed");
            (
                ServiceResponse::new(request, response).map_into_right_body(),
                HandlerResponse::status(500),
            )
        }
    }
}
