//! SIGTERM while the engine is busy: four file cameras on which a person comes and goes (an event
//! every 2.5 s on each), eight clients hammering the API. The process exits with status 0 within
//! 10 s, says it flushed the sink, and every detection event emitted before the signal is stored.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn metric(api: &str, name: &str) -> f64 {
    let Ok(res) = ureq::get(&format!("{api}/metrics")).call() else { return 0.0 };
    common::metric_sum(&res.into_string().unwrap_or_default(), name)
}

#[tokio::test]
async fn sigterm_under_load_flushes_detections_and_exits_within_ten_seconds() {
    let db = common::fresh_database().await;
    let work = common::temp_dir("sigterm");
    let clip = common::comings_and_goings_clip(&work);
    common::enroll_with_cli(&db, "Barack Obama", "obama.jpg");

    let port = common::free_port();
    let log = work.join("engine.log");
    let mut engine = common::serve_command(&db, port, &work.join("snapshots"))
        .env("PANOPTES_API__MEDIA_ROOT", format!("\"{}\"", common::path_str(&work)))
        .env("PANOPTES_API__RATE_LIMIT_PER_SECOND", "100000")
        .env("PANOPTES_API__RATE_LIMIT_BURST", "100000")
        .env("PANOPTES_STREAMING__DEMO_CLIP", "\"\"")
        .env("PANOPTES_STREAMING__COOLDOWN_SECS", "1")
        // The person is away 1.5 s between showings: each showing is a track, and an appearance.
        .env("PANOPTES_TRACKING__LOST_SECS", "0.3")
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start panoptes serve");
    let api = format!("http://127.0.0.1:{port}");
    let ready = format!("{api}/readyz");
    common::eventually(
        "the engine is ready",
        Duration::from_secs(60),
        || async { ureq::get(&ready).call().is_ok() },
        |ok| *ok,
    )
    .await;
    for i in 0..4 {
        let body = serde_json::json!({ "name": format!("door-{i}"), "url": common::path_str(&clip) });
        let res = ureq::post(&format!("{api}/api/v1/cameras")).send_json(body);
        assert_eq!(res.map(|r| r.status()).ok(), Some(201));
    }

    // Eight clients reading as fast as they can until the engine stops answering.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let (stop, api) = (stop.clone(), api.clone());
            std::thread::spawn(move || {
                let path = if i % 2 == 0 { "/api/v1/cameras" } else { "/api/v1/detections?limit=50" };
                while !stop.load(Ordering::Relaxed) {
                    let _ = ureq::get(&format!("{api}{path}")).timeout(Duration::from_secs(2)).call();
                }
            })
        })
        .collect();
    common::eventually(
        "events flow",
        Duration::from_secs(60),
        || async { metric(&api, "panoptes_detection_events_total") },
        |n| *n >= 8.0,
    )
    .await;

    let emitted_before = metric(&api, "panoptes_detection_events_total") as i64;
    assert!(Command::new("kill").args(["-TERM", &engine.id().to_string()]).status().unwrap().success());
    let signalled = Instant::now();
    let status = loop {
        if let Some(s) = engine.try_wait().unwrap() {
            break s;
        }
        if signalled.elapsed() > Duration::from_secs(30) {
            let _ = engine.kill();
            panic!("serve did not exit within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = signalled.elapsed();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "exit status {status}:\n{text}");
    assert!(took <= Duration::from_secs(10), "took {took:?} to exit after SIGTERM");
    assert!(text.contains("detections flushed at shutdown"), "no flush reported:\n{text}");

    let client = panoptes_engine::storage::connect_client(&db).await.expect("connect");
    let stored: i64 = client.query_one("SELECT count(*) FROM detections", &[]).await.unwrap().get(0);
    eprintln!("SIGTERM: exit in {took:?}; {emitted_before} events emitted before it, {stored} stored");
    assert!(stored >= emitted_before, "{stored} stored < {emitted_before} emitted before SIGTERM");
}
