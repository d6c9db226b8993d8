//! Retention of detections: appearances are biometric records of passers-by, so none is kept for
//! ever by default. A recognised person's appearances are kept `storage.detection_retention_days`
//! (90), or a camera's own `options.retention_days`; an unknown face's no longer than
//! `storage.unknown_retention_days` (30) either. A sweep deletes expired rows in small batches, each
//! with its snapshot files, and then day directories of pictures that can belong to no row any more.
//! The embedding of an appearance's best face goes with its row, or sooner:
//! `storage.appearance_face_retention_days` (30) after it was seen, the row staying.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use crate::snapshot::{SnapshotKind, SnapshotStore};
use crate::storage::{CameraOptions, DetectionCursor, ExpiredDetection, ExpiredScope, StorageError, Store};

/// `[storage]` in the configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days an appearance is kept (0: for ever); a camera's `options.retention_days` overrides it.
    pub detection_retention_days: u32,
    /// Days an unknown face's appearance is kept, at most (0: as long as the others).
    pub unknown_retention_days: u32,
    /// Days the embedding of an appearance's best face is kept, at most (0: as long as its row).
    /// Review, search by face and unknown identities work on what is still kept.
    pub appearance_face_retention_days: u32,
    /// Days an entry of the audit trail (who reviewed what) is kept (0: for ever).
    pub audit_retention_days: u32,
    /// Rows deleted per statement: each is short, so it never holds locks for long.
    pub retention_batch_rows: u32,
    /// Pause between two statements of a sweep, leaving the database to other work.
    pub retention_pause_ms: u64,
    /// Seconds between two sweeps (the first runs at start).
    pub retention_interval_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            detection_retention_days: 90,
            unknown_retention_days: 30,
            appearance_face_retention_days: 30,
            audit_retention_days: 365,
            retention_batch_rows: 1000,
            retention_pause_ms: 20,
            retention_interval_secs: 3600,
        }
    }
}

/// How long the appearances of one camera are kept; `None`: for ever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub days: Option<u32>,
    pub unknown_days: Option<u32>,
}

/// Rows detected before these times have expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cutoffs {
    pub all: Option<DateTime<Utc>>,
    pub unknown: Option<DateTime<Utc>>,
}

/// `d` days before `now`; `None` past the calendar's range (kept for ever, in effect).
fn days_before(now: DateTime<Utc>, d: u32) -> Option<DateTime<Utc>> {
    chrono::Duration::try_days(i64::from(d)).and_then(|d| now.checked_sub_signed(d))
}

fn days(n: u32) -> Option<u32> {
    (n > 0).then_some(n)
}

impl RetentionConfig {
    /// The policy of a camera with these options (`None`: rows of a deleted camera).
    pub fn policy(&self, camera: Option<&CameraOptions>) -> Policy {
        let all = camera.and_then(|o| o.retention_days).and_then(days).or(days(self.detection_retention_days));
        let unknown = match (all, days(self.unknown_retention_days)) {
            (Some(a), Some(u)) => Some(a.min(u)),
            (a, u) => a.or(u),
        };
        Policy { days: all, unknown_days: unknown }
    }

    /// The longest any row is kept under these cameras' options (`None`: some are kept for ever).
    pub fn longest_days<'a>(&self, cameras: impl IntoIterator<Item = &'a CameraOptions>) -> Option<u32> {
        let mut longest = self.policy(None).days?;
        for c in cameras {
            longest = longest.max(self.policy(Some(c)).days?);
        }
        Some(longest)
    }

    /// Appearance faces seen before this time have expired (`None`: they go with their rows).
    pub fn appearance_face_cutoff(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        days(self.appearance_face_retention_days).and_then(|d| days_before(now, d))
    }

    /// Audit entries written before this time have expired (`None`: kept for ever).
    pub fn audit_cutoff(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        days(self.audit_retention_days).and_then(|d| days_before(now, d))
    }

    pub fn batch_rows(&self) -> i64 {
        i64::from(self.retention_batch_rows.max(1))
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.retention_interval_secs.max(1))
    }
}

