//! Every route in one table: registered from it, and checked against the OpenAPI document by a test,
//! so the two cannot drift apart.

use actix_web::http::Method;
use actix_web::{web, Route};

use crate::{
    access, admin, alert_rules, api_keys, cameras, console, detections, error, events, health, identify, openapi,
    persons, prometheus, review, search, unknowns, verify,
};

/// (method, path as in the OpenAPI document)
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/access"),
    ("GET", "/api/v1/cameras"),
    ("POST", "/api/v1/cameras"),
    ("GET", "/api/v1/cameras/{id}"),
    ("PATCH", "/api/v1/cameras/{id}"),
    ("DELETE", "/api/v1/cameras/{id}"),
    ("GET", "/api/v1/cameras/{id}/snapshot.jpg"),
    ("GET", "/api/v1/persons"),
    ("POST", "/api/v1/persons"),
    ("GET", "/api/v1/persons/{id}"),
    ("PATCH", "/api/v1/persons/{id}"),
    ("DELETE", "/api/v1/persons/{id}"),
    ("POST", "/api/v1/persons/{id}/faces"),
    ("POST", "/api/v1/identify"),
    ("POST", "/api/v1/verify"),
    ("POST", "/api/v1/search"),
    ("GET", "/api/v1/unknowns"),
    ("GET", "/api/v1/unknowns/{id}"),
    ("POST", "/api/v1/unknowns/{id}/name"),
    ("POST", "/api/v1/unknowns/{id}/merge"),
    ("GET", "/api/v1/detections"),
    ("GET", "/api/v1/detections/{id}"),
    ("GET", "/api/v1/detections/{id}/snapshot.jpg"),
    ("POST", "/api/v1/detections/{id}/confirm"),
    ("POST", "/api/v1/detections/{id}/reject"),
    ("DELETE", "/api/v1/detections/{id}/review"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/alert-rules"),
    ("POST", "/api/v1/alert-rules"),
    ("GET", "/api/v1/alert-rules/{id}"),
    ("PUT", "/api/v1/alert-rules/{id}"),
    ("DELETE", "/api/v1/alert-rules/{id}"),
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/events/ws"),
    ("GET", "/api/v1/admin/stats"),
    ("POST", "/api/v1/admin/cache/clear"),
    ("GET", "/api/v1/keys"),
    ("POST", "/api/v1/keys"),
    ("DELETE", "/api/v1/keys/{id}"),
];

