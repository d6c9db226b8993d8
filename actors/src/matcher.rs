//! The matcher: turns tracked faces into appearances — one detection row and one live event per
//! appearance. An appearance begins when a track's identity settles (at once, so alerts stay fast)
//! with a snapshot of the face that settled it, and is completed when its track ends: last seen,
//! frames, best score, and the track's best face as the snapshot. A person whose new track starts on
//! the same camera within `cooldown` of the appearance's last sighting continues it (no second row or
//! event); both times are capture times, so the outcome does not depend on how late the pipeline
//! runs or when the track's end was noticed. Unknown
//! faces become appearances only when configured. Snapshots are written on the blocking pool; when
//! too many are being written an appearance goes without (counted) rather than wait.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use panoptes_engine::frame::YuvFrame;
use panoptes_engine::geometry::BBox;
use panoptes_engine::snapshot::SnapshotStore;
use panoptes_engine::storage::{AppearanceEvidence, NewDetection};
use panoptes_engine::track::identity::{Evidence, Identity};
use panoptes_engine::track::{BestFace, EndedTrack};
use serde::Serialize;

use crate::instruments;
use crate::messages::{AppearanceClosed, AppearanceStarted, AppearanceUpdated, Identified, TrackEvent};

/// Snapshots being encoded and written at once, at most; each holds one frame.
const MAX_PENDING_SNAPSHOTS: usize = 8;

/// An appearance stays open this long past its cooldown, so that a track which started within the
/// cooldown but whose identity settled a few analysed frames later still joins it.
const CLOSE_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

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
    /// Track events received (settled identities and ended tracks).
    pub observations: u64,
    /// Appearances begun (one row and one live event each).
    pub events: u64,
    /// Appearance messages the detection sink could not take (its mailbox was full).
    pub events_dropped: u64,
    pub snapshots_written: u64,
    pub snapshots_failed: u64,
    /// Snapshots not written because the snapshot writers were all busy.
    pub snapshots_skipped: u64,
    /// Snapshots being written now.
    pub snapshots_pending: u64,
    /// Appearances open now (a track on them, or ended less than the cooldown ago).
    pub open_appearances: u64,
}

#[derive(Message)]
#[rtype(result = "MatcherStats")]
pub struct GetMatcherStats;

struct Appearance {
    row: NewDetection,
    /// Tracks on this appearance now.
    tracks: usize,
    /// Frames of the tracks that have ended on it.
    ended_frames: u32,
    /// Quality of the face its snapshot shows.
    snapshot_quality: f32,
    /// Its snapshot is a main-stream crop (a paired camera): only another such crop replaces it.
    snapshot_from_main: bool,
    /// A snapshot is being written for it: a newer one waits for it, so the stems never race.
    writing: bool,
    /// Its start went to the sink (after its first snapshot). Until then nothing else is sent: the
    /// start carries the row as it is when it goes.
    started: bool,
}

/// Where the sink is told about appearances.
#[derive(Clone)]
pub struct SinkLink {
    pub started: Recipient<AppearanceStarted>,
    pub updated: Recipient<AppearanceUpdated>,
    pub closed: Recipient<AppearanceClosed>,
}

pub struct MatcherActor {
    cooldown: chrono::TimeDelta,
    record_unknown: bool,
    sink: SinkLink,
    snapshots: Option<Arc<SnapshotStore>>,
    counters: Arc<Counters>,
    next_key: u64,
    appearances: HashMap<u64, Appearance>,
    /// (camera, track) → appearance key.
    by_track: HashMap<(i64, u64), u64>,
    /// (camera, person) → the person's open appearance on that camera.
    by_person: HashMap<(i64, i64), u64>,
}

impl MatcherActor {
    pub fn new(cooldown: Duration, record_unknown: bool, sink: SinkLink) -> Self {
        Self {
            cooldown: chrono::TimeDelta::from_std(cooldown).unwrap_or(chrono::TimeDelta::MAX),
            record_unknown,
            sink,
            snapshots: None,
            counters: Arc::default(),
            next_key: 1,
            appearances: HashMap::new(),
            by_track: HashMap::new(),
            by_person: HashMap::new(),
        }
    }

    /// Write a snapshot for every appearance into `store`.
    pub fn with_snapshots(mut self, store: Arc<SnapshotStore>) -> Self {
        self.snapshots = Some(store);
        self
    }

