//! The detection sink: keeps the newest version of each appearance's row and writes them to
//! PostgreSQL in batches, as upserts by row id — an appearance is written when it begins and again
//! when it changes (its track ended, a better snapshot), and a version written twice (a retry after a
//! lost acknowledgement) is stored once. Each appearance gets its row id when it begins, from a stock
//! reserved from the table's sequence, so its live event, published at once (alerts never wait for
//! the database), names the row it becomes.
//!
//! Rows waiting to be written are bounded: when full, the oldest waiting is dropped and counted.
//! While the database is unreachable rows wait and are written when it returns. A batch the database
//! refuses for good (a constraint, bad data) is written row by row instead: the rows that fit land,
//! and each row refused for good is logged, counted and kept in the dead-letter table, so one bad row
//! never holds back the others.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use actix::prelude::*;
use panoptes_engine::alerts::LiveEvent;
use panoptes_engine::error_chain::error_chain;
use panoptes_engine::storage::{NewDetection, StorageError, Store};

use crate::messages::{AppearanceClosed, AppearanceStarted, AppearanceUpdated, DetectionEvent};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkStats {
    /// Rows written for the first time (one per appearance).
    pub written: u64,
    /// Later versions written (appearances completed or improved).
    pub updated: u64,
    /// Rows waiting to be written.
    pub buffered: u64,
    pub overflow: u64,
    pub write_failures: u64,
    /// Rows the database refused for good, kept in `detections_dead_letter`.
    pub dead_lettered: u64,
    /// The most rows waiting before the oldest is dropped.
    pub capacity: u64,
}

#[derive(Message)]
#[rtype(result = "SinkStats")]
pub struct GetSinkStats;

/// Writes everything waiting now (at shutdown); answers how many rows it wrote.
#[derive(Message)]
#[rtype(result = "Result<u64, String>")]
pub struct Drain;

/// Ids reserved at a time, and the stock below which more are reserved: enough for a long outage.
const ID_BLOCK: i64 = 512;
const ID_LOW: usize = 256;
/// Keys of whole detections (`DetectionEvent`), apart from the matcher's appearance keys.
const LOCAL_KEYS: u64 = 1 << 62;

struct Entry {
    row: NewDetection,
    version: u64,
    /// The version last stored (0: never).
    written: u64,
    /// No newer version will come: forget the entry once its last version is stored.
    closed: bool,
}

pub struct DetectionSink {
    store: Store,
    entries: HashMap<u64, Entry>,
    /// Keys whose newest version is not stored yet, oldest first, each once.
    queue: VecDeque<u64>,
    queued: HashSet<u64>,
    capacity: usize,
    batch: usize,
    /// A background write is under way.
    in_flight: bool,
    interval: Duration,
    stats: SinkStats,
    /// Live subscribers (API event streams); sending never blocks, a lagging receiver loses events.
    events: Option<tokio::sync::broadcast::Sender<LiveEvent>>,
    ids: VecDeque<i64>,
    reserving: bool,
    next_local: u64,
}

impl DetectionSink {
    pub fn new(store: Store, capacity: usize) -> Self {
        Self {
            store,
            entries: HashMap::new(),
            queue: VecDeque::new(),
            queued: HashSet::new(),
            capacity: capacity.max(1),
            batch: 500,
            in_flight: false,
            interval: Duration::from_millis(200),
            stats: SinkStats::default(),
            events: None,
            ids: VecDeque::new(),
            reserving: false,
            next_local: LOCAL_KEYS,
        }
    }

    /// Publish every appearance to `events` as it begins (before it is stored).
    pub fn with_events(mut self, events: tokio::sync::broadcast::Sender<LiveEvent>) -> Self {
        self.events = Some(events);
        self
    }

    /// How often waiting rows are written (default 200 ms).
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

