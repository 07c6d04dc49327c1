use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{Error, HttpMessage};
use futures_util::future::LocalBoxFuture;
use x402_runtime::{Completion, Gate, SettlementSlot};

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
        Box::pin(async move {
            let mut response = service.call(request).await?;
            match slot.finish(response.status().as_u16()).await {
                None => Ok(response.map_into_left_body()),
                Some(Completion::Deliver { headers, private }) => {
                    append_headers(response.headers_mut(), headers);
                    if private {
                        make_private(response.headers_mut());
                    }
                    Ok(response.map_into_left_body())
                }
                Some(Completion::Replace(parts)) => {
                    let (request, _discarded) = response.into_parts();
                    Ok(ServiceResponse::new(request, into_response(parts)).map_into_right_body())
                }
            }
        })
    }
}
