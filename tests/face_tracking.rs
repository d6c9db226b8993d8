//! The face tracker and the motion gate on the real detector: scenes composed from the test photos
//! (faces cut from them, pasted on a real face-less background with sensor noise), converted to YUV as
//! the decoder delivers them, detected with the real model and tracked as the inference worker does.
//! The tracker's logic on synthetic boxes is tested in `engine/src/track/tests.rs`.

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use panoptes_engine::detect::{Face, Picture};
use panoptes_engine::frame::YuvFrame;
use panoptes_engine::motion::{MotionConfig, MotionGate, Verdict};
use panoptes_engine::pipeline::FacePipeline;
use panoptes_engine::track::quality::face_quality;
use panoptes_engine::track::{FaceTracker, FrameUpdate, TrackConfig};

use common::scenes::{background, centre, head, scene};

/// Analysed frames come 200 ms apart (5 fps, the default analysis rate).
const STEP: Duration = Duration::from_millis(200);

struct Run {
    pipeline: FacePipeline,
    tracker: FaceTracker<u32>,
    t0: Instant,
    frame_no: u32,
}

impl Run {
    fn new(pipeline: FacePipeline, config: TrackConfig) -> Run {
        Run { pipeline, tracker: FaceTracker::new(config), t0: Instant::now(), frame_no: 0 }
    }

    /// Detects (down to the tracker's weak score, as the inference worker does) and tracks one frame.
    fn step(&mut self, frame: &YuvFrame) -> (Vec<Face>, FrameUpdate<u32>) {
        self.frame_no += 1;
        let low = self.tracker.config().low_score;
        let faces = self.pipeline.detector().detect_pictures(&[Picture::Yuv(frame)], low).unwrap().remove(0);
        let q: Vec<_> = faces.iter().map(|f| face_quality(f, frame)).collect();
        let at = self.t0 + STEP * self.frame_no;
        let update = self.tracker.update(&faces, &q, at, Utc::now(), &self.frame_no);
        (faces, update)
    }
}

/// The track of the detected face whose centre lies nearest `(x, y)` (within `radius` px).
fn track_near(faces: &[Face], u: &FrameUpdate<u32>, (x, y): (f32, f32), radius: f32) -> Option<u64> {
    faces
        .iter()
        .zip(&u.assigned)
        .map(|(f, t)| (f.bbox.center(), t))
        .filter(|(c, _)| ((c.x - x).powi(2) + (c.y - y).powi(2)).sqrt() < radius)
        .min_by(|a, b| {
            let d = |c: &panoptes_engine::geometry::Point| (c.x - x).powi(2) + (c.y - y).powi(2);
            d(&a.0).total_cmp(&d(&b.0))
        })
        .and_then(|(_, t)| *t)
}

#[test]
fn two_faces_crossing_keep_their_tracks() {
    let mut p = common::pipeline();
    let (a, b) = (head(&mut p, "obama.jpg", 100.0), head(&mut p, "biden.jpg", 100.0));
    let bg = background(&p);
    let mut run = Run::new(p, TrackConfig::default());
    // A walks right, B walks left 60 px lower, B in front: they pass each other mid-frame, A's face
    // half hidden for a frame or two, at 60 px per analysed frame (a brisk walk seen at 5 fps).
    let (mut id_a, mut id_b) = (None, None);
    let (mut a_frames, mut b_frames) = (0, 0);
    for i in 0..16i64 {
        let (ax, bx) = (100 + 60 * i, 1000 - 60 * i);
        let frame = YuvFrame::from_rgb(&scene(&bg, &[(&a, ax, 200), (&b, bx, 260)], i as u32));
        let (faces, u) = run.step(&frame);
        if let Some(t) = track_near(&faces, &u, centre(&a, ax, 200), 40.0) {
            assert_eq!(*id_a.get_or_insert(t), t, "frame {i}: A's face changed track");
            a_frames += 1;
        }
        if let Some(t) = track_near(&faces, &u, centre(&b, bx, 260), 40.0) {
            assert_eq!(*id_b.get_or_insert(t), t, "frame {i}: B's face changed track");
            b_frames += 1;
        }
        assert!(u.ended.is_empty(), "frame {i}: a track ended while both faces are in view");
    }
    eprintln!("A tracked in {a_frames} frames, B in {b_frames} of 16");
    assert_ne!(id_a, id_b, "the two faces share a track");
    assert!(a_frames >= 12 && b_frames >= 12, "faces lost: A {a_frames}, B {b_frames} of 16 frames");
    assert_eq!(run.tracker.tracks().len(), 2, "crossing started extra tracks");
}

