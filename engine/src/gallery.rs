//! The in-memory gallery index: every enrolled embedding of the current model in one contiguous
//! row-major f32 matrix, searched exhaustively (exact cosine, vectors are unit length) for the top-k
//! distinct persons. PostgreSQL remains the source of truth; this is rebuilt from it at start.
//!
//! A scan of f32 rows is bound by memory bandwidth (100k × 192-d is 77 MB per query), so the search
//! first scores an int8 copy of the matrix (a quarter of the bytes), then rescores in f32 every row
//! that the int8 error bound cannot rule out. The result is the exact top-k, not an approximation:
//! with ε bounding |int8 score − f32 score| for every row, and A_k the k-th best int8 score over
//! distinct persons, k distinct persons score at least A_k − ε exactly, so a row with an int8 score
//! below A_k − 2ε can never enter the exact top-k.
//!
//! Beside the enrolled faces the index holds each person's *negatives*: faces an operator rejected as
//! not them (a false match). A person is an answer for a face only when it is closer to their
//! enrolled faces than to their negatives by the model's margin — the negatives stand against them as
//! a rival person would. Negatives are few; they are scored in f32 for the persons found only.

use std::collections::HashMap;

use crate::embed::{Judgement, ModelId, ModelInfo};
use crate::similarity::{dots, dots_i8, quantize};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GalleryError {
    #[error("embedding has {got} dimensions, the gallery holds {expected}-d vectors")]
    Dimension { expected: usize, got: usize },
    #[error("embedding contains a non-finite value")]
    NonFinite,
    #[error("the gallery holds vectors of {gallery}, the face was embedded with {query}: they are never compared")]
    OtherModel { gallery: String, query: String },
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Match {
    pub person_id: i64,
    pub embedding_id: i64,
    pub score: f32,
}

/// A set of embedding ids in brief: how many, the largest and their sum. Embedding ids come from a
/// sequence, so an addition always raises the largest and a removal always lowers the count: two sets
/// with the same signature are, in practice, the same set. Compared with the database's to tell
/// whether the index missed a change made elsewhere (the CLI, another engine).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GallerySignature {
    pub count: i64,
    pub max_id: i64,
    pub id_sum: i64,
}

impl GallerySignature {
    pub fn of(ids: impl IntoIterator<Item = i64>) -> Self {
        ids.into_iter().fold(Self::default(), |s, id| Self {
            count: s.count + 1,
            max_id: s.max_id.max(id),
            id_sum: s.id_sum.wrapping_add(id),
        })
    }
}

/// A face an operator rejected as not `person_id`.
#[derive(Clone, Debug)]
struct Negative {
    id: i64,
    person_id: i64,
    vector: Vec<f32>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    embedding_id: i64,
    person_id: i64,
}

pub struct Gallery {
    info: ModelInfo,
    dim: usize,
    data: Vec<f32>,
    /// Row r quantised: data[r][i] ≈ q8[r][i] × scale[r], with scale[r] = max|data[r]| / 127.
    q8: Vec<i8>,
    scale: Vec<f32>,
    /// Upper bounds over all rows ever inserted (still bounds after removals): the largest
    /// quantisation step and the largest L1 norm of a dequantised row.
    max_scale: f32,
    max_l1: f32,
    entries: Vec<Entry>,
    row_of: HashMap<i64, usize>,
    negatives: Vec<Negative>,
    /// Changes with every insertion or removal, and differs between galleries (a rebuilt index
    /// swapped in has a new one): a face judged against one generation may match in another.
    generation: u64,
}