    fn identified(&mut self, id: Identified, ctx: &mut Context<Self>) {
        let person = id.identity.person();
        let (score, record) = match id.identity {
            Identity::Person { score, .. } => (score, true),
            Identity::Unknown => (0.0, self.record_unknown),
            Identity::Pending => return,
        };
        // A track whose identity changed leaves the appearance it was on.
        if let Some(key) = self.by_track.get(&(id.camera_id, id.track_id)).copied() {
            if self.appearances.get(&key).is_some_and(|a| a.row.person_id == person) {
                return;
            }
            self.by_track.remove(&(id.camera_id, id.track_id));
            self.leave(key, id.captured_at);
        }
        // The person is still on screen, or back within the cooldown: the same appearance.
        if let Some(p) = person {
            if let Some(&key) = self.by_person.get(&(id.camera_id, p)) {
                let cooldown = self.cooldown;
                let back_too_late = |a: &Appearance| {
                    a.tracks == 0 && a.row.last_seen_at.is_some_and(|last| id.first_seen - last > cooldown)
                };
                if self.appearances.get(&key).is_some_and(back_too_late) {
                    // A new appearance; the old one is closed by close_expired (it may be writing).
                    self.by_person.remove(&(id.camera_id, p));
                } else if let Some(a) = self.appearances.get_mut(&key) {
                    a.tracks += 1;
                    a.row.last_seen_at = None;
                    a.row.best_score = a.row.best_score.max(score);
                    self.by_track.insert((id.camera_id, id.track_id), key);
                    return;
                }
            }
        }
        if !record {
            return;
        }
        let key = self.next_key;
        self.next_key += 1;
        let row = NewDetection {
            id: None,
            camera_id: id.camera_id,
            detected_at: id.first_seen,
            last_seen_at: None,
            person_id: person,
            score,
            best_score: score,
            det_score: id.face.score,
            bbox: id.face.bbox,
            frames: 1,
            snapshot_path: None,
            evidence: appearance_evidence(&id.evidence, id.identity),
            face: id.embedding.map(Arc::new),
        };
        self.appearances.insert(
            key,
            Appearance {
                row,
                tracks: 1,
                ended_frames: 0,
                snapshot_quality: id.quality,
                snapshot_from_main: id.from_main,
                writing: false,
                started: false,
            },
        );
        self.by_track.insert((id.camera_id, id.track_id), key);
        if let Some(p) = person {
            self.by_person.insert((id.camera_id, p), key);
        }
        self.counters.events.fetch_add(1, Ordering::Relaxed);
        instruments::detection_events(id.camera_id, 1);
        // The event waits for its first snapshot (a few ms) so that it can show it.
        self.snapshot(key, id.frame, id.face.bbox, id.captured_at, true, ctx);
    }

    fn ended(&mut self, camera_id: i64, track: EndedTrack<Arc<YuvFrame>>, ctx: &mut Context<Self>) {
        let Some(key) = self.by_track.remove(&(camera_id, track.id)) else { return };
        let better = track
            .best
            .as_ref()
            .filter(|b| self.appearances.get(&key).is_some_and(|a| !a.writing && better_snapshot(b, a)));
        let better = better.map(|b| (b.frame.clone(), b.face.bbox, b.captured_at, b.quality, b.from_main));
        let Some(a) = self.appearances.get_mut(&key) else { return };
        a.ended_frames += track.frames;
        a.row.frames = a.ended_frames.max(1) as i32;
        a.row.best_score = a.row.best_score.max(track.best_match_score);
        a.row.det_score = a.row.det_score.max(track.best_det_score);
        if let Some(e) = track.best_embedding {
            if a.row.face.as_ref().is_none_or(|f| e.quality > f.quality) {
                a.row.face = Some(Arc::new(e));
            }
        }
        // The track's final evidence, when it is still of the appearance's person (a track that
        // changed person left this appearance before).
        if track.identity.person() == a.row.person_id {
            a.row.evidence = appearance_evidence(&track.evidence, track.identity);
            if let Identity::Person { score, .. } = track.identity {
                a.row.score = score;
            }
        }
        self.leave(key, track.last_seen);
        match better {
            Some((frame, bbox, at, quality, from_main)) => {
                if let Some(a) = self.appearances.get_mut(&key) {
                    a.snapshot_quality = quality;
                    a.snapshot_from_main = from_main;
                    a.row.bbox = bbox;
                }
                self.snapshot(key, frame, bbox, at, false, ctx);
            }
            None => self.update(key),
        }
    }