    fn start(&mut self, key: u64, mut row: NewDetection) {
        // An update that overtook its start already holds the row's id: the start is the same row.
        if let Some(e) = self.entries.get(&key) {
            row.id = row.id.or(e.row.id);
        }
        if row.id.is_none() {
            row.id = self.ids.pop_front();
        }
        if let Some(events) = &self.events {
            let _ = events.send(LiveEvent::began(row.clone())); // no subscriber is not an error
        }
        self.entries.insert(key, Entry { row, version: 1, written: 0, closed: false });
        self.enqueue(key);
    }

    fn enqueue(&mut self, key: u64) {
        if self.queued.contains(&key) {
            return;
        }
        if self.queue.len() >= self.capacity {
            if let Some(oldest) = self.queue.pop_front() {
                self.queued.remove(&oldest);
                // A row never stored is lost; one stored keeps its last stored version.
                if self.entries.get(&oldest).is_some_and(|e| e.written == 0) {
                    self.entries.remove(&oldest);
                }
                self.stats.overflow += 1;
                tracing::error!(capacity = self.capacity, "detection buffer full; the oldest waiting row dropped");
            }
        }
        self.queue.push_back(key);
        self.queued.insert(key);
    }

    /// Takes up to `n` waiting rows: (key, version, row).
    fn take(&mut self, n: usize) -> Vec<(u64, u64, NewDetection)> {
        let mut out = Vec::new();
        while out.len() < n {
            let Some(key) = self.queue.pop_front() else { break };
            self.queued.remove(&key);
            if let Some(e) = self.entries.get(&key) {
                out.push((key, e.version, e.row.clone()));
            }
        }
        out
    }

