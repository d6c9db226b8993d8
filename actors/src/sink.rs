//! The detection sink: buffers events (bounded; when full, the oldest is dropped and counted) and
//! writes them to PostgreSQL in batches. While the database is unreachable, events wait and are
//! written when it returns.

use std::collections::VecDeque;
use std::time::Duration;

use actix::prelude::*;
use panoptes_engine::storage::{NewDetection, Store};

use crate::messages::DetectionEvent;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkStats {
    pub written: u64,
    pub buffered: u64,
    pub overflow: u64,
    pub write_failures: u64,
    /// The most events buffered before the oldest is dropped.
    pub capacity: u64,
}

#[derive(Message)]
#[rtype(result = "SinkStats")]
pub struct GetSinkStats;

/// Writes everything buffered now (at shutdown); answers how many rows it wrote.
#[derive(Message)]
#[rtype(result = "Result<u64, String>")]
pub struct Drain;

pub struct DetectionSink {
    store: Store,
    buffer: VecDeque<NewDetection>,
    capacity: usize,
    batch: usize,
    /// Events at the front of `buffer` that a background write is storing now.
    in_flight: usize,
    interval: Duration,
    stats: SinkStats,
    /// Live subscribers (API event streams); sending never blocks, a lagging receiver loses events.
    events: Option<tokio::sync::broadcast::Sender<NewDetection>>,
}

impl DetectionSink {
    pub fn new(store: Store, capacity: usize) -> Self {
        Self {
            store,
            buffer: VecDeque::new(),
            capacity: capacity.max(1),
            batch: 500,
            in_flight: 0,
            interval: Duration::from_millis(200),
            stats: SinkStats::default(),
            events: None,
        }
    }

    /// Publish every event to `events` as it arrives (before it is stored: alerts do not wait for
    /// the database).
    pub fn with_events(mut self, events: tokio::sync::broadcast::Sender<NewDetection>) -> Self {
        self.events = Some(events);
        self
    }

    /// How often buffered events are written (default 200 ms).
    pub fn with_flush_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight > 0 || self.buffer.is_empty() {
            return;
        }
        let batch: Vec<NewDetection> = self.buffer.iter().take(self.batch).cloned().collect();
        self.in_flight = batch.len();
        let store = self.store.clone();
        let write = async move { store.insert_detections(&batch).await.map(|_| batch.len()) };
        ctx.spawn(write.into_actor(self).map(|result, act, _| {
            let n = std::mem::take(&mut act.in_flight);
            match result {
                Ok(_) => {
                    act.buffer.drain(..n.min(act.buffer.len()));
                    act.stats.written += n as u64;
                }
                Err(e) => {
                    act.stats.write_failures += 1;
                    tracing::warn!(error = %e, buffered = act.buffer.len(), "cannot write detections; will retry");
                }
            }
        }));
    }
}

impl Actor for DetectionSink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        ctx.run_interval(self.interval, |act, ctx| act.flush(ctx));
    }
}

impl Handler<DetectionEvent> for DetectionSink {
    type Result = ();

    fn handle(&mut self, DetectionEvent(d): DetectionEvent, _: &mut Self::Context) {
        if self.buffer.len() >= self.capacity && self.buffer.len() > self.in_flight {
            // the oldest event not already being written
            self.buffer.remove(self.in_flight);
            self.stats.overflow += 1;
            tracing::error!(capacity = self.capacity, "detection buffer full; oldest event dropped");
        }
        if let Some(events) = &self.events {
            let _ = events.send(d.clone()); // no subscriber is not an error
        }
        self.buffer.push_back(d);
    }
}

impl Handler<Drain> for DetectionSink {
    type Result = ResponseActFuture<Self, Result<u64, String>>;

    fn handle(&mut self, _: Drain, _: &mut Self::Context) -> Self::Result {
        // Leave the in-flight front to its own write; store the rest here.
        let rest: Vec<NewDetection> = self.buffer.split_off(self.in_flight.min(self.buffer.len())).into();
        let store = self.store.clone();
        let write = async move {
            let result = store.insert_detections(&rest).await;
            (rest, result)
        };
        Box::pin(write.into_actor(self).map(|(rest, result), act, _| match result {
            Ok(()) => {
                act.stats.written += rest.len() as u64;
                Ok(rest.len() as u64)
            }
            Err(e) => {
                // Nothing is lost here: the events go back to the buffer for the next write.
                act.stats.write_failures += 1;
                act.buffer.extend(rest);
                Err(e.to_string())
            }
        }))
    }
}

impl Handler<GetSinkStats> for DetectionSink {
    type Result = MessageResult<GetSinkStats>;

    fn handle(&mut self, _: GetSinkStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(SinkStats { buffered: self.buffer.len() as u64, capacity: self.capacity as u64, ..self.stats })
    }
}
