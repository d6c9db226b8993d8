//! The in-memory index of stored appearance faces of one model: each face as int8 codes with its
//! scale, its appearance's time and camera. It holds no f32 vectors (a million 128-d faces would be
//! 512 MB): it scores every face in int8 with a bound on the error, and returns the faces that the
//! bound cannot rule out of the exact top-k. The caller rescores those from PostgreSQL's f32 vectors
//! (`super::search`), so that the final ranking is exact.
//!
//! Bound: with the stored unit vector y ≈ s_y·ŷ (int8) and the query x ≈ s_x·x̂ (int8, as i16),
//! |x·y − s_x·s_y·(x̂·ŷ)| ≤ ‖ŷ‖₁·s_y·s_x/2 + s_y/2·‖x‖₁, plus slack for f32 rounding. Each face
//! keeps its own ‖ŷ‖₁·s_y so the bound is the face's, not the index's worst.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::embed::{l2_normalized, ModelId};
use crate::similarity::{dots_i8, quantize};

/// Faces scored per block: keeps the scratch scores in cache.
const BLOCK: usize = 4096;
/// From this many faces a search scans on several cores (below, a thread costs more than it saves).
const SPLIT_AT: usize = 200_000;
/// At most this many scanning threads per search.
const MAX_THREADS: usize = 4;

/// Where an appearance stood when it was indexed (filters are checked again on the stored row).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Entry {
    detection_id: i64,
    /// Microseconds since the epoch.
    at: i64,
    /// `i64::MIN`: no camera (deleted).
    camera: i64,
    /// s_y: the face's quantisation step.
    scale: f32,
    /// ‖ŷ‖₁·s_y, the face's share of the error bound.
    l1: f32,
}

const NO_CAMERA: i64 = i64::MIN;

/// Which faces a search considers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// Only these cameras (empty: every camera).
    pub cameras: Vec<i64>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Faces that cannot score at least this much are left out.
    pub min_score: f32,
    /// Only faces that can rank after this one (score, detection id): the next page.
    pub after: Option<(f32, i64)>,
    /// Faces known not to answer (gone from the database, or filtered out there).
    pub excluded: Vec<i64>,
}

/// A face the int8 pass could not rule out, with the range its exact score lies in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub detection_id: i64,
    pub low: f32,
    pub high: f32,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IndexError {
    #[error("a face has {got} dimensions, the search index holds {expected}-d faces")]
    Dimension { expected: usize, got: usize },
    #[error("a face contains a non-finite value")]
    NonFinite,
}

/// The appearance faces of one model, int8, in insertion order with holes where faces were removed.
#[derive(Debug)]
pub struct AppearanceIndex {
    model: ModelId,
    dim: usize,
    codes: Vec<i8>,
    entries: Vec<Entry>,
    /// Row of each live detection id.
    rows: HashMap<i64, u32>,
    /// Rows whose face was removed (their entry has detection id 0), reclaimed by `compact`.
    holes: usize,
    /// Every stored face has been read once (`super::sync`): until then an answer would miss some.
    read_whole: bool,
}

impl AppearanceIndex {
    pub fn new(model: ModelId, dim: usize) -> Self {
        Self { model, dim, codes: Vec::new(), entries: Vec::new(), rows: HashMap::new(), holes: 0, read_whole: false }
    }

    /// Marks the index as holding every stored face (after its first whole read).
    pub fn mark_read_whole(&mut self) {
        self.read_whole = true;
    }

    pub fn read_whole(&self) -> bool {
        self.read_whole
    }

    pub fn model(&self) -> &ModelId {
        &self.model
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Faces held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Whether appearance `detection_id`'s face is held.
    pub fn contains(&self, detection_id: i64) -> bool {
        self.rows.contains_key(&detection_id)
    }

    /// Every detection id held, in no order.
    pub fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.rows.keys().copied()
    }

    /// Bytes the index holds on the heap (codes, entries, the id map), for the memory figure.
    pub fn heap_bytes(&self) -> usize {
        self.codes.capacity()
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            // hashbrown: one control byte and one slot per bucket, buckets ≥ len × 8/7.
            + self.rows.capacity() * (std::mem::size_of::<(i64, u32)>() + 1) * 8 / 7
    }

