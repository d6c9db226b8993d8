//! `panoptes serve`: starts the engine (see `panoptes::assembly`) and serves its HTTP API until
//! SIGINT/SIGTERM, then stops the engine in order.

use std::time::Duration;

use actix_web::{App, HttpServer};
use anyhow::{Context as _, Result};
use panoptes::{Context, Engine};

pub async fn run(ctx: Context) -> Result<()> {
    let api = ctx.settings.api.clone();
    // Before anything starts: an open API on an address others can reach is refused (secure default).
    let stored_keys = ctx.store.list_api_keys().await.context("reading the stored API keys")?.len();
    panoptes_api::auth::check_not_open(&api, stored_keys)?;
    let engine = Engine::start(ctx).await.context("starting the engine")?;
    let state = engine.api_state();
    let (json_limit, cors_origins) = (api.json_limit_bytes, api.cors_origins.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(actix_web::middleware::from_fn(panoptes_api::guard::guard))
            .wrap(actix_web::middleware::Condition::new(!cors_origins.is_empty(), cors(&cors_origins)))
            .wrap(actix_web::middleware::from_fn(panoptes_api::http_metrics::record))
            .configure(|cfg| panoptes_api::routes::configure_with_limit(cfg, json_limit))
    });
    let tls = panoptes_api::tls::server_config(&api.tls_cert, &api.tls_key).context("api TLS")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listen = api.listen;
    let server = match tls {
        Some(config) => server.bind_rustls_0_23(&listen, config),
        None => server.bind(&listen),
    }
    .with_context(|| format!("binding the API to {listen}"))?
    .shutdown_timeout(5)
    // Longer than any client pauses between requests on a kept-alive connection: a server that
    // closes first races the client's next request, which then fails (seen under locust at 5 s).
    .keep_alive(Duration::from_secs(75))
    .run();
    tracing::info!(%listen, scheme, "panoptes is serving; /healthz and /readyz are up");
    server.await.context("HTTP server")?;

    // Shutdown (SIGINT/SIGTERM): stop the cameras, then write what the sink still holds.
    match engine.shutdown().await.flushed {
        Ok(n) => tracing::info!(written = n, "detections flushed at shutdown"),
        Err(e) => tracing::error!(error = %e, "could not flush every detection at shutdown"),
    }
    Ok(())
}

/// CORS for browser dashboards on other origins (`api.cors_origins`; "*" allows any). Preflight
/// requests are answered here, before the key check.
fn cors(origins: &[String]) -> actix_cors::Cors {
    let base = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "DELETE"])
        .allowed_headers(["authorization", "x-api-key", "content-type"])
        .max_age(3600);
    if origins.iter().any(|o| o == "*") {
        return base.allow_any_origin();
    }
    origins.iter().fold(base, |c, o| c.allowed_origin(o))
}
