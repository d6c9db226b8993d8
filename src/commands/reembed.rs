//! `panoptes reembed`: the embedder switch by hand. Makes the configured embedder the gallery's
//! target, embeds every kept enrollment photo with it in the foreground (progress on stderr), switches
//! the gallery to it, and reports by name the persons whose photos it could not embed. Running engines
//! follow the switch within seconds; an engine still configured with the old embedder keeps
//! re-aiming the gallery at it when it restarts, so change their configuration too.

use anyhow::{bail, Result};
use panoptes::context::{load_pipeline, Context};
use panoptes_engine::reembed::{PipelineLoader, Reembedder};
use std::sync::Arc;

pub async fn run(ctx: Context) -> Result<()> {
    let Context { settings, configured, store, .. } = ctx;
    let before = store.embeddings_per_model().await?;
    let state = store.aim_gallery_model(&configured, "panoptes reembed").await?;
    eprintln!("gallery serves with {}; target {}", state.active, state.target);
    let loader_settings = settings.clone();
    let loader: PipelineLoader = Arc::new(move || load_pipeline(&loader_settings));
    let reembedder = Reembedder::new(store.clone(), configured.clone(), loader, "panoptes reembed");
    let outcome = reembedder
        .pass(|s| {
            let t = &s.target;
            eprintln!("  {} of {} photos embedded, {} failed, {} left", t.embedded, t.photos, t.failed, t.pending());
        })
        .await?;
    if outcome.busy_elsewhere {
        bail!("an engine on this database is re-embedding the gallery now; it switches when done (see /api/v1/admin/stats)");
    }
    let after = store.embeddings_per_model().await?;
    let coverage = store.embedding_coverage(&configured).await?;
    let state = store.gallery_model().await?;
    println!("stored embeddings per model, before → after:");
    let mut models: Vec<_> = before.iter().chain(&after).map(|(m, _)| m.clone()).collect();
    models.sort_by_key(|m| m.to_string());
    models.dedup();
    for m in models {
        let count =
            |list: &[(panoptes_engine::embed::ModelId, i64)]| list.iter().find(|(x, _)| *x == m).map_or(0, |(_, n)| *n);
        println!("  {m}: {} → {}", count(&before), count(&after));
    }
    println!(
        "{configured}: {} of {} kept photos embedded in this run, {} could not be",
        outcome.embedded, coverage.photos, coverage.failed
    );
    for f in &coverage.failures {
        println!("  cannot embed a photo of {} (person {}): {}", f.person, f.person_id, f.reason);
    }
    for name in &coverage.without_photos {
        println!("  {name} has no kept photo to embed again: enroll them again");
    }
    match state {
        Some(s) if s.active == configured => println!("the gallery serves with {configured}"),
        Some(s) => bail!("the gallery still serves with {} ({} photos left)", s.active, coverage.pending()),
        None => bail!("no gallery model recorded"),
    }
    Ok(())
}
