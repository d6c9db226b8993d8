//! `panoptes serve`: loads models, database and gallery, then serves the HTTP API until SIGINT/SIGTERM.

use actix_web::{web, App, HttpServer};
use anyhow::{Context as _, Result};
use panoptes_api::AppState;

use crate::context::Context;

pub async fn run(ctx: Context) -> Result<()> {
    let listen = ctx.settings.api.listen.clone();
    let state = web::Data::new(AppState { store: ctx.store.clone(), gallery: ctx.gallery.clone() });
    let server = HttpServer::new(move || App::new().app_data(state.clone()).configure(panoptes_api::configure))
        .bind(&listen)
        .with_context(|| format!("binding the API to {listen}"))?
        .shutdown_timeout(10)
        .run();
    tracing::info!(%listen, "panoptes is serving; /healthz and /readyz are up");
    server.await.context("HTTP server")?;
    // The pipeline stays loaded for the life of the server (the streaming engine will use it).
    drop(ctx);
    Ok(())
}
