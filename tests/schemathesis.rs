//! schemathesis (PyPI, installed by scripts/setup.sh) against a real `panoptes serve` and the OpenAPI
//! document it serves: generated and mutated requests for every operation (the event streams
//! excepted: they never end), with an admin key, a fixed seed and a bounded number of examples. No
//! response may be a 5xx, and every response must match the document (status, content type,
//! headers, body schema); requests without or with a wrong key must be refused.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const KEY: &str = "schemathesis-admin-key-0123456789";

#[tokio::test]
async fn generated_requests_get_no_server_error_and_responses_match_the_document() {
    let st = common::root().join(".local/venv-test/bin/st");
    assert!(st.is_file(), "{} missing: run scripts/setup.sh", st.display());
    let db = common::fresh_database().await;
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
    let work = common::temp_dir("schemathesis");
    let _engine = Process(
        Command::new(env!("CARGO_BIN_EXE_panoptes"))
            .current_dir(common::root())
            .env("PANOPTES_DATABASE_URL", &db)
            .env("PANOPTES_API__LISTEN", format!("\"127.0.0.1:{port}\""))
            .env("PANOPTES_API__KEYS", format!("[{{name=\"st\", role=\"admin\", key=\"{KEY}\"}}]"))
            .env("PANOPTES_API__RATE_LIMIT_PER_SECOND", "100000")
            .env("PANOPTES_API__RATE_LIMIT_BURST", "100000")
            .env("PANOPTES_SNAPSHOTS__DIR", format!("\"{}\"", common::path_str(&work.join("snapshots"))))
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start panoptes serve"),
    );
    let api = format!("http://127.0.0.1:{port}");
    let ready = format!("{api}/readyz");
    common::eventually(
        "the engine is ready",
        Duration::from_secs(60),
        || async { ureq::get(&ready).call().is_ok() },
        |ok| *ok,
    )
    .await;

    let out = Command::new(&st)
        .args(["run", &format!("{api}/api/v1/openapi.json")])
        .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,ignored_auth"])
        .args(["--max-examples", "15", "--seed", "1", "--workers", "1", "--exclude-path-regex", "/events"])
        .args(["-H", &format!("Authorization: Bearer {KEY}"), "-H", &format!("X-API-Key: {KEY}")])
        .env("NO_COLOR", "1")
        .current_dir(&work) // its cache directory goes there, not into the repository
        .output()
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "schemathesis found failures:\n{report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("passed") && !report.contains("failures"), "{report}");
}
