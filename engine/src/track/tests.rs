//! The tracker on synthetic detections (the real-model tests are in `tests/face_tracking.rs`).

use std::time::{Duration, Instant};

use chrono::Utc;

use super::identity::{Identity, IdentityChange};
use super::*;
use crate::geometry::Point;

fn face(x: f32, y: f32, size: f32, score: f32) -> Face {
    let c = Point::new(x + size / 2.0, y + size / 2.0);
    Face { bbox: BBox { x, y, width: size, height: size }, score, keypoints: [c; 6] }
}

/// A sharp face of quality `score`.
fn scored(score: f32) -> Quality {
    Quality { size: score, sharpness: 1.0, frontal: 1.0, score }
}

struct Clock {
    t0: Instant,
    ms: u64,
}

impl Clock {
    fn tick(&mut self, ms: u64) -> Instant {
        self.ms += ms;
        self.t0 + Duration::from_millis(self.ms)
    }
}

fn step(tr: &mut FaceTracker<u32>, clock: &mut Clock, faces: &[Face]) -> FrameUpdate<u32> {
    let at = clock.tick(200);
    let q: Vec<Quality> = faces.iter().map(|f| scored(f.bbox.width / 200.0)).collect();
    tr.update(faces, &q, at, Utc::now(), &(clock.ms as u32))
}

#[test]
fn two_faces_crossing_keep_their_tracks() {
    let mut tr = FaceTracker::new(TrackConfig::default());
    let mut clock = Clock { t0: Instant::now(), ms: 0 };
    // A walks right, B walks left, on slightly different rows; they pass each other at x ≈ 300.
    let mut ids = None;
    for i in 0..12 {
        let (ax, bx) = (100.0 + 40.0 * i as f32, 540.0 - 40.0 * i as f32);
        let u = step(&mut tr, &mut clock, &[face(ax, 100.0, 80.0, 0.9), face(bx, 130.0, 80.0, 0.9)]);
        let got = (u.assigned[0].unwrap(), u.assigned[1].unwrap());
        assert_ne!(got.0, got.1);
        match ids {
            None => ids = Some(got),
            Some(first) => assert_eq!(got, first, "frame {i}: identities swapped or restarted"),
        }
    }
    assert_eq!(tr.tracks().len(), 2);
}

#[test]
fn a_brief_occlusion_or_a_weak_frame_keeps_the_track_and_a_weak_face_never_starts_one() {
    let mut tr = FaceTracker::new(TrackConfig::default());
    let mut clock = Clock { t0: Instant::now(), ms: 0 };
    let id = step(&mut tr, &mut clock, &[face(100.0, 100.0, 80.0, 0.9)]).assigned[0].unwrap();
    // Half-turned: the detector is unsure (0.4, below the 0.5 that would start a track).
    assert_eq!(step(&mut tr, &mut clock, &[face(110.0, 100.0, 80.0, 0.4)]).assigned[0], Some(id));
    // Hidden behind someone for 0.6 s.
    for _ in 0..3 {
        assert!(step(&mut tr, &mut clock, &[]).ended.is_empty());
    }
    assert_eq!(step(&mut tr, &mut clock, &[face(130.0, 100.0, 80.0, 0.9)]).assigned[0], Some(id));
    // A weak candidate far away from any track is ignored.
    let u = step(&mut tr, &mut clock, &[face(140.0, 100.0, 80.0, 0.9), face(600.0, 400.0, 60.0, 0.4)]);
    assert_eq!((u.assigned[0], u.assigned[1]), (Some(id), None));
    assert_eq!(tr.tracks().len(), 1);
}

#[test]
fn a_face_that_returns_after_the_lost_time_is_a_new_track() {
    let mut tr = FaceTracker::new(TrackConfig { lost_secs: 1.0, ..TrackConfig::default() });
    let mut clock = Clock { t0: Instant::now(), ms: 0 };
    let first = step(&mut tr, &mut clock, &[face(100.0, 100.0, 80.0, 0.9)]).assigned[0].unwrap();
    step(&mut tr, &mut clock, &[face(104.0, 100.0, 80.0, 0.9)]);
    let mut ended = Vec::new();
    for _ in 0..6 {
        ended.extend(step(&mut tr, &mut clock, &[]).ended);
    }
    assert_eq!(ended.len(), 1);
    assert_eq!((ended[0].id, ended[0].frames), (first, 2));
    let again = step(&mut tr, &mut clock, &[face(104.0, 100.0, 80.0, 0.9)]);
    assert_ne!(again.assigned[0], Some(first));
    assert_eq!(again.started, vec![again.assigned[0].unwrap()]);
}

