//! Face tracking per camera, so that a face seen in many frames is embedded a few times, not in every
//! frame, and recorded once.
//!
//! Association follows ByteTrack: each track's box is predicted with a constant velocity; detections
//! scoring at least `high_score` are matched to the predictions first (greedily, best overlap first),
//! then weaker candidates (down to `low_score`, which the detector would otherwise drop) may continue
//! the tracks still unmatched — a face half-turned or blurred for a frame keeps its track — but never
//! start one. A track unmatched for `lost_secs` ends.
//!
//! Identity comes from the track's embeddings (see [`identity`]). A track is embedded when it starts,
//! then in every analysed frame while it is not a person (pending or unknown), and once it is a person
//! only when its face is clearly better (`better_quality` times the quality it was last embedded at),
//! at most `max_embeddings` times in all (a track not yet a person gets as many again whenever the
//! gallery changes: someone enrolled while in view).

pub mod identity;
pub mod quality;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use self::identity::{Comparison, Evidence, Identity, IdentityChange, TrackEvidence};
use self::quality::Quality;
use crate::detect::Face;
use crate::embed::{Judgement, ModelId};
use crate::geometry::BBox;
use crate::source::clock::CaptureTime;

/// A face below `min_sharpness` is skipped only when it is less than this share of the track's
/// sharpest face so far.
const SOFTER_THAN_SHARPEST: f32 = 0.75;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrackConfig {
    /// Detections at or above this start tracks and are matched first.
    pub high_score: f32,
    /// Weaker detector candidates, down to this, may continue a track but never start one.
    pub low_score: f32,
    /// Least overlap (IoU) of a detection with a track's predicted box to continue it.
    pub match_iou: f32,
    /// A track unmatched for this long has ended.
    pub lost_secs: f32,
    /// Most embeddings computed for one track.
    pub max_embeddings: u32,
    /// A settled track is embedded again only when its face's quality is this many times the quality
    /// it was last embedded at.
    pub better_quality: f32,
    /// Embeddings whose robust mean must clear the match threshold (with the margin over the
    /// runner-up) before the track is a person; as many misses make it unknown. The model's
    /// `instant_match_score` settles it with one.
    pub confirm_embeddings: u32,
    /// Most tracks per camera (a crowd beyond this is not tracked face by face).
    pub max_tracks: usize,
    /// A face less sharp than this (0..1, see [`quality`]) is not embedded when the track has shown
    /// a clearly sharper one: motion blur and focus misses score low against everyone
    /// (`panoptes eval recognition`: a 3 px blur at 80 px is 0.35 and matches 7 % of the time, a
    /// 1.5 px blur 0.71 and 100 %).
    pub min_sharpness: f32,
    /// Cameras with a substream: a face smaller than this (substream pixels) is not embedded from
    /// the substream but waits for a main-stream picture (a 12 px face embeds as noise and would
    /// only make a wrong "unknown").
    pub min_substream_face_px: f32,
}

impl Default for TrackConfig {
    fn default() -> Self {
        Self {
            high_score: 0.5,
            low_score: 0.35,
            match_iou: 0.2,
            lost_secs: 1.5,
            max_embeddings: 5,
            better_quality: 1.25,
            confirm_embeddings: 2,
            max_tracks: 32,
            min_sharpness: 0.5,
            min_substream_face_px: 24.0,
        }
    }
}

/// The best face of a track so far (its snapshot), with the frame it is in.
#[derive(Clone, Debug)]
pub struct BestFace<F> {
    pub quality: f32,
    pub face: Face,
    pub frame: F,
    pub captured_at: DateTime<Utc>,
    /// Cropped from a camera's main stream (`face` is then in its pixels): a substream face never
    /// replaces it.
    pub from_main: bool,
}

/// Positions kept per track to place it at a main-stream picture's moment (≥ 3 s at 20 fps).
const HISTORY: usize = 64;

/// One embedding of a track's face, with the model that made it (vectors of two models are never
/// compared) and the face's quality.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackEmbedding {
    pub model: ModelId,
    pub quality: f32,
    pub vector: Arc<[f32]>,
}