    /// One track leaves appearance `key` at `last_seen`.
    fn leave(&mut self, key: u64, last_seen: DateTime<Utc>) {
        let Some(a) = self.appearances.get_mut(&key) else { return };
        a.tracks = a.tracks.saturating_sub(1);
        a.row.last_seen_at = Some(a.row.last_seen_at.map_or(last_seen, |t| t.max(last_seen)));
    }

    fn update(&self, key: u64) {
        if let Some(a) = self.appearances.get(&key).filter(|a| a.started) {
            let msg = AppearanceUpdated { key, row: a.row.clone() };
            if self.sink.updated.try_send(msg).is_err() {
                self.dropped(a.row.camera_id);
            }
        }
    }

    fn dropped(&self, camera_id: i64) {
        self.counters.events_dropped.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(camera_id, "detection sink full; an appearance message was dropped");
    }

    /// Writes a snapshot of `bbox` in `frame` for appearance `key`, then tells the sink: the start of
    /// the appearance (`first`) or its new version.
    fn snapshot(
        &mut self,
        key: u64,
        frame: Arc<YuvFrame>,
        bbox: BBox,
        at: DateTime<Utc>,
        first: bool,
        ctx: &mut Context<Self>,
    ) {
        let store = match &self.snapshots {
            Some(s) if self.counters.pending.load(Ordering::Relaxed) < MAX_PENDING_SNAPSHOTS => s.clone(),
            Some(_) => {
                self.counters.snapshots_skipped.fetch_add(1, Ordering::Relaxed);
                return self.tell(key, first);
            }
            None => return self.tell(key, first),
        };
        let Some(a) = self.appearances.get_mut(&key) else { return };
        a.writing = true;
        let (camera_id, replaced) = (a.row.camera_id, if first { None } else { a.row.snapshot_path.clone() });
        self.counters.pending.fetch_add(1, Ordering::Relaxed);
        let counters = self.counters.clone();
        let write = async move {
            let started = Instant::now();
            let written = tokio::task::spawn_blocking(move || {
                let stem = store.write_frame(camera_id, at, &frame, &bbox)?;
                if let Some(old) = replaced {
                    // The better face replaces the first one: the first one's files go.
                    if let Err(e) = store.remove(&old) {
                        tracing::warn!(camera_id, error = %e, "could not delete a superseded snapshot");
                    }
                }
                Ok::<_, panoptes_engine::snapshot::SnapshotError>(stem)
            })
            .await;
            instruments::snapshot_written(started.elapsed());
            counters.pending.fetch_sub(1, Ordering::Relaxed);
            match written {
                Ok(Ok(stem)) => {
                    counters.snapshots_written.fetch_add(1, Ordering::Relaxed);
                    Some(stem)
                }
                Ok(Err(e)) => {
                    counters.snapshots_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(camera_id, error = %e, "could not write a detection snapshot");
                    None
                }
                Err(e) => {
                    counters.snapshots_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(camera_id, error = %e, "snapshot writer panicked");
                    None
                }
            }
        };
        ctx.spawn(write.into_actor(self).map(move |stem, act, _| {
            if let Some(a) = act.appearances.get_mut(&key) {
                a.writing = false;
                if stem.is_some() {
                    a.row.snapshot_path = stem;
                }
            }
            act.tell(key, first);
        }));
    }

    fn tell(&mut self, key: u64, first: bool) {
        let Some(a) = self.appearances.get_mut(&key) else { return };
        if first {
            a.started = true;
            let (camera_id, row) = (a.row.camera_id, a.row.clone());
            if self.sink.started.try_send(AppearanceStarted { key, row }).is_err() {
                self.dropped(camera_id);
            }
        } else {
            self.update(key);
        }
    }

    /// Appearances whose cooldown (and grace) has passed are final: the sink may forget them.
    fn close_expired(&mut self, now: DateTime<Utc>) {
        let open_until = self.cooldown.checked_add(&CLOSE_GRACE).unwrap_or(chrono::TimeDelta::MAX);
        let expired: Vec<u64> = self
            .appearances
            .iter()
            .filter(|(_, a)| {
                !a.writing && a.tracks == 0 && a.row.last_seen_at.is_some_and(|last| now - last >= open_until)
            })
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            if let Some(a) = self.appearances.remove(&key) {
                if let Some(p) = a.row.person_id {
                    if self.by_person.get(&(a.row.camera_id, p)) == Some(&key) {
                        self.by_person.remove(&(a.row.camera_id, p));
                    }
                }
                let _ = self.sink.closed.try_send(AppearanceClosed { key });
            }
        }
    }
}