#[test]
fn frames_the_motion_gate_skipped_keep_a_still_face_alive() {
    let mut tr = FaceTracker::new(TrackConfig { lost_secs: 1.0, ..TrackConfig::default() });
    let mut clock = Clock { t0: Instant::now(), ms: 0 };
    let id = step(&mut tr, &mut clock, &[face(100.0, 100.0, 80.0, 0.9)]).assigned[0].unwrap();
    // 1.8 s of still frames, then the periodic refresh sees the face again.
    tr.hold_still(clock.tick(1800), Utc::now());
    assert_eq!(step(&mut tr, &mut clock, &[face(100.0, 100.0, 80.0, 0.9)]).assigned[0], Some(id));
}

#[test]
fn the_best_face_is_the_highest_quality_one() {
    let mut tr = FaceTracker::new(TrackConfig::default());
    let mut clock = Clock { t0: Instant::now(), ms: 0 };
    for size in [60.0, 90.0, 140.0, 110.0, 70.0] {
        step(&mut tr, &mut clock, &[face(100.0, 100.0, size, 0.9)]);
    }
    let best = tr.end_all().remove(0).best.unwrap();
    assert_eq!(best.face.bbox.width, 140.0);
    assert_eq!(best.frame, 600, "the frame it was seen in is kept");
}

#[test]
fn embeddings_are_spent_on_faces_not_yet_a_person_or_clearly_better_ones_only() {
    let config = TrackConfig::default();
    let mut tr = FaceTracker::new(config.clone());
    let mut clock = Clock { t0: Instant::now(), ms: 0 };
    let id = step(&mut tr, &mut clock, &[face(100.0, 100.0, 80.0, 0.9)]).assigned[0].unwrap();
    assert!(tr.wants_embedding(id, &scored(0.4)), "a new track is embedded");
    assert_eq!(tr.add_embedding(id, 0.4, Some((7, 0.62)), 0.55), None, "one vote at 0.62 is not enough");
    assert!(tr.wants_embedding(id, &scored(0.4)), "unsettled: embed again");
    assert_eq!(
        tr.add_embedding(id, 0.4, Some((7, 0.60)), 0.55),
        Some(IdentityChange::Settled(Identity::Person { person_id: 7, score: 0.62 }))
    );
    assert!(!tr.wants_embedding(id, &scored(0.45)), "settled: a slightly better face is not worth it");
    assert!(tr.wants_embedding(id, &scored(0.6)), "a clearly better one is");
    for _ in 0..3 {
        tr.add_embedding(id, 0.9, Some((7, 0.7)), 0.55);
    }
    assert!(!tr.wants_embedding(id, &scored(1.0)), "at most max_embeddings per track");
    assert_eq!(tr.track(id).unwrap().embeddings, config.max_embeddings);

    // Settled unknown after two misses, a face is still embedded frame by frame (it may be a watchlist
    // face seen badly so far), up to max_embeddings; a third embedding above the match can name it.
    let u = step(&mut tr, &mut clock, &[face(100.0, 100.0, 80.0, 0.9), face(400.0, 100.0, 80.0, 0.9)]);
    let stranger = u.assigned[1].unwrap();
    tr.add_embedding(stranger, 0.4, Some((7, 0.3)), 0.55);
    assert_eq!(
        tr.add_embedding(stranger, 0.4, Some((7, 0.35)), 0.55),
        Some(IdentityChange::Settled(Identity::Unknown))
    );
    assert!(tr.wants_embedding(stranger, &scored(0.4)), "unknown: embed again at the same quality");
    assert!(matches!(tr.add_embedding(stranger, 0.4, Some((7, 0.74)), 0.55), Some(IdentityChange::Changed { .. })));
    for _ in 0..2 {
        tr.add_embedding(stranger, 0.4, Some((7, 0.6)), 0.55);
    }
    assert!(!tr.wants_embedding(stranger, &scored(1.0)), "a stranger costs at most max_embeddings too");
}

