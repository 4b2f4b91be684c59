//! The native API's error envelope `{"error": {"code", "message", "details"}}` and the one
//! table mapping its codes to statuses.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{json, Value};

use crate::domain::DomainError;
use crate::ledger::LedgerError;
use crate::query::QueryError;
use crate::telemetry::IngestError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    InvalidArgument,
    InvalidEvents,
    Unauthenticated,
    /// The caller's role does not allow it.
    Forbidden,
    /// The tenant's tier does not include it (a technique, a model size).
    NotInTier,
    /// The tenant used up its tier's monthly allowance.
    QuotaExceeded,
    NotFound,
    AlreadyExists,
    /// The resource is not in a state that allows the request (a finished job, a result not
    /// there yet).
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    NotAcceptable,
    RateLimited,
    Unavailable,
    Internal,
}

impl Code {
    pub fn status(self) -> StatusCode {
        match self {
            Code::InvalidArgument | Code::InvalidEvents => StatusCode::BAD_REQUEST,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::Forbidden | Code::NotInTier => StatusCode::FORBIDDEN,
            Code::QuotaExceeded => StatusCode::PAYMENT_REQUIRED,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Conflict => StatusCode::CONFLICT,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds, for `Retry-After` on 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        Self::new(Code::InvalidArgument, message)
    }

    pub fn with_details(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "internal error");
        Self::new(Code::Internal, "internal error; see the server log")
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status_code());
        if let Some(s) = self.retry_after {
            r.insert_header(("Retry-After", s.to_string()));
        }
        r.json(json!({
            "error": { "code": self.code, "message": self.message, "details": self.details }
        }))
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let code = match &e {
            DomainError::InvalidParameter(_) => Code::InvalidArgument,
            DomainError::InvalidState(_) => Code::Conflict,
            DomainError::AlreadyExists(_) => Code::AlreadyExists,
            DomainError::NotFound(_) => Code::NotFound,
            DomainError::Forbidden(_) => Code::Forbidden,
            DomainError::NotInTier(_) => Code::NotInTier,
            DomainError::QuotaExceeded(_) => Code::QuotaExceeded,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Domain(d) => d.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::NotFound(m) => ApiError::new(Code::NotFound, m),
            QueryError::Projection(crate::projection::ProjectionError::Timeout { .. }) => {
                ApiError::new(Code::Unavailable, e.to_string()).retry_after(1)
            }
            // A query over more data than the memory limit allows: not the client's fault,
            // and it may pass when fewer queries run at once.
            QueryError::Db(ref d) if d.to_string().contains("Out of Memory") => {
                tracing::warn!(error = %d, "analytics query ran out of memory");
                ApiError::new(
                    Code::Unavailable,
                    "the query needs more memory than is free; narrow the time range or retry",
                )
                .retry_after(5)
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::blobs::BlobError> for ApiError {
    fn from(e: crate::blobs::BlobError) -> Self {
        use crate::blobs::BlobError;
        match e {
            BlobError::TooLarge { .. } => ApiError::new(Code::PayloadTooLarge, e.to_string()),
            BlobError::NotFound(_) => ApiError::new(Code::NotFound, e.to_string()),
            BlobError::Io(_) => ApiError::internal(e),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Invalid(errors) => ApiError::new(Code::InvalidEvents, e_msg(&errors))
                .with_details(json!({ "rejected": errors })),
            IngestError::TooMany { .. } => ApiError::new(Code::PayloadTooLarge, e.to_string()),
            IngestError::Empty | IngestError::Syntax(_) => ApiError::invalid(e.to_string()),
            IngestError::Ledger(l) => l.into(),
        }
    }
}

fn e_msg(errors: &[crate::telemetry::validate::EventError]) -> String {
    let events = {
        let mut idx: Vec<usize> = errors.iter().map(|e| e.index).collect();
        idx.dedup();
        idx.len()
    };
    match errors.first() {
        Some(first) => format!(
            "{events} invalid event(s); nothing was written. First: event {} field '{}' {}",
            first.index, first.field, first.reason
        ),
        None => "invalid events; nothing was written".into(),
    }
}
