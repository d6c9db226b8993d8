//! Counts every HTTP request and times it, labelled by the route's pattern (`/api/v1/cameras/{id}`,
//! never the raw path, so ids do not multiply series), method and status class. Wraps everything,
//! so refusals by the guard (401, 403, 429) and unknown paths are counted too.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::HttpRequest;
use metrics::{counter, histogram, SharedString};

use crate::routes::ROUTES;

pub const HTTP_REQUESTS_TOTAL: &str = "panoptes_http_requests_total";
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "panoptes_http_request_duration_seconds";

pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let res = next.call(req).await;
    let (route, status) = match &res {
        Ok(r) => (route_label(r.request()), r.status().as_u16()),
        Err(e) => (UNMATCHED, e.as_response_error().status_code().as_u16()),
    };
    counter!(HTTP_REQUESTS_TOTAL, "method" => method, "route" => route, "status" => status_label(status)).increment(1);
    histogram!(HTTP_REQUEST_DURATION_SECONDS, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    res
}

/// Unmatched paths share one label: a scanner must not create a series per path it tries.
const UNMATCHED: &str = "unmatched";

/// The route's pattern as written in the route table (each resource is named after it), so the
/// label costs no allocation on this per-request path.
fn route_label(req: &HttpRequest) -> &'static str {
    let name = req.match_name();
    ROUTES.iter().map(|(_, path)| *path).find(|path| Some(*path) == name).unwrap_or(UNMATCHED)
}

/// The statuses the API answers with, as static labels; any other is formatted.
fn status_label(code: u16) -> SharedString {
    SharedString::const_str(match code {
        200 => "200",
        201 => "201",
        204 => "204",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        _ => return SharedString::from(code.to_string()),
    })
}

/// The methods the API serves keep their names; anything else is "other" (bounded cardinality).
fn method_label(m: &actix_web::http::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}
