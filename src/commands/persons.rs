//! `panoptes persons list|delete`.

use std::sync::Arc;

use anyhow::{bail, Result};
use panoptes_engine::erasure::{erase_person, ErasureScope};
use panoptes_engine::snapshot::SnapshotStore;
use panoptes_engine::storage::Store;

pub async fn list(store: &Store, search: Option<&str>, json: bool) -> Result<()> {
    let persons = store.list_persons(search, 10_000, 0).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&persons)?);
        return Ok(());
    }
    println!("{:>8}  {:>5}  {:<25}  name", "id", "faces", "created");
    for p in persons {
        println!("{:>8}  {:>5}  {:<25}  {}", p.id, p.faces, p.created_at.format("%Y-%m-%d %H:%M:%S UTC"), p.name);
    }
    Ok(())
}

/// Erases a person (`panoptes_engine::erasure`): their snapshots are looked for under
/// `snapshots.dir` as configured here. Engines drop them from their gallery within seconds (sync).
pub async fn delete(store: &Store, snapshots: &Arc<SnapshotStore>, id: i64, scope: ErasureScope) -> Result<()> {
    let requested_by = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
    let Some(e) = erase_person(store, Some(snapshots), id, scope, &requested_by).await? else {
        bail!("no person with id {id}");
    };
    let r = &e.removed;
    println!(
        "person {id} erased ({}, record {}): {} embedding(s), {} photo(s), {} face snapshot(s), {} context frame(s), \
         {} appearance(s), {} refused row(s) removed; {} appearance(s) kept as unknown faces",
        e.scope.as_str(),
        e.id,
        r.embeddings,
        r.photos,
        r.face_snapshots,
        r.frame_snapshots,
        r.detections,
        r.dead_letters,
        e.detections_unlinked
    );
    if e.snapshots_not_found > 0 {
        eprintln!(
            "warning: {} snapshot(s) named by their appearances were not found under {}: expired, or the engine \
             keeps them under another snapshots.dir (run this with the engine's configuration)",
            e.snapshots_not_found,
            snapshots.dir().display()
        );
    }
    Ok(())
}
