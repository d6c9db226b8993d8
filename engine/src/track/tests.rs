//! The tracker on synthetic detections (the real-model tests are in `tests/face_tracking.rs`).

use std::time::{Duration, Instant};

use chrono::Utc;

use super::identity::{Comparison, Identity, IdentityChange};
use super::*;
use crate::embed::Judgement;
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

/// The judgement of an embedder with these numbers (the tests do not depend on the built-in ones).
const JUDGEMENT: Judgement = Judgement { match_threshold: 0.55, instant_match_score: 0.7, margin: 0.08 };

/// One embedding compared with a whole (small) gallery: `scores` lists every person in it.
fn vote(tr: &mut FaceTracker<u32>, id: u64, quality: f32, scores: &[(i64, f32)]) -> Option<IdentityChange> {
    let comparison = Comparison { candidates: scores.to_vec(), floor: None };
    tr.add_embedding(id, quality, comparison, &JUDGEMENT)
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
    assert_eq!(vote(&mut tr, id, 0.4, &[(7, 0.62)]), None, "one vote at 0.62 is not enough");
    assert!(tr.wants_embedding(id, &scored(0.4)), "unsettled: embed again");
    let settled = vote(&mut tr, id, 0.4, &[(7, 0.60)]);
    assert!(
        matches!(settled, Some(IdentityChange::Settled(Identity::Person { person_id: 7, score })) if (score - 0.61).abs() < 1e-5),
        "two votes: the track's score is their mean: {settled:?}"
    );
    assert!(!tr.wants_embedding(id, &scored(0.45)), "settled: a slightly better face is not worth it");
    assert!(tr.wants_embedding(id, &scored(0.6)), "a clearly better one is");
    for _ in 0..3 {
        vote(&mut tr, id, 0.9, &[(7, 0.7)]);
    }
    assert!(!tr.wants_embedding(id, &scored(1.0)), "at most max_embeddings per track");
    assert_eq!(tr.track(id).unwrap().embeddings, config.max_embeddings);

    // Settled unknown after two misses, a face is still embedded frame by frame (it may be a watchlist
    // face seen badly so far), up to max_embeddings; a third embedding above the match can name it.
    let u = step(&mut tr, &mut clock, &[face(100.0, 100.0, 80.0, 0.9), face(400.0, 100.0, 80.0, 0.9)]);
    let stranger = u.assigned[1].unwrap();
    vote(&mut tr, stranger, 0.4, &[(7, 0.3)]);
    assert_eq!(vote(&mut tr, stranger, 0.4, &[(7, 0.35)]), Some(IdentityChange::Settled(Identity::Unknown)));
    assert!(tr.wants_embedding(stranger, &scored(0.4)), "unknown: embed again at the same quality");
    // A better, clearly matching face outweighs the misses (the worst of three is dropped).
    assert!(matches!(vote(&mut tr, stranger, 0.9, &[(7, 0.74)]), Some(IdentityChange::Changed { .. })));
    for _ in 0..2 {
        vote(&mut tr, stranger, 0.4, &[(7, 0.6)]);
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
        vote(&mut tr, a, 0.5, &[(3, 0.81), (4, 0.2)]),
        Some(IdentityChange::Settled(Identity::Person { person_id: 3, score: 0.81 }))
    );
    // One contrary embedding does not flip it; two, clearly for someone else, do.
    assert_eq!(vote(&mut tr, a, 0.7, &[(4, 0.6), (3, 0.25)]), None);
    assert_eq!(tr.track(a).unwrap().identity.person(), Some(3));
    let flip = vote(&mut tr, a, 0.9, &[(4, 0.66), (3, 0.2)]);
    assert!(
        matches!(flip, Some(IdentityChange::Changed { to: Identity::Person { person_id: 4, .. }, .. })),
        "{flip:?}"
    );
    // A stranger: two misses settle unknown; a later clear match names them.
    assert_eq!(vote(&mut tr, b, 0.5, &[(3, 0.3)]), None);
    assert_eq!(vote(&mut tr, b, 0.5, &[(3, 0.35)]), Some(IdentityChange::Settled(Identity::Unknown)));
    assert!(matches!(vote(&mut tr, b, 0.9, &[(5, 0.75), (3, 0.2)]), Some(IdentityChange::Changed { .. })));
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
        vote(&mut tr, id, 0.6, &[(7, 0.2)]);
        step(&mut tr, &mut clock, &[f]);
    }
    assert_eq!(tr.track(id).unwrap().identity, Identity::Unknown);
    assert!(!tr.wants_embedding(id, &scored(0.9)) && !tr.deciding());
    // The person is enrolled while still in view: the track is embedded again and becomes them.
    tr.gallery_changed();
    assert!(tr.deciding() && tr.wants_embedding(id, &scored(0.6)));
    let change = vote(&mut tr, id, 0.6, &[(42, 0.81), (7, 0.2)]);
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
    vote(&mut tr, id, 0.4, &[(7, 0.3)]);
    assert!(!tr.wants_embedding(id, &blurred), "blurred after a sharp face: wait for a better one");
    assert!(tr.wants_embedding(id, &scored(0.4)));

    // A soft camera: every face of the track is as blurred as the first; each is embedded.
    let mut soft = FaceTracker::new(TrackConfig::default());
    let at = clock.tick(200);
    let u = soft.update(&[face(100.0, 100.0, 80.0, 0.9)], &[blurred], at, Utc::now(), &0);
    let id = u.assigned[0].unwrap();
    assert!(soft.wants_embedding(id, &blurred), "the first face of a track is embedded, sharp or not");
    vote(&mut soft, id, 0.15, &[(7, 0.3)]);
    let u = soft.update(&[face(104.0, 100.0, 80.0, 0.9)], &[blurred], clock.tick(200), Utc::now(), &1);
    assert_eq!(u.assigned[0], Some(id));
    assert!(soft.wants_embedding(id, &blurred), "nothing sharper seen: still embedded");

    // Off (min_sharpness 0): the blurred face is embedded after a sharp one too.
    let mut off = FaceTracker::new(TrackConfig { min_sharpness: 0.0, ..TrackConfig::default() });
    let id = step(&mut off, &mut clock, &[face(100.0, 100.0, 80.0, 0.9)]).assigned[0].unwrap();
    vote(&mut off, id, 0.4, &[(7, 0.3)]);
    assert!(off.wants_embedding(id, &blurred));
}

