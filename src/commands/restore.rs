//! `panoptes restore DIR [--force]`: a backup of `panoptes backup` into the configured database and
//! `snapshots.dir`.
//!
//! Nothing is written before the backup is checked against its manifest (the dump's SHA-256, the
//! snapshot files' digest) and the target is found empty. A database that holds any table, or a
//! snapshot directory that holds any file, is refused unless `--force`; with `--force` (and no engine
//! running on the database) every table, view and sequence of its `public` schema is dropped and the
//! backup restored in the same transaction, so a failure leaves the database as it was, and the
//! snapshot files of the replaced database are deleted. The database is restored in one transaction
//! (psql fed by pg_restore, committed only once pg_restore has finished cleanly), its row counts
//! compared with the manifest's, then migrated if the backup's schema is older than this Panoptes.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context as _, Result};
use panoptes::context::redact_url;
use panoptes::Settings;
use panoptes_engine::storage::{connect_client, migrations, ConnInfo, Store};

use super::backup_manifest::{self, Manifest, DUMP, SNAPSHOTS};
use super::{pg_tools, snapshot_files};

/// An engine whose heartbeat is this recent is taken to be running (nodes beat about once a second
/// and remove their row when they stop).
const RUNNING_ENGINE_SECS: f64 = 60.0;

pub async fn run(settings: &Settings, dir: &Path, force: bool) -> Result<()> {
    let manifest = Manifest::read(dir)?;
    if manifest.schema_version > migrations::latest_version() {
        bail!(
            "the backup's schema is version {}, newer than this Panoptes ({}) knows (up to {}): restore it \
             with the Panoptes that made it ({}) or a newer one",
            manifest.schema_version,
            env!("CARGO_PKG_VERSION"),
            migrations::latest_version(),
            manifest.panoptes_version
        );
    }
    let backup_files = check_backup(dir, &manifest).await?;

    let url = settings.database_url()?;
    let info = ConnInfo::parse(&url)?;
    let client =
        connect_client(&url).await.with_context(|| format!("connecting to the database at {}", redact_url(&url)))?;
    let existing = existing_relations(&client).await?;
    let target = redact_url(&url);
    if !existing.is_empty() {
        if !force {
            let contents = backup_manifest::contents(&client).await?;
            bail!(
                "the database at {target} is not empty (it holds {}{}, {} relations in all; {}): restore into \
                 an empty database, or add --force to replace everything in it",
                existing.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
                if existing.len() > 3 { ", …" } else { "" },
                existing.len(),
                backup_manifest::describe_rows(&contents.rows)
            );
        }
        refuse_running_engines(&client).await?;
    }
    let snapshots_dir = PathBuf::from(&settings.snapshots.dir);
    let (present, _) = snapshot_files::list(&snapshots_dir)?;
    if !present.is_empty() && !force {
        bail!(
            "snapshots.dir {} already holds {} files: restore into an empty directory, or add --force \
             (the snapshot files of the replaced database are then deleted)",
            snapshots_dir.display(),
            present.len()
        );
    }

    let dump = dir.join(DUMP);
    let replace = !existing.is_empty();
    let restore_info = info.clone();
    tokio::task::spawn_blocking(move || restore_database(&restore_info, &dump, replace)).await??;
    let restored = backup_manifest::contents(&client).await?;
    if restored.rows != manifest.rows {
        bail!(
            "the restored database does not hold what the manifest lists (restored {:?}, manifest {:?})",
            restored.rows,
            manifest.rows
        );
    }

    let from = dir.join(SNAPSHOTS);
    let to = snapshots_dir.clone();
    let (copied, removed, kept) = tokio::task::spawn_blocking(move || -> Result<_> {
        let (removed, kept) = remove_replaced_snapshots(&to, &present, &backup_files)?;
        let (copied, _) = snapshot_files::copy(&from, &to, &backup_files, false)?;
        Ok((copied, removed, kept))
    })
    .await?
    .context("the database is restored but the snapshot files are not: run the restore again with --force")?;
    if copied != manifest.snapshots {
        bail!("the snapshot files copied to {} differ from the backup's", snapshots_dir.display());
    }
    for path in &kept {
        eprintln!("left in place (not a snapshot file): {}", path.display());
    }

    let applied = {
        let store = Store::connect(&url, 1).await.with_context(|| format!("migrating the database at {target}"))?;
        store.close();
        restored.schema_version.unwrap_or(0) < migrations::latest_version()
    };
    println!(
        "restored {} (made {}, Panoptes {}) into {target}: {}; {} snapshot files ({} bytes) in {}{}{}",
        dir.display(),
        manifest.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        manifest.panoptes_version,
        backup_manifest::describe_rows(&manifest.rows),
        copied.files,
        copied.bytes,
        snapshots_dir.display(),
        if removed > 0 {
            format!("; {removed} snapshot files of the replaced database deleted")
        } else {
            String::new()
        },
        if applied {
            format!("; schema migrated from version {} to {}", manifest.schema_version, migrations::latest_version())
        } else {
            String::new()
        }
    );
    Ok(())
}