    /// Adds appearance `detection_id`'s face, or replaces it (a later, better face of the same
    /// appearance).
    pub fn upsert(
        &mut self,
        detection_id: i64,
        at: DateTime<Utc>,
        camera_id: Option<i64>,
        vector: &[f32],
    ) -> Result<(), IndexError> {
        if vector.len() != self.dim {
            return Err(IndexError::Dimension { expected: self.dim, got: vector.len() });
        }
        if vector.iter().any(|v| !v.is_finite()) {
            return Err(IndexError::NonFinite);
        }
        let (q, scale) = quantize(&l2_normalized(vector));
        let l1 = q.iter().map(|&v| f32::from(v).abs()).sum::<f32>() * scale;
        let entry =
            Entry { detection_id, at: at.timestamp_micros(), camera: camera_id.unwrap_or(NO_CAMERA), scale, l1 };
        match self.rows.get(&detection_id) {
            Some(&row) => {
                let row = row as usize;
                self.codes[row * self.dim..(row + 1) * self.dim].copy_from_slice(&q);
                self.entries[row] = entry;
            }
            None => {
                self.rows.insert(detection_id, self.entries.len() as u32);
                self.codes.extend_from_slice(&q);
                self.entries.push(entry);
            }
        }
        Ok(())
    }

    /// Corrects where appearance `detection_id` stands (its camera was deleted since it was read).
    pub fn restate(&mut self, detection_id: i64, at: DateTime<Utc>, camera_id: Option<i64>) {
        if let Some(&row) = self.rows.get(&detection_id) {
            let e = &mut self.entries[row as usize];
            e.at = at.timestamp_micros();
            e.camera = camera_id.unwrap_or(NO_CAMERA);
        }
    }

    /// Forgets appearance `detection_id`'s face (deleted from the database); returns whether it was
    /// held.
    pub fn remove(&mut self, detection_id: i64) -> bool {
        let Some(row) = self.rows.remove(&detection_id) else { return false };
        let row = row as usize;
        self.codes[row * self.dim..(row + 1) * self.dim].fill(0);
        self.entries[row] = Entry { detection_id: 0, at: 0, camera: NO_CAMERA, scale: 0.0, l1: 0.0 };
        self.holes += 1;
        if self.holes > 1024 && self.holes * 4 > self.entries.len() {
            self.compact();
        }
        true
    }

    /// Closes the holes removed faces left.
    fn compact(&mut self) {
        let d = self.dim;
        let mut kept = 0;
        for row in 0..self.entries.len() {
            if self.entries[row].detection_id == 0 {
                continue;
            }
            if kept != row {
                self.entries[kept] = self.entries[row];
                self.codes.copy_within(row * d..(row + 1) * d, kept * d);
            }
            self.rows.insert(self.entries[kept].detection_id, kept as u32);
            kept += 1;
        }
        self.entries.truncate(kept);
        self.codes.truncate(kept * d);
        self.entries.shrink_to_fit();
        self.codes.shrink_to_fit();
        self.holes = 0;
    }

