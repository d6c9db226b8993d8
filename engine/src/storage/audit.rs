//! The audit trail: who changed the engine's judgement (confirmed, rejected or undid, named or
//! merged unknown identities), searched by face, or changed alert rules, and when.
//! Entries are written in the transaction of the change they record, so one never stands without the
//! other.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;

use super::{StorageError, Store};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// Who: an API key's name (`key:<name>`), or the client's address on an open API.
    pub actor: String,
    /// What: `confirm`, `reject`, `undo_confirm`, `undo_reject`, `search`, `name_unknown`,
    /// `merge_unknown`, `create_alert_rule`, `update_alert_rule`, `delete_alert_rule`.
    pub action: String,
    /// On what: `detection:<id>`.
    pub target: String,
    /// A few numbers (persons, embedding or negative ids); never a face.
    pub details: serde_json::Value,
}

/// Records one action on `c`, which is the change's own transaction.
pub(crate) async fn record(
    c: &impl GenericClient,
    actor: &str,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> Result<(), StorageError> {
    c.execute(
        "INSERT INTO audit_log (actor, action, target, details) VALUES ($1, $2, $3, $4)",
        &[&actor, &action, &target, &details],
    )
    .await
    .map_err(|source| StorageError::Query { context: "record an audit entry", source })?;
    Ok(())
}

impl Store {
    /// Records a search by face (`crate::search`): who searched, for what (`photo`,
    /// `detection:<id>`), with the filters and how many answers; never the face.
    pub async fn record_search(
        &self,
        actor: &str,
        target: &str,
        details: serde_json::Value,
    ) -> Result<(), StorageError> {
        let c = self.client().await?;
        record(&c, actor, "search", target, details).await
    }

    /// Audit entries, newest first, older than entry `before` when given.
    pub async fn list_audit(&self, before: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, at, actor, action, target, details FROM audit_log
                 WHERE $1::bigint IS NULL OR id < $1 ORDER BY id DESC LIMIT $2",
                &[&before, &limit],
            )
            .await
            .map_err(|source| StorageError::Query { context: "list the audit trail", source })?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                id: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                action: r.get(3),
                target: r.get(4),
                details: r.get(5),
            })
            .collect())
    }

    /// Deletes up to `limit` audit entries older than `before`; answers how many.
    pub async fn delete_expired_audit(&self, before: DateTime<Utc>, limit: i64) -> Result<u64, StorageError> {
        let c = self.client().await?;
        c.execute(
            "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < $1 ORDER BY id LIMIT $2)",
            &[&before, &limit],
        )
        .await
        .map_err(|source| StorageError::Query { context: "delete expired audit entries", source })
    }
}
