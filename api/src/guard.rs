//! The middleware in front of every route: rate limiting (per key, or per client address without a
//! valid key) and authentication/authorisation by role. Keys never reach the logs.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

use crate::auth::{presented_key, required_role};
use crate::error::ApiError;
use crate::AppState;

pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    match check(&req) {
        // Refusals are responses (not errors), so every layer above sees the JSON body.
        Err(e) => Ok(req.error_response(e)),
        Ok(caller) => {
            if let Some(c) = caller {
                req.extensions_mut().insert(c);
            }
            Ok(next.call(req).await?.map_into_boxed_body())
        }
    }
}

fn check(req: &ServiceRequest) -> Result<Option<crate::auth::Caller>, ApiError> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::Internal("application state missing".into()));
    };
    // The path the router matches (percent-decoded), not the raw one: `/api/v1/aud%69t` is the audit.
    let required = required_role(req.method(), req.match_info().as_str(), state.config.open_probes);
    let caller = presented_key(req).and_then(|k| state.keys.identify(&k));
    if required.is_some() {
        let client = match &caller {
            Some(c) => format!("key:{}", c.key_name),
            None => format!("ip:{}", req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default()),
        };
        if let Err(wait) = state.limiter.check(&client, Instant::now()) {
            return Err(ApiError::RateLimited { retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64 });
        }
    }
    if let (Some(role), false) = (&required, state.keys.is_open()) {
        match &caller {
            None => return Err(ApiError::Unauthorized),
            Some(c) if c.role < *role => return Err(ApiError::Forbidden(c.role.as_str())),
            Some(_) => {}
        }
    }
    Ok(caller)
}
