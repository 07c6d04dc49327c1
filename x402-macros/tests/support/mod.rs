//! Shared by the `tests/pass` programs: a stand-in for an integration's `Payment<T>`, and ways
//! to read the `RouteSpec` a `#[paid]` handler's `Payment` parameter points at.
#![allow(dead_code)]

use std::future::Future;
use std::marker::PhantomData;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use x402_runtime::{PriceSpec, PaidRoute, RouteSpec};

/// Shaped like the integrations' extractors: generic over the route's tag, with a default so
/// that the type can be written bare before `#[paid]` fills it in. Derives add `T: Trait`
/// bounds, which the tag types satisfy.
#[derive(Debug, Clone, Copy)]
pub struct Payment<T = ()>(pub PhantomData<T>);

impl<T> Payment<T> {
    pub fn new() -> Self {
        Payment(PhantomData)
    }
}

/// What `settle = "before"` handlers call first; the stand-in has nothing to settle.
impl<T: Send> x402_runtime::__private::SettleFirst for Payment<T> {
    type Rejection = ();

    async fn settle_first(&mut self) -> Result<(), ()> {
        Ok(())
    }
}

/// The spec of a one-parameter handler, read through the type of its parameter.
pub fn spec_of<T: PaidRoute, R>(_: fn(Payment<T>) -> R) -> &'static RouteSpec {
    T::spec()
}

/// The spec of a handler whose `Payment` is the second of three parameters.
pub fn spec_of_2nd_of_3<A, T: PaidRoute, B, R>(_: fn(A, Payment<T>, B) -> R) -> &'static RouteSpec {
    T::spec()
}

/// The literal of a fixed price.
pub fn fixed(spec: &RouteSpec) -> &'static str {
    match spec.price {
        PriceSpec::Fixed(text) => text,
        PriceSpec::Dynamic(_) => panic!("expected a fixed price"),
    }
}

/// Runs a future that never waits (the handlers here only compute).
pub fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the handler waited"),
    }
}
