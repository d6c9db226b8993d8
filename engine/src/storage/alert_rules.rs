//! Alert rules set through the API (`crate::alerts`). Each change is written to the audit trail in
//! its own transaction.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::audit::record;
use super::{StorageError, Store};
use crate::alerts::{AlertRule, RuleSource, RuleSpec};

/// A change refused by what is stored.
#[derive(Debug, thiserror::Error)]
pub enum RuleWriteError {
    #[error("another alert rule is already named {0:?}")]
    NameTaken(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

const SELECT: &str = "SELECT id, spec, updated_at, updated_by FROM alert_rules";

fn q(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StorageError {
    move |source| StorageError::Query { context, source }
}

/// A stored rule whose JSON no longer reads as a rule (edited by hand) is skipped with a warning,
/// not allowed to stop every other rule.
fn from_row(r: &Row) -> Option<AlertRule> {
    let id: i64 = r.get(0);
    let spec: serde_json::Value = r.get(1);
    let updated_at: DateTime<Utc> = r.get(2);
    match serde_json::from_value::<RuleSpec>(spec) {
        Ok(spec) => Some(AlertRule {
            id: Some(id),
            source: RuleSource::Api,
            spec,
            updated_at: Some(updated_at),
            updated_by: Some(r.get(3)),
        }),
        Err(e) => {
            tracing::warn!(rule_id = id, error = %e, "stored alert rule cannot be read; it is ignored");
            None
        }
    }
}

/// The rule just written, as written.
fn written(r: &Row, spec: &RuleSpec) -> AlertRule {
    AlertRule {
        id: Some(r.get(0)),
        source: RuleSource::Api,
        spec: spec.clone(),
        updated_at: Some(r.get(2)),
        updated_by: Some(r.get(3)),
    }
}

fn name_taken(e: StorageError, name: &str) -> RuleWriteError {
    if e.is_unique_violation() {
        RuleWriteError::NameTaken(name.to_string())
    } else {
        RuleWriteError::Storage(e)
    }
}

impl Store {
    pub async fn list_alert_rules(&self) -> Result<Vec<AlertRule>, StorageError> {
        let c = self.client().await?;
        let rows = c.query(&format!("{SELECT} ORDER BY id"), &[]).await.map_err(q("list alert rules"))?;
        Ok(rows.iter().filter_map(from_row).collect())
    }

    pub async fn alert_rule(&self, id: i64) -> Result<Option<AlertRule>, StorageError> {
        let c = self.client().await?;
        let row = c.query_opt(&format!("{SELECT} WHERE id = $1"), &[&id]).await.map_err(q("read an alert rule"))?;
        Ok(row.as_ref().and_then(from_row))
    }

    pub async fn create_alert_rule(&self, spec: &RuleSpec, actor: &str) -> Result<AlertRule, RuleWriteError> {
        let json = serde_json::to_value(spec).unwrap_or_default();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(q("begin an alert rule"))?;
        let row = tx
            .query_one(
                "INSERT INTO alert_rules (name, spec, updated_by) VALUES ($1, $2, $3)
                 RETURNING id, spec, updated_at, updated_by",
                &[&spec.name, &json, &actor],
            )
            .await
            .map_err(q("store an alert rule"))
            .map_err(|e| name_taken(e, &spec.name))?;
        let id: i64 = row.get(0);
        record(&tx, actor, "create_alert_rule", &format!("alert_rule:{id}"), serde_json::json!({ "name": spec.name }))
            .await?;
        tx.commit().await.map_err(q("commit an alert rule"))?;
        Ok(written(&row, spec))
    }

    /// Replaces a rule; `None` when there is no such rule.
    pub async fn replace_alert_rule(
        &self,
        id: i64,
        spec: &RuleSpec,
        actor: &str,
    ) -> Result<Option<AlertRule>, RuleWriteError> {
        let json = serde_json::to_value(spec).unwrap_or_default();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(q("begin an alert rule change"))?;
        let row = tx
            .query_opt(
                "UPDATE alert_rules SET name = $2, spec = $3, updated_by = $4, updated_at = now() WHERE id = $1
                 RETURNING id, spec, updated_at, updated_by",
                &[&id, &spec.name, &json, &actor],
            )
            .await
            .map_err(q("change an alert rule"))
            .map_err(|e| name_taken(e, &spec.name))?;
        let Some(row) = row else { return Ok(None) };
        record(&tx, actor, "update_alert_rule", &format!("alert_rule:{id}"), serde_json::json!({ "name": spec.name }))
            .await?;
        tx.commit().await.map_err(q("commit an alert rule change"))?;
        Ok(Some(written(&row, spec)))
    }

    /// Deletes a rule; false when there was none.
    pub async fn delete_alert_rule(&self, id: i64, actor: &str) -> Result<bool, StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(q("begin an alert rule deletion"))?;
        let name: Option<String> = tx
            .query_opt("DELETE FROM alert_rules WHERE id = $1 RETURNING name", &[&id])
            .await
            .map_err(q("delete an alert rule"))?
            .map(|r| r.get(0));
        let Some(name) = name else { return Ok(false) };
        record(&tx, actor, "delete_alert_rule", &format!("alert_rule:{id}"), serde_json::json!({ "name": name }))
            .await?;
        tx.commit().await.map_err(q("commit an alert rule deletion"))?;
        Ok(true)
    }
}
