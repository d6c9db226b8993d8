//! `GET /api/v1/events`: live detection events as Server-Sent Events, optionally filtered by camera,
//! person, or matches only. Each client reads from its own bounded broadcast receiver: a client that
//! falls `api.events_buffer` events behind is told so and disconnected; the engine never waits.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use bytes::Bytes;
use futures::stream::{self, Stream};
use panoptes_engine::storage::NewDetection;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    pub camera_id: Option<i64>,
    pub person_id: Option<i64>,
    /// Only events with a recognised person.
    pub matches_only: Option<bool>,
}

impl EventQuery {
    fn wants(&self, e: &NewDetection) -> bool {
        self.camera_id.is_none_or(|c| c == e.camera_id)
            && self.person_id.is_none_or(|p| Some(p) == e.person_id)
            && (!self.matches_only.unwrap_or(false) || e.person_id.is_some())
    }
}

/// A comment line every 15 s keeps proxies from closing an idle stream.
const KEEPALIVE: Duration = Duration::from_secs(15);

enum Next {
    Event(NewDetection),
    Keepalive,
    Lagged(u64),
    Closed,
}

pub async fn sse(state: web::Data<AppState>, q: web::Query<EventQuery>) -> HttpResponse {
    let rx = state.events.subscribe();
    let filter = q.into_inner();
    let body = stream::unfold((rx, filter, state, false), |(mut rx, filter, state, done)| async move {
        if done {
            return None;
        }
        loop {
            let next = match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
                Err(_) => Next::Keepalive,
                Ok(Ok(e)) => Next::Event(e),
                Ok(Err(RecvError::Lagged(n))) => Next::Lagged(n),
                Ok(Err(RecvError::Closed)) => Next::Closed,
            };
            let chunk = match next {
                Next::Event(e) if !filter.wants(&e) => continue,
                Next::Event(e) => {
                    let name = match e.person_id {
                        Some(id) => crate::persons::lookup(&state, id).await.ok().map(|p| p.name.clone()),
                        None => None,
                    };
                    let mut v = serde_json::to_value(&e).unwrap_or_default();
                    v["person_name"] = serde_json::json!(name);
                    format!("event: detection\ndata: {v}\n\n")
                }
                Next::Keepalive => ": keep-alive\n\n".to_string(),
                Next::Lagged(n) => {
                    tracing::warn!(missed = n, "live-events client too slow; disconnecting it");
                    let msg = format!("event: error\ndata: {{\"code\":\"too_slow\",\"missed\":{n}}}\n\n");
                    return Some((Ok::<_, actix_web::Error>(Bytes::from(msg)), (rx, filter, state, true)));
                }
                Next::Closed => return None,
            };
            return Some((Ok(Bytes::from(chunk)), (rx, filter, state, false)));
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(Box::pin(body) as std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, actix_web::Error>>>>)
}