impl Policy {
    pub fn cutoffs(&self, now: DateTime<Utc>) -> Cutoffs {
        let before = |d: Option<u32>| d.and_then(|d| days_before(now, d));
        Cutoffs { all: before(self.days), unknown: before(self.unknown_days) }
    }
}

/// The first day whose pictures are kept: day directories before it are deleted whole. With
/// `snapshots.retention_days` set, pictures go after that many days whatever their rows; otherwise
/// they go with their rows, and a day past the longest retention (plus one day, for the hours of a
/// day directory that straddle the cut) can hold only pictures whose rows never were written or are
/// gone (a crash between a row's deletion and its files').
pub fn oldest_picture_day(snapshot_days: u32, longest_row_days: Option<u32>, today: NaiveDate) -> Option<NaiveDate> {
    let keep = match (days(snapshot_days), longest_row_days) {
        (Some(s), Some(r)) => s.min(r + 1),
        (Some(s), None) => s,
        (None, Some(r)) => r + 1,
        (None, None) => return None,
    };
    today.checked_sub_days(chrono::Days::new(u64::from(keep)))
}

/// What retention has deleted since the start (read by `/metrics`).
#[derive(Debug, Default)]
pub struct RetentionCounters {
    detections: AtomicU64,
    appearance_faces: AtomicU64,
    snapshots: AtomicU64,
    snapshot_days: AtomicU64,
    failures: AtomicU64,
    erased_leftovers: AtomicU64,
}

/// A copy of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionStats {
    /// Detection rows deleted.
    pub detections: u64,
    /// Embeddings of appearances' best faces deleted on their own (rows kept); those deleted with
    /// their rows are not counted.
    pub appearance_faces: u64,
    /// Snapshots (a detection's face and frame pictures) deleted with their rows.
    pub snapshots: u64,
    /// Whole day directories of pictures deleted.
    pub snapshot_days: u64,
    /// Sweeps or snapshot deletions that failed (retried at the next sweep).
    pub failures: u64,
    /// Refused rows of erased persons deleted (see `erasure::remove_leftovers`).
    pub erased_leftovers: u64,
}

impl RetentionCounters {
    pub fn stats(&self) -> RetentionStats {
        RetentionStats {
            detections: self.detections.load(Ordering::Relaxed),
            appearance_faces: self.appearance_faces.load(Ordering::Relaxed),
            snapshots: self.snapshots.load(Ordering::Relaxed),
            snapshot_days: self.snapshot_days.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            erased_leftovers: self.erased_leftovers.load(Ordering::Relaxed),
        }
    }

