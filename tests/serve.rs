//! `panoptes serve` starts, answers /healthz and /readyz, and stops on SIGTERM.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{free_port, KillOnDrop};

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    request(port, "GET", path, "", "").map(|(status, _, body)| (status, body))
}

fn post_json(port: u16, path: &str, json: &serde_json::Value) -> Option<(u16, String)> {
    let body = json.to_string();
    let headers = format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    request(port, "POST", path, &headers, &body).map(|(status, _, body)| (status, body))
}

/// (status, head, body) of one request on a fresh connection.
fn request(port: u16, method: &str, path: &str, headers: &str, body: &str) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n{body}").ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    // Bodies may be JPEG: only the head needs to be text.
    let buf = String::from_utf8_lossy(&raw).into_owned();
    let status = buf.split(' ').nth(1)?.parse().ok()?;
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    Some((status, head.to_ascii_lowercase(), body.to_string()))
}

/// Waits (60 s at most) for `/healthz` to answer; its answer.
fn wait_until_up(port: u16, server: &mut KillOnDrop) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(r) = get(port, "/healthz") {
            return r;
        }
        assert!(Instant::now() < deadline, "serve did not come up");
        assert!(server.0.try_wait().unwrap().is_none(), "serve exited early");
        std::thread::sleep(Duration::from_millis(100));
    }
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
    let health = wait_until_up(port, &mut server);
    assert_eq!(health.0, 200);
    let (status, body) = get(port, "/readyz").expect("readyz");
    assert_eq!(status, 200, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["gallery_embeddings"], 0);
    assert!(ready["embedder"].as_str().unwrap().starts_with(&format!("{}@", panoptes_engine::embed::DEFAULT_EMBEDDER)));

    // A browser dashboard on the configured origin may call the API; another origin may not.
    let preflight = |origin: &str| {
        let h = format!("Origin: {origin}\r\nAccess-Control-Request-Method: GET\r\n");
        request(port, "OPTIONS", "/api/v1/cameras", &h, "").expect("preflight")
    };
    let (status, head, _) = preflight("https://dash.example");
    assert_eq!(status, 200);
    assert!(head.contains("access-control-allow-origin: https://dash.example"), "{head}");
    let (_, head, _) = preflight("https://evil.example");
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    let (status, _, body) = request(port, "GET", "/api/v1/nothing", "", "").unwrap();
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

/// Camera passwords are needed to connect, so the database holds them; nothing else may show them:
/// not the API's answers, not the metrics, not the logs (at debug level), not the camera errors.
#[tokio::test]
async fn camera_credentials_appear_in_no_answer_metric_or_log_line() {
    use common::scripted_rtsp::{Script, ScriptedRtspServer};
    const SECRETS: [&str; 2] = ["Sup3rS3cret", "An0therS3cret"];
    let clip = common::h264_clip(&common::photo("obama.jpg"), 2, &["-profile:v", "baseline", "-g", "10"], "creds");
    let server = ScriptedRtspServer::start(&clip, 10, Script::Clean);
    let closed = free_port();
    let db = common::fresh_database().await;
    let port = free_port();
    let dir = common::temp_dir("serve-creds");
    let log_path = dir.join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = common::serve_command(&db, port, &dir.join("snapshots"))
        .env("RUST_LOG", "debug")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start panoptes serve");
    let mut serve = KillOnDrop(child);
    wait_until_up(port, &mut serve);
    let add = |name: &str, url: String| {
        let (status, answer) =
            post_json(port, "/api/v1/cameras", &serde_json::json!({ "name": name, "url": url })).expect("answer");
        assert_eq!(status, 201, "{answer}");
        answer
    };
    let mut seen = Vec::new();
    seen.push(add("refusing", format!("rtsp://operator:{}@127.0.0.1:{closed}/cam1", SECRETS[0])));
    seen.push(add("streaming", format!("rtsp://viewer:{}@127.0.0.1:{}/cam1", SECRETS[1], server.port)));
    // Both cameras at work: one streaming, the other failing and logging why.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = get(port, "/api/v1/cameras").expect("camera list");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let state =
            |name: &str| v["items"].as_array().unwrap().iter().find(|c| c["name"] == name).map(|c| c["status"].clone());
        let refusing = state("refusing").unwrap_or_default();
        let streaming = state("streaming").unwrap_or_default();
        if refusing["last_error"].is_string() && streaming["state"] == "streaming" {
            break;
        }
        assert!(Instant::now() < deadline, "cameras not at work: {refusing} / {streaming}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let ids: Vec<i64> = seen
        .iter()
        .map(|answer| {
            serde_json::from_str::<serde_json::Value>(answer).ok().and_then(|v| v["id"].as_i64()).expect("camera id")
        })
        .collect();
    let mut paths: Vec<String> = ids.iter().map(|id| format!("/api/v1/cameras/{id}")).collect();
    paths.extend(["/api/v1/cameras", "/metrics", "/api/v1/admin/stats"].map(String::from));
    for path in &paths {
        let (status, body) = get(port, path).expect("answer");
        assert_eq!(status, 200, "{path}: {body}");
        seen.push(body);
    }
    let pid = serve.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let _ = serve.0.wait();
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.contains(&format!("127.0.0.1:{closed}")), "the failing camera was logged");
    seen.push(logs);
    for text in &seen {
        for secret in SECRETS {
            assert!(!text.contains(secret), "a camera password leaked: …{}…", excerpt(text, secret));
        }
        assert!(!text.contains("operator:") && !text.contains("viewer:"), "a camera user name leaked");
    }
}