#[derive(Clone, Debug)]
pub struct Track<F> {
    pub id: u64,
    pub bbox: BBox,
    /// Centre velocity, pixels per second.
    velocity: (f32, f32),
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    last_seen_at: Instant,
    /// Analysed frames in which the track was matched.
    pub frames: u32,
    pub best_det_score: f32,
    pub embeddings: u32,
    /// Embeddings it may have in all: `max_embeddings`, raised by as much again each time the gallery
    /// changes while it is not a person (someone enrolled while in view gets their chance).
    embeddings_allowed: u32,
    /// Quality of the face last embedded.
    embedded_quality: f32,
    /// The sharpest face it has shown (see [`TrackConfig::min_sharpness`]).
    sharpest: f32,
    evidence: TrackEvidence,
    pub identity: Identity,
    pub best: Option<BestFace<F>>,
    /// The embedding of its best face embedded so far: what its appearance keeps, to be judged
    /// again, searched and grouped.
    pub best_embedding: Option<TrackEmbedding>,
    /// Matched in the latest analysed frame.
    seen_in_last_frame: bool,
    /// Where it was, by capture time (cameras with a substream), oldest first.
    history: Vec<(CaptureTime, BBox)>,
    /// Embeddings from main-stream pictures, and the newest such picture used.
    main_embeddings: u32,
    last_main_picture: Option<u64>,
}

impl<F> Track<F> {
    fn predicted(&self, at: Instant) -> BBox {
        let dt = at.saturating_duration_since(self.last_seen_at).as_secs_f32().min(1.0);
        BBox { x: self.bbox.x + self.velocity.0 * dt, y: self.bbox.y + self.velocity.1 * dt, ..self.bbox }
    }

    /// The best gallery score any embedding of this track reached.
    pub fn best_match_score(&self) -> f32 {
        self.evidence.best_single()
    }

    /// What its identity rests on so far.
    pub fn evidence(&self) -> Evidence {
        self.evidence.summary()
    }

    /// Where it was, by capture time, oldest first (cameras with a substream).
    pub fn history(&self) -> &[(CaptureTime, BBox)] {
        &self.history
    }
}

/// A track that has ended, with everything its appearance needs.
#[derive(Clone, Debug)]
pub struct EndedTrack<F> {
    pub id: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub frames: u32,
    pub best_det_score: f32,
    pub best_match_score: f32,
    pub embeddings: u32,
    pub identity: Identity,
    pub evidence: Evidence,
    pub best: Option<BestFace<F>>,
    pub best_embedding: Option<TrackEmbedding>,
}

/// The outcome of one analysed frame.
#[derive(Debug)]
pub struct FrameUpdate<F> {
    /// For each detection, the track it belongs to (`None`: a weak candidate no track wanted).
    pub assigned: Vec<Option<u64>>,
    /// Tracks started by this frame.
    pub started: Vec<u64>,
    pub ended: Vec<EndedTrack<F>>,
}

pub struct FaceTracker<F> {
    config: TrackConfig,
    tracks: Vec<Track<F>>,
    next_id: u64,
    /// The camera detects on a substream and crops faces from its main stream.
    paired: bool,
}

impl<F: Clone> FaceTracker<F> {
    pub fn new(config: TrackConfig) -> Self {
        Self { config, tracks: Vec::new(), next_id: 1, paired: false }
    }

    pub fn config(&self) -> &TrackConfig {
        &self.config
    }

    pub fn tracks(&self) -> &[Track<F>] {
        &self.tracks
    }

    pub fn track(&self, id: u64) -> Option<&Track<F>> {
        self.tracks.iter().find(|t| t.id == id)
    }

    /// Whether a track is still deciding who it is (not a person yet, embeddings left): its next
    /// frames matter even when nothing moves in them.
    pub fn deciding(&self) -> bool {
        self.tracks.iter().any(|t| {
            let undecided = !matches!(t.identity, Identity::Person { .. }) && t.embeddings < t.embeddings_allowed;
            undecided || (self.paired && t.main_embeddings == 0)
        })
    }

    /// Whether the camera detects on a substream and crops faces from its main stream now.
    pub fn set_paired(&mut self, paired: bool) {
        self.paired = paired;
    }

