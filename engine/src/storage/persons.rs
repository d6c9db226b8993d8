//! Enrolled persons.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;

use super::{StorageError, Store};

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Person {
    pub id: i64,
    pub name: String,
    pub metadata: serde_json::Value,
    pub faces: i64,
    pub created_at: DateTime<Utc>,
    /// Names alert rules can pick the person by (`crate::alerts`).
    pub groups: Vec<String>,
}

const SELECT: &str = "SELECT p.id, p.name, p.metadata, p.created_at,
        (SELECT count(*) FROM face_embeddings e WHERE e.person_id = p.id) AS faces, p.groups
    FROM persons p";

fn from_row(r: &Row) -> Person {
    Person { id: r.get(0), name: r.get(1), metadata: r.get(2), created_at: r.get(3), faces: r.get(4), groups: r.get(5) }
}

impl Store {
    pub async fn create_person(&self, name: &str, metadata: &serde_json::Value) -> Result<Person, StorageError> {
        self.create_person_in_groups(name, metadata, &[]).await
    }

    pub async fn create_person_in_groups(
        &self,
        name: &str,
        metadata: &serde_json::Value,
        groups: &[String],
    ) -> Result<Person, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "INSERT INTO persons (name, metadata, groups) VALUES ($1, $2, $3)
                 RETURNING id, name, metadata, created_at, 0::bigint, groups",
                &[&name, metadata, &groups],
            )
            .await
            .map_err(|source| StorageError::Query { context: "create person", source })?;
        Ok(from_row(&row))
    }

    /// The person named `name` (compared without regard to case), if any.
    pub async fn person_named(&self, name: &str) -> Result<Option<i64>, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_opt("SELECT id FROM persons WHERE lower(name) = lower($1) ORDER BY id LIMIT 1", &[&name])
            .await
            .map_err(|source| StorageError::Query { context: "find a person by name", source })?;
        Ok(row.map(|r| r.get(0)))
    }

    pub async fn person(&self, id: i64) -> Result<Option<Person>, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_opt(&format!("{SELECT} WHERE p.id = $1"), &[&id])
            .await
            .map_err(|source| StorageError::Query { context: "read person", source })?;
        Ok(row.as_ref().map(from_row))
    }

    /// Persons whose name contains `search` (case-insensitive), by id.
    pub async fn list_persons(
        &self,
        search: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Person>, StorageError> {
        let c = self.client().await?;
        let pattern = like_pattern(search);
        let rows = c
            .query(
                &format!("{SELECT} WHERE ($1::text IS NULL OR lower(p.name) LIKE $1) ORDER BY p.id LIMIT $2 OFFSET $3"),
                &[&pattern, &limit, &offset],
            )
            .await
            .map_err(|source| StorageError::Query { context: "list persons", source })?;
        Ok(rows.iter().map(from_row).collect())
    }

    /// Deletes a person and (by cascade) their embeddings; false when there was no such person.
    pub async fn delete_person(&self, id: i64) -> Result<bool, StorageError> {
        let c = self.client().await?;
        let n = c
            .execute("DELETE FROM persons WHERE id = $1", &[&id])
            .await
            .map_err(|source| StorageError::Query { context: "delete person", source })?;
        Ok(n > 0)
    }

    /// Changes name, metadata and/or groups; `None` when there is no such person.
    pub async fn update_person(
        &self,
        id: i64,
        name: Option<&str>,
        metadata: Option<&serde_json::Value>,
        groups: Option<&[String]>,
    ) -> Result<Option<Person>, StorageError> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE persons SET name = coalesce($2, name), metadata = coalesce($3, metadata),
                     groups = coalesce($4, groups), updated_at = now()
                 WHERE id = $1",
                &[&id, &name, &metadata, &groups],
            )
            .await
            .map_err(|source| StorageError::Query { context: "update person", source })?;
        drop(c);
        if n == 0 {
            return Ok(None);
        }
        self.person(id).await
    }

    /// Every person's groups, for the persons that have some (alert rules that name groups).
    pub async fn person_groups(&self) -> Result<HashMap<i64, Vec<String>>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query("SELECT id, groups FROM persons WHERE cardinality(groups) > 0", &[])
            .await
            .map_err(|source| StorageError::Query { context: "read persons' groups", source })?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Keeps the compressed copy of an enrolled photo (`source_sha256`: the upload's digest).
    pub async fn add_person_photo(
        &self,
        person_id: i64,
        embedding_id: i64,
        source_sha256: &str,
        jpeg: &[u8],
    ) -> Result<(), StorageError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO person_photos (person_id, embedding_id, source_sha256, jpeg) VALUES ($1, $2, $3, $4)",
            &[&person_id, &embedding_id, &source_sha256, &jpeg],
        )
        .await
        .map_err(|source| StorageError::Query { context: "store person photo", source })?;
        Ok(())
    }

    /// Number of persons whose name contains `search`.
    pub async fn count_persons(&self, search: Option<&str>) -> Result<i64, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT count(*) FROM persons p WHERE ($1::text IS NULL OR lower(p.name) LIKE $1)",
                &[&like_pattern(search)],
            )
            .await
            .map_err(|source| StorageError::Query { context: "count persons", source })?;
        Ok(row.get(0))
    }

    /// Names of the given persons, for labelling matches.
    pub async fn person_names(&self, ids: &[i64]) -> Result<Vec<(i64, String)>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query("SELECT id, name FROM persons WHERE id = ANY($1)", &[&ids])
            .await
            .map_err(|source| StorageError::Query { context: "read person names", source })?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

/// `%text%` for a case-insensitive LIKE, with the pattern's own wildcards escaped.
fn like_pattern(search: Option<&str>) -> Option<String> {
    search.map(|s| format!("%{}%", s.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")))
}