    /// The faces that may be among the `k` best for `query` under `filter`, best first by their
    /// upper bound, and the floor they were kept against: the k-th best lower bound of the faces
    /// certain to answer (−∞ with fewer than `k` of those). Every face left out scores below the
    /// floor. `query` must be of this index's dimension and finite.
    pub fn candidates(&self, query: &[f32], k: usize, filter: &Filter) -> Result<(Vec<Candidate>, f32), IndexError> {
        if query.len() != self.dim {
            return Err(IndexError::Dimension { expected: self.dim, got: query.len() });
        }
        if query.iter().any(|v| !v.is_finite()) {
            return Err(IndexError::NonFinite);
        }
        if k == 0 || self.entries.is_empty() {
            return Ok((Vec::new(), f32::NEG_INFINITY));
        }
        let unit = l2_normalized(query);
        let (q, q_scale) = quantize(&unit);
        let q16: Vec<i16> = q.iter().map(|&v| i16::from(v)).collect();
        let q_l1: f32 = unit.iter().map(|v| v.abs()).sum();
        let from = filter.from.map(|t| t.timestamp_micros()).unwrap_or(i64::MIN);
        let until = filter.until.map(|t| t.timestamp_micros()).unwrap_or(i64::MAX);
        let mut excluded = filter.excluded.clone();
        excluded.sort_unstable();
        let wanted = |e: &Entry| {
            e.detection_id != 0
                && e.at >= from
                && e.at <= until
                && (filter.cameras.is_empty() || filter.cameras.contains(&e.camera))
                && (excluded.is_empty() || excluded.binary_search(&e.detection_id).is_err())
        };

        // Every face's score range, and the k best lower bounds of faces certainly answering (above
        // the minimum and after the cursor whatever their exact score). The filters are looked at
        // only for faces whose score could count. Past SPLIT_AT faces the rows are shared among
        // the cores: the scan is bound by memory bandwidth, which one core does not exhaust.
        let scan = |first_block: usize, blocks: usize| {
            let d = self.dim;
            let mut ranges: Vec<(u32, f32, f32)> = Vec::new();
            let mut certain = LowestOfBest::new(k);
            let mut scores = vec![0.0f32; BLOCK];
            let end = ((first_block + blocks) * BLOCK * d).min(self.codes.len());
            let start = (first_block * BLOCK * d).min(end);
            for (b, rows) in self.codes[start..end].chunks(BLOCK * d).enumerate() {
                let base = (first_block + b) * BLOCK;
                let n = rows.len() / d;
                dots_i8(&q16, rows, d, &mut scores[..n]);
                for (i, &raw) in scores[..n].iter().enumerate() {
                    let e = &self.entries[base + i];
                    let approx = raw * e.scale * q_scale;
                    let eps = e.l1 * q_scale / 2.0 + e.scale / 2.0 * q_l1 + 1e-4;
                    let (low, high) = (approx - eps, approx + eps);
                    if high < filter.min_score || high < certain.floor() || !wanted(e) {
                        continue;
                    }
                    if let Some((s, _)) = filter.after {
                        if low > s {
                            continue;
                        }
                        if low >= filter.min_score && high < s {
                            certain.offer(low);
                        }
                    } else if low >= filter.min_score {
                        certain.offer(low);
                    }
                    ranges.push(((base + i) as u32, low, high));
                }
            }
            (ranges, certain)
        };
        let blocks = self.entries.len().div_ceil(BLOCK);
        let threads = if self.entries.len() >= SPLIT_AT {
            std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_THREADS)
        } else {
            1
        };
        let parts: Vec<ScanPart> = if threads == 1 {
            vec![scan(0, blocks)]
        } else {
            let per = blocks.div_ceil(threads);
            std::thread::scope(|s| {
                let scan = &scan;
                let handles: Vec<_> = (1..threads).map(|t| s.spawn(move || scan(t * per, per))).collect();
                let mut parts = vec![scan(0, per)];
                // A scan cannot panic on valid rows; if one did, its rows would be missing, so
                // the panic is passed on rather than answered around.
                parts.extend(handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))));
                parts
            })
        };
        // Each part kept what could beat its own floor; the floor of all parts is at least as high.
        let mut certain = LowestOfBest::new(k);
        for (_, c) in &parts {
            for v in c.values() {
                certain.offer(v);
            }
        }
        let floor = certain.floor();
        let mut found: Vec<Candidate> = parts
            .into_iter()
            .flat_map(|(ranges, _)| ranges)
            .filter(|&(_, _, high)| high >= floor)
            .map(|(row, low, high)| Candidate { detection_id: self.entries[row as usize].detection_id, low, high })
            .collect();
        found.sort_unstable_by(|a, b| b.high.total_cmp(&a.high).then(b.detection_id.cmp(&a.detection_id)));
        Ok((found, floor))
    }
}

/// What one part of a scan kept: (row, low, high) of faces that could beat its floor, and the lower
/// bounds of the faces it was certain of.
type ScanPart = (Vec<(u32, f32, f32)>, LowestOfBest);