#[test]
fn look_alikes_too_close_to_tell_apart_are_unknown_not_a_guess() {
    let mut tr = FaceTracker::new(TrackConfig::default());
    let mut clock = Clock { t0: Instant::now(), ms: 0 };
    let id = step(&mut tr, &mut clock, &[face(100.0, 100.0, 120.0, 0.9)]).assigned[0].unwrap();
    assert_eq!(vote(&mut tr, id, 0.6, &[(1, 0.64), (2, 0.61)]), None);
    assert_eq!(vote(&mut tr, id, 0.6, &[(2, 0.63), (1, 0.62)]), Some(IdentityChange::Settled(Identity::Unknown)));
    let evidence = tr.track(id).unwrap().evidence();
    assert!(evidence.ambiguous, "both close, neither clear: {evidence:?}");
    assert_eq!(evidence.decision(Identity::Unknown), "ambiguous");
    assert_eq!(evidence.best.map(|b| b.0), Some(1));
    assert_eq!(evidence.runner_up.map(|r| r.0), Some(2));
    assert_eq!(evidence.embeddings, 2);
    // Even one embedding far above the instant score does not settle when a rival is as close.
    let mut tr = FaceTracker::new(TrackConfig::default());
    let id = step(&mut tr, &mut clock, &[face(100.0, 100.0, 120.0, 0.9)]).assigned[0].unwrap();
    assert_eq!(vote(&mut tr, id, 0.6, &[(1, 0.9), (2, 0.86)]), None);
}

#[test]
fn a_person_not_listed_may_be_as_close_as_the_floor() {
    let mut tr = FaceTracker::new(TrackConfig::default());
    let mut clock = Clock { t0: Instant::now(), ms: 0 };
    let id = step(&mut tr, &mut clock, &[face(100.0, 100.0, 120.0, 0.9)]).assigned[0].unwrap();
    // Only the best person is listed; everyone else scores up to 0.7: 7 is not clearly ahead.
    let only_best = |score| Comparison { candidates: vec![(7, score)], floor: Some(0.7) };
    assert_eq!(tr.add_embedding(id, 0.6, only_best(0.75), &JUDGEMENT), None);
    assert_eq!(
        tr.add_embedding(id, 0.6, only_best(0.64), &JUDGEMENT),
        Some(IdentityChange::Settled(Identity::Unknown))
    );
    // With a low floor the same scores are a clear match.
    let mut tr = FaceTracker::new(TrackConfig::default());
    let id = step(&mut tr, &mut clock, &[face(100.0, 100.0, 120.0, 0.9)]).assigned[0].unwrap();
    let change = tr.add_embedding(id, 0.6, Comparison { candidates: vec![(7, 0.75)], floor: Some(0.3) }, &JUDGEMENT);
    assert!(matches!(change, Some(IdentityChange::Settled(Identity::Person { person_id: 7, .. }))), "{change:?}");
}

#[test]
fn one_turned_or_blurred_face_does_not_sink_a_track_that_is_clearly_someone() {
    let mut tr = FaceTracker::new(TrackConfig::default());
    let mut clock = Clock { t0: Instant::now(), ms: 0 };
    let id = step(&mut tr, &mut clock, &[face(100.0, 100.0, 120.0, 0.9)]).assigned[0].unwrap();
    // A plain mean of these would be 0.48, below the threshold; the worst of three is dropped.
    assert_eq!(vote(&mut tr, id, 0.6, &[(7, 0.15), (8, 0.1)]), None);
    assert_eq!(
        vote(&mut tr, id, 0.5, &[(7, 0.64), (8, 0.2)]),
        Some(IdentityChange::Settled(Identity::Unknown)),
        "0.37 over two: unknown so far"
    );
    let change = vote(&mut tr, id, 0.5, &[(7, 0.66), (8, 0.2)]);
    assert!(
        matches!(change, Some(IdentityChange::Changed { to: Identity::Person { person_id: 7, score }, .. }) if (score - 0.65).abs() < 1e-5),
        "{change:?}"
    );
}
