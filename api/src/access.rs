//! `GET /api/v1/access`: whether this API needs a key, open to anyone, so that the console knows
//! whether to ask for one. It tells nothing that calling any route without a key would not.

use actix_web::{web, HttpResponse};

use crate::AppState;

pub async fn access(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({ "open": state.keys.is_open() }))
}
