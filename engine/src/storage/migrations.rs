//! Versioned schema migrations, applied at start inside one transaction under an advisory lock so that
//! several engines starting together on one database apply each migration exactly once.

use tokio_postgres::Client;

use super::StorageError;

/// (version, name, SQL). Append only: an applied migration is never edited.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "initial", include_str!("migrations/0001_initial.sql")),
    (2, "camera_leases", include_str!("migrations/0002_camera_leases.sql")),
    (3, "person_photos", include_str!("migrations/0003_person_photos.sql")),
    (4, "api_keys", include_str!("migrations/0004_api_keys.sql")),
    (5, "flags_dead_letters_transport", include_str!("migrations/0005_flags_dead_letters_transport.sql")),
    (6, "appearances_camera_options", include_str!("migrations/0006_appearances_camera_options.sql")),
    (7, "node_capacity", include_str!("migrations/0007_node_capacity.sql")),
    (8, "gallery_model_evidence", include_str!("migrations/0008_gallery_model_evidence.sql")),
    (9, "retention_erasure", include_str!("migrations/0009_retention_erasure.sql")),
    (10, "appearance_faces", include_str!("migrations/0010_appearance_faces.sql")),
    (11, "review_audit", include_str!("migrations/0011_review_audit.sql")),
    (12, "appearance_faces_written", include_str!("migrations/0012_appearance_faces_written.sql")),
    (13, "unknown_identities", include_str!("migrations/0013_unknown_identities.sql")),
    (14, "alert_rules", include_str!("migrations/0014_alert_rules.sql")),
    (15, "camera_detect_url", include_str!("migrations/0015_camera_detect_url.sql")),
];

/// Arbitrary constant key for `pg_advisory_xact_lock`, unique to Panoptes' migrations.
const LOCK_KEY: i64 = 0x5041_4e4f_5054_4553; // "PANOPTES"

/// Applies every pending migration; returns the versions applied now.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, StorageError> {
    let q = |context: &'static str| move |source| StorageError::Query { context, source };
    let tx = client.transaction().await.map_err(q("begin migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await.map_err(q("lock migrations"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(q("create schema_migrations"))?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(q("read schema_migrations"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut now = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await.map_err(q("apply migration"))?;
        tx.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", &[version, name])
            .await
            .map_err(q("record migration"))?;
        now.push(*version);
    }
    tx.commit().await.map_err(q("commit migration"))?;
    Ok(now)
}

/// The newest schema version this build knows.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}