/// The line holding `secret`, for the failure message.
fn excerpt<'a>(text: &'a str, secret: &str) -> &'a str {
    text.lines().find(|l| l.contains(secret)).unwrap_or("")
}

/// `panoptes enroll` and `panoptes persons delete` write to the database only; the running engine
/// notices within its 5 s check (readiness reports the gallery's size).
#[tokio::test]
async fn persons_enrolled_and_deleted_from_the_command_line_reach_the_running_engine() {
    let db = common::fresh_database().await;
    let port = free_port();
    let child = common::serve_command(&db, port, &common::temp_dir("serve-cli").join("snapshots"))
        .spawn()
        .expect("start panoptes serve");
    let _serve = KillOnDrop(child);
    let gallery_size = || {
        let (_, body) = get(port, "/readyz")?;
        serde_json::from_str::<serde_json::Value>(&body).ok()?["gallery_embeddings"].as_i64()
    };
    let wait_for_size = |want: i64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if gallery_size() == Some(want) {
                return;
            }
            assert!(Instant::now() < deadline, "gallery never reached {want} (last {:?})", gallery_size());
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait_for_size(0);
    common::enroll_with_cli(&db, "Barack Obama", "obama.jpg");
    wait_for_size(1);
    common::run_cli(&db, &["persons", "delete", "1"]);
    wait_for_size(0);
}

/// `panoptes serve` with its demo camera and Obama enrolled: the detection's snapshot is served
/// (it once answered 503 "snapshots are disabled in this process" while the JPEG files were on disk).
#[tokio::test]
async fn a_running_serve_serves_the_snapshots_of_its_detections() {
    let db = common::fresh_database().await;
    common::enroll_with_cli(&db, "Barack Obama", "obama.jpg");
    let port = free_port();
    let child = common::serve_command(&db, port, &common::temp_dir("serve-snap").join("snapshots"))
        .spawn()
        .expect("start panoptes serve");
    let mut serve = KillOnDrop(child);
    wait_until_up(port, &mut serve);
    let deadline = Instant::now() + Duration::from_secs(60);
    let detection = loop {
        let (_, body) = get(port, "/api/v1/detections?limit=1").expect("detections");
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        if let Some(d) = page["items"].as_array().and_then(|i| i.first()).cloned() {
            break d;
        }
        assert!(Instant::now() < deadline, "no detection from the demo camera: {body}");
        std::thread::sleep(Duration::from_millis(250));
    };
    let url = detection["snapshot_url"].as_str().unwrap_or_else(|| panic!("no snapshot: {detection}"));
    let (status, head, _) = request(port, "GET", url, "", "").expect("snapshot");
    assert_eq!(status, 200, "{url}: {head}");
    assert!(head.contains("content-type: image/jpeg"), "{head}");
    let (status, head, _) = request(port, "GET", &format!("{url}?kind=frame"), "", "").expect("frame snapshot");
    assert_eq!(status, 200, "{head}");
}

/// Replicas started together on one database (as Compose or Kubernetes start them): both come up,
/// the demo camera is added once, and a demo camera the operator deleted does not come back.
#[tokio::test]
async fn engines_started_together_add_the_demo_camera_once_and_a_deleted_one_stays_deleted() {
    for round in 0..2 {
        let db = common::fresh_database().await;
        let (pa, pb) = (free_port(), free_port());
        let dir = common::temp_dir(&format!("serve-pair-{round}"));
        let start = |port: u16, node: &str| {
            common::serve_command(&db, port, &dir.join(node))
                .env("PANOPTES_STREAMING__NODE_ID", format!("\"{node}\""))
                .spawn()
                .expect("start panoptes serve")
        };
        let (mut a, mut b) = (KillOnDrop(start(pa, "a")), KillOnDrop(start(pb, "b")));
        wait_until_up(pa, &mut a);
        wait_until_up(pb, &mut b);
        let (_, body) = get(pa, "/api/v1/cameras").expect("cameras");
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "round {round}: {body}");
        assert_eq!(items[0]["name"], "demo");
        let id = items[0]["id"].as_i64().unwrap();
        let (status, _, _) = request(pa, "DELETE", &format!("/api/v1/cameras/{id}"), "", "").unwrap();
        assert_eq!(status, 204);
        drop((a, b));

        let port = free_port();
        let mut again = KillOnDrop(common::serve_command(&db, port, &dir.join("again")).spawn().unwrap());
        wait_until_up(port, &mut again);
        let (_, body) = get(port, "/api/v1/cameras").expect("cameras");
        assert!(body.contains("\"items\":[]"), "the deleted demo camera came back: {body}");
    }
}