    /// Where the tracks matched in a frame captured at `capture` were (`assigned` as returned by
    /// [`Self::update`] for `faces`): what places them in a main-stream picture of another moment.
    pub fn note_positions(&mut self, capture: CaptureTime, assigned: &[Option<u64>], faces: &[Face]) {
        for (face, id) in faces.iter().zip(assigned) {
            let Some(t) = id.and_then(|id| self.tracks.iter_mut().find(|t| t.id == id)) else { continue };
            if t.history.last().is_some_and(|(at, _)| *at >= capture) {
                continue;
            }
            if t.history.len() == HISTORY {
                t.history.remove(0);
            }
            t.history.push((capture, face.bbox));
        }
    }

    /// Whether track `id` should be embedded from main-stream picture `picture` (a track embeds each
    /// picture once, at most `max_embeddings` of them, and once a person only one to confirm it).
    pub fn wants_main_embedding(&self, id: u64, picture: u64) -> bool {
        let Some(t) = self.track(id) else { return false };
        if t.last_main_picture.is_some_and(|p| p >= picture) || t.main_embeddings >= self.config.max_embeddings {
            return false;
        }
        !matches!(t.identity, Identity::Person { .. }) || t.main_embeddings == 0
    }

    /// Records an embedding of track `id` from main-stream picture `picture`. The first one sets the
    /// substream's evidence aside (a small substream face embeds badly), and the track may embed
    /// as often again: what the main stream shows decides.
    pub fn add_main_embedding(
        &mut self,
        id: u64,
        picture: u64,
        quality: f32,
        comparison: Comparison,
        judgement: &Judgement,
    ) -> Option<IdentityChange> {
        let max = self.config.max_embeddings;
        let t = self.tracks.iter_mut().find(|t| t.id == id)?;
        if t.main_embeddings == 0 {
            t.evidence = TrackEvidence::default();
            t.embeddings_allowed = t.embeddings + max;
            t.best_embedding = None;
        }
        t.main_embeddings += 1;
        t.last_main_picture = Some(picture);
        self.add_embedding(id, quality, comparison, judgement)
    }

    /// A main-stream picture of track `id` was found to hold no face where it was placed (hidden at
    /// that moment): it is not tried again.
    pub fn main_picture_tried(&mut self, id: u64, picture: u64) {
        if let Some(t) = self.tracks.iter_mut().find(|t| t.id == id) {
            t.last_main_picture = Some(picture);
        }
    }

    /// Keeps `best` (a face cropped from the main stream) as track `id`'s snapshot when it is its
    /// first from the main stream or better than the one kept.
    pub fn offer_main_face(&mut self, id: u64, best: BestFace<F>) {
        if let Some(t) = self.tracks.iter_mut().find(|t| t.id == id) {
            if t.best.as_ref().is_none_or(|b| !b.from_main || best.quality > b.quality) {
                t.best = Some(best);
            }
        }
    }

    fn lost_after(&self) -> Duration {
        Duration::from_secs_f32(self.config.lost_secs.max(0.0))
    }

    /// Frames the motion gate skipped because nothing moved, up to `at`: the faces of the last
    /// analysed frame are still where they were, so their tracks live on.
    pub fn hold_still(&mut self, at: Instant, wall: DateTime<Utc>) {
        for t in self.tracks.iter_mut().filter(|t| t.seen_in_last_frame && at > t.last_seen_at) {
            t.last_seen_at = at;
            t.last_seen = wall;
            t.velocity = (0.0, 0.0);
        }
    }

