//! schemathesis (PyPI, installed by scripts/setup.sh) against a real `panoptes serve` and the OpenAPI
//! document it serves: generated and mutated requests for every operation (the event streams
//! excepted: they never end), with an admin key, a fixed seed and a bounded number of examples. No
//! response may be a 5xx, and every response must match the document (status, content type,
//! headers, body schema); requests without or with a wrong key must be refused.

mod common;

use std::process::Command;
use std::time::Duration;

use common::KillOnDrop;

const KEY: &str = "schemathesis-admin-key-0123456789";

#[tokio::test]
async fn generated_requests_get_no_server_error_and_responses_match_the_document() {
    let st = common::root().join(".local/venv-test/bin/st");
    assert!(st.is_file(), "{} missing: run scripts/setup.sh", st.display());
    let db = common::fresh_database().await;
    let port = common::free_port();
    let work = common::temp_dir("schemathesis");
    let _engine = KillOnDrop(
        common::serve_command(&db, port, &work.join("snapshots"))
            .env("PANOPTES_API__KEYS", format!("[{{name=\"st\", role=\"admin\", key=\"{KEY}\"}}]"))
            .env("PANOPTES_API__RATE_LIMIT_PER_SECOND", "100000")
            .env("PANOPTES_API__RATE_LIMIT_BURST", "100000")
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
