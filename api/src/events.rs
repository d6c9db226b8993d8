//! Live detection events, optionally filtered by camera, person, or matches only: as Server-Sent
//! Events at `GET /api/v1/events` and as WebSocket text messages at `GET /api/v1/events/ws`. Each
//! client reads from its own bounded broadcast receiver: a client that falls `api.events_buffer`
//! events behind is told so and disconnected; the engine never waits for a client.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use bytes::Bytes;
use futures::stream::{self, Stream};
use panoptes_engine::alerts::{LiveEvent, Output, Routing};
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
    fn wants(&self, e: &LiveEvent) -> bool {
        let e = &e.detection;
        self.camera_id.is_none_or(|c| c == e.camera_id)
            && self.person_id.is_none_or(|p| Some(p) == e.person_id)
            && (!self.matches_only.unwrap_or(false) || e.person_id.is_some())
    }
}

/// A comment line every 15 s keeps proxies from closing an idle stream.
const KEEPALIVE: Duration = Duration::from_secs(15);

enum Next {
    Event(LiveEvent),
    Keepalive,
    Lagged(u64),
    Closed,
}

/// What the alert rules in force decide for `e` at `output`: `None` when it does not reach it.
pub(crate) fn routed(state: &AppState, e: &LiveEvent, output: Output) -> Option<Routing> {
    let routing = state.rules.current().route(e);
    routing.reaches(output).then_some(routing)
}

/// The event as sent to clients: the stored fields, the person's name, the rules it met (`alerts`)
/// and its `stage`: `began`, or `grouped` with the unknown identity and the days it was seen on.
pub(crate) async fn render(state: &AppState, e: &LiveEvent, routing: &Routing) -> serde_json::Value {
    let name = match e.detection.person_id {
        Some(id) => crate::persons::lookup(state, id).await.ok().map(|p| p.name.clone()),
        None => None,
    };
    let mut v = serde_json::to_value(&e.detection).unwrap_or_default();
    v["person_name"] = serde_json::json!(name);
    v["alerts"] = serde_json::json!(routing.alerts);
    v["stage"] = serde_json::json!(e.stage());
    if let Some(g) = &e.grouped {
        v["unknown_id"] = serde_json::json!(g.unknown_id);
        v["unknown_days"] = serde_json::json!(g.days);
    }
    v
}

pub async fn ws(
    req: actix_web::HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    q: web::Query<EventQuery>,
) -> Result<HttpResponse, crate::error::ApiError> {
    let (response, mut session, mut incoming) = actix_ws::handle(&req, body).map_err(|e| {
        crate::error::ApiError::bad_request("websocket_handshake", format!("not a WebSocket request: {e}"))
    })?;
    let mut rx = state.events.subscribe();
    let filter = q.into_inner();
    actix_web::rt::spawn(async move {
        use futures::StreamExt;
        let reason = loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Ok(e) if filter.wants(&e) => {
                        let Some(routing) = routed(&state, &e, Output::Events) else { continue };
                        if session.text(render(&state, &e, &routing).await.to_string()).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "live-events WebSocket client too slow; disconnecting it");
                        break Some(actix_ws::CloseReason {
                            code: actix_ws::CloseCode::Policy,
                            description: Some(format!("too slow: {n} events missed")),
                        });
                    }
                    Err(RecvError::Closed) => break None,
                },
                msg = incoming.next() => match msg {
                    Some(Ok(actix_ws::Message::Ping(p))) => {
                        if session.pong(&p).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(actix_ws::Message::Close(_))) | None | Some(Err(_)) => break None,
                    Some(Ok(_)) => {}
                },
            }
        };
        let _ = session.close(reason).await;
    });
    Ok(response)
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
                Next::Event(e) => match routed(&state, &e, Output::Events) {
                    Some(routing) => format!("event: detection\ndata: {}\n\n", render(&state, &e, &routing).await),
                    None => continue,
                },
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
