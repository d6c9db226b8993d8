//! Hot reads served from memory: the camera list (the whole JSON body, rebuilt at most once a second
//! because it carries live status) and persons by id (moka). Writes through this API invalidate
//! them; when the database is down, the last good camera list is served (marked stale) instead of 503.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::sync::Cache;
use panoptes_engine::storage::Person;
use serde::Serialize;

/// Live status changes every second: the cached list is at most this old.
pub const CAMERA_LIST_TTL: Duration = Duration::from_secs(1);

pub struct Caches {
    camera_list: Mutex<Option<(Instant, Bytes)>>,
    /// One request rebuilds an expired camera list; the others keep serving the previous one.
    camera_list_rebuilding: AtomicBool,
    camera_list_last_good: Mutex<Option<Bytes>>,
    pub persons: Cache<i64, Arc<Person>>,
    camera_list_counts: HitMiss,
    person_counts: HitMiss,
}

/// Lookups of one cache that it answered, and that it did not.
#[derive(Debug, Default)]
struct HitMiss {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl HitMiss {
    fn count(&self, hit: bool) {
        if hit { &self.hits } else { &self.misses }.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> CacheCounts {
        CacheCounts { hits: self.hits.load(Ordering::Relaxed), misses: self.misses.load(Ordering::Relaxed) }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CacheCounts {
    pub hits: u64,
    pub misses: u64,
}

impl Default for Caches {
    fn default() -> Self {
        Self {
            camera_list: Mutex::new(None),
            camera_list_rebuilding: AtomicBool::new(false),
            camera_list_last_good: Mutex::new(None),
            persons: Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(60)).build(),
            camera_list_counts: HitMiss::default(),
            person_counts: HitMiss::default(),
        }
    }
}

/// One request's claim on rebuilding the camera list; released on drop.
pub struct RebuildGuard<'a>(&'a AtomicBool);

impl Drop for RebuildGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub hit_ratio: f64,
    pub persons_cached: u64,
}

impl Caches {
    pub fn camera_list(&self, now: Instant) -> Option<Bytes> {
        let slot = self.camera_list.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = slot.as_ref().filter(|(at, _)| now.duration_since(*at) < CAMERA_LIST_TTL);
        self.camera_list_counts.count(fresh.is_some());
        fresh.map(|(_, body)| body.clone())
    }

    /// A guard when the caller should rebuild the list; `None` when another request already is (serve
    /// [`last_good_camera_list`](Self::last_good_camera_list) meanwhile). The rebuild ends when the
    /// guard drops — also when the handler's future is dropped half-way because its client went away.
    pub fn begin_camera_list_rebuild(&self) -> Option<RebuildGuard<'_>> {
        if self.camera_list_rebuilding.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(RebuildGuard(&self.camera_list_rebuilding))
    }

    pub fn store_camera_list(&self, now: Instant, body: Bytes) {
        *self.camera_list.lock().unwrap_or_else(|p| p.into_inner()) = Some((now, body.clone()));
        *self.camera_list_last_good.lock().unwrap_or_else(|p| p.into_inner()) = Some(body);
    }

    /// The last list built, however old (for when the database is unreachable).
    pub fn last_good_camera_list(&self) -> Option<Bytes> {
        self.camera_list_last_good.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn invalidate_cameras(&self) {
        *self.camera_list.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub fn person(&self, id: i64) -> Option<Arc<Person>> {
        let found = self.persons.get(&id);
        self.person_counts.count(found.is_some());
        found
    }

    pub fn clear(&self) {
        self.invalidate_cameras();
        *self.camera_list_last_good.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.persons.invalidate_all();
    }

    /// Hits and misses per cache, named as in the `cache` label of the metrics.
    pub fn by_cache(&self) -> [(&'static str, CacheCounts); 2] {
        [("cameras", self.camera_list_counts.get()), ("persons", self.person_counts.get())]
    }

    pub fn stats(&self) -> CacheStats {
        let (hits, misses) = self.by_cache().iter().fold((0, 0), |(h, m), (_, c)| (h + c.hits, m + c.misses));
        let total = hits + misses;
        CacheStats {
            hits,
            misses,
            hit_ratio: if total > 0 { hits as f64 / total as f64 } else { 0.0 },
            persons_cached: self.persons.entry_count(),
        }
    }
}
