//! Error bodies as schemas and the reusable error responses (`components.responses`) that the
//! operations list: the native envelope `{"error": {code, message, details}}` on `/api/v1` and
//! the WebSocket routes, MLflow's `{error_code, message}` on the MLflow routes.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};

use crate::api::v1::error::Code;

/// The native API's error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "error": {"code": "NOT_FOUND", "message": "No device with id 'd41d8c'", "details": null}
}))]
pub struct ApiErrorBody {
    pub error: ApiErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiErrorDetail {
    pub code: Code,
    /// One sentence naming what is wrong (the parameter or field, the limit).
    pub message: String,
    /// Structured context, or null: `{"rejected": [EventError]}` for `INVALID_EVENTS`,
    /// `{"field": "body"}` for an unusable upload.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// Which error body a response carries.
#[derive(Clone, Copy)]
enum Body {
    Native,
    Mlflow,
}

fn error_response(body: Body, description: &str, retry_after: bool) -> RefOr<Response> {
    let schema = match body {
        Body::Native => "ApiErrorBody",
        Body::Mlflow => "MlflowError",
    };
    let mut r = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(schema)))
            .build(),
    );
    if retry_after {
        r = r.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0)),
                ))
                .description(Some("Seconds to wait before retrying."))
                .build(),
        );
    }
    r.build().into()
}

/// Declares each reusable error response: a marker type implementing `ToResponse` (use it as
/// `(status = 404, response = NotFound)`), and the list of all of them for the spec.
macro_rules! error_responses {
    ($($name:ident => $body:ident, $retry:literal, $description:literal;)*) => {
        $(
            #[doc = $description]
            pub struct $name;

            impl<'r> utoipa::ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), error_response(Body::$body, $description, $retry))
                }
            }
        )*

        /// Every reusable error response, by component name.
        pub fn all() -> Vec<(&'static str, RefOr<Response>)> {
            vec![$((stringify!($name), error_response(Body::$body, $description, $retry))),*]
        }
    };
}

error_responses! {
    BadRequest => Native, false,
        "`INVALID_ARGUMENT`: a parameter, field or body is malformed or out of range (the \
         message names it); `INVALID_EVENTS` for telemetry that fails validation.";
    Unauthenticated => Native, false,
        "`UNAUTHENTICATED`: no credentials, or unknown, expired or revoked ones.";
    QuotaExceeded => Native, false,
        "`QUOTA_EXCEEDED`: the tenant started as many optimization jobs this month as its tier \
         allows; the message names the limit (see `GET /api/v1/usage`).";
    Forbidden => Native, false,
        "`FORBIDDEN`: the caller's role does not allow this (viewers cannot write); or \
         `NOT_IN_TIER`: the tenant's tier does not include it (a technique, a model size), the \
         message names the limit.";
    NotFound => Native, false, "`NOT_FOUND`: the resource (or a resource it names) does not exist.";
    Conflict => Native, false,
        "`ALREADY_EXISTS`, or `CONFLICT`: the resource's state does not allow the request.";
    PayloadTooLarge => Native, false,
        "`PAYLOAD_TOO_LARGE`: the body (after decompression) or the event count exceeds the limit.";
    UnsupportedMediaType => Native, false,
        "`UNSUPPORTED_MEDIA_TYPE`: a `Content-Encoding` other than gzip or identity.";
    RateLimited => Native, true,
        "`RATE_LIMITED`: too many requests (per address, key or principal) or a full queue.";
    Unavailable => Native, true,
        "`UNAVAILABLE`: the read model is behind or out of memory; retry after the given delay.";
    MlflowBadRequest => Mlflow, false,
        "`INVALID_PARAMETER_VALUE`, `RESOURCE_ALREADY_EXISTS` (400, as MLflow answers), \
         `INVALID_STATE` or `BAD_REQUEST`.";
    MlflowUnauthenticated => Mlflow, false,
        "`UNAUTHENTICATED`: no credentials, or unknown, expired or revoked ones.";
    MlflowForbidden => Mlflow, false,
        "`PERMISSION_DENIED`: the caller's role does not allow this (viewers cannot write), or an \
         artifact path outside the tenant's experiments.";
    MlflowNotFound => Mlflow, false, "`RESOURCE_DOES_NOT_EXIST`.";
    MlflowRateLimited => Mlflow, true, "`REQUEST_LIMIT_EXCEEDED`: too many requests.";
    MlflowUnavailable => Mlflow, false,
        "`TEMPORARILY_UNAVAILABLE`: the read model is behind, or a concurrent write won; retry.";
}

fn refs(list: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, name)| (status.to_string(), Ref::from_response_name(*name).into()))
        .collect()
}

/// 401, 403, 429 and 503 of an authenticated native operation.
pub struct NativeAuthErrors;

impl utoipa::IntoResponses for NativeAuthErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        refs(&[
            ("401", "Unauthenticated"),
            ("403", "Forbidden"),
            ("429", "RateLimited"),
            ("503", "Unavailable"),
        ])
    }
}

/// 401, 403, 429 and 503 of an authenticated MLflow operation.
pub struct MlflowAuthErrors;

impl utoipa::IntoResponses for MlflowAuthErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        refs(&[
            ("401", "MlflowUnauthenticated"),
            ("403", "MlflowForbidden"),
            ("429", "MlflowRateLimited"),
            ("503", "MlflowUnavailable"),
        ])
    }
}
