//! `panoptes keys create|list|delete`: API keys kept in the database (as `/api/v1/keys` does), for
//! the first key of an engine that is not reachable without one.

use anyhow::{anyhow, bail, Result};
use panoptes_api::config::Role;
use panoptes_engine::storage::Store;

pub async fn create(store: &Store, name: &str, role: &str) -> Result<()> {
    let role = Role::parse(role).ok_or_else(|| anyhow!("--role must be admin or viewer, not {role:?}"))?;
    let name = panoptes_api::error::valid_name(name).map_err(|e| anyhow!("--name: {e}"))?;
    let (key, digest) = panoptes_api::auth::generate_key();
    let stored = store.create_api_key(&name, role.as_str(), &digest).await.map_err(|e| {
        if e.is_unique_violation() {
            anyhow!("an API key named {name:?} already exists")
        } else {
            e.into()
        }
    })?;
    eprintln!(
        "API key {} ({}, id {}) created; copy it now, it is not shown again:",
        stored.name, stored.role, stored.id
    );
    println!("{key}");
    Ok(())
}

pub async fn list(store: &Store) -> Result<()> {
    println!("{:>6}  {:<7}  {:<25}  name", "id", "role", "created");
    for k in store.list_api_keys().await? {
        println!("{:>6}  {:<7}  {:<25}  {}", k.id, k.role, k.created_at.format("%Y-%m-%d %H:%M:%S UTC"), k.name);
    }
    Ok(())
}

pub async fn delete(store: &Store, id: i64) -> Result<()> {
    if !store.delete_api_key(id).await? {
        bail!("no stored API key with id {id}");
    }
    println!("API key {id} revoked (every engine stops accepting it within 5 s)");
    Ok(())
}