fn handler(method: &str, path: &str) -> Option<Route> {
    Some(match (method, path) {
        ("GET", "/healthz") => web::get().to(health::healthz),
        ("GET", "/readyz") => web::get().to(health::readyz),
        ("GET", "/metrics") => web::get().to(prometheus::metrics),
        ("GET", "/api/v1/openapi.json") => web::get().to(openapi::document),
        ("GET", "/api/v1/access") => web::get().to(access::access),
        ("GET", "/api/v1/cameras") => web::get().to(cameras::list),
        ("POST", "/api/v1/cameras") => web::post().to(cameras::create),
        ("GET", "/api/v1/cameras/{id}") => web::get().to(cameras::get),
        ("PATCH", "/api/v1/cameras/{id}") => web::patch().to(cameras::update),
        ("DELETE", "/api/v1/cameras/{id}") => web::delete().to(cameras::delete),
        ("GET", "/api/v1/cameras/{id}/snapshot.jpg") => web::get().to(cameras::snapshot),
        ("GET", "/api/v1/persons") => web::get().to(persons::list),
        ("POST", "/api/v1/persons") => web::post().to(persons::create),
        ("GET", "/api/v1/persons/{id}") => web::get().to(persons::get),
        ("PATCH", "/api/v1/persons/{id}") => web::patch().to(persons::update),
        ("DELETE", "/api/v1/persons/{id}") => web::delete().to(persons::delete),
        ("POST", "/api/v1/persons/{id}/faces") => web::post().to(persons::add_faces),
        ("POST", "/api/v1/identify") => web::post().to(identify::identify),
        ("POST", "/api/v1/verify") => web::post().to(verify::verify),
        ("POST", "/api/v1/search") => web::post().to(search::search),
        ("GET", "/api/v1/unknowns") => web::get().to(unknowns::list),
        ("GET", "/api/v1/unknowns/{id}") => web::get().to(unknowns::get),
        ("POST", "/api/v1/unknowns/{id}/name") => web::post().to(unknowns::name),
        ("POST", "/api/v1/unknowns/{id}/merge") => web::post().to(unknowns::merge),
        ("GET", "/api/v1/detections") => web::get().to(detections::list),
        ("GET", "/api/v1/detections/{id}") => web::get().to(detections::get),
        ("GET", "/api/v1/detections/{id}/snapshot.jpg") => web::get().to(detections::snapshot),
        ("POST", "/api/v1/detections/{id}/confirm") => web::post().to(review::confirm),
        ("POST", "/api/v1/detections/{id}/reject") => web::post().to(review::reject),
        ("DELETE", "/api/v1/detections/{id}/review") => web::delete().to(review::undo),
        ("GET", "/api/v1/audit") => web::get().to(review::audit),
        ("GET", "/api/v1/alert-rules") => web::get().to(alert_rules::list),
        ("POST", "/api/v1/alert-rules") => web::post().to(alert_rules::create),
        ("GET", "/api/v1/alert-rules/{id}") => web::get().to(alert_rules::get),
        ("PUT", "/api/v1/alert-rules/{id}") => web::put().to(alert_rules::replace),
        ("DELETE", "/api/v1/alert-rules/{id}") => web::delete().to(alert_rules::delete),
        ("GET", "/api/v1/events") => web::get().to(events::sse),
        ("GET", "/api/v1/events/ws") => web::get().to(events::ws),
        ("GET", "/api/v1/admin/stats") => web::get().to(admin::stats),
        ("POST", "/api/v1/admin/cache/clear") => web::post().to(admin::clear_cache),
        ("GET", "/api/v1/keys") => web::get().to(api_keys::list),
        ("POST", "/api/v1/keys") => web::post().to(api_keys::create),
        ("DELETE", "/api/v1/keys/{id}") => web::delete().to(api_keys::delete),
        _ => return None,
    })
}

/// Registers every route, the JSON error handlers, and the guard (auth + rate limits). The app must
/// carry `web::Data<AppState>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    configure_with_limit(cfg, 64 * 1024)
}

pub fn configure_with_limit(cfg: &mut web::ServiceConfig, json_limit: usize) {
    cfg.app_data(web::JsonConfig::default().limit(json_limit).error_handler(error::json_error))
        .app_data(web::PathConfig::default().error_handler(error::path_error))
        .app_data(web::QueryConfig::default().error_handler(error::query_error));
    let mut seen = std::collections::HashSet::new();
    for &(_, path) in ROUTES {
        // One resource per path, holding every method the table lists for it.
        if !seen.insert(path) {
            continue;
        }
        // Named after its pattern: the request metrics label requests by it without allocating.
        let mut resource = web::resource(path).name(path).default_service(web::to(error::method_not_allowed));
        for (method, _) in ROUTES.iter().filter(|(_, p)| *p == path) {
            if let Some(route) = handler(method, path) {
                resource = resource.route(route);
            }
        }
        cfg.service(resource);
    }
    // The console (not in the OpenAPI document: pages, not API).
    for (path, page) in console::PATHS.iter().zip([
        web::get().to(console::index),
        web::get().to(console::script),
        web::get().to(console::style),
    ]) {
        cfg.service(web::resource(*path).name(path).route(page));
    }
    cfg.default_service(web::to(error::no_route));
}

/// The `Method` of a table entry.
pub fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).unwrap_or(Method::GET)
}
