//! Counts every HTTP request and times it, labelled by the route's pattern (`/api/v1/cameras/{id}`,
//! never the raw path, so ids do not multiply series), method and status class. Wraps everything,
//! so refusals by the guard (401, 403, 429) and unknown paths are counted too.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use metrics::{counter, histogram};

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
        Ok(r) => (r.request().match_pattern(), r.status().as_u16()),
        Err(e) => (None, e.as_response_error().status_code().as_u16()),
    };
    // Unmatched paths share one label: a scanner must not create a series per path it tries.
    let route = route.unwrap_or_else(|| "unmatched".to_string());
    counter!(HTTP_REQUESTS_TOTAL, "method" => method, "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    histogram!(HTTP_REQUEST_DURATION_SECONDS, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    res
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