    /// Associates the detections of one analysed frame (captured `at`, `wall` on the clock) with the
    /// tracks; `qualities[i]` is detection i's face quality, `frame` what a new best face keeps.
    pub fn update(
        &mut self,
        faces: &[Face],
        qualities: &[Quality],
        at: Instant,
        wall: DateTime<Utc>,
        frame: &F,
    ) -> FrameUpdate<F> {
        let mut assigned: Vec<Option<u64>> = vec![None; faces.len()];
        let mut track_taken = vec![false; self.tracks.len()];
        let predicted: Vec<BBox> = self.tracks.iter().map(|t| t.predicted(at)).collect();
        let (high, low) = (self.config.high_score, self.config.low_score.min(self.config.high_score));
        // ByteTrack's two rounds: strong detections first, then weak ones for the tracks left over.
        for (lo, hi) in [(high, f32::INFINITY), (low, high)] {
            let candidates: Vec<usize> = (0..faces.len())
                .filter(|&i| assigned[i].is_none() && faces[i].score >= lo && faces[i].score < hi)
                .collect();
            let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
            for &d in &candidates {
                for (t, p) in predicted.iter().enumerate() {
                    if track_taken[t] {
                        continue;
                    }
                    if let Some(score) = affinity(p, &faces[d].bbox, self.config.match_iou) {
                        pairs.push((score, d, t));
                    }
                }
            }
            pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (_, d, t) in pairs {
                if assigned[d].is_some() || track_taken[t] {
                    continue;
                }
                assigned[d] = Some(self.tracks[t].id);
                track_taken[t] = true;
            }
        }
        // Update matched tracks.
        for (d, track_id) in assigned.iter().enumerate() {
            let Some(id) = track_id else { continue };
            let Some(t) = self.tracks.iter_mut().find(|t| t.id == *id) else { continue };
            let dt = at.saturating_duration_since(t.last_seen_at).as_secs_f32();
            let (old, new) = (t.bbox.center(), faces[d].bbox.center());
            if dt > 1e-3 {
                let v = ((new.x - old.x) / dt, (new.y - old.y) / dt);
                t.velocity = (0.5 * t.velocity.0 + 0.5 * v.0, 0.5 * t.velocity.1 + 0.5 * v.1);
            }
            t.bbox = faces[d].bbox;
            t.last_seen_at = at;
            t.last_seen = wall;
            t.frames += 1;
            t.best_det_score = t.best_det_score.max(faces[d].score);
            let quality = qualities.get(d).copied().unwrap_or_default();
            t.sharpest = t.sharpest.max(quality.sharpness);
            let q = quality.score;
            if t.best.as_ref().is_none_or(|b| !b.from_main && q > b.quality) {
                t.best = Some(BestFace {
                    quality: q,
                    face: faces[d],
                    frame: frame.clone(),
                    captured_at: wall,
                    from_main: false,
                });
            }
        }
        for (i, t) in self.tracks.iter_mut().enumerate() {
            t.seen_in_last_frame = track_taken.get(i).copied().unwrap_or(false);
        }
        // New tracks from strong detections no track took.
        let mut started = Vec::new();
        for d in 0..faces.len() {
            if assigned[d].is_some() || faces[d].score < high || self.tracks.len() >= self.config.max_tracks {
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            let quality = qualities.get(d).copied().unwrap_or_default();
            let q = quality.score;
            self.tracks.push(Track {
                id,
                bbox: faces[d].bbox,
                velocity: (0.0, 0.0),
                first_seen: wall,
                last_seen: wall,
                last_seen_at: at,
                frames: 1,
                best_det_score: faces[d].score,
                embeddings: 0,
                embeddings_allowed: self.config.max_embeddings,
                embedded_quality: 0.0,
                sharpest: quality.sharpness,
                evidence: TrackEvidence::default(),
                identity: Identity::Pending,
                best: Some(BestFace {
                    quality: q,
                    face: faces[d],
                    frame: frame.clone(),
                    captured_at: wall,
                    from_main: false,
                }),
                best_embedding: None,
                seen_in_last_frame: true,
                history: Vec::new(),
                main_embeddings: 0,
                last_main_picture: None,
            });
            assigned[d] = Some(id);
            started.push(id);
        }
        let ended = self.expire(at);
        FrameUpdate { assigned, started, ended }
    }

    /// Whether track `id`, whose face now has `quality`, should be embedded now.
    pub fn wants_embedding(&self, id: u64, quality: &Quality) -> bool {
        let Some(t) = self.track(id) else { return false };
        if t.embeddings >= t.embeddings_allowed {
            return false;
        }
        // With a main stream, its crops decide: the substream only bridges the time until the first
        // one (so alerts stay fast), and only for faces large enough to embed.
        if self.paired && (t.main_embeddings > 0 || t.bbox.width < self.config.min_substream_face_px) {
            return false;
        }
        // A blurred face (motion, focus) scores low against everyone and would spend an embedding;
        // it is skipped when the track has shown a clearly sharper one. Relative, so a camera whose
        // every face is soft (or the first face of a track) is still embedded.
        if quality.sharpness < self.config.min_sharpness && quality.sharpness < SOFTER_THAN_SHARPEST * t.sharpest {
            return false;
        }
        let quality = quality.score;
        match t.identity {
            // Not yet someone: every face counts. A watchlist face seen badly at first (small,
            // half-turned: a single embedding can score anywhere from 0.3 to 0.8 at 80 px) must get
            // its chance on the next frames; `max_embeddings` bounds what a stranger costs.
            Identity::Pending | Identity::Unknown => true,
            Identity::Person { .. } => quality > t.embedded_quality * self.config.better_quality,
        }
    }

    /// Records one embedding of track `id` (taken from a face of `quality`) compared with the gallery
    /// (no candidates: an empty gallery), judged on the gallery model's scores. Says when the track's
    /// identity settles or changes.
    pub fn add_embedding(
        &mut self,
        id: u64,
        quality: f32,
        comparison: Comparison,
        judgement: &Judgement,
    ) -> Option<IdentityChange> {
        let config = self.config.clone();
        let t = self.tracks.iter_mut().find(|t| t.id == id)?;
        t.embeddings += 1;
        t.embedded_quality = quality;
        t.evidence.add(comparison, quality);
        let now = t.evidence.decide(&config, judgement, t.identity);
        let change = identity::change(t.identity, now);
        if let Some(c) = change {
            t.identity = c.to();
        }
        change
    }

    /// Keeps `embedding` as track `id`'s best when its face is better than the best kept so far.
    pub fn offer_embedding(&mut self, id: u64, embedding: TrackEmbedding) {
        if let Some(t) = self.tracks.iter_mut().find(|t| t.id == id) {
            if t.best_embedding.as_ref().is_none_or(|b| embedding.quality > b.quality) {
                t.best_embedding = Some(embedding);
            }
        }
    }

    /// The gallery changed (someone enrolled or removed): a track that is not a person may be someone
    /// now, so it gets `max_embeddings` more. A person stays who they are unless new embeddings
    /// outvote it, as always.
    pub fn gallery_changed(&mut self) {
        for t in self.tracks.iter_mut().filter(|t| !matches!(t.identity, Identity::Person { .. })) {
            t.embeddings_allowed = t.embeddings + self.config.max_embeddings;
        }
    }

    /// Ends the tracks unmatched for longer than `lost_secs` as of `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<EndedTrack<F>> {
        let lost = self.lost_after();
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.tracks)
            .into_iter()
            .partition(|t| now.saturating_duration_since(t.last_seen_at) > lost);
        self.tracks = kept;
        gone.into_iter().map(ended).collect()
    }

    /// Ends every track (the camera stops).
    pub fn end_all(&mut self) -> Vec<EndedTrack<F>> {
        std::mem::take(&mut self.tracks).into_iter().map(ended).collect()
    }
}