/// The backup's files match its manifest; its snapshot files, relative to `DIR/snapshots`.
async fn check_backup(dir: &Path, manifest: &Manifest) -> Result<Vec<PathBuf>> {
    let dir = dir.to_path_buf();
    let database = (manifest.database.bytes, manifest.database.sha256.clone());
    let snapshots = manifest.snapshots.clone();
    tokio::task::spawn_blocking(move || -> Result<Vec<PathBuf>> {
        let dump = dir.join(DUMP);
        let (bytes, sha256) = snapshot_files::file_sha256(&dump)?;
        if (bytes, &sha256) != (database.0, &database.1) {
            bail!(
                "{} does not match the backup's manifest (sha256 {sha256}, {bytes} bytes; the manifest says \
                 sha256 {}, {} bytes): the backup is damaged. Nothing was restored.",
                dump.display(),
                database.1,
                database.0
            );
        }
        let root = dir.join(SNAPSHOTS);
        let (files, _) = snapshot_files::list(&root)?;
        let found = snapshot_files::summarize(&root, &files)?;
        if found != snapshots {
            bail!(
                "the snapshot files in {} do not match the backup's manifest ({} files, {} bytes, sha256 {}; \
                 the manifest says {} files, {} bytes, sha256 {}): the backup is damaged. Nothing was restored.",
                root.display(),
                found.files,
                found.bytes,
                found.sha256,
                snapshots.files,
                snapshots.bytes,
                snapshots.sha256
            );
        }
        Ok(files)
    })
    .await?
}

/// Tables, views, sequences and foreign tables outside PostgreSQL's own schemas.
async fn existing_relations(client: &tokio_postgres::Client) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
               AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
             ORDER BY c.relkind <> 'r', 1",
            &[],
        )
        .await
        .context("reading the target database's tables")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

