//! One error type for every handler, rendered as `{ "error": { "code": "...", "message": "..." } }`,
//! plus the handlers that give actix-web's own failures (bad JSON, bad path, unknown route) that shape.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use panoptes_engine::enrollment::EnrollError;
use panoptes_engine::image_input::ImageError;
use panoptes_engine::pipeline::PipelineError;
use panoptes_engine::runtime::ModelError;
use panoptes_engine::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{what} {id} does not exist")]
    NotFound { what: &'static str, id: i64 },
    #[error("no route for {0}")]
    NoRoute(String),
    #[error("method {method} is not allowed here (allowed: {allowed})")]
    MethodNotAllowed { method: String, allowed: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)")]
    Unauthorized,
    #[error("this API key's role ({0}) may not do this; it needs the admin role")]
    Forbidden(&'static str),
    #[error("rate limit exceeded; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } | ApiError::Conflict { code, .. } => code,
            ApiError::Unprocessable { code, .. } => code,
            ApiError::NotFound { .. } => "not_found",
            ApiError::NoRoute(_) => "no_such_route",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::DatabaseUnavailable(_) => "database_unavailable",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { code, message: message.into() }
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unprocessable { code, message: message.into() }
    }
}

/// Names of cameras and persons: 1 to 200 characters once trimmed; returns the trimmed name.
pub fn valid_name(name: &str) -> Result<String, ApiError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 200 {
        return Err(ApiError::unprocessable("invalid_name", "name must be 1 to 200 characters"));
    }
    // PostgreSQL text cannot hold U+0000, and other control characters only hide a name in logs.
    if n.chars().any(char::is_control) {
        return Err(ApiError::unprocessable("invalid_name", "name must not contain control characters"));
    }
    Ok(n.to_string())
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError::DatabaseUnavailable(e.to_string())
    }
}

impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> Self {
        match e {
            ImageError::FileTooLarge { .. } => ApiError::PayloadTooLarge(e.to_string()),
            other => ApiError::Unprocessable { code: other.code(), message: other.to_string() },
        }
    }
}

impl From<EnrollError> for ApiError {
    fn from(e: EnrollError) -> Self {
        match e {
            EnrollError::Storage(s) => s.into(),
            EnrollError::Pipeline(PipelineError::Image(i)) => i.into(),
            EnrollError::Pipeline(PipelineError::Model(m)) => m.into(),
            other => ApiError::Unprocessable { code: other.code(), message: other.to_string() },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } | ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::DatabaseUnavailable(_) | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status_code());
        match self {
            ApiError::RateLimited { retry_after_secs } => {
                r.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            ApiError::Unauthorized => {
                r.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::MethodNotAllowed { allowed, .. } => {
                r.insert_header((header::ALLOW, allowed.as_str()));
            }
            _ => {}
        }
        r.json(serde_json::json!({ "error": { "code": self.code(), "message": self.to_string() } }))
    }
}

/// Malformed or oversized JSON bodies.
pub fn json_error(err: actix_web::error::JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let e = match &err {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => ApiError::PayloadTooLarge(err.to_string()),
        J::ContentType => ApiError::BadRequest {
            code: "unsupported_content_type",
            message: "the body must be JSON (Content-Type: application/json)".into(),
        },
        J::Deserialize(d) if d.is_data() => ApiError::unprocessable("invalid_field", d.to_string()),
        _ => ApiError::bad_request("invalid_json", err.to_string()),
    };
    e.into()
}

/// Path segments of the wrong type (`/cameras/abc`).
pub fn path_error(err: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("invalid_path", format!("invalid path parameter: {err}")).into()
}

/// Query strings of the wrong type.
pub fn query_error(err: actix_web::error::QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("invalid_query", format!("invalid query parameter: {err}")).into()
}

/// Unknown routes.
pub async fn no_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NoRoute(req.path().to_string()))
}

/// A known path with a method it does not serve; `Allow` lists those it does (RFC 9110).
pub async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let pattern = req.match_pattern().unwrap_or_default();
    let allowed: Vec<&str> =
        crate::routes::ROUTES.iter().filter(|(_, path)| *path == pattern).map(|(method, _)| *method).collect();
    Err(ApiError::MethodNotAllowed { method: req.method().to_string(), allowed: allowed.join(", ") })
}
