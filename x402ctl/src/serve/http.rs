//! The facilitator over HTTP.
//!
//! | endpoint | auth | answer |
//! | --- | --- | --- |
//! | `POST /verify` | bearer | `VerifyResponse`; 200 also for `isValid: false` |
//! | `POST /settle` | bearer | `SettleResponse`; 200 also for `success: false` (including `settlement_pending`) |
//! | `GET /supported` | bearer | kinds, `signers`, `extra` where a scheme needs it |
//! | `GET /discovery/resources` | bearer | the Bazaar catalogue of resources settled here (`type`, `payTo`, `network`, `limit`, `offset`, …) |
//! | `GET /discovery/search` | bearer | the same catalogue searched by words (`query`, `limit`, `cursor`) |
//! | `GET /health` | none | `{"status": "ok"}` (503 when the journal is down) |
//! | `GET /metrics` | none | Prometheus text |
//!
//! A body that is not a facilitator request gets 400 `{"error": "invalid_request", …}`; one
//! larger than the limit 413; a missing or wrong token 401 (with `WWW-Authenticate: Bearer`);
//! a caller over its rate 429 (with `Retry-After`); a facilitator failure 500, or 503 when the
//! settlement journal is down, each `{"error": <reason>, "message": <words>}`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use x402_protocol::facilitator::FacilitatorRequest;
use x402_runtime::journal::Journal as _;
use x402_runtime::{FacilitatorError, ResponseParts};

use super::auth::{Tokens, Verdict};
use super::limit::RateLimit;
use super::service::Service;
use super::telemetry;

/// Everything the handlers share.
pub(crate) struct App {
    pub(crate) service: Arc<Service>,
    /// `None`: callers are not authenticated (dev mode, `--no-auth`).
    pub(crate) tokens: Option<Arc<Tokens>>,
    pub(crate) limit: Option<RateLimit>,
    pub(crate) metrics: Option<PrometheusHandle>,
    pub(crate) max_body_bytes: usize,
}

/// Who is calling: a token's caller name, or the client address without auth.
#[derive(Debug, Clone)]
struct Caller(String);

fn error(status: StatusCode, reason: &str, message: impl std::fmt::Display) -> Response {
    (
        status,
        axum::Json(json!({"error": reason, "message": message.to_string()})),
    )
        .into_response()
}

fn failure(error: FacilitatorError, reason: &str) -> Response {
    let status = match &error {
        FacilitatorError::Unreachable(_) | FacilitatorError::Timeout(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let message = match error {
        FacilitatorError::Unreachable(m) | FacilitatorError::Internal(m) => m,
        other => other.to_string(),
    };
    self::error(status, reason, message)
}

fn parse(
    body: Result<Bytes, BytesRejection>,
    max: usize,
) -> Result<FacilitatorRequest, Box<Response>> {
    let body = body.map_err(|rejection| {
        Box::new(if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                format!("the body is larger than {max} bytes"),
            )
        } else {
            error(rejection.status(), "invalid_request", rejection.body_text())
        })
    })?;
    serde_json::from_slice(&body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!(
                "the body is not a facilitator request {{x402Version, paymentPayload, paymentRequirements}}: {e}"
            ),
        ))
    })
}

async fn verify(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Response {
    let request = match parse(body, app.max_body_bytes) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    match app.service.verify(&request).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(e) => failure(e, "unexpected_verify_error"),
    }
}

async fn settle(
    State(app): State<Arc<App>>,
    axum::Extension(Caller(caller)): axum::Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = match parse(body, app.max_body_bytes) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    match app.service.settle(request, &caller).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(e) => failure(e, "unexpected_settle_error"),
    }
}

async fn supported(State(app): State<Arc<App>>) -> Response {
    match app.service.supported().await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(e) => failure(e, "unexpected_error"),
    }
}

async fn discovery(State(app): State<Arc<App>>, RawQuery(query): RawQuery) -> Response {
    parts(
        app.service
            .catalog
            .resources_answer(query.as_deref().unwrap_or("")),
    )
}

async fn search(State(app): State<Arc<App>>, RawQuery(query): RawQuery) -> Response {
    parts(
        app.service
            .catalog
            .search_answer(query.as_deref().unwrap_or("")),
    )
}

/// A framework-free answer of the runtime as an axum response.
fn parts(parts: ResponseParts) -> Response {
    let mut response = Response::new(Body::from(parts.body));
    *response.status_mut() =
        StatusCode::from_u16(parts.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in parts.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

async fn health(State(app): State<Arc<App>>) -> Response {
    let journal = app.service.journal.get("health-check").await;
    let in_flight = app.service.in_flight();
    let stopping = app.service.stopping.is_cancelled();
    let (status, text) = match (&journal, stopping) {
        (Err(error), _) if error.is_unavailable() => {
            (StatusCode::SERVICE_UNAVAILABLE, "journal_unavailable")
        }
        (_, true) => (StatusCode::SERVICE_UNAVAILABLE, "stopping"),
        _ => (StatusCode::OK, "ok"),
    };
    (
        status,
        axum::Json(json!({"status": text, "settlementsInFlight": in_flight})),
    )
        .into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    match &app.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "metrics are not recorded by this process",
        ),
    }
}

/// Bearer auth and the caller's rate limit, for the x402 endpoints.
async fn guard(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let caller = match &app.tokens {
        None => {
            telemetry::auth("disabled");
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "anonymous".to_owned(), |c| c.0.ip().to_string())
        }
        Some(tokens) => {
            let header = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            match tokens.check(header) {
                Verdict::Caller(name) => {
                    telemetry::auth("ok");
                    name
                }
                verdict => {
                    let (result, message) = if verdict == Verdict::Missing {
                        ("missing", "send Authorization: Bearer <token>")
                    } else {
                        ("invalid", "the bearer token is not valid")
                    };
                    telemetry::auth(result);
                    tracing::info!(target: "x402::facilitator", path = %request.uri().path(), result, "caller refused");
                    let mut response = error(StatusCode::UNAUTHORIZED, "unauthorized", message);
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                    return response;
                }
            }
        }
    };
    if let Some(limit) = &app.limit
        && let Err(wait) = limit.take(&caller)
    {
        telemetry::rate_limited(&caller);
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "caller {caller} is over its rate limit; retry in {} ms",
                wait.as_millis()
            ),
        );
        let seconds = wait.as_secs() + 1;
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    request.extensions_mut().insert(Caller(caller));
    next.run(request).await
}

/// Counts every answer by endpoint and status.
async fn count(request: Request<Body>, next: Next) -> Response {
    let endpoint = match request.uri().path() {
        "/verify" => "verify",
        "/settle" => "settle",
        "/supported" => "supported",
        "/discovery/resources" | "/discovery/search" => "discovery",
        "/health" => "health",
        "/metrics" => "metrics",
        _ => "other",
    };
    let response = next.run(request).await;
    telemetry::request(endpoint, response.status().as_u16());
    response
}

/// The facilitator's routes.
pub(crate) fn router(app: Arc<App>) -> Router {
    let guarded = Router::new()
        .route("/verify", post(verify))
        .route("/settle", post(settle))
        .route("/supported", get(supported))
        .route("/discovery/resources", get(discovery))
        .route("/discovery/search", get(search))
        .route_layer(middleware::from_fn_with_state(app.clone(), guard));
    Router::new()
        .merge(guarded)
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(app.max_body_bytes))
        .layer(middleware::from_fn(count))
        .with_state(app)
}