#[test]
fn a_strong_match_settles_at_once_misses_settle_unknown_and_identity_flips_only_on_evidence() {
    let mut tr = FaceTracker::new(TrackConfig::default());
    let mut clock = Clock { t0: Instant::now(), ms: 0 };
    let u = step(&mut tr, &mut clock, &[face(100.0, 100.0, 80.0, 0.9), face(400.0, 100.0, 80.0, 0.9)]);
    let (a, b) = (u.assigned[0].unwrap(), u.assigned[1].unwrap());
    assert_eq!(
        tr.add_embedding(a, 0.5, Some((3, 0.81)), 0.55),
        Some(IdentityChange::Settled(Identity::Person { person_id: 3, score: 0.81 }))
    );
    // One contrary embedding does not flip it; two more for someone else than for 3 do.
    assert_eq!(tr.add_embedding(a, 0.7, Some((4, 0.6)), 0.55), None);
    assert_eq!(tr.track(a).unwrap().identity.person(), Some(3));
    let flip = tr.add_embedding(a, 0.9, Some((4, 0.66)), 0.55);
    assert!(
        matches!(flip, Some(IdentityChange::Changed { to: Identity::Person { person_id: 4, .. }, .. })),
        "{flip:?}"
    );
    // A stranger: two misses settle unknown; a later clear match names them.
    assert_eq!(tr.add_embedding(b, 0.5, Some((3, 0.3)), 0.55), None);
    assert_eq!(tr.add_embedding(b, 0.5, Some((3, 0.35)), 0.55), Some(IdentityChange::Settled(Identity::Unknown)));
    assert!(matches!(tr.add_embedding(b, 0.9, Some((5, 0.75)), 0.55), Some(IdentityChange::Changed { .. })));
}

#[test]
fn a_stranger_in_view_gets_new_chances_when_the_gallery_changes() {
    let config = TrackConfig::default();
    let mut tr = FaceTracker::new(config.clone());
    let mut clock = Clock { t0: Instant::now(), ms: 0 };
    let f = face(100.0, 100.0, 120.0, 0.9);
    let id = step(&mut tr, &mut clock, &[f]).assigned[0].unwrap();
    // Nobody in the gallery matches: after its embeddings the track is unknown and costs nothing more.
    for _ in 0..config.max_embeddings {
        assert!(tr.wants_embedding(id, &scored(0.6)));
        tr.add_embedding(id, 0.6, Some((7, 0.2)), 0.55);
        step(&mut tr, &mut clock, &[f]);
    }
    assert_eq!(tr.track(id).unwrap().identity, Identity::Unknown);
    assert!(!tr.wants_embedding(id, &scored(0.9)) && !tr.deciding());
    // The person is enrolled while still in view: the track is embedded again and becomes them.
    tr.gallery_changed();
    assert!(tr.deciding() && tr.wants_embedding(id, &scored(0.6)));
    let change = tr.add_embedding(id, 0.6, Some((42, 0.81)), 0.55);
    assert_eq!(
        change,
        Some(IdentityChange::Changed { from: Identity::Unknown, to: Identity::Person { person_id: 42, score: 0.81 } })
    );
    // A person is not re-opened by a later change of the gallery.
    tr.gallery_changed();
    assert!(!tr.deciding());
}

#[test]
fn a_blurred_face_is_not_embedded_when_the_track_has_shown_a_sharp_one() {
    let mut tr = FaceTracker::new(TrackConfig::default());
    let mut clock = Clock { t0: Instant::now(), ms: 0 };
    let blurred = Quality { size: 0.5, sharpness: 0.3, frontal: 1.0, score: 0.15 };
    // A walk: sharp, then motion-blurred — that face is skipped; sharp again — embedded.
    let id = step(&mut tr, &mut clock, &[face(100.0, 100.0, 80.0, 0.9)]).assigned[0].unwrap();
    assert!(tr.wants_embedding(id, &scored(0.4)));
    tr.add_embedding(id, 0.4, Some((7, 0.3)), 0.55);
    assert!(!tr.wants_embedding(id, &blurred), "blurred after a sharp face: wait for a better one");
    assert!(tr.wants_embedding(id, &scored(0.4)));

    // A soft camera: every face of the track is as blurred as the first; each is embedded.
    let mut soft = FaceTracker::new(TrackConfig::default());
    let at = clock.tick(200);
    let u = soft.update(&[face(100.0, 100.0, 80.0, 0.9)], &[blurred], at, Utc::now(), &0);
    let id = u.assigned[0].unwrap();
    assert!(soft.wants_embedding(id, &blurred), "the first face of a track is embedded, sharp or not");
    soft.add_embedding(id, 0.15, Some((7, 0.3)), 0.55);
    let u = soft.update(&[face(104.0, 100.0, 80.0, 0.9)], &[blurred], clock.tick(200), Utc::now(), &1);
    assert_eq!(u.assigned[0], Some(id));
    assert!(soft.wants_embedding(id, &blurred), "nothing sharper seen: still embedded");

    // Off (min_sharpness 0): the blurred face is embedded after a sharp one too.
    let mut off = FaceTracker::new(TrackConfig { min_sharpness: 0.0, ..TrackConfig::default() });
    let id = step(&mut off, &mut clock, &[face(100.0, 100.0, 80.0, 0.9)]).assigned[0].unwrap();
    off.add_embedding(id, 0.4, Some((7, 0.3)), 0.55);
    assert!(off.wants_embedding(id, &blurred));
}