    /// Records what a write did with rows taken by [`take`](Self::take).
    fn settle(&mut self, taken: Vec<(u64, u64, NewDetection)>, outcome: &WriteOutcome) {
        self.stats.dead_lettered += outcome.dead_lettered as u64;
        if outcome.retry_because.is_some() {
            self.stats.write_failures += 1;
        }
        let mut retry = Vec::new();
        for (i, (key, version, _)) in taken.into_iter().enumerate() {
            let Some(e) = self.entries.get_mut(&key) else { continue };
            if i >= outcome.resolved {
                retry.push(key);
                continue;
            }
            if let Some(Some(id)) = outcome.ids.get(i) {
                if e.written == 0 {
                    self.stats.written += 1;
                } else {
                    self.stats.updated += 1;
                }
                e.row.id = Some(*id);
            }
            e.written = e.written.max(version);
            if e.closed && e.written >= e.version {
                self.entries.remove(&key);
            }
        }
        // Back to the front, in order, for the next write.
        for key in retry.into_iter().rev() {
            if self.queued.insert(key) {
                self.queue.push_front(key);
            }
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        self.reserve_ids(ctx);
        if self.in_flight || self.queue.is_empty() {
            return;
        }
        let taken = self.take(self.batch);
        let rows: Vec<NewDetection> = taken.iter().map(|(_, _, r)| r.clone()).collect();
        self.in_flight = true;
        let store = self.store.clone();
        let write = async move { write_batch(&store, &rows).await };
        ctx.spawn(write.into_actor(self).map(move |outcome, act, _| {
            act.in_flight = false;
            act.settle(taken, &outcome);
            if let Some(e) = outcome.retry_because {
                tracing::warn!(error = %e, buffered = act.queue.len(), "cannot write detections; will retry");
            }
        }));
    }
}

/// What one write did: `resolved` rows from the front of the batch are done with (written, with the
/// id in `ids`, or kept as dead letters, `None`); the rest wait for a retry when `retry_because` says why.
struct WriteOutcome {
    resolved: usize,
    ids: Vec<Option<i64>>,
    dead_lettered: usize,
    retry_because: Option<StorageError>,
}

impl WriteOutcome {
    fn written(&self) -> usize {
        self.ids.iter().filter(|i| i.is_some()).count()
    }
}

/// The batch in one transaction; if the database refuses it for good, row by row, keeping each row it
/// refuses for good as a dead letter. Stops at the first error that may pass on a retry (an outage).
async fn write_batch(store: &Store, batch: &[NewDetection]) -> WriteOutcome {
    let mut outcome = WriteOutcome { resolved: 0, ids: Vec::new(), dead_lettered: 0, retry_because: None };
    match store.insert_detections(batch).await {
        Ok(ids) => {
            outcome.resolved = batch.len();
            outcome.ids = ids.into_iter().map(Some).collect();
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
            Ok(id) => outcome.ids.push(Some(id)),
            Err(e) if e.is_permanent() => {
                let reason = error_chain(&e);
                tracing::error!(camera_id = d.camera_id, person_id = ?d.person_id, error = %reason, "the database refused a detection; it is kept in detections_dead_letter");
                if let Err(e) = store.dead_letter_detection(d, &reason).await {
                    outcome.retry_because = Some(e);
                    return outcome;
                }
                outcome.dead_lettered += 1;
                outcome.ids.push(None);
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

impl Actor for DetectionSink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        self.reserve_ids(ctx);
        ctx.run_interval(self.interval, |act, ctx| act.flush(ctx));
    }
}

impl Handler<AppearanceStarted> for DetectionSink {
    type Result = ();

    fn handle(&mut self, AppearanceStarted { key, row }: AppearanceStarted, _: &mut Self::Context) {
        self.start(key, row);
    }
}

impl Handler<AppearanceUpdated> for DetectionSink {
    type Result = ();

    fn handle(&mut self, AppearanceUpdated { key, mut row }: AppearanceUpdated, _: &mut Self::Context) {
        match self.entries.get_mut(&key) {
            Some(e) => {
                row.id = row.id.or(e.row.id);
                e.row = row;
                e.version += 1;
            }
            // Its start was dropped (a full buffer): store what is known now, without an event.
            None => {
                row.id = row.id.or_else(|| self.ids.pop_front());
                self.entries.insert(key, Entry { row, version: 1, written: 0, closed: false });
            }
        }
        self.enqueue(key);
    }
}

impl Handler<AppearanceClosed> for DetectionSink {
    type Result = ();

    fn handle(&mut self, AppearanceClosed { key }: AppearanceClosed, _: &mut Self::Context) {
        if let Some(e) = self.entries.get_mut(&key) {
            e.closed = true;
            if e.written >= e.version {
                self.entries.remove(&key);
            }
        }
    }
}

impl Handler<DetectionEvent> for DetectionSink {
    type Result = ();

    fn handle(&mut self, DetectionEvent(d): DetectionEvent, _: &mut Self::Context) {
        let key = self.next_local;
        self.next_local += 1;
        self.start(key, d);
        if let Some(e) = self.entries.get_mut(&key) {
            e.closed = true;
        }
    }
}

impl Handler<Drain> for DetectionSink {
    type Result = ResponseActFuture<Self, Result<u64, String>>;

    fn handle(&mut self, _: Drain, _: &mut Self::Context) -> Self::Result {
        // A write in flight finishes on its own; store everything else here.
        let taken = self.take(usize::MAX);
        let rows: Vec<NewDetection> = taken.iter().map(|(_, _, r)| r.clone()).collect();
        let store = self.store.clone();
        let write = async move { write_batch(&store, &rows).await };
        Box::pin(write.into_actor(self).map(move |outcome, act, _| {
            let done = outcome.written() as u64;
            let failure = outcome.retry_because.as_ref().map(|e| error_chain(e));
            // Nothing is lost here: unresolved rows go back for the next write.
            act.settle(taken, &outcome);
            match failure {
                None => Ok(done),
                Some(e) => Err(format!("{done} written, the rest kept: {e}")),
            }
        }))
    }
}

impl Handler<GetSinkStats> for DetectionSink {
    type Result = MessageResult<GetSinkStats>;

    fn handle(&mut self, _: GetSinkStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(SinkStats { buffered: self.queue.len() as u64, capacity: self.capacity as u64, ..self.stats })
    }
}
