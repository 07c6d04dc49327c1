use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{Error, HttpMessage};
use futures_util::future::LocalBoxFuture;
use x402_runtime::{Completion, Gate, Pending};

use crate::response::{append_headers, into_response};

/// Carries the gate to the `Payment` extractor and the pending settlement (with the gate that
/// must finish it) back to the middleware.
#[derive(Clone)]
pub(crate) struct Slot(Arc<SlotInner>);

struct SlotInner {
    gate: Arc<Gate>,
    pending: Mutex<Option<(Arc<Gate>, Pending)>>,
}

impl Slot {
    pub(crate) fn gate(&self) -> &Arc<Gate> {
        &self.0.gate
    }

    pub(crate) fn put(&self, gate: Arc<Gate>, pending: Pending) {
        *self
            .0
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((gate, pending));
    }

    fn take(&self) -> Option<(Arc<Gate>, Pending)> {
        self.0
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

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
        let slot = Slot(Arc::new(SlotInner {
            gate: self.gate.clone(),
            pending: Mutex::new(None),
        }));
        request.extensions_mut().insert(slot.clone());
        let service = self.service.clone();
        Box::pin(async move {
            let mut response = service.call(request).await?;
            let Some((gate, pending)) = slot.take() else {
                return Ok(response.map_into_left_body());
            };
            match gate.finish(pending, response.status().as_u16()).await {
                Completion::Deliver(headers) => {
                    append_headers(response.headers_mut(), headers);
                    Ok(response.map_into_left_body())
                }
                Completion::Replace(parts) => {
                    let (request, _discarded) = response.into_parts();
                    Ok(ServiceResponse::new(request, into_response(parts)).map_into_right_body())
                }
            }
        })
    }
}
