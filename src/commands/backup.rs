//! `panoptes backup DIR`: the database (pg_dump, custom format), the snapshot files and a manifest,
//! written into DIR, which must be new or empty. The backup is built in a hidden sibling directory
//! and renamed into place at the end, so DIR only ever holds a finished backup. It may run while the
//! engine serves: the dump and the manifest's row counts come from one exported database snapshot;
//! snapshot files are copied afterwards (a file deleted by retention meanwhile is left out).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use panoptes::context::redact_url;
use panoptes::Settings;
use panoptes_engine::storage::{connect_client, ConnInfo};

use super::backup_manifest::{self, DumpSummary, Manifest, DUMP, SNAPSHOTS};
use super::{pg_tools, snapshot_files};

pub async fn run(settings: &Settings, dir: &Path) -> Result<()> {
    let url = settings.database_url()?;
    let info = ConnInfo::parse(&url)?;
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!("{} exists and is not empty: a backup goes into a new or empty directory", dir.display());
    }
    let partial = partial_dir(dir)?;
    if partial.exists() {
        // What an interrupted backup left (database rows and faces): not kept.
        std::fs::remove_dir_all(&partial).with_context(|| format!("removing {}", partial.display()))?;
    }
    // Faces and names: readable by the backup's owner only (what is inside inherits the protection).
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let written = write(settings, &url, &info, &partial).await;
    let manifest = match written {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    if dir.exists() {
        std::fs::remove_dir(dir).with_context(|| format!("replacing the empty {}", dir.display()))?;
    }
    std::fs::rename(&partial, dir).with_context(|| format!("moving {} to {}", partial.display(), dir.display()))?;
    println!(
        "backup written to {}: database {} bytes (schema version {}; {}), {} snapshot files ({} bytes)",
        dir.display(),
        manifest.database.bytes,
        manifest.schema_version,
        backup_manifest::describe_rows(&manifest.rows),
        manifest.snapshots.files,
        manifest.snapshots.bytes
    );
    Ok(())
}

/// `.NAME.partial` beside DIR: on the same file system, so the final rename is atomic.
fn partial_dir(dir: &Path) -> Result<PathBuf> {
    let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
        bail!("{} does not end in a directory name", dir.display());
    };
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    Ok(parent.join(format!(".{name}.partial")))
}

async fn write(settings: &Settings, url: &str, info: &ConnInfo, out: &Path) -> Result<Manifest> {
    let client =
        connect_client(url).await.with_context(|| format!("connecting to the database at {}", redact_url(url)))?;
    // One snapshot of the database for pg_dump and the counts: they describe the same moment.
    client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?;
    let snapshot: String = client.query_one("SELECT pg_export_snapshot()", &[]).await?.get(0);
    let contents = backup_manifest::contents(&client).await?;
    let Some(schema_version) = contents.schema_version else {
        bail!("the database at {} holds no Panoptes schema (no schema_migrations table)", redact_url(url));
    };
    let server_version: String = client.query_one("SHOW server_version", &[]).await?.get(0);

    let dump = out.join(DUMP);
    let mut pg_dump = pg_tools::command("pg_dump", info)?;
    pg_dump.args(["--format=custom", "--no-password"]).arg(format!("--snapshot={snapshot}")).arg("--file").arg(&dump);
    tokio::task::spawn_blocking(move || pg_tools::run(pg_dump, "pg_dump")).await??;
    client.batch_execute("COMMIT").await?;
    let pg_dump_version = pg_tools::version("pg_dump")?;
    let (bytes, sha256) = snapshot_files::file_sha256(&dump)?;

    let from = PathBuf::from(&settings.snapshots.dir);
    let to = out.join(SNAPSHOTS);
    let (snapshots, vanished, other) = tokio::task::spawn_blocking(move || -> Result<_> {
        let (files, other) = snapshot_files::list(&from)?;
        let (summary, vanished) = snapshot_files::copy(&from, &to, &files, true)?;
        Ok((summary, vanished, other))
    })
    .await??;
    if vanished > 0 {
        eprintln!("{vanished} snapshot files were deleted (retention) while the backup ran and are not in it");
    }
    for path in other {
        eprintln!("not a regular file, left out of the backup: {}", path.display());
    }
    let manifest = Manifest {
        format: backup_manifest::FORMAT,
        panoptes_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: chrono::Utc::now(),
        schema_version,
        database: DumpSummary { file: DUMP.to_string(), bytes, sha256, server_version, pg_dump_version },
        snapshots,
        embedding_models: contents.embedding_models,
        rows: contents.rows,
    };
    manifest.write(out)?;
    Ok(manifest)
}
