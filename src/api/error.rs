//! The one place that maps typed errors to HTTP. MLflow routes answer MLflow's error body
//! `{error_code, message}` with MLflow's statuses; a client error is never a 5xx.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::artifacts::ArtifactError;
use crate::domain::DomainError;
use crate::ledger::LedgerError;
use crate::log::LogError;
use crate::query::search::SearchError;
use crate::query::QueryError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidParameterValue,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
    InvalidState,
    BadRequest,
    EndpointNotFound,
    Unauthenticated,
    PermissionDenied,
    RequestLimitExceeded,
    TemporarilyUnavailable,
    InternalError,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidParameterValue
            | ErrorCode::ResourceAlreadyExists
            | ErrorCode::BadRequest
            // MLflow answers 500 here, but the client retries 5xx for minutes: a request
            // that can never succeed must not look transient.
            | ErrorCode::InvalidState => StatusCode::BAD_REQUEST,
            ErrorCode::ResourceDoesNotExist | ErrorCode::EndpointNotFound => StatusCode::NOT_FOUND,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorCode::RequestLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// MLflow's error body.
#[derive(Debug, Clone, Serialize, thiserror::Error, utoipa::ToSchema)]
#[error("{error_code:?}: {message}")]
pub struct MlflowError {
    pub error_code: ErrorCode,
    pub message: String,
}

impl MlflowError {
    pub fn new(error_code: ErrorCode, message: impl Into<String>) -> Self {
        MlflowError {
            error_code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceDoesNotExist, message)
    }

    fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(ErrorCode::InternalError, e.to_string())
    }
}

impl ResponseError for MlflowError {
    fn status_code(&self) -> StatusCode {
        self.error_code.status()
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(self)
    }
}

impl From<DomainError> for MlflowError {
    fn from(e: DomainError) -> Self {
        let code = match &e {
            DomainError::InvalidParameter(_) => ErrorCode::InvalidParameterValue,
            DomainError::AlreadyExists(_) => ErrorCode::ResourceAlreadyExists,
            DomainError::NotFound(_) => ErrorCode::ResourceDoesNotExist,
            DomainError::InvalidState(_) => ErrorCode::InvalidState,
            DomainError::Forbidden(_)
            | DomainError::NotInTier(_)
            | DomainError::QuotaExceeded(_) => ErrorCode::PermissionDenied,
        };
        MlflowError::new(code, e.to_string())
    }
}

impl From<LogError> for MlflowError {
    fn from(e: LogError) -> Self {
        match e {
            // Only another node can race us on a stream; the write did not happen: retryable.
            LogError::WrongExpectedVersion { .. } | LogError::Closed => {
                MlflowError::new(ErrorCode::TemporarilyUnavailable, e.to_string())
            }
            other => MlflowError::internal(other),
        }
    }
}

impl From<LedgerError> for MlflowError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Domain(d) => d.into(),
            LedgerError::Log(l) => l.into(),
            other => MlflowError::internal(other),
        }
    }
}

impl From<SearchError> for MlflowError {
    fn from(e: SearchError) -> Self {
        MlflowError::invalid(e.to_string())
    }
}

impl From<QueryError> for MlflowError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::NotFound(m) => MlflowError::not_found(m),
            QueryError::Search(s) => s.into(),
            QueryError::Projection(p @ crate::projection::ProjectionError::Timeout { .. }) => {
                MlflowError::new(ErrorCode::TemporarilyUnavailable, p.to_string())
            }
            other => MlflowError::internal(other),
        }
    }
}

impl From<ArtifactError> for MlflowError {
    fn from(e: ArtifactError) -> Self {
        match e {
            ArtifactError::InvalidPath(_) => MlflowError::invalid(e.to_string()),
            ArtifactError::NotFound(_) => MlflowError::not_found(e.to_string()),
            ArtifactError::Io(_) => MlflowError::internal(e),
        }
    }
}
