//! `/api/v1/alert-rules` (`panoptes_engine::alerts`): list, read, create, replace and delete the
//! rules that decide which appearances reach the live events, webhooks and MQTT. Rules from the
//! config file are listed too, read-only. A change is in force on this engine at once, and on the
//! others within their next reload (2 s). Changing rules needs the admin role and is audited.

use actix_web::{web, HttpRequest, HttpResponse};
use panoptes_engine::alerts::RuleSpec;
use panoptes_engine::storage::alert_rules::RuleWriteError;

use crate::auth::requester;
use crate::error::ApiError;
use crate::AppState;

impl From<RuleWriteError> for ApiError {
    fn from(e: RuleWriteError) -> Self {
        match e {
            RuleWriteError::NameTaken(_) => ApiError::Conflict { code: "rule_name_taken", message: e.to_string() },
            RuleWriteError::Storage(s) => s.into(),
        }
    }
}

/// Reads the rules again from the database and the config file; a failure keeps the rules in
/// force (the periodic reload tries again).
pub async fn reload(state: &AppState) {
    if let Err(e) = state.rules.refresh(&state.alerts_config, &state.store).await {
        tracing::warn!(error = %panoptes_engine::error_chain::error_chain(&e), "alert rules not reloaded");
    }
}

/// What the stored data says against a rule: persons, cameras and identities it names must exist,
/// or it would never match and nobody would know why.
async fn check(state: &AppState, spec: &RuleSpec) -> Result<(), ApiError> {
    spec.validate().map_err(|e| ApiError::bad_request("invalid_rule", e.to_string()))?;
    if state.alerts_config.names_a_rule(&spec.name) {
        return Err(ApiError::Conflict {
            code: "rule_name_taken",
            message: format!("a rule in the config file is already named {:?}", spec.name),
        });
    }
    for (i, &p) in spec.person_ids.iter().enumerate() {
        if state.store.person(p).await?.is_none() {
            return Err(ApiError::unprocessable(
                "person_not_found",
                format!("person_ids[{i}]: person {p} does not exist"),
            ));
        }
    }
    for (i, &c) in spec.camera_ids.iter().enumerate() {
        if state.store.camera(c).await?.is_none() {
            return Err(ApiError::unprocessable(
                "camera_not_found",
                format!("camera_ids[{i}]: camera {c} does not exist"),
            ));
        }
    }
    for (i, &u) in spec.unknown_ids.iter().enumerate() {
        if state.store.unknown(u).await?.is_none() {
            return Err(ApiError::unprocessable(
                "unknown_identity_not_found",
                format!("unknown_ids[{i}]: unknown identity {u} does not exist"),
            ));
        }
    }
    Ok(())
}

pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // Read from the database, not the book in force: a rule just written elsewhere shows at once.
    let mut items = state.alerts_config.config_rules();
    items.extend(state.store.list_alert_rules().await?);
    let book = state.rules.current();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "timezone": book.timezone_name(), "items": items })))
}

pub async fn get(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let rule = state.store.alert_rule(id).await?.ok_or(ApiError::NotFound { what: "alert rule", id })?;
    Ok(HttpResponse::Ok().json(rule))
}

pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RuleSpec>,
) -> Result<HttpResponse, ApiError> {
    let spec = body.into_inner();
    check(&state, &spec).await?;
    let actor = requester(&req);
    let rule = state.store.create_alert_rule(&spec, &actor).await?;
    reload(&state).await;
    tracing::info!(rule_id = rule.id, name = %spec.name, by = %actor, "alert rule created");
    Ok(HttpResponse::Created().json(rule))
}

pub async fn replace(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Json<RuleSpec>,
) -> Result<HttpResponse, ApiError> {
    let (id, spec) = (id.into_inner(), body.into_inner());
    check(&state, &spec).await?;
    let actor = requester(&req);
    let rule = state
        .store
        .replace_alert_rule(id, &spec, &actor)
        .await?
        .ok_or(ApiError::NotFound { what: "alert rule", id })?;
    reload(&state).await;
    tracing::info!(rule_id = id, name = %spec.name, by = %actor, "alert rule changed");
    Ok(HttpResponse::Ok().json(rule))
}

pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let actor = requester(&req);
    if !state.store.delete_alert_rule(id, &actor).await? {
        return Err(ApiError::NotFound { what: "alert rule", id });
    }
    reload(&state).await;
    tracing::info!(rule_id = id, by = %actor, "alert rule deleted");
    Ok(HttpResponse::NoContent().finish())
}