#[test]
fn a_face_hidden_briefly_keeps_its_track_and_one_that_returns_after_the_lost_time_is_new() {
    let mut p = common::pipeline();
    let a = head(&mut p, "obama.jpg", 110.0);
    let bg = background(&p);
    let config = TrackConfig { lost_secs: 1.0, ..TrackConfig::default() };
    let mut run = Run::new(p, config);
    let at = |i: i64| (300 + 20 * i, 220);
    let frame_with = |i: i64| YuvFrame::from_rgb(&scene(&bg, &[(&a, at(i).0, at(i).1)], i as u32));
    let empty = |i: i64| YuvFrame::from_rgb(&scene(&bg, &[], i as u32));

    let mut id = None;
    for i in 0..4 {
        let (faces, u) = run.step(&frame_with(i));
        let t = track_near(&faces, &u, centre(&a, at(i).0, at(i).1), 40.0).expect("face tracked");
        assert_eq!(*id.get_or_insert(t), t);
    }
    // Someone walks in front of it: 0.6 s (3 analysed frames) without the face.
    for i in 4..7 {
        let (_, u) = run.step(&empty(i));
        assert!(u.ended.is_empty(), "frame {i}: the track ended during a 0.6 s occlusion");
    }
    for i in 7..10 {
        let (faces, u) = run.step(&frame_with(i));
        let t = track_near(&faces, &u, centre(&a, at(i).0, at(i).1), 40.0).expect("face tracked after the occlusion");
        assert_eq!(Some(t), id, "frame {i}: the face came back as another track");
    }
    // It leaves for 1.6 s (longer than the 1 s lost time): the track ends once, with its frames.
    let mut ended = Vec::new();
    for i in 10..18 {
        ended.extend(run.step(&empty(i)).1.ended);
    }
    assert_eq!(ended.len(), 1, "one track ended");
    assert_eq!(Some(ended[0].id), id);
    assert_eq!(ended[0].frames, 7, "frames the face was seen in");
    // ... and comes back: a new track.
    let (faces, u) = run.step(&frame_with(9));
    let again = track_near(&faces, &u, centre(&a, at(9).0, at(9).1), 40.0).expect("face tracked");
    assert_ne!(Some(again), id, "a face back after the lost time continued the ended track");
    assert_eq!(u.started, vec![again]);
}

#[test]
fn the_motion_gate_skips_a_still_scene_and_lets_a_face_through_at_once() {
    let mut p = common::pipeline();
    let a = head(&mut p, "obama.jpg", 100.0);
    let bg = background(&p);
    let mut gate = MotionGate::new(MotionConfig::default(), Vec::new());
    let t0 = Instant::now();
    // 6 s of the empty corridor with sensor noise, sampled at 5 fps.
    let mut verdicts = Vec::new();
    for i in 0..30u32 {
        verdicts.push(gate.judge(&YuvFrame::from_rgb(&scene(&bg, &[], i)), t0 + STEP * i));
    }
    let still = verdicts.iter().filter(|v| **v == Verdict::Still).count();
    let refreshes = verdicts.iter().filter(|v| **v == Verdict::Refresh).count();
    eprintln!("empty scene: {still} still, {refreshes} refreshes, {:?}", verdicts);
    assert_eq!(verdicts[0], Verdict::Moved, "the first frame is always analysed");
    assert!(still >= 25, "noise woke the detector: only {still} of 30 frames were still");
    assert!(refreshes >= 2, "no periodic refresh in 6 s");
    // A face steps in: the very first frame that shows it goes to the detector, which finds it.
    let frame = YuvFrame::from_rgb(&scene(&bg, &[(&a, 500, 200)], 30));
    assert_eq!(gate.judge(&frame, t0 + STEP * 30), Verdict::Moved, "a face entering was gated");
    let faces = p.detector().detect_pictures(&[Picture::Yuv(&frame)], 0.5).unwrap().remove(0);
    assert_eq!(faces.len(), 1, "the detector finds the face the gate let through");
}
