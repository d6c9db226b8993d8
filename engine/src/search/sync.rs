//! Keeps an engine's search index equal to the stored appearance faces of the gallery's model.
//!
//! Each refresh reads the faces written by transactions the previous read could not see
//! (`appearance_faces.written_xid` against the previous read's `pg_snapshot_xmin`): a face written
//! by any engine, committed late or early, is read once it is committed. Deletions (retention,
//! erasure, a deleted detection) leave no row to read: now and then the index's count is compared
//! with the table's, and on a difference the ids it holds that the table no longer has are dropped.
//! A search never answers with a deleted face meanwhile: it reads every candidate back from the
//! table. When the gallery's model changes the index is read anew for it, off to the side.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::index::AppearanceIndex;
use crate::embed::ModelInfo;
use crate::storage::{StorageError, Store};

/// Faces read per statement: a whole read of a million faces would otherwise hold them all as
/// rows at once.
const PAGE: i64 = 5000;

/// How often the index's count is compared with the table's (and deletions looked for).
const RECONCILE_EVERY: Duration = Duration::from_secs(60);

/// What one refresh did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Faces added or replaced.
    pub written: usize,
    /// Faces dropped because the table no longer has them.
    pub removed: usize,
    /// The index was read anew (first read, or a new model).
    pub rebuilt: bool,
}

/// Where the index stands against the table.
pub struct IndexSync {
    /// The next read asks for rows written by this transaction or later ones (0: every row).
    from: i64,
    reconcile_every: Duration,
    last_reconcile: Option<Instant>,
    ready: bool,
}

impl Default for IndexSync {
    fn default() -> Self {
        Self::new()
    }
}

impl IndexSync {
    pub fn new() -> Self {
        Self { from: 0, reconcile_every: RECONCILE_EVERY, last_reconcile: None, ready: false }
    }

    /// Compares counts (and looks for deletions) this often instead of every minute.
    pub fn with_reconcile_every(mut self, every: Duration) -> Self {
        self.reconcile_every = every;
        self
    }

    /// Whether the index has been read whole at least once.
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Brings `index` up to the table for `model` (the gallery's model now).
    pub async fn refresh(
        &mut self,
        store: &Store,
        index: &Arc<RwLock<AppearanceIndex>>,
        model: &ModelInfo,
    ) -> Result<Refreshed, StorageError> {
        let same_model = {
            let i = index.read().unwrap_or_else(|p| p.into_inner());
            i.model() == &model.id && i.dim() == model.dim
        };
        if !same_model || !self.ready {
            // A whole read, beside the index in use, then swapped in.
            let fresh = RwLock::new(AppearanceIndex::new(model.id.clone(), model.dim));
            let (written, next_from) = read_written(store, model, 0, &fresh).await?;
            let mut fresh = fresh.into_inner().unwrap_or_else(|p| p.into_inner());
            fresh.mark_read_whole();
            *index.write().unwrap_or_else(|p| p.into_inner()) = fresh;
            self.from = next_from;
            self.last_reconcile = Some(Instant::now());
            self.ready = true;
            tracing::info!(model = %model.id, faces = written, "search index read");
            return Ok(Refreshed { written, removed: 0, rebuilt: true });
        }
        let (written, next_from) = read_written(store, model, self.from, index).await?;
        self.from = next_from;
        let mut removed = 0;
        if self.last_reconcile.is_none_or(|t| t.elapsed() >= self.reconcile_every) {
            self.last_reconcile = Some(Instant::now());
            removed = self.drop_deleted(store, index, model).await?;
        }
        Ok(Refreshed { written, removed, rebuilt: false })
    }

    /// Drops the faces the table no longer has, when the counts say there are some.
    async fn drop_deleted(
        &self,
        store: &Store,
        index: &Arc<RwLock<AppearanceIndex>>,
        model: &ModelInfo,
    ) -> Result<usize, StorageError> {
        let stored = store.appearance_face_count(&model.id).await?;
        let held = index.read().unwrap_or_else(|p| p.into_inner()).len();
        if stored as usize == held {
            return Ok(0);
        }
        // A face committed after this list was read is not in it but may be in the index already
        // only if it was read before, i.e. committed before: the list has it. So every id missing
        // from the list is deleted.
        let ids: HashSet<i64> = store.appearance_face_ids(&model.id).await?.into_iter().collect();
        let mut i = index.write().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<i64> = i.ids().filter(|id| !ids.contains(id)).collect();
        for id in &gone {
            i.remove(*id);
        }
        if !gone.is_empty() {
            tracing::debug!(removed = gone.len(), "search index: dropped faces deleted from the database");
        }
        Ok(gone.len())
    }
}

/// Reads the faces written by transaction `from` or later into `index`, a page at a time; returns how
/// many and where the next read starts (the first page's: rows committed while later pages were read
/// are read again next time rather than missed).
async fn read_written(
    store: &Store,
    model: &ModelInfo,
    from: i64,
    index: &RwLock<AppearanceIndex>,
) -> Result<(usize, i64), StorageError> {
    let (mut after, mut next_from, mut written) = (0i64, None, 0);
    loop {
        let page = store.appearance_faces_written_since(&model.id, from, after, PAGE).await?;
        next_from.get_or_insert(page.next_from);
        let n = page.rows.len();
        written += n;
        if let Some(last) = page.rows.last() {
            after = last.detection_id;
        }
        let mut i = index.write().unwrap_or_else(|p| p.into_inner());
        for f in page.rows {
            if let Err(e) = i.upsert(f.detection_id, f.detected_at, f.camera_id, &f.vector) {
                tracing::warn!(detection_id = f.detection_id, error = %e, "skipping a stored appearance face");
            }
        }
        if (n as i64) < PAGE {
            return Ok((written, next_from.unwrap_or(from)));
        }
    }
}