/// `panoptes serve` until it exits by itself (at most `limit`): its status and output; `None` when it
/// was still running (then it is killed).
fn run_until_exit(mut command: Command, limit: Duration) -> Option<(std::process::ExitStatus, String)> {
    let dir = common::temp_dir("serve-out");
    let log = std::fs::File::create(dir.join("out.log")).unwrap();
    let mut child = KillOnDrop(command.stdout(log.try_clone().unwrap()).stderr(log).spawn().expect("start serve"));
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return Some((status, std::fs::read_to_string(dir.join("out.log")).unwrap()));
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Secure defaults, through the real binary: on an address others can reach (0.0.0.0), an engine with
/// no key anywhere refuses to start and says how to add one; `api.allow_open`, a configured key or a
/// key stored with `panoptes keys create` lets it serve; a key shorter than 16 characters is refused;
/// and revoking the last stored key locks the API rather than opening it.
#[tokio::test]
async fn serve_refuses_an_open_api_on_a_public_address_and_short_keys() {
    let db = common::fresh_database().await;
    let dir = common::temp_dir("serve-secure");
    let public = |port: u16| {
        let mut c = common::serve_command(&db, port, &dir.join("snapshots"));
        c.env("PANOPTES_API__LISTEN", format!("\"0.0.0.0:{port}\"")).env("PANOPTES_STREAMING__DEMO_CLIP", "\"\"");
        c
    };

    let port = free_port();
    let (status, out) = run_until_exit(public(port), Duration::from_secs(120)).expect("serve must refuse, not serve");
    assert!(!status.success(), "{out}");
    for words in [
        &format!("refusing to serve on 0.0.0.0:{port}"),
        "panoptes keys create",
        "PANOPTES_API__KEYS",
        "api.allow_open = true",
    ] {
        assert!(out.contains(words), "no {words:?} in:\n{out}");
    }

    let mut short = public(free_port());
    short.env("PANOPTES_API__KEYS", "[{name=\"ops\", role=\"admin\", key=\"0123456789\"}]");
    let (status, out) = run_until_exit(short, Duration::from_secs(120)).expect("a 10-character key must be refused");
    assert!(!status.success() && out.contains("shorter than 16 characters"), "{out}");

    // Open on purpose.
    let port = free_port();
    let mut open = public(port);
    open.env("PANOPTES_API__ALLOW_OPEN", "true");
    let mut serve = KillOnDrop(open.spawn().unwrap());
    wait_until_up(port, &mut serve);
    assert_eq!(get(port, "/api/v1/access").map(|r| r.1), Some("{\"open\":true}".into()));
    assert_eq!(get(port, "/api/v1/cameras").map(|r| r.0), Some(200));
    drop(serve);

    // A configured key.
    let key = "configured-admin-key-0123";
    let port = free_port();
    let mut keyed = public(port);
    keyed.env("PANOPTES_API__KEYS", format!("[{{name=\"ops\", role=\"admin\", key=\"{key}\"}}]"));
    let mut serve = KillOnDrop(keyed.spawn().unwrap());
    wait_until_up(port, &mut serve);
    assert_eq!(get(port, "/api/v1/access").map(|r| r.1), Some("{\"open\":false}".into()));
    assert_eq!(get(port, "/api/v1/cameras").map(|r| r.0), Some(401));
    let with_key = request(port, "GET", "/api/v1/cameras", &format!("X-API-Key: {key}\r\n"), "").unwrap();
    assert_eq!(with_key.0, 200);
    drop(serve);

    // A key stored with the command line.
    let created = Command::new(env!("CARGO_BIN_EXE_panoptes"))
        .current_dir(common::root())
        .env("PANOPTES_DATABASE_URL", &db)
        .args(["keys", "create", "--name", "first admin", "--role", "admin"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let stored = String::from_utf8(created.stdout).unwrap().trim().to_string();
    assert!(stored.starts_with("pnp_") && stored.len() == 68, "{stored}");
    let port = free_port();
    let mut serve = KillOnDrop(public(port).spawn().unwrap());
    wait_until_up(port, &mut serve);
    let auth = format!("X-API-Key: {stored}\r\n");
    let (status, _, body) = request(port, "GET", "/api/v1/keys", &auth, "").unwrap();
    assert_eq!(status, 200, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["items"][0]["id"].as_i64().unwrap();
    // Revoking the last key on a public address locks the API: it does not become open.
    let (status, _, _) = request(port, "DELETE", &format!("/api/v1/keys/{id}"), &auth, "").unwrap();
    assert_eq!(status, 204);
    assert_eq!(get(port, "/api/v1/access").map(|r| r.1), Some("{\"open\":false}".into()));
    assert_eq!(get(port, "/api/v1/cameras").map(|r| r.0), Some(401));
}