fn ended<F>(t: Track<F>) -> EndedTrack<F> {
    EndedTrack {
        id: t.id,
        first_seen: t.first_seen,
        last_seen: t.last_seen,
        frames: t.frames,
        best_det_score: t.best_det_score,
        best_match_score: t.evidence.best_single(),
        embeddings: t.embeddings,
        identity: t.identity,
        evidence: t.evidence.summary(),
        best: t.best,
        best_embedding: t.best_embedding,
    }
}

/// Whether, and how well, a detection continues a predicted box: their IoU when it is at least
/// `min_iou`; else, for a face that moved further than its overlap allows between two analysed
/// frames, a score below any such IoU when the centres are within one face size and the sizes alike.
fn affinity(predicted: &BBox, detected: &BBox, min_iou: f32) -> Option<f32> {
    let iou = predicted.iou(detected);
    if iou >= min_iou {
        return Some(iou);
    }
    let (a, b) = (predicted.center(), detected.center());
    let size = predicted.width.max(predicted.height).max(1.0);
    let ratio = detected.width.max(detected.height) / size;
    let distance = ((a.x - b.x).powi(2) + (a.y - b.y).powi(2)).sqrt() / size;
    ((0.67..=1.5).contains(&ratio) && distance < 1.0).then_some(min_iou * 0.5 * (1.0 - distance))
}

#[cfg(test)]
mod tests;