/// The lowest of the `k` largest values offered so far (−∞ until `k` were offered).
struct LowestOfBest {
    k: usize,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<OrderedScore>>,
}

#[derive(Clone, Copy, PartialEq)]
struct OrderedScore(f32);

impl Eq for OrderedScore {}

impl PartialOrd for OrderedScore {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedScore {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl LowestOfBest {
    fn new(k: usize) -> Self {
        Self { k, heap: std::collections::BinaryHeap::with_capacity(k + 1) }
    }

    fn floor(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap.peek().map_or(f32::NEG_INFINITY, |r| r.0 .0)
        }
    }

    fn values(&self) -> impl Iterator<Item = f32> + '_ {
        self.heap.iter().map(|r| r.0 .0)
    }

    fn offer(&mut self, v: f32) {
        if self.heap.len() < self.k {
            self.heap.push(std::cmp::Reverse(OrderedScore(v)));
        } else if v > self.floor() {
            self.heap.pop();
            self.heap.push(std::cmp::Reverse(OrderedScore(v)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn model() -> ModelId {
        ModelId { name: "test".into(), version: "0".into() }
    }

    fn unit(rng: &mut rand::rngs::StdRng, dim: usize) -> Vec<f32> {
        let v: Vec<f32> = (0..dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap_or_default()
    }

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    /// The exact top-k by f32 scoring of everything, the way `super::search` ranks.
    fn exact(faces: &[(i64, Vec<f32>)], query: &[f32], k: usize, after: Option<(f32, i64)>) -> Vec<i64> {
        let mut scored: Vec<(f32, i64)> = faces
            .iter()
            .map(|(id, v)| (dot(v, query), *id))
            .filter(|&(s, id)| after.is_none_or(|(cs, cid)| s < cs || (s == cs && id < cid)))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
        scored.into_iter().take(k).map(|(_, id)| id).collect()
    }

    /// Rescores the candidates exactly and keeps the k best: what the search does with them.
    fn rescored(
        faces: &HashMap<i64, Vec<f32>>,
        c: &[Candidate],
        query: &[f32],
        k: usize,
        after: Option<(f32, i64)>,
    ) -> Vec<i64> {
        let subset: Vec<(i64, Vec<f32>)> = c.iter().map(|c| (c.detection_id, faces[&c.detection_id].clone())).collect();
        exact(&subset, query, k, after)
    }

    #[test]
    fn candidates_hold_the_exact_top_k_on_every_page() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let dim = 128;
        let mut index = AppearanceIndex::new(model(), dim);
        // Clusters of one "person" each, as real appearance faces are.
        let centres: Vec<Vec<f32>> = (0..40).map(|_| unit(&mut rng, dim)).collect();
        let mut faces = Vec::new();
        for id in 1..=4000i64 {
            let c = &centres[rng.gen_range(0..centres.len())];
            let noise = unit(&mut rng, dim);
            let v: Vec<f32> = c.iter().zip(&noise).map(|(a, b)| a + 0.6 * b).collect();
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            let v: Vec<f32> = v.into_iter().map(|x| x / n).collect();
            index.upsert(id, t(id), Some(id % 3), &v).unwrap();
            faces.push((id, v));
        }
        let by_id: HashMap<i64, Vec<f32>> = faces.iter().cloned().collect();
        for _ in 0..10 {
            let query = faces[rng.gen_range(0..faces.len())].1.clone();
            let mut after = None;
            for _page in 0..3 {
                let filter = Filter { after, ..Filter::default() };
                let (c, _) = index.candidates(&query, 25, &filter).unwrap();
                assert!(c.len() < 1000, "the bound should rule out most faces, kept {}", c.len());
                let got = rescored(&by_id, &c, &query, 25, after);
                let want = exact(&faces, &query, 25, after);
                assert_eq!(got, want);
                let last = *got.last().unwrap();
                after = Some((dot(&by_id[&last], &query), last));
            }
        }
    }

    #[test]
    fn a_scan_shared_among_cores_finds_the_same_top_k() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let dim = 16;
        let mut index = AppearanceIndex::new(model(), dim);
        let mut faces = Vec::new();
        for id in 1..=(SPLIT_AT as i64 + 5000) {
            let v = unit(&mut rng, dim);
            index.upsert(id, t(id), Some(1), &v).unwrap();
            if id % 7 == 0 {
                faces.push((id, v));
            }
        }
        // Only the kept faces can answer: the rest are excluded, spread over every part of the scan.
        let kept: std::collections::HashSet<i64> = faces.iter().map(|f| f.0).collect();
        let excluded: Vec<i64> = (1..=(SPLIT_AT as i64 + 5000)).filter(|id| !kept.contains(id)).collect();
        let by_id: HashMap<i64, Vec<f32>> = faces.iter().cloned().collect();
        let query = unit(&mut rng, dim);
        let filter = Filter { excluded, ..Filter::default() };
        let (c, _) = index.candidates(&query, 30, &filter).unwrap();
        assert_eq!(rescored(&by_id, &c, &query, 30, None), exact(&faces, &query, 30, None));
    }

    #[test]
    fn filters_cameras_time_minimum_and_exclusions() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let dim = 32;
        let mut index = AppearanceIndex::new(model(), dim);
        let mut faces = Vec::new();
        for id in 1..=300i64 {
            let v = unit(&mut rng, dim);
            index.upsert(id, t(id), if id % 10 == 0 { None } else { Some(id % 2) }, &v).unwrap();
            faces.push((id, v));
        }
        let query = faces[41].1.clone();
        let filter = Filter {
            cameras: vec![1],
            from: Some(t(100)),
            until: Some(t(200)),
            min_score: -1.0,
            after: None,
            excluded: vec![101],
        };
        let (c, _) = index.candidates(&query, 1000, &filter).unwrap();
        let ids: std::collections::BTreeSet<i64> = c.iter().map(|c| c.detection_id).collect();
        let want: std::collections::BTreeSet<i64> =
            (100..=200).filter(|id| id % 2 == 1 && id % 10 != 0 && *id != 101).collect();
        assert_eq!(ids, want);
        // The face itself scores 1: a minimum of 0.9 keeps it and little else.
        let (c, _) = index.candidates(&query, 10, &Filter { min_score: 0.9, ..Filter::default() }).unwrap();
        assert_eq!(c.first().map(|c| c.detection_id), Some(42));
        assert!(c.iter().all(|c| c.high >= 0.9));
    }

    #[test]
    fn replacing_and_removing_faces() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let dim = 16;
        let mut index = AppearanceIndex::new(model(), dim);
        let a = unit(&mut rng, dim);
        let b = unit(&mut rng, dim);
        index.upsert(1, t(0), Some(1), &a).unwrap();
        index.upsert(2, t(0), Some(1), &a).unwrap();
        // A better face of appearance 1 replaces its first one.
        index.upsert(1, t(5), Some(1), &b).unwrap();
        assert_eq!(index.len(), 2);
        let (c, _) = index.candidates(&b, 1, &Filter::default()).unwrap();
        assert_eq!(c[0].detection_id, 1);
        assert!(index.remove(1));
        assert!(!index.remove(1));
        let (c, _) = index.candidates(&b, 5, &Filter::default()).unwrap();
        assert_eq!(c.iter().map(|c| c.detection_id).collect::<Vec<_>>(), vec![2]);
        // Many removals compact the rows and keep the rest findable.
        for id in 10..3000 {
            index.upsert(id, t(id), Some(1), &unit(&mut rng, dim)).unwrap();
        }
        for id in 10..2500 {
            index.remove(id);
        }
        assert_eq!(index.len(), 501);
        let (c, _) = index.candidates(&a, 1, &Filter::default()).unwrap();
        assert_eq!(c[0].detection_id, 2);
        assert_eq!(index.upsert(9, t(0), None, &[0.0; 3]), Err(IndexError::Dimension { expected: 16, got: 3 }));
        assert_eq!(index.candidates(&[f32::NAN; 16], 1, &Filter::default()).err(), Some(IndexError::NonFinite));
    }
}