/// A track's evidence as its appearance keeps it.
fn appearance_evidence(e: &Evidence, identity: Identity) -> AppearanceEvidence {
    // The runner-up of a matched face is the person after the one chosen; of a face nobody was
    // chosen for (unknown, ambiguous), the person who came closest.
    let runner_up = if identity.person().is_some() { e.runner_up } else { e.best };
    AppearanceEvidence {
        decision: Some(e.decision(identity).to_string()),
        embeddings: Some(e.embeddings as i32),
        runner_up_person_id: runner_up.map(|(p, _)| p),
        runner_up_score: runner_up.map(|(_, s)| s),
    }
}

impl Actor for MatcherActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Track events carry a frame: a bounded mailbox bounds the frames held here.
        ctx.set_mailbox_capacity(256);
        ctx.run_interval(Duration::from_millis(500), |act, _| act.close_expired(Utc::now()));
    }
}

impl Handler<TrackEvent> for MatcherActor {
    type Result = ();

    fn handle(&mut self, event: TrackEvent, ctx: &mut Self::Context) {
        self.counters.observations.fetch_add(1, Ordering::Relaxed);
        match event {
            TrackEvent::Identified(id) => self.identified(id, ctx),
            TrackEvent::Ended { camera_id, track } => self.ended(camera_id, track, ctx),
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
            open_appearances: self.appearances.len() as u64,
        })
    }
}

