//! `panoptes persons list|delete`.

use anyhow::{bail, Result};
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

pub async fn delete(store: &Store, id: i64) -> Result<()> {
    if !store.delete_person(id).await? {
        bail!("no person with id {id}");
    }
    println!("person {id} deleted (with their embeddings)");
    Ok(())
}