    pub fn count_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// What one sweep deleted.
pub type SweepReport = RetentionStats;

/// One sweep: what erasures left behind, every camera's expired rows (and those of deleted cameras)
/// with their pictures, then the expired day directories. `snapshots`: where pictures are (`None`:
/// rows only).
pub async fn sweep(
    store: &Store,
    snapshots: Option<&Arc<SnapshotStore>>,
    config: &RetentionConfig,
    now: DateTime<Utc>,
    counters: &RetentionCounters,
) -> Result<SweepReport, StorageError> {
    let mut report = SweepReport::default();
    match crate::erasure::remove_leftovers(store, snapshots).await {
        Ok(n) => {
            report.erased_leftovers = n;
            counters.erased_leftovers.fetch_add(n, Ordering::Relaxed);
        }
        Err(e) => {
            counters.count_failure();
            tracing::warn!(error = %crate::error_chain::error_chain(&e), "could not remove what erasures left behind; will retry");
        }
    }
    let cameras = store.list_cameras().await?;
    let scopes = cameras.iter().map(|c| (Some(c.id), config.policy(Some(&c.options))));
    for (camera_id, policy) in scopes.chain(std::iter::once((None, config.policy(None)))) {
        let cut = policy.cutoffs(now);
        if let Some(before) = cut.all {
            let scope = ExpiredScope { camera_id, unknown_only: false, before, after: None };
            expire(store, snapshots, config, scope, counters, &mut report).await?;
        }
        // Unknown faces detected since the cut for everyone (older ones are gone: the walk starts
        // there) and before their own.
        if let (Some(before), all) = (cut.unknown, cut.all) {
            if all.is_none_or(|a| a < before) {
                let after = all.map(|t| DetectionCursor { detected_at: t, id: 0 });
                let scope = ExpiredScope { camera_id, unknown_only: true, before, after };
                expire(store, snapshots, config, scope, counters, &mut report).await?;
            }
        }
    }
    if let Some(before) = config.appearance_face_cutoff(now) {
        let limit = config.batch_rows();
        loop {
            let n = store.delete_expired_appearance_faces(before, limit).await?;
            report.appearance_faces += n;
            counters.appearance_faces.fetch_add(n, Ordering::Relaxed);
            if (n as i64) < limit {
                break;
            }
            tokio::time::sleep(Duration::from_millis(config.retention_pause_ms)).await;
        }
    }
    if let Some(before) = config.audit_cutoff(now) {
        let limit = config.batch_rows();
        while store.delete_expired_audit(before, limit).await? as i64 == limit {
            tokio::time::sleep(Duration::from_millis(config.retention_pause_ms)).await;
        }
    }
    // An unknown identity is its appearances: with none left, it goes too.
    let n = store.delete_empty_unknowns().await?;
    if n > 0 {
        tracing::info!(identities = n, "deleted unknown identities with no appearance left");
    }
    if let Some(s) = snapshots {
        let longest = config.longest_days(cameras.iter().map(|c| &c.options));
        if let Some(oldest) = oldest_picture_day(s.retention_days(), longest, now.date_naive()) {
            let s = s.clone();
            match tokio::task::spawn_blocking(move || s.purge_days_before(oldest)).await {
                Ok(Ok(n)) => {
                    report.snapshot_days += n as u64;
                    counters.snapshot_days.fetch_add(n as u64, Ordering::Relaxed);
                }
                Ok(Err(e)) => {
                    counters.count_failure();
                    tracing::warn!(error = %e, "could not delete expired snapshot days; will retry");
                }
                Err(e) => tracing::error!(error = %e, "deleting expired snapshot days panicked"),
            }
        }
    }
    Ok(report)
}

/// Deletes the rows of one scope, batch after batch, each batch's pictures before the next.
async fn expire(
    store: &Store,
    snapshots: Option<&Arc<SnapshotStore>>,
    config: &RetentionConfig,
    mut scope: ExpiredScope,
    counters: &RetentionCounters,
    report: &mut SweepReport,
) -> Result<(), StorageError> {
    let limit = config.batch_rows();
    loop {
        let rows = store.delete_expired_detections(&scope, limit).await?;
        report.detections += rows.len() as u64;
        counters.detections.fetch_add(rows.len() as u64, Ordering::Relaxed);
        if let Some(s) = snapshots {
            let removed = remove_pictures(s, &rows, counters).await;
            report.snapshots += removed;
            counters.snapshots.fetch_add(removed, Ordering::Relaxed);
        }
        if (rows.len() as i64) < limit {
            return Ok(());
        }
        scope.after = rows
            .iter()
            .map(|r| DetectionCursor { detected_at: r.detected_at, id: r.id })
            .max_by_key(|k| (k.detected_at, k.id));
        tokio::time::sleep(Duration::from_millis(config.retention_pause_ms)).await;
    }
}

/// Deletes the pictures of deleted rows on the blocking pool; answers how many snapshots went. A
/// picture that cannot be deleted now is left to the day directories' deletion.
async fn remove_pictures(
    snapshots: &Arc<SnapshotStore>,
    rows: &[ExpiredDetection],
    counters: &RetentionCounters,
) -> u64 {
    let stems: Vec<String> = rows.iter().filter_map(|r| r.snapshot_path.clone()).collect();
    if stems.is_empty() {
        return 0;
    }
    let s = snapshots.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let (mut removed, mut first_error) = (0u64, None);
        for stem in &stems {
            match s.remove_pictures(stem, &[SnapshotKind::Face, SnapshotKind::Frame]) {
                Ok(true) => removed += 1,
                Ok(false) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        (removed, first_error)
    })
    .await;
    match outcome {
        Ok((removed, None)) => removed,
        Ok((removed, Some(e))) => {
            counters.count_failure();
            tracing::warn!(error = %e, "could not delete the snapshot of an expired detection; its day directory will go later");
            removed
        }
        Err(e) => {
            tracing::error!(error = %e, "deleting expired snapshots panicked");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn camera(days: Option<u32>) -> CameraOptions {
        CameraOptions { retention_days: days, ..CameraOptions::default() }
    }

    #[test]
    fn unknown_faces_are_kept_no_longer_than_their_own_retention_nor_their_cameras() {
        let c = RetentionConfig::default();
        assert_eq!(c.policy(None), Policy { days: Some(90), unknown_days: Some(30) });
        assert_eq!(c.policy(Some(&camera(None))), Policy { days: Some(90), unknown_days: Some(30) });
        assert_eq!(c.policy(Some(&camera(Some(7)))), Policy { days: Some(7), unknown_days: Some(7) });
        assert_eq!(c.policy(Some(&camera(Some(365)))), Policy { days: Some(365), unknown_days: Some(30) });
        let forever = RetentionConfig { detection_retention_days: 0, unknown_retention_days: 0, ..c.clone() };
        assert_eq!(forever.policy(None), Policy { days: None, unknown_days: None });
        let unknown_only = RetentionConfig { detection_retention_days: 0, ..c };
        assert_eq!(unknown_only.policy(None), Policy { days: None, unknown_days: Some(30) });
        assert_eq!(unknown_only.policy(Some(&camera(Some(10)))), Policy { days: Some(10), unknown_days: Some(10) });
    }

    #[test]
    fn retention_past_the_calendar_keeps_for_ever_rather_than_panicking() {
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
        let huge = RetentionConfig {
            detection_retention_days: u32::MAX,
            appearance_face_retention_days: u32::MAX,
            audit_retention_days: u32::MAX,
            ..RetentionConfig::default()
        };
        assert_eq!(huge.policy(None).cutoffs(now).all, None);
        assert_eq!(huge.appearance_face_cutoff(now), None);
        assert_eq!(huge.audit_cutoff(now), None);
        assert_eq!(oldest_picture_day(u32::MAX, None, now.date_naive()), None);
    }

    #[test]
    fn cutoffs_count_whole_days_back_from_now() {
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
        let cut = Policy { days: Some(90), unknown_days: Some(30) }.cutoffs(now);
        assert_eq!(cut.all, Some(Utc.with_ymd_and_hms(2026, 9, 6, 12, 0, 0).unwrap()));
        assert_eq!(cut.unknown, Some(Utc.with_ymd_and_hms(2026, 11, 5, 12, 0, 0).unwrap()));
        assert_eq!(Policy { days: None, unknown_days: None }.cutoffs(now), Cutoffs { all: None, unknown: None });
    }

    #[test]
    fn picture_days_follow_the_longest_row_retention_unless_capped() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        let c = RetentionConfig::default();
        let longest = c.longest_days([&camera(None), &camera(Some(120))]);
        assert_eq!(longest, Some(120));
        assert_eq!(c.longest_days([&camera(Some(7))]), Some(90));
        let forever = RetentionConfig { detection_retention_days: 0, ..c };
        assert_eq!(forever.longest_days([&camera(Some(7))]), None);
        assert_eq!(oldest_picture_day(0, Some(90), today), NaiveDate::from_ymd_opt(2026, 9, 5));
        assert_eq!(oldest_picture_day(30, Some(90), today), NaiveDate::from_ymd_opt(2026, 11, 5));
        assert_eq!(oldest_picture_day(30, None, today), NaiveDate::from_ymd_opt(2026, 11, 5));
        assert_eq!(oldest_picture_day(0, None, today), None);
    }
}
