//! One error type for every handler, rendered as `{ "error": { "code": "...", "message": "..." } }`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use panoptes_engine::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::DatabaseUnavailable(_) => "database_unavailable",
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError::DatabaseUnavailable(e.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::DatabaseUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .json(serde_json::json!({ "error": { "code": self.code(), "message": self.to_string() } }))
    }
}
