//! Shared set-up for the integration tests: the real models, the real test photos and a fresh database
//! on the real PostgreSQL server that scripts/test.sh starts. A missing component fails the test with a
//! message saying how to provide it; nothing is skipped silently.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use panoptes_engine::enrollment::load_gallery;
use panoptes_engine::gallery::Gallery;
use panoptes_engine::pipeline::{FacePipeline, PipelineConfig};
use panoptes_engine::runtime::Runtime;
use panoptes_engine::storage::Store;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn models_dir() -> PathBuf {
    let dir = root().join("models/onnx");
    assert!(
        dir.join("mobilefacenet.onnx").is_file(),
        "models missing in {}: run scripts/setup.sh (or models/fetch.sh)",
        dir.display()
    );
    dir
}

pub fn photo(name: &str) -> PathBuf {
    let p = root().join("tests/data/photos").join(name);
    assert!(p.is_file(), "test photo {} missing: run models/fetch.sh", p.display());
    p
}

pub fn photo_bytes(name: &str) -> Vec<u8> {
    std::fs::read(photo(name)).expect("read test photo")
}

pub fn runtime() -> Runtime {
    let lib = root().join(".local/onnxruntime/libonnxruntime.so");
    Runtime::load(&lib).expect("ONNX Runtime: run scripts/setup.sh (or scripts/onnxruntime.sh)")
}

pub fn pipeline_with(config: &PipelineConfig) -> FacePipeline {
    FacePipeline::load(&runtime(), &models_dir(), config).expect("load models")
}

pub fn pipeline() -> FacePipeline {
    pipeline_with(&PipelineConfig::default())
}

/// URL of the test server's maintenance database, from PANOPTES_TEST_DATABASE_URL (set by scripts/test.sh).
pub fn admin_url() -> String {
    std::env::var("PANOPTES_TEST_DATABASE_URL")
        .expect("PANOPTES_TEST_DATABASE_URL is not set: run the suite with scripts/test.sh, which starts PostgreSQL")
}

/// Creates an empty database for one test and returns its URL.
pub async fn fresh_database() -> String {
    let admin = admin_url();
    let (client, conn) =
        tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.expect("connect to test PostgreSQL");
    tokio::spawn(conn);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let name = format!("panoptes_test_{}_{}", std::process::id(), nanos);
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create test database");
    match admin.rfind('/') {
        Some(i) => format!("{}/{}", &admin[..i], name),
        None => panic!("PANOPTES_TEST_DATABASE_URL must be a postgresql:// URL"),
    }
}

pub async fn fresh_store() -> (Store, String) {
    let url = fresh_database().await;
    (Store::connect(&url, 4).await.expect("connect and migrate"), url)
}

pub async fn gallery_for(store: &Store, pipeline: &FacePipeline) -> Arc<RwLock<Gallery>> {
    Arc::new(RwLock::new(load_gallery(store, pipeline).await.expect("load gallery")))
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let d = std::env::temp_dir().join(format!("panoptes-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

pub fn venv_python() -> PathBuf {
    let p = root().join("models/.venv/bin/python");
    assert!(p.is_file(), "{} missing: run models/fetch.sh", p.display());
    p
}

pub fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
