//! [`ApiError`]: every error the HTTP API answers, with its status and stable code.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer of the API. The body is `{"error": {"code": "…", "message": "…"}}`; the
/// codes are stable (clients branch on them), the messages are for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 401 `unauthorized`: no key, or a key the service does not know.
    #[error("a valid API key is required (Authorization: Bearer KEY)")]
    Unauthorized,
    /// 403 `forbidden`: the key is valid but may not do this (a tenant key on an admin route).
    #[error("this key may not use this route")]
    Forbidden,
    /// 404 `not_found`: no such job for this caller (another tenant's job looks the same),
    /// or no such route, server or file.
    #[error("{0} not found")]
    NotFound(String),
    /// 400 `invalid_request`: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 400 `webhook_host_not_allowed`: the webhook URL's host is not on the allow-list.
    #[error("webhook host {0:?} is not allowed")]
    WebhookNotAllowed(String),
    /// 409 `job_id_conflict`: the job id is taken (job ids are global: choose unique ones, or
    /// send an Idempotency-Key, which is per tenant).
    #[error("job id {0:?} is taken")]
    Conflict(String),
    /// 413 `payload_too_large`.
    #[error("request body over {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// 429 `rate_limited`: the tenant submits faster than its rate.
    #[error("too many submissions; retry in {retry_after} s")]
    RateLimited {
        /// Seconds until a submission would be accepted.
        retry_after: u64,
    },
    /// 429 `queue_full`: the tenant has as many unfinished jobs as it may.
    #[error("the tenant has {limit} unfinished jobs, its limit")]
    QueueFull {
        /// The limit.
        limit: u32,
    },
    /// The pool refused or failed the request (its own stable code: `invalid_workflow`,
    /// `unknown_server`, `duplicate_server`, `shutting_down`, …).
    #[error("{message}")]
    Pool {
        /// The pool error's code.
        code: &'static str,
        /// Its message.
        message: String,
    },
    /// 503 `store_unavailable`.
    #[error("the store is unavailable")]
    Store,
    /// 502 `upstream_error`: the server that holds an output could not be read.
    #[error("{0}")]
    Upstream(String),
    /// 500 `internal`.
    #[error("internal error")]
    Internal,
}

/// The JSON body of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The error inside [`ErrorBody`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The stable code.
    pub code: String,
    /// What went wrong, in words.
    pub message: String,
}

impl ApiError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::BadRequest(_) => "invalid_request",
            Self::WebhookNotAllowed(_) => "webhook_host_not_allowed",
            Self::Conflict(_) => "job_id_conflict",
            Self::TooLarge { .. } => "payload_too_large",
            Self::RateLimited { .. } => "rate_limited",
            Self::QueueFull { .. } => "queue_full",
            Self::Pool { code, .. } => code,
            Self::Store => "store_unavailable",
            Self::Upstream(_) => "upstream_error",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) | Self::WebhookNotAllowed(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited { .. } | Self::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Pool { code, .. } => match *code {
                "unknown_server" => StatusCode::NOT_FOUND,
                "duplicate_server" | "job_id_conflict" => StatusCode::CONFLICT,
                "shutting_down" | "store" => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            },
            Self::Store => StatusCode::SERVICE_UNAVAILABLE,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A job (or other thing) this caller cannot see.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }
}

impl From<pool_core::Error> for ApiError {
    fn from(error: pool_core::Error) -> Self {
        Self::Pool {
            code: error.code(),
            message: error.to_string(),
        }
    }
}

impl From<pool_store::StoreError> for ApiError {
    fn from(error: pool_store::StoreError) -> Self {
        tracing::warn!(%error, "store error");
        Self::Store
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        let retry = match &self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            Self::QueueFull { .. } => Some(1),
            Self::Store => Some(1),
            _ => None,
        };
        if let Some(secs) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if matches!(self, Self::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
