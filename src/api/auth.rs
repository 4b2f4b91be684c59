//! The authentication guard in front of every route: rate-limit the client IP, authenticate
//! the `Authorization` header, rate-limit the token, and hand the [`Principal`] to handlers.
//! Refusals answer in the surface's own error format (MLflow's or the native envelope) and
//! never echo a credential.

use std::future::{ready, Ready};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};

use super::error::{ErrorCode, MlflowError};
use super::v1::error::{ApiError, Code};
use super::AppState;
use crate::auth::rate_limit::RetryAfter;
use crate::auth::{AuthError, Principal};

/// Routes anyone may call (the docs UI fetches the spec without credentials). Telemetry
/// ingest authenticates devices by their own keys.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/health" | "/version" | "/openapi.json" | "/api/v1/auth/token"
    ) || path == "/docs"
        || path.starts_with("/docs/")
        || path.starts_with("/api/v1/telemetry")
}

/// Telemetry has per-device and per-IP limits of its own (see `[telemetry]`).
fn has_own_limits(path: &str) -> bool {
    path.starts_with("/api/v1/telemetry") || matches!(path, "/health" | "/metrics")
}

fn is_mlflow(path: &str) -> bool {
    path.starts_with("/api/2.0/") || path.starts_with("/ajax-api/") || path == "/version"
}

/// A refusal in the format of the surface `path` belongs to.
fn refusal(
    path: &str,
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
) -> HttpResponse {
    let mut r = if is_mlflow(path) {
        let code = match status {
            StatusCode::UNAUTHORIZED => ErrorCode::Unauthenticated,
            StatusCode::TOO_MANY_REQUESTS => ErrorCode::RequestLimitExceeded,
            _ => ErrorCode::PermissionDenied,
        };
        MlflowError::new(code, message).error_response()
    } else {
        let code = match status {
            StatusCode::UNAUTHORIZED => Code::Unauthenticated,
            StatusCode::TOO_MANY_REQUESTS => Code::RateLimited,
            _ => Code::Forbidden,
        };
        ApiError::new(code, message).error_response()
    };
    if let Some(s) = retry_after {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            r.headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, v);
        }
    }
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"runledger\""),
        );
    }
    r
}

fn limited(path: &str, r: RetryAfter) -> HttpResponse {
    refusal(
        path,
        StatusCode::TOO_MANY_REQUESTS,
        "rate limit exceeded; retry after the time in Retry-After".into(),
        Some(r.seconds()),
    )
}

pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(st) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(|r| r.map_into_left_body());
    };
    let path = req.path().to_string();
    if !has_own_limits(&path) {
        let ip = req.peer_addr().map(|a| a.ip());
        if let Err(r) = st.api_limits.check(None, ip) {
            return Ok(req.into_response(limited(&path, r)).map_into_right_body());
        }
    }
    if is_public(&path) {
        return next.call(req).await.map(|r| r.map_into_left_body());
    }
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let principal = match st.auth.authenticate(header) {
        Ok(p) => p,
        Err(e) => {
            let msg = match e {
                AuthError::Missing => e.to_string(),
                AuthError::Invalid(m) => m,
            };
            tracing::debug!(%path, reason = %msg, "request refused: unauthenticated");
            let r = refusal(&path, StatusCode::UNAUTHORIZED, msg, None);
            return Ok(req.into_response(r).map_into_right_body());
        }
    };
    if let Err(r) = st.api_limits.check(principal.rate_key.as_deref(), None) {
        return Ok(req.into_response(limited(&path, r)).map_into_right_body());
    }
    req.extensions_mut().insert(principal);
    next.call(req).await.map(|r| r.map_into_left_body())
}

/// Handlers take the caller as an argument; the guard put it in the request.
impl FromRequest for Principal {
    type Error = actix_web::Error;
    type Future = Ready<Result<Principal, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(req.extensions().get::<Principal>().cloned().ok_or_else(|| {
            let r = refusal(
                req.path(),
                StatusCode::UNAUTHORIZED,
                AuthError::Missing.to_string(),
                None,
            );
            actix_web::error::InternalError::from_response("unauthenticated", r).into()
        }))
    }
}
