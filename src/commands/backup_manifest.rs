//! `manifest.json` of a backup directory: what the backup holds (Panoptes and schema versions, the
//! rows of every table, the embedding models) and what a restore checks before it writes anything
//! (the dump's SHA-256, the snapshot files' digest).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::snapshot_files::TreeSummary;

/// Bumped when a backup's layout changes in a way older restores cannot read.
pub const FORMAT: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
pub const DUMP: &str = "database.dump";
pub const SNAPSHOTS: &str = "snapshots";

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub panoptes_version: String,
    pub created_at: DateTime<Utc>,
    /// The database's newest applied migration.
    pub schema_version: i32,
    pub database: DumpSummary,
    pub snapshots: TreeSummary,
    /// Enrolled faces per embedding model: a gallery of another model needs re-enrolment.
    pub embedding_models: Vec<EmbeddingModel>,
    /// Rows of every table at the moment of the dump.
    pub rows: BTreeMap<String, i64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DumpSummary {
    /// pg_dump's custom format.
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
    pub server_version: String,
    pub pg_dump_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingModel {
    pub name: String,
    pub version: String,
    pub embeddings: i64,
}

impl Manifest {
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("{} holds no {MANIFEST}: not a Panoptes backup, or one that did not finish", dir.display())
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let manifest: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a Panoptes backup manifest", path.display()))?;
        if manifest.format != FORMAT {
            bail!("{} is a backup of format {}; this Panoptes reads format {FORMAT}", dir.display(), manifest.format);
        }
        Ok(manifest)
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(MANIFEST);
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

/// What a Panoptes database holds, read in the client's current transaction.
#[derive(Debug)]
pub struct Contents {
    /// None: no `schema_migrations` table (not a Panoptes database).
    pub schema_version: Option<i32>,
    pub rows: BTreeMap<String, i64>,
    pub embedding_models: Vec<EmbeddingModel>,
}

pub async fn contents(client: &tokio_postgres::Client) -> Result<Contents> {
    let tables: Vec<String> = client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1",
            &[],
        )
        .await
        .context("listing the tables")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut rows = BTreeMap::new();
    for table in &tables {
        let sql = format!("SELECT count(*) FROM public.\"{}\"", table.replace('"', "\"\""));
        let n: i64 = client.query_one(&sql, &[]).await.with_context(|| format!("counting {table}"))?.get(0);
        rows.insert(table.clone(), n);
    }
    let schema_version = if tables.iter().any(|t| t == "schema_migrations") {
        client.query_one("SELECT max(version) FROM schema_migrations", &[]).await.context("schema version")?.get(0)
    } else {
        None
    };
    let embedding_models = if tables.iter().any(|t| t == "face_embeddings") {
        client
            .query("SELECT model_name, model_version, count(*) FROM face_embeddings GROUP BY 1, 2 ORDER BY 1, 2", &[])
            .await
            .context("embedding models")?
            .iter()
            .map(|r| EmbeddingModel { name: r.get(0), version: r.get(1), embeddings: r.get(2) })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Contents { schema_version, rows, embedding_models })
}

/// "3 persons, 4 face_embeddings, …" of the tables an operator recognises, for messages.
pub fn describe_rows(rows: &BTreeMap<String, i64>) -> String {
    let shown = ["persons", "face_embeddings", "person_photos", "cameras", "detections"];
    let parts: Vec<String> =
        shown.iter().filter_map(|t| rows.get(*t).map(|n| format!("{n} {}", t.replace('_', " ")))).collect();
    if parts.is_empty() {
        format!("{} tables", rows.len())
    } else {
        parts.join(", ")
    }
}
