use rocket::Request;
use rocket::catcher::{self, Catcher, Handler};
use rocket::http::Status;

use crate::response::build;
use crate::slot::{RouteId, Slot};

/// The 402 catcher: sends the runtime's challenge for a request a `Payment` guard refused, and
/// lets the catcher that would otherwise have run answer any other 402.
#[derive(Clone)]
pub(crate) struct ChallengeCatcher {
    fallback: Box<dyn Handler>,
}

impl ChallengeCatcher {
    /// A 402 catcher for `/`, or `None` when the application catches 402 there itself (then the
    /// fairing renders challenges over the application's response).
    pub(crate) fn for_app<'a>(app: impl Iterator<Item = &'a Catcher>) -> Option<Catcher> {
        let mut app_default = None;
        for catcher in app {
            if catcher.base.path() != "/" {
                continue;
            }
            match catcher.code {
                Some(402) => return None,
                None => app_default = Some(catcher.handler.clone()),
                Some(_) => {}
            }
        }
        // Ours is more specific than a default catcher at `/`, so it takes over that
        // catcher's 402s and must hand them back.
        let fallback = app_default.unwrap_or_else(|| Catcher::default().handler);
        let mut catcher = Catcher::new(402, ChallengeCatcher { fallback });
        catcher.name = Some("x402 challenge".into());
        Some(catcher)
    }
}

#[rocket::async_trait]
impl Handler for ChallengeCatcher {
    async fn handle<'r>(&self, status: Status, request: &'r Request<'_>) -> catcher::Result<'r> {
        match Slot::of(request).take_rejection(RouteId::of(request), status.code) {
            Some(parts) => Ok(build(parts)),
            None => self.fallback.handle(status, request).await,
        }
    }
}
