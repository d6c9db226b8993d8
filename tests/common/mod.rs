//! Shared set-up for the integration tests: the real models, the real test photos and a fresh database
//! on the real PostgreSQL server that scripts/test.sh starts. A missing component fails the test with a
//! message saying how to provide it; nothing is skipped silently.
#![allow(dead_code)]

pub mod operator_api;
pub mod pg_cluster;
pub mod scenes;
pub mod scripted_rtsp;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use panoptes_engine::gallery::Gallery;
use panoptes_engine::gallery_sync::read_gallery;
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
    let client = panoptes_engine::storage::connect_client(&admin).await.expect("connect to test PostgreSQL");
    // Tests of one binary run in parallel threads, and the clock's resolution can give two of them
    // the same nanoseconds: a counter keeps the names apart.
    static CREATED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let name = format!("panoptes_test_{}_{}_{n}", std::process::id(), nanos);
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create test database");
    panoptes::throwaway_database::with_database(&admin, &name)
        .expect("PANOPTES_TEST_DATABASE_URL must be a postgresql://…/database URL")
}

pub async fn fresh_store() -> (Store, String) {
    let url = fresh_database().await;
    (Store::connect(&url, 4).await.expect("connect and migrate"), url)
}

pub async fn gallery_for(store: &Store, pipeline: &FacePipeline) -> Arc<RwLock<Gallery>> {
    Arc::new(RwLock::new(read_gallery(store, pipeline.model_info()).await.expect("load gallery")))
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

/// Encodes `photo` as `seconds` of 10 fps 1280×720 H.264 (Annex-B) with the given x264 options.
pub fn h264_clip(photo: &Path, seconds: u32, x264: &[&str], tag: &str) -> PathBuf {
    let mut encoder = vec!["-c:v", "libx264", "-pix_fmt", "yuv420p"];
    encoder.extend_from_slice(x264);
    video_clip(photo, seconds, 10, &encoder, &format!("{tag}.h264"))
}

/// An H.265 clip (Annex-B unless `file_name` names a container), 1280×720 at `fps`, of `photo`.
pub fn h265_clip(photo: &Path, seconds: u32, fps: u32, file_name: &str) -> PathBuf {
    let encoder = ["-c:v", "libx265", "-pix_fmt", "yuv420p", "-x265-params", "log-level=error:keyint=20"];
    video_clip(photo, seconds, fps, &encoder, file_name)
}

/// `photo` looped for `seconds` at `fps`, 1280×720 (letterboxed), encoded with `encoder` (ffmpeg
/// arguments) into `file_name`, whose extension picks the container.
pub fn video_clip(photo: &Path, seconds: u32, fps: u32, encoder: &[&str], file_name: &str) -> PathBuf {
    let out = temp_dir("clips").join(file_name);
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-loop", "1", "-i"])
        .arg(photo)
        .args(["-t", &seconds.to_string(), "-r", &fps.to_string()])
        .args(["-vf", "scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:(ow-iw)/2:(oh-ih)/2"])
        .args(encoder)
        .arg(&out)
        .status()
        .expect("ffmpeg (installed by scripts/setup.sh)");
    assert!(status.success(), "ffmpeg failed for {file_name}");
    out
}

pub fn comings_and_goings_clip(dir: &Path) -> PathBuf {
    visits_clip(dir, "comings-and-goings.h264", 1.5, 1.0)
}

/// A 1280×720 clip of `empty_secs` of an empty scene (the lower left of obama2.jpg), then `face_secs`
/// of obama2.jpg's face (~200 px): 10 fps, baseline, a keyframe every 5 frames. Looped, each pass
/// shows the face anew.
pub fn visits_clip(dir: &Path, file_name: &str, empty_secs: f32, face_secs: f32) -> PathBuf {
    let out = dir.join(file_name);
    let photo = photo("obama2.jpg");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-loop", "1", "-t", &empty_secs.to_string(), "-i"])
        .arg(&photo)
        .args(["-loop", "1", "-t", &face_secs.to_string(), "-i"])
        .arg(&photo)
        .args([
            "-filter_complex",
            "[0]crop=iw/3:ih/3:0:ih*2/3,scale=1280:720,setsar=1[a];\
             [1]scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:(ow-iw)/2:(oh-ih)/2,setsar=1[b];\
             [a][b]concat=n=2:v=1,fps=10[v]",
            "-map",
            "[v]",
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-g",
            "5",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg (installed by scripts/setup.sh)");
    assert!(status.success(), "ffmpeg failed");
    out
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A child process killed (and reaped) when the test ends, however it ends.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Enrolls `name` from the test photo `photo_name` with `panoptes enroll`, as an operator would
/// before starting the engine.
pub fn enroll_with_cli(db: &str, name: &str, photo_name: &str) {
    run_cli(db, &["enroll", "--name", name, &path_str(&photo(photo_name))]);
}

/// Runs `panoptes ARGS` on database `db`, which must succeed.
pub fn run_cli(db: &str, args: &[&str]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_panoptes"))
        .current_dir(root())
        .env("PANOPTES_DATABASE_URL", db)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("panoptes {args:?}: {e}"));
    assert!(out.status.success(), "panoptes {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `panoptes serve` on database `db`, listening on 127.0.0.1:`port`, writing snapshots under
/// `snapshots`, its output discarded; callers add their own settings and spawn it.
pub fn serve_command(db: &str, port: u16, snapshots: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_panoptes"));
    c.current_dir(root())
        .env("PANOPTES_DATABASE_URL", db)
        .env("PANOPTES_API__LISTEN", format!("\"127.0.0.1:{port}\""))
        .env("PANOPTES_SNAPSHOTS__DIR", format!("\"{}\"", path_str(snapshots)))
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

/// (status, JSON body or Null) of a request to an engine; None when it did not answer at all.
pub fn api_request(method: &str, url: &str, body: Option<serde_json::Value>) -> Option<(u16, serde_json::Value)> {
    let req = ureq::request(method, url).timeout(std::time::Duration::from_secs(15));
    let res = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    let res = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(_) => return None,
    };
    let status = res.status();
    Some((status, res.into_json().unwrap_or(serde_json::Value::Null)))
}

/// The sum of every sample of `name` in the /metrics of the engine at `api`.
pub fn api_metric(api: &str, name: &str) -> f64 {
    let text = ureq::get(&format!("{api}/metrics")).call().expect("/metrics").into_string().expect("text");
    metric_sum(&text, name)
}

/// The count a `SELECT count(…)` query returns on database `url`.
pub async fn count_rows(url: &str, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> i64 {
    let client = panoptes_engine::storage::connect_client(url).await.expect("connect");
    client.query_one(sql, params).await.expect("count").get(0)
}

/// The sum of every sample of `name` (all label sets) in a Prometheus exposition.
pub fn metric_sum(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// GStreamer's RTSP server (Debian packages, started by the test) looping an H.264 file at
/// rtsp://127.0.0.1:PORT/cam1. Killed on drop.
pub struct RtspServer {
    child: std::process::Child,
    pub port: u16,
}

impl RtspServer {
    pub fn start(clip: &Path, fps: u32) -> RtspServer {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
        Self::start_on(clip, fps, port)
    }

    pub fn start_on(clip: &Path, fps: u32, port: u16) -> RtspServer {
        let child = std::process::Command::new("/usr/bin/python3")
            .arg(root().join("tests/rtsp/rtsp_server.py"))
            .arg(clip)
            .arg(fps.to_string())
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the GStreamer RTSP server (/usr/bin/python3 with python3-gi; scripts/setup.sh)");
        let mut server = RtspServer { child, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(server.child.try_wait().ok().flatten().is_none(), "the RTSP server exited at start");
            assert!(std::time::Instant::now() < deadline, "the RTSP server did not listen within 20 s");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/cam1", self.port)
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `probe` until `pred` holds and returns that value; `limit` only guards against a hang (the
/// failure message shows the last value seen).
pub async fn eventually<T: std::fmt::Debug, F: std::future::Future<Output = T>>(
    what: &str,
    limit: std::time::Duration,
    mut probe: impl FnMut() -> F,
    pred: impl Fn(&T) -> bool,
) -> T {
    let start = std::time::Instant::now();
    loop {
        let value = probe().await;
        if pred(&value) {
            return value;
        }
        assert!(start.elapsed() < limit, "never reached: {what}; last seen {value:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The first `data:` line of a Server-Sent Events body, as JSON, waiting up to `limit`.
pub async fn first_sse_event<B>(body: &mut std::pin::Pin<Box<B>>, limit: std::time::Duration) -> serde_json::Value
where
    B: actix_web::body::MessageBody,
    B::Error: std::fmt::Debug,
{
    let mut text = String::new();
    tokio::time::timeout(limit, async {
        loop {
            let chunk = futures::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await;
            let Some(Ok(bytes)) = chunk else { panic!("event stream ended: {text}") };
            text.push_str(&String::from_utf8_lossy(&bytes));
            if let Some(line) = text.lines().find(|l| l.starts_with("data: ")) {
                return serde_json::from_str(&line["data: ".len()..]).expect("an event's data is JSON");
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no live event within {limit:?}"))
}

/// Settings for an engine of the tests on database `db`: the repository's models, one inference
/// worker, no demo camera, snapshots and media in a temporary directory of their own, `node` as its
/// lease identity. Callers adjust the rest before [`start_engine`].
pub fn engine_settings(db: &str, node: &str) -> panoptes::Settings {
    let mut s = panoptes::Settings::default();
    s.database.url = db.to_string();
    s.database.pool_size = 8;
    s.models.dir = root().join("models/onnx");
    s.models.onnxruntime = root().join(".local/onnxruntime/libonnxruntime.so");
    s.streaming.demo_clip = String::new();
    s.streaming.inference_workers = 1;
    s.streaming.node_id = node.to_string();
    let dir = temp_dir(&format!("engine-{node}"));
    s.snapshots.dir = path_str(&dir.join("snapshots"));
    s.api.media_root = path_str(&dir);
    s
}

/// The engine as `panoptes serve` assembles it, on the running actix system.
pub async fn start_engine(settings: panoptes::Settings) -> panoptes::Engine {
    let ctx = panoptes::Context::open(settings).await.expect("models and database");
    panoptes::Engine::start(ctx).await.expect("start the engine")
}

/// `src` re-encoded through the ffmpeg video filter `filter` (e.g. `scale=640:360` for a camera's
/// substream of it), with the same frames and GOP as the clips above (baseline, a keyframe every 5).
pub fn rendition(src: &Path, filter: &str, file_name: &str) -> PathBuf {
    let out = src.with_file_name(file_name);
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-r", "10", "-i"])
        .arg(src)
        .args(["-vf", filter, "-c:v", "libx264", "-profile:v", "baseline", "-g", "5", "-pix_fmt", "yuv420p"])
        .arg(&out)
        .status()
        .expect("ffmpeg (installed by scripts/setup.sh)");
    assert!(status.success(), "ffmpeg failed for {file_name}");
    out
}
