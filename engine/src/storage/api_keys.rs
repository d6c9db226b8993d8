//! API keys created through the API, stored as SHA-256 digests (never the key itself).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{StorageError, Store};

/// A stored key as shown to operators: no digest, no key.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StoredApiKey {
    pub id: i64,
    pub name: String,
    /// `admin` or `viewer` (checked by the table).
    pub role: String,
    pub created_at: DateTime<Utc>,
}

/// What authentication needs of a stored key.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKeyDigest {
    pub name: String,
    pub role: String,
    pub sha256: Vec<u8>,
}

fn from_row(r: &tokio_postgres::Row) -> StoredApiKey {
    StoredApiKey { id: r.get(0), name: r.get(1), role: r.get(2), created_at: r.get(3) }
}

impl Store {
    pub async fn create_api_key(
        &self,
        name: &str,
        role: &str,
        sha256: &[u8; 32],
    ) -> Result<StoredApiKey, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "INSERT INTO api_keys (name, role, key_sha256) VALUES ($1, $2, $3)
                 RETURNING id, name, role, created_at",
                &[&name, &role, &sha256.as_slice()],
            )
            .await
            .map_err(|source| StorageError::Query { context: "create API key", source })?;
        Ok(from_row(&row))
    }

    pub async fn list_api_keys(&self) -> Result<Vec<StoredApiKey>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query("SELECT id, name, role, created_at FROM api_keys ORDER BY id", &[])
            .await
            .map_err(|source| StorageError::Query { context: "list API keys", source })?;
        Ok(rows.iter().map(from_row).collect())
    }

    /// Every stored key's digest, for the API's authentication.
    pub async fn api_key_digests(&self) -> Result<Vec<ApiKeyDigest>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query("SELECT name, role, key_sha256 FROM api_keys ORDER BY id", &[])
            .await
            .map_err(|source| StorageError::Query { context: "read API key digests", source })?;
        Ok(rows.iter().map(|r| ApiKeyDigest { name: r.get(0), role: r.get(1), sha256: r.get(2) }).collect())
    }

    /// Revokes a key; false when there was none with this id.
    pub async fn delete_api_key(&self, id: i64) -> Result<bool, StorageError> {
        let c = self.client().await?;
        let n = c
            .execute("DELETE FROM api_keys WHERE id = $1", &[&id])
            .await
            .map_err(|source| StorageError::Query { context: "delete API key", source })?;
        Ok(n == 1)
    }
}
