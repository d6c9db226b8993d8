//! `panoptes serve` starts, answers /healthz and /readyz, and stops on SIGTERM.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{free_port, KillOnDrop};

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    request(port, "GET", path, "").map(|(status, _, body)| (status, body))
}

/// (status, head, body) of one request on a fresh connection.
fn request(port: u16, method: &str, path: &str, headers: &str) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split(' ').nth(1)?.parse().ok()?;
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    Some((status, head.to_ascii_lowercase(), body.to_string()))
}

#[tokio::test]
async fn serve_reports_health_and_readiness_and_stops_on_sigterm() {
    let db = common::fresh_database().await;
    let port = free_port();
    let child = common::serve_command(&db, port, &common::temp_dir("serve").join("snapshots"))
        .env("PANOPTES_API__CORS_ORIGINS", "[\"https://dash.example\"]")
        .spawn()
        .expect("start panoptes serve");
    let mut server = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let health = loop {
        if let Some(r) = get(port, "/healthz") {
            break r;
        }
        assert!(Instant::now() < deadline, "serve did not come up");
        assert!(server.0.try_wait().unwrap().is_none(), "serve exited early");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(health.0, 200);
    let (status, body) = get(port, "/readyz").expect("readyz");
    assert_eq!(status, 200, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["gallery_embeddings"], 0);
    assert!(ready["embedder"].as_str().unwrap().starts_with("mobilefacenet@"));

    // A browser dashboard on the configured origin may call the API; another origin may not.
    let preflight = |origin: &str| {
        let h = format!("Origin: {origin}\r\nAccess-Control-Request-Method: GET\r\n");
        request(port, "OPTIONS", "/api/v1/cameras", &h).expect("preflight")
    };
    let (status, head, _) = preflight("https://dash.example");
    assert_eq!(status, 200);
    assert!(head.contains("access-control-allow-origin: https://dash.example"), "{head}");
    let (_, head, _) = preflight("https://evil.example");
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    let (status, _, body) = request(port, "GET", "/api/v1/nothing", "").unwrap();
    assert_eq!(status, 404);
    assert!(body.contains("no_such_route"), "{body}");

    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "serve did not stop within 15 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}