async fn refuse_running_engines(client: &tokio_postgres::Client) -> Result<()> {
    let has_nodes: bool = client.query_one("SELECT to_regclass('public.engine_nodes') IS NOT NULL", &[]).await?.get(0);
    if !has_nodes {
        return Ok(());
    }
    let running: Vec<String> = client
        .query(
            "SELECT node_id FROM engine_nodes WHERE heartbeat_at > now() - make_interval(secs => $1) ORDER BY 1",
            &[&RUNNING_ENGINE_SECS],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !running.is_empty() {
        bail!(
            "engines are running on this database ({}): stop every engine before replacing its contents \
             (a node that was killed counts as running for {RUNNING_ENGINE_SECS} s after its last heartbeat)",
            running.join(", ")
        );
    }
    Ok(())
}

/// Drops what `public` holds, inside the restore's transaction (`--force`).
const DROP_PUBLIC: &str = "SET client_min_messages = warning;
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.relkind, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
           ORDER BY c.relkind IN ('S') -- sequences last: most go with their tables
  LOOP
    EXECUTE format('DROP %s IF EXISTS public.%I CASCADE',
      CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                     WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, r.relname);
  END LOOP;
END $$;
RESET client_min_messages;
";

/// pg_restore's SQL fed to psql inside one transaction, committed only when pg_restore has finished
/// cleanly: an error of either, or a dump that ends early, leaves the database as it was.
fn restore_database(info: &ConnInfo, dump: &Path, replace: bool) -> Result<()> {
    let mut pg_restore = pg_tools::command("pg_restore", info)?;
    pg_restore.args(["--no-owner", "--no-acl", "--file=-"]).arg(dump).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut psql = pg_tools::command("psql", info)?;
    psql.args(["--no-psqlrc", "--quiet", "--no-password", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=terse"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut restore = pg_restore.spawn().context("starting pg_restore")?;
    let mut apply = psql.spawn().context("starting psql")?;
    let restore_errors = collect(restore.stderr.take());
    let apply_errors = collect(apply.stderr.take());
    let (Some(mut script), Some(mut sql)) = (restore.stdout.take(), apply.stdin.take()) else {
        bail!("pg_restore and psql could not be connected");
    };
    let fed = (|| -> std::io::Result<()> {
        sql.write_all(b"BEGIN;\n")?;
        if replace {
            sql.write_all(DROP_PUBLIC.as_bytes())?;
        }
        std::io::copy(&mut script, &mut sql)?;
        Ok(())
    })();
    let restored = restore.wait().context("waiting for pg_restore")?;
    if fed.is_ok() && restored.success() {
        // A write error here shows as psql's own failure below.
        let _ = sql.write_all(b"COMMIT;\n");
    }
    drop(sql);
    let applied = apply.wait().context("waiting for psql")?;
    let restore_errors = restore_errors.join().unwrap_or_default();
    let apply_errors = apply_errors.join().unwrap_or_default();
    if !restored.success() {
        bail!("pg_restore failed ({restored}): {}; the database is unchanged", restore_errors.trim());
    }
    if !applied.success() {
        bail!("restoring the database failed ({applied}): {}; the database is unchanged", apply_errors.trim());
    }
    if let Err(e) = fed {
        bail!("feeding the dump to psql failed: {e}; the database is unchanged");
    }
    Ok(())
}

/// Reads a child's standard error on a thread of its own (a full pipe would stall the child).
fn collect(stream: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut s) = stream {
            let _ = s.read_to_string(&mut text);
        }
        text
    })
}

/// `--force`: the snapshot files under `dir` that the backup does not hold belonged to the replaced
/// database and are deleted; anything that is not laid out as a snapshot (`YYYY-MM-DD/cam-N/…jpg`,
/// `….jpg.enc`) is left alone and returned. (deleted count, kept paths).
fn remove_replaced_snapshots(dir: &Path, present: &[PathBuf], backup: &[PathBuf]) -> Result<(u64, Vec<PathBuf>)> {
    let keep: std::collections::HashSet<&PathBuf> = backup.iter().collect();
    let mut removed = 0;
    let mut kept = Vec::new();
    for rel in present.iter().filter(|p| !keep.contains(p)) {
        if !is_snapshot_file(rel) {
            kept.push(rel.clone());
            continue;
        }
        let path = dir.join(rel);
        std::fs::remove_file(&path).with_context(|| format!("deleting {}", path.display()))?;
        removed += 1;
        // Emptied camera and day directories go too.
        for parent in rel.ancestors().skip(1).filter(|p| !p.as_os_str().is_empty()) {
            if std::fs::remove_dir(dir.join(parent)).is_err() {
                break;
            }
        }
    }
    Ok((removed, kept))
}

fn is_snapshot_file(rel: &Path) -> bool {
    let parts: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
    let [day, camera, name] = parts.as_slice() else { return false };
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").is_ok()
        && camera.strip_prefix("cam-").is_some_and(|id| id.parse::<i64>().is_ok())
        && (name.ends_with(".jpg") || name.ends_with(".jpg.enc"))
}

#[cfg(test)]
mod tests {
    use super::is_snapshot_file;
    use std::path::Path;

    #[test]
    fn only_the_snapshot_layout_counts_as_snapshot_files() {
        assert!(is_snapshot_file(Path::new("2026-12-05/cam-3/101500.250-7.face.jpg")));
        assert!(is_snapshot_file(Path::new("2026-12-05/cam-3/101500.250-7.frame.jpg.enc")));
        assert!(!is_snapshot_file(Path::new("2026-12-05/cam-3/notes.txt")));
        assert!(!is_snapshot_file(Path::new("important/cam-3/a.jpg")));
        assert!(!is_snapshot_file(Path::new("2026-12-05/a.jpg")));
    }
}