/// Whether a track's best face should replace an appearance's snapshot: a main-stream crop beats
/// any substream face (its pixels are what recognition and the operator need); faces from the same
/// stream compare by quality.
fn better_snapshot(best: &BestFace<Arc<YuvFrame>>, a: &Appearance) -> bool {
    match (best.from_main, a.snapshot_from_main) {
        (true, false) => true,
        (false, true) => false,
        _ => best.quality > a.snapshot_quality,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use panoptes_engine::detect::Face;
    use panoptes_engine::geometry::Point;

    use super::*;

    /// Stands for the detection sink: keeps what the matcher tells it.
    #[derive(Default)]
    struct Told {
        started: Vec<NewDetection>,
        closed: usize,
        /// Every message in order: 's'tarted, 'u'pdated, 'c'losed.
        order: String,
    }

    struct Recorder(Arc<Mutex<Told>>);

    impl Actor for Recorder {
        type Context = Context<Self>;
    }

    impl Handler<AppearanceStarted> for Recorder {
        type Result = ();
        fn handle(&mut self, m: AppearanceStarted, _: &mut Context<Self>) {
            let mut told = self.0.lock().unwrap();
            told.started.push(m.row);
            told.order.push('s');
        }
    }

    impl Handler<AppearanceUpdated> for Recorder {
        type Result = ();
        fn handle(&mut self, _: AppearanceUpdated, _: &mut Context<Self>) {
            self.0.lock().unwrap().order.push('u');
        }
    }

    impl Handler<AppearanceClosed> for Recorder {
        type Result = ();
        fn handle(&mut self, _: AppearanceClosed, _: &mut Context<Self>) {
            let mut told = self.0.lock().unwrap();
            told.closed += 1;
            told.order.push('c');
        }
    }

    const CAMERA: i64 = 7;
    const PERSON: i64 = 42;

    fn frame() -> Arc<YuvFrame> {
        let (y, c) = (vec![0u8; 32 * 32], vec![128u8; 16 * 16]);
        Arc::new(YuvFrame::from_planes(32, 32, [&y, &c, &c], [32, 16, 16]).unwrap())
    }

    fn face() -> Face {
        Face { bbox: BBox { x: 1.0, y: 1.0, width: 10.0, height: 10.0 }, score: 0.9, keypoints: [Point::default(); 6] }
    }

    /// Two embeddings for PERSON, well ahead of the runner-up.
    fn evidence() -> Evidence {
        Evidence {
            best: Some((PERSON, 0.8)),
            runner_up: Some((PERSON + 1, 0.3)),
            embeddings: 2,
            best_single: 0.82,
            ambiguous: false,
        }
    }

    fn identified(track_id: u64, first_seen: DateTime<Utc>) -> TrackEvent {
        TrackEvent::Identified(Identified {
            camera_id: CAMERA,
            track_id,
            identity: Identity::Person { person_id: PERSON, score: 0.8 },
            first_seen,
            face: face(),
            frame: frame(),
            captured_at: first_seen,
            quality: 0.5,
            from_main: false,
            evidence: evidence(),
            embedding: None,
        })
    }

    fn ended(track_id: u64, first_seen: DateTime<Utc>, last_seen: DateTime<Utc>) -> TrackEvent {
        let track = EndedTrack {
            id: track_id,
            first_seen,
            last_seen,
            frames: 5,
            best_det_score: 0.9,
            best_match_score: 0.8,
            embeddings: 2,
            identity: Identity::Person { person_id: PERSON, score: 0.8 },
            evidence: evidence(),
            best: None,
            best_embedding: None,
        };
        TrackEvent::Ended { camera_id: CAMERA, track }
    }

    /// A person is seen for 1 s, leaves, and a new track of them starts `gap` after the last sighting;
    /// every message reaches the matcher at once, as from a pipeline running late. The rows begun.
    fn rows_for_a_return_after(gap: chrono::TimeDelta) -> Vec<NewDetection> {
        let told = Arc::new(Mutex::new(Told::default()));
        let recorded = told.clone();
        actix::System::new().block_on(async move {
            let sink = Recorder(recorded).start();
            let link = SinkLink {
                started: sink.clone().recipient(),
                updated: sink.clone().recipient(),
                closed: sink.recipient(),
            };
            let matcher = MatcherActor::new(Duration::from_secs(1), false, link).start();
            let t0 = Utc::now() - chrono::TimeDelta::seconds(30);
            let last = t0 + chrono::TimeDelta::seconds(1);
            for event in [identified(1, t0), ended(1, t0, last), identified(2, last + gap)] {
                matcher.send(event).await.unwrap();
            }
            // The recorder has handled what the matcher sent before this answer.
            matcher.send(GetMatcherStats).await.unwrap();
            actix::clock::sleep(Duration::from_millis(50)).await;
        });
        Arc::try_unwrap(told).ok().unwrap().into_inner().unwrap().started
    }

    #[test]
    fn a_person_back_within_the_cooldown_continues_the_appearance() {
        let rows = rows_for_a_return_after(chrono::TimeDelta::milliseconds(900));
        assert_eq!(rows.len(), 1, "{rows:?}");
    }

    #[test]
    fn a_person_back_after_the_cooldown_is_a_new_appearance_however_late_the_news_arrives() {
        // Capture times 1.5 s apart with a 1 s cooldown; the matcher hears of both tracks in the same
        // instant (before, the cooldown ran from when it heard the first one end, so they merged).
        let rows = rows_for_a_return_after(chrono::TimeDelta::milliseconds(1500));
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(rows[1].detected_at - rows[0].detected_at == chrono::TimeDelta::milliseconds(2500));
    }

    /// A short appearance: its track ends while the first snapshot (the one the start waits for) is
    /// still being written. The end must not reach the sink before the start (the sink would store it
    /// as a row of its own, then the start as another).
    #[test]
    fn a_track_that_ends_before_its_first_snapshot_is_written_is_started_first() {
        let told = Arc::new(Mutex::new(Told::default()));
        let recorded = told.clone();
        let dir = std::env::temp_dir().join(format!("panoptes-matcher-{}", std::process::id()));
        actix::System::new().block_on(async move {
            let config = panoptes_engine::snapshot::SnapshotConfig {
                dir: dir.to_string_lossy().into_owned(),
                ..Default::default()
            };
            let store = Arc::new(SnapshotStore::new(&config).unwrap());
            let sink = Recorder(recorded).start();
            let link = SinkLink {
                started: sink.clone().recipient(),
                updated: sink.clone().recipient(),
                closed: sink.recipient(),
            };
            let matcher = MatcherActor::new(Duration::from_secs(1), false, link).with_snapshots(store).start();
            let t0 = Utc::now();
            matcher.send(identified(1, t0)).await.unwrap();
            matcher.send(ended(1, t0, t0 + chrono::TimeDelta::milliseconds(300))).await.unwrap();
            // The snapshot is written on the blocking pool; then the start and whatever follows go.
            actix::clock::sleep(Duration::from_millis(500)).await;
            let _ = std::fs::remove_dir_all(dir);
        });
        let told = told.lock().unwrap();
        assert!(told.order.starts_with('s'), "the sink was told {:?}", told.order);
        assert_eq!(told.started.len(), 1);
        // The start carries the end: the track's last sighting is in it.
        assert!(told.started[0].last_seen_at.is_some(), "{:?}", told.started[0]);
    }
}
