//! The matcher: turns a stream of face observations into detection events, one per appearance — a
//! person seen again on the same camera within `cooldown` of the last sighting is the same appearance.
//! Unknown faces are recorded only when configured. Each event gets a snapshot (face crop and context
//! frame) written on the blocking pool before it goes to the sink; when too many snapshots are already
//! being written the event goes without one (counted) rather than wait.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use panoptes_engine::snapshot::SnapshotStore;
use panoptes_engine::storage::NewDetection;
use serde::Serialize;

use crate::instruments;
use crate::messages::{DetectionEvent, FaceObservation};

/// Snapshots being encoded and written at once, at most; each holds one frame.
const MAX_PENDING_SNAPSHOTS: usize = 8;

#[derive(Default)]
struct Counters {
    observations: AtomicU64,
    events: AtomicU64,
    events_dropped: AtomicU64,
    snapshots_written: AtomicU64,
    snapshots_failed: AtomicU64,
    snapshots_skipped: AtomicU64,
    pending: AtomicUsize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MatcherStats {
    pub observations: u64,
    pub events: u64,
    /// Events the detection sink could not take (its mailbox was full).
    pub events_dropped: u64,
    pub snapshots_written: u64,
    pub snapshots_failed: u64,
    /// Events sent without a snapshot because the snapshot writers were all busy.
    pub snapshots_skipped: u64,
    /// Snapshots being written now.
    pub snapshots_pending: u64,
}

#[derive(Message)]
#[rtype(result = "MatcherStats")]
pub struct GetMatcherStats;

pub struct MatcherActor {
    cooldown: Duration,
    record_unknown: bool,
    last_seen: HashMap<(i64, i64), Instant>,
    sink: Recipient<DetectionEvent>,
    snapshots: Option<Arc<SnapshotStore>>,
    counters: Arc<Counters>,
}

impl MatcherActor {
    pub fn new(cooldown: Duration, record_unknown: bool, sink: Recipient<DetectionEvent>) -> Self {
        Self { cooldown, record_unknown, last_seen: HashMap::new(), sink, snapshots: None, counters: Arc::default() }
    }

    /// Write a snapshot for every event into `store`.
    pub fn with_snapshots(mut self, store: Arc<SnapshotStore>) -> Self {
        self.snapshots = Some(store);
        self
    }

    fn emit(&mut self, o: FaceObservation) {
        self.counters.events.fetch_add(1, Ordering::Relaxed);
        instruments::detection_events(o.camera_id, 1);
        let detection = NewDetection {
            id: None,
            camera_id: o.camera_id,
            detected_at: o.seen_at,
            person_id: o.person_id,
            score: o.score,
            det_score: o.det_score,
            bbox: o.bbox,
            snapshot_path: None,
        };
        let Some(store) = self.snapshots.clone() else {
            send(&self.sink, &self.counters, detection);
            return;
        };
        if self.counters.pending.load(Ordering::Relaxed) >= MAX_PENDING_SNAPSHOTS {
            self.counters.snapshots_skipped.fetch_add(1, Ordering::Relaxed);
            send(&self.sink, &self.counters, detection);
            return;
        }
        self.counters.pending.fetch_add(1, Ordering::Relaxed);
        let (sink, counters) = (self.sink.clone(), self.counters.clone());
        actix::spawn(async move {
            let mut detection = detection;
            let (cam, at, frame, bbox) = (o.camera_id, o.seen_at, o.frame, o.bbox);
            let started = Instant::now();
            let written = tokio::task::spawn_blocking(move || store.write(cam, at, &frame, &bbox)).await;
            instruments::snapshot_written(started.elapsed());
            counters.pending.fetch_sub(1, Ordering::Relaxed);
            match written {
                Ok(Ok(stem)) => {
                    counters.snapshots_written.fetch_add(1, Ordering::Relaxed);
                    detection.snapshot_path = Some(stem);
                }
                Ok(Err(e)) => {
                    counters.snapshots_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(camera_id = cam, error = %e, "could not write a detection snapshot");
                }
                Err(e) => {
                    counters.snapshots_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(camera_id = cam, error = %e, "snapshot writer panicked");
                }
            }
            send(&sink, &counters, detection);
        });
    }
}

fn send(sink: &Recipient<DetectionEvent>, counters: &Counters, detection: NewDetection) {
    let camera_id = detection.camera_id;
    if sink.try_send(DetectionEvent(detection)).is_err() {
        counters.events_dropped.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(camera_id, "detection sink full; event dropped");
    }
}

impl Actor for MatcherActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Observations carry their frame: a short mailbox bounds the frames held here.
        ctx.set_mailbox_capacity(64);
        // Forget appearances that have ended, so the map stays as small as the people in view.
        let every = self.cooldown.max(Duration::from_secs(1));
        ctx.run_interval(every, |act, _| {
            let cooldown = act.cooldown;
            act.last_seen.retain(|_, t| t.elapsed() < cooldown);
        });
    }
}

impl Handler<FaceObservation> for MatcherActor {
    type Result = ();

    fn handle(&mut self, o: FaceObservation, _: &mut Self::Context) {
        self.counters.observations.fetch_add(1, Ordering::Relaxed);
        let Some(person) = o.person_id else {
            if self.record_unknown {
                self.emit(o);
            }
            return;
        };
        let now = Instant::now();
        let new_appearance =
            self.last_seen.get(&(o.camera_id, person)).is_none_or(|t| now.duration_since(*t) >= self.cooldown);
        self.last_seen.insert((o.camera_id, person), now);
        if new_appearance {
            self.emit(o);
        }
    }
}

impl Handler<GetMatcherStats> for MatcherActor {
    type Result = MessageResult<GetMatcherStats>;

    fn handle(&mut self, _: GetMatcherStats, _: &mut Self::Context) -> Self::Result {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MessageResult(MatcherStats {
            observations: get(&c.observations),
            events: get(&c.events),
            events_dropped: get(&c.events_dropped),
            snapshots_written: get(&c.snapshots_written),
            snapshots_failed: get(&c.snapshots_failed),
            snapshots_skipped: get(&c.snapshots_skipped),
            snapshots_pending: c.pending.load(Ordering::Relaxed) as u64,
        })
    }
}
