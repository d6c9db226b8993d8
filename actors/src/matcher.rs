//! The matcher: turns a stream of face observations into detection events, one per appearance — a
//! person seen again on the same camera within `cooldown` of the last sighting is the same appearance.
//! Unknown faces are recorded only when configured.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use panoptes_engine::storage::NewDetection;

use crate::messages::{DetectionEvent, FaceObservation};

pub struct MatcherActor {
    cooldown: Duration,
    record_unknown: bool,
    last_seen: HashMap<(i64, i64), Instant>,
    sink: Recipient<DetectionEvent>,
    pub events_dropped: u64,
}

impl MatcherActor {
    pub fn new(cooldown: Duration, record_unknown: bool, sink: Recipient<DetectionEvent>) -> Self {
        Self { cooldown, record_unknown, last_seen: HashMap::new(), sink, events_dropped: 0 }
    }

    fn emit(&mut self, o: &FaceObservation) {
        let event = DetectionEvent(NewDetection {
            camera_id: o.camera_id,
            detected_at: o.seen_at,
            person_id: o.person_id,
            score: o.score,
            det_score: o.det_score,
            bbox: o.bbox,
            snapshot_path: None,
        });
        if self.sink.try_send(event).is_err() {
            self.events_dropped += 1;
            tracing::warn!(camera_id = o.camera_id, "detection sink full; event dropped");
        }
    }
}

impl Actor for MatcherActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
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
        let Some(person) = o.person_id else {
            if self.record_unknown {
                self.emit(&o);
            }
            return;
        };
        let now = Instant::now();
        let new_appearance =
            self.last_seen.get(&(o.camera_id, person)).is_none_or(|t| now.duration_since(*t) >= self.cooldown);
        self.last_seen.insert((o.camera_id, person), now);
        if new_appearance {
            self.emit(&o);
        }
    }
}
