//! The detection sink: buffers events (bounded; when full, the oldest is dropped and counted) and
//! writes them to PostgreSQL in batches. While the database is unreachable, events wait and are
//! written when it returns. A batch the database refuses for good (a constraint, bad data) is written
//! row by row instead: the rows that fit land, and each row refused for good is logged, counted and
//! kept in the dead-letter table, so one bad row never holds back the others.

use std::collections::VecDeque;
use std::time::Duration;

use actix::prelude::*;
use panoptes_engine::storage::{NewDetection, StorageError, Store};

use crate::messages::DetectionEvent;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkStats {
    pub written: u64,
    pub buffered: u64,
    pub overflow: u64,
    pub write_failures: u64,
    /// Rows the database refused for good, kept in `detections_dead_letter`.
    pub dead_lettered: u64,
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
    /// Row ids reserved from the database, given to events as they arrive so the live event names
    /// the row it becomes (and a retried write cannot duplicate it).
    ids: VecDeque<i64>,
    reserving: bool,
}

/// Ids reserved at a time, and the stock below which more are reserved: enough for a long outage.
const ID_BLOCK: i64 = 512;
const ID_LOW: usize = 256;

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
            ids: VecDeque::new(),
            reserving: false,
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

    fn reserve_ids(&mut self, ctx: &mut Context<Self>) {
        if self.reserving || self.ids.len() >= ID_LOW {
            return;
        }
        self.reserving = true;
        let store = self.store.clone();
        let reserve = async move { store.reserve_detection_ids(ID_BLOCK).await };
        ctx.spawn(reserve.into_actor(self).map(|result, act, _| {
            act.reserving = false;
            match result {
                Ok(ids) => act.ids.extend(ids),
                Err(e) => tracing::debug!(error = %e, "cannot reserve detection ids now; will retry"),
            }
        }));
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        self.reserve_ids(ctx);
        if self.in_flight > 0 || self.buffer.is_empty() {
            return;
        }
        let batch: Vec<NewDetection> = self.buffer.iter().take(self.batch).cloned().collect();
        self.in_flight = batch.len();
        let store = self.store.clone();
        let write = async move { write_batch(&store, &batch).await };
        ctx.spawn(write.into_actor(self).map(|outcome, act, _| {
            act.in_flight = 0;
            act.buffer.drain(..outcome.resolved.min(act.buffer.len()));
            act.count(&outcome);
            if let Some(e) = outcome.retry_because {
                tracing::warn!(error = %e, buffered = act.buffer.len(), "cannot write detections; will retry");
            }
        }));
    }

    fn count(&mut self, outcome: &WriteOutcome) {
        self.stats.written += outcome.written as u64;
        self.stats.dead_lettered += outcome.dead_lettered as u64;
        if outcome.retry_because.is_some() {
            self.stats.write_failures += 1;
        }
    }
}

/// What one write did: `resolved` rows from the front of the batch are done with (written or kept
/// as dead letters); the rest wait for a retry when `retry_because` says why.
struct WriteOutcome {
    resolved: usize,
    written: usize,
    dead_lettered: usize,
    retry_because: Option<StorageError>,
}

/// The batch in one transaction; if the database refuses it for good, row by row, keeping each row it
/// refuses for good as a dead letter. Stops at the first error that may pass on a retry (an outage).
async fn write_batch(store: &Store, batch: &[NewDetection]) -> WriteOutcome {
    let mut outcome = WriteOutcome { resolved: 0, written: 0, dead_lettered: 0, retry_because: None };
    match store.insert_detections(batch).await {
        Ok(()) => {
            outcome.resolved = batch.len();
            outcome.written = batch.len();
            return outcome;
        }
        Err(e) if !e.is_permanent() => {
            outcome.retry_because = Some(e);
            return outcome;
        }
        Err(e) => {
            tracing::warn!(error = %e, rows = batch.len(), "a batch of detections was refused; writing it row by row")
        }
    }
    for d in batch {
        match store.insert_detection(d).await {
            Ok(()) => outcome.written += 1,
            Err(e) if e.is_permanent() => {
                let reason = error_chain(&e);
                tracing::error!(camera_id = d.camera_id, person_id = ?d.person_id, error = %reason, "the database refused a detection; it is kept in detections_dead_letter");
                if let Err(e) = store.dead_letter_detection(d, &reason).await {
                    outcome.retry_because = Some(e);
                    return outcome;
                }
                outcome.dead_lettered += 1;
            }
            Err(e) => {
                outcome.retry_because = Some(e);
                return outcome;
            }
        }
        outcome.resolved += 1;
    }
    outcome
}

/// The error with its causes ("insert detection: … violates foreign key constraint …").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}

impl Actor for DetectionSink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        self.reserve_ids(ctx);
        ctx.run_interval(self.interval, |act, ctx| act.flush(ctx));
    }
}

impl Handler<DetectionEvent> for DetectionSink {
    type Result = ();

    fn handle(&mut self, DetectionEvent(mut d): DetectionEvent, _: &mut Self::Context) {
        if d.id.is_none() {
            d.id = self.ids.pop_front();
        }
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
            let outcome = write_batch(&store, &rest).await;
            (rest, outcome)
        };
        Box::pin(write.into_actor(self).map(|(rest, outcome), act, _| {
            act.count(&outcome);
            let done = outcome.written as u64;
            match outcome.retry_because {
                None => Ok(done),
                Some(e) => {
                    // Nothing is lost here: the unresolved events go back to the buffer for the next write.
                    act.buffer.extend(rest.into_iter().skip(outcome.resolved));
                    Err(format!("{} written, the rest kept: {}", done, error_chain(&e)))
                }
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