/// Generations are handed out process-wide, so that a rebuilt gallery never repeats one.
static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_generation() -> u64 {
    GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Rows scored per block before they are merged into the running top-k.
const BLOCK: usize = 512;

impl Gallery {
    /// An empty gallery for vectors of one model.
    pub fn new(info: ModelInfo) -> Self {
        Self {
            dim: info.dim,
            info,
            data: Vec::new(),
            q8: Vec::new(),
            scale: Vec::new(),
            max_scale: 0.0,
            max_l1: 0.0,
            entries: Vec::new(),
            row_of: HashMap::new(),
            negatives: Vec::new(),
            generation: next_generation(),
        }
    }

    /// Which version of the gallery this is: it changes with every insertion or removal.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn model(&self) -> &ModelId {
        &self.info.id
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The scores that decide a match on this gallery's model.
    pub fn judgement(&self) -> Judgement {
        self.info.judgement
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of embeddings.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Negatives held (see the module notes).
    pub fn negatives(&self) -> usize {
        self.negatives.len()
    }

    /// Which embeddings and negatives the index holds, in brief (see [`GallerySignature`]; both take
    /// their ids from the same sequence).
    pub fn signature(&self) -> GallerySignature {
        GallerySignature::of(self.entries.iter().map(|e| e.embedding_id).chain(self.negatives.iter().map(|n| n.id)))
    }

    /// Adds (or replaces) an embedding.
    pub fn insert(&mut self, embedding_id: i64, person_id: i64, vector: &[f32]) -> Result<(), GalleryError> {
        self.check_vector(vector)?;
        self.generation = next_generation();
        let (q, scale) = quantize(vector);
        let l1: f32 = q.iter().map(|&v| (v as f32).abs()).sum::<f32>() * scale;
        self.max_scale = self.max_scale.max(scale);
        self.max_l1 = self.max_l1.max(l1);
        let d = self.dim;
        if let Some(&row) = self.row_of.get(&embedding_id) {
            self.data[row * d..(row + 1) * d].copy_from_slice(vector);
            self.q8[row * d..(row + 1) * d].copy_from_slice(&q);
            self.scale[row] = scale;
            self.entries[row].person_id = person_id;
            return Ok(());
        }
        self.row_of.insert(embedding_id, self.entries.len());
        self.entries.push(Entry { embedding_id, person_id });
        self.data.extend_from_slice(vector);
        self.q8.extend_from_slice(&q);
        self.scale.push(scale);
        Ok(())
    }

    /// Adds (or replaces) a negative of `person_id`: a face rejected as not them.
    pub fn insert_negative(&mut self, id: i64, person_id: i64, vector: &[f32]) -> Result<(), GalleryError> {
        self.check_vector(vector)?;
        self.generation = next_generation();
        self.negatives.retain(|n| n.id != id);
        self.negatives.push(Negative { id, person_id, vector: vector.to_vec() });
        Ok(())
    }

    pub fn remove_negative(&mut self, id: i64) -> bool {
        let before = self.negatives.len();
        self.negatives.retain(|n| n.id != id);
        let removed = self.negatives.len() < before;
        if removed {
            self.generation = next_generation();
        }
        removed
    }

    /// Removes one row by moving the last row into its place.
    fn swap_remove_row(&mut self, row: usize) {
        self.generation = next_generation();
        let last = self.entries.len() - 1;
        let removed = self.entries.swap_remove(row);
        self.row_of.remove(&removed.embedding_id);
        let d = self.dim;
        if row != last {
            self.data.copy_within(last * d..(last + 1) * d, row * d);
            self.q8.copy_within(last * d..(last + 1) * d, row * d);
            self.row_of.insert(self.entries[row].embedding_id, row);
        }
        self.scale.swap_remove(row);
        self.data.truncate(last * d);
        self.q8.truncate(last * d);
    }

    pub fn remove_embedding(&mut self, embedding_id: i64) -> bool {
        match self.row_of.get(&embedding_id).copied() {
            Some(row) => {
                self.swap_remove_row(row);
                true
            }
            None => false,
        }
    }

    /// Removes every embedding (and negative) of a person; returns how many embeddings there were.
    pub fn remove_person(&mut self, person_id: i64) -> usize {
        if self.negatives.iter().any(|n| n.person_id == person_id) {
            self.negatives.retain(|n| n.person_id != person_id);
            self.generation = next_generation();
        }
        let mut removed = 0;
        let mut row = 0;
        while row < self.entries.len() {
            if self.entries[row].person_id == person_id {
                self.swap_remove_row(row);
                removed += 1;
            } else {
                row += 1;
            }
        }
        removed
    }

    /// The best score of `query` against `person_id`'s embeddings (exact f32), `None` when the person
    /// has none. Enrollment uses it to tell whether a new photo agrees with the person's others.
    pub fn best_score_for(&self, model: &ModelId, person_id: i64, query: &[f32]) -> Option<f32> {
        if query.len() != self.dim || model != self.model() {
            return None;
        }
        let d = self.dim;
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.person_id == person_id)
            .map(|(row, _)| self.data[row * d..(row + 1) * d].iter().zip(query).map(|(a, b)| a * b).sum::<f32>())
            .max_by(f32::total_cmp)
    }

    /// The `k` best-scoring distinct persons for a query embedded with `model`, best first (exact;
    /// see the module notes), leaving out persons whose negatives the query is too close to.
    pub fn search(&self, model: &ModelId, query: &[f32], k: usize) -> Result<Vec<Match>, GalleryError> {
        self.check_query(model, query)?;
        self.without_rejected(query, k, |asked| self.search_enrolled(query, asked))
    }

    /// The `k` best persons of `search(asked)` that the query is not rejected for: persons dropped
    /// for their negatives are made up for by asking for more.
    fn without_rejected(
        &self,
        query: &[f32],
        k: usize,
        search: impl Fn(usize) -> Vec<Match>,
    ) -> Result<Vec<Match>, GalleryError> {
        let mut asked = k;
        loop {
            let found = search(asked);
            if self.negatives.is_empty() {
                return Ok(found);
            }
            let complete = found.len() < asked;
            let mut kept: Vec<Match> = found.into_iter().filter(|m| !self.rejected(query, m)).collect();
            if kept.len() >= k || complete {
                kept.truncate(k);
                return Ok(kept);
            }
            asked += k - kept.len();
        }
    }

    /// Whether the query is not clearly closer to `m`'s person than to one of their negatives.
    fn rejected(&self, query: &[f32], m: &Match) -> bool {
        let margin = self.info.judgement.margin;
        self.negatives
            .iter()
            .filter(|n| n.person_id == m.person_id)
            .any(|n| n.vector.iter().zip(query).map(|(a, b)| a * b).sum::<f32>() > m.score - margin)
    }

    /// The `k` best persons by their enrolled faces alone.
    fn search_enrolled(&self, query: &[f32], k: usize) -> Vec<Match> {
        let d = self.dim;
        let (q, q_scale) = quantize(query);
        let q16: Vec<i16> = q.iter().map(|&v| v as i16).collect();
        let q_l1: f32 = query.iter().map(|v| v.abs()).sum();
        // |x·y − x̂·ŷ| ≤ ‖x̂‖₁·step_y/2 + step_x/2·‖y‖₁, plus slack for f32 rounding.
        let eps = self.max_l1 * q_scale / 2.0 + self.max_scale / 2.0 * q_l1 + 1e-4;

        // Pass 1: int8 scores of every row, and the k-th best over distinct persons.
        let mut approx = vec![0.0f32; self.entries.len()];
        let mut approx_top = TopK::new(k);
        for (b, rows) in self.q8.chunks(BLOCK * d).enumerate() {
            let base = b * BLOCK;
            let out = &mut approx[base..base + rows.len() / d];
            dots_i8(&q16, rows, d, out);
            for (i, a) in out.iter_mut().enumerate() {
                *a *= self.scale[base + i] * q_scale;
                if *a > approx_top.floor() {
                    let e = self.entries[base + i];
                    approx_top.offer(Match { person_id: e.person_id, embedding_id: e.embedding_id, score: *a });
                }
            }
        }
        let cutoff = approx_top.floor() - 2.0 * eps;

        // Pass 2: exact f32 scores of the rows that could still be in the top-k.
        let mut top = TopK::new(k);
        let mut score = [0.0f32];
        for (row, &a) in approx.iter().enumerate() {
            if a >= cutoff {
                dots(query, &self.data[row * d..(row + 1) * d], d, &mut score);
                if score[0] > top.floor() {
                    let e = self.entries[row];
                    top.offer(Match { person_id: e.person_id, embedding_id: e.embedding_id, score: score[0] });
                }
            }
        }
        top.into_vec()
    }

    /// The same result by scoring every row in f32 (the reference the fast path is tested against).
    pub fn search_exhaustive(&self, model: &ModelId, query: &[f32], k: usize) -> Result<Vec<Match>, GalleryError> {
        self.check_query(model, query)?;
        self.without_rejected(query, k, |asked| self.scan_enrolled(query, asked))
    }

    fn scan_enrolled(&self, query: &[f32], k: usize) -> Vec<Match> {
        let mut top = TopK::new(k);
        let mut scores = [0.0f32; BLOCK];
        for (b, rows) in self.data.chunks(BLOCK * self.dim).enumerate() {
            let n = rows.len() / self.dim;
            dots(query, rows, self.dim, &mut scores[..n]);
            for (i, &score) in scores[..n].iter().enumerate() {
                if score > top.floor() {
                    let e = self.entries[b * BLOCK + i];
                    top.offer(Match { person_id: e.person_id, embedding_id: e.embedding_id, score });
                }
            }
        }
        top.into_vec()
    }

    fn check_query(&self, model: &ModelId, query: &[f32]) -> Result<(), GalleryError> {
        if model != self.model() {
            return Err(GalleryError::OtherModel { gallery: self.model().to_string(), query: model.to_string() });
        }
        self.check_vector(query)
    }

    /// A vector this index can hold or be asked about: of its dimension, every value finite.
    fn check_vector(&self, vector: &[f32]) -> Result<(), GalleryError> {
        if vector.len() != self.dim {
            return Err(GalleryError::Dimension { expected: self.dim, got: vector.len() });
        }
        if vector.iter().any(|v| !v.is_finite()) {
            return Err(GalleryError::NonFinite);
        }
        Ok(())
    }
}

/// The best `k` matches with at most one per person, kept sorted best first.
struct TopK {
    k: usize,
    items: Vec<Match>,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self { k, items: Vec::with_capacity(k + 1) }
    }

    /// Score a candidate must beat to change the result.
    fn floor(&self) -> f32 {
        if self.k == 0 {
            f32::INFINITY
        } else if self.items.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.items[self.k - 1].score
        }
    }

    fn offer(&mut self, m: Match) {
        if let Some(pos) = self.items.iter().position(|x| x.person_id == m.person_id) {
            if self.items[pos].score >= m.score {
                return;
            }
            self.items.remove(pos);
        }
        let at = self.items.partition_point(|x| x.score >= m.score);
        self.items.insert(at, m);
        self.items.truncate(self.k);
    }

    fn into_vec(self) -> Vec<Match> {
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> ModelId {
        ModelId { name: "test".into(), version: "0".into() }
    }

    fn model(dim: usize) -> ModelInfo {
        let judgement = Judgement { match_threshold: 0.5, instant_match_score: 0.7, margin: 0.08 };
        ModelInfo { id: id(), dim, judgement }
    }

    fn unit(dim: usize, hot: usize) -> Vec<f32> {
        let mut v = vec![0.0; dim];
        v[hot] = 1.0;
        v
    }

    /// A unit vector at `cos` to axis `a` and the rest along axis `b`.
    fn between(dim: usize, a: usize, b: usize, cos: f32) -> Vec<f32> {
        let mut v = vec![0.0; dim];
        v[a] = cos;
        v[b] = (1.0 - cos * cos).sqrt();
        v
    }

    #[test]
    fn a_face_closer_to_a_persons_negative_than_to_their_faces_is_not_matched_to_them() {
        let mut g = Gallery::new(model(16));
        g.insert(1, 100, &unit(16, 0)).unwrap();
        g.insert(2, 200, &unit(16, 5)).unwrap();
        let before = g.signature();
        // A stranger (axis 1) once matched person 100 at 0.6; the operator rejected that face.
        let stranger = between(16, 1, 0, 0.8);
        g.insert_negative(10, 100, &stranger).unwrap();
        assert_ne!(g.signature(), before, "the signature covers negatives");
        assert_eq!(g.negatives(), 1);
        // The stranger again: far closer to the negative than to 100's face, so 100 is no answer,
        // and the search asks further for the persons it was asked for.
        let again = between(16, 1, 0, 0.75);
        let found = g.search(&id(), &again, 1).unwrap();
        assert!(found.iter().all(|m| m.person_id != 100), "{found:?}");
        assert_eq!(found.iter().map(|m| m.person_id).collect::<Vec<_>>(), vec![200]);
        assert_eq!(g.search_exhaustive(&id(), &again, 1).unwrap(), found);
        // Person 100 themself is still theirs: clearly closer to their face than to the negative.
        let genuine = between(16, 0, 2, 0.95);
        assert_eq!(g.search(&id(), &genuine, 1).unwrap()[0].person_id, 100);
        // Undone: the stranger matches 100 again, as before the rejection.
        assert!(g.remove_negative(10));
        assert_eq!(g.search(&id(), &again, 1).unwrap()[0].person_id, 100);
        assert_eq!(g.signature(), before);
        // A person's removal takes their negatives too.
        g.insert_negative(11, 100, &stranger).unwrap();
        g.remove_person(100);
        assert_eq!(g.negatives(), 0);
        assert!(g.insert_negative(12, 100, &[1.0; 3]).is_err(), "a vector of another size is refused");
    }

    #[test]
    fn search_returns_distinct_persons_best_first() {
        let mut g = Gallery::new(model(16));
        g.insert(1, 100, &unit(16, 0)).unwrap();
        g.insert(2, 100, &unit(16, 1)).unwrap();
        let mut mixed = vec![0.0; 16];
        mixed[0] = 0.6;
        mixed[2] = 0.8;
        g.insert(3, 200, &mixed).unwrap();
        let m = g.search(&id(), &unit(16, 0), 5).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].person_id, m[0].embedding_id, m[0].score), (100, 1, 1.0));
        assert_eq!(m[1].person_id, 200);
        assert!((m[1].score - 0.6).abs() < 1e-6);
    }

    #[test]
    fn simd_and_scalar_agree_on_random_vectors() {
        let dim = 192;
        let rows: Vec<f32> = (0..dim * 37).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
        let q: Vec<f32> = (0..dim).map(|i| ((i * 104729 % 1000) as f32 / 500.0) - 1.0).collect();
        let mut fast = vec![0.0; 37];
        dots(&q, &rows, dim, &mut fast);
        for (r, f) in rows.chunks_exact(dim).zip(&fast) {
            let slow: f32 = r.iter().zip(&q).map(|(a, b)| a * b).sum();
            assert!((slow - f).abs() < 1e-3, "{slow} vs {f}");
        }
    }

    #[test]
    fn int8_simd_matches_scalar_and_the_quantised_score_is_close() {
        let dim = 192;
        let rows: Vec<f32> = (0..dim * 9).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
        let q: Vec<f32> = (0..dim).map(|i| ((i * 104729 % 1000) as f32 / 500.0) - 1.0).collect();
        let (qq, qs) = quantize(&q);
        let q16: Vec<i16> = qq.iter().map(|&v| v as i16).collect();
        for row in rows.chunks_exact(dim) {
            let (rq, rs) = quantize(row);
            let mut fast = [0.0f32];
            dots_i8(&q16, &rq, dim, &mut fast);
            let slow: i32 = rq.iter().zip(&q16).map(|(&a, &b)| a as i32 * b as i32).sum();
            assert_eq!(fast[0], slow as f32);
            let exact: f32 = row.iter().zip(&q).map(|(a, b)| a * b).sum();
            assert!((fast[0] * rs * qs - exact).abs() < 0.05 * exact.abs().max(1.0));
        }
    }

    #[test]
    fn int8_prefilter_returns_exactly_the_exhaustive_top_k() {
        // Random unit vectors plus clusters of near-duplicates (scores a hair apart) to stress the bound.
        let dim = 192;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        };
        let unit_of = |v: Vec<f32>| crate::embed::l2_normalized(&v);
        let mut g = Gallery::new(model(dim));
        let base: Vec<f32> = unit_of((0..dim).map(|_| next()).collect());
        for i in 0..3000i64 {
            let v: Vec<f32> = if i % 10 == 0 {
                unit_of(base.iter().map(|x| x + next() * 0.01).collect())
            } else {
                unit_of((0..dim).map(|_| next()).collect())
            };
            g.insert(i, i / 3, &v).unwrap();
        }
        for trial in 0..40 {
            let q: Vec<f32> = if trial % 2 == 0 { base.clone() } else { unit_of((0..dim).map(|_| next()).collect()) };
            for k in [1, 5, 20] {
                assert_eq!(
                    g.search(&id(), &q, k).unwrap(),
                    g.search_exhaustive(&id(), &q, k).unwrap(),
                    "trial {trial} k {k}"
                );
            }
        }
    }

    #[test]
    fn removing_a_person_keeps_the_others_searchable() {
        let mut g = Gallery::new(model(8));
        for i in 0..8 {
            g.insert(i as i64, (i % 3) as i64, &unit(8, i)).unwrap();
        }
        assert_eq!(g.remove_person(1), 3);
        assert_eq!(g.len(), 5);
        for i in [0usize, 2, 3, 5, 6] {
            let m = g.search(&id(), &unit(8, i), 1).unwrap();
            assert_eq!(m[0].embedding_id, i as i64);
            assert_eq!(m[0].score, 1.0);
        }
        assert!(g.search(&id(), &unit(8, 4), 1).unwrap()[0].score < 0.5);
        assert!(g.remove_embedding(0));
        assert!(!g.remove_embedding(0));
    }

    #[test]
    fn wrong_dimension_and_non_finite_are_rejected() {
        let mut g = Gallery::new(model(4));
        assert_eq!(g.insert(1, 1, &[1.0; 3]), Err(GalleryError::Dimension { expected: 4, got: 3 }));
        assert_eq!(g.insert(1, 1, &[f32::NAN, 0.0, 0.0, 0.0]), Err(GalleryError::NonFinite));
        assert!(g.search(&id(), &[1.0; 5], 1).is_err());
        assert!(g.search(&id(), &[1.0; 4], 3).unwrap().is_empty());
        let other = ModelId { name: "other".into(), version: "0".into() };
        assert!(matches!(g.search(&other, &[1.0; 4], 3), Err(GalleryError::OtherModel { .. })));
    }
}
