//! The operators' console in a real headless Chromium (Debian's `chromium` and `chromium-driver`,
//! driven by selenium from PyPI; scripts/setup.sh installs all three) against a real `panoptes serve`
//! with the demo camera showing Obama. The steps are in `tests/console/console_test.py`; screenshots
//! of each are kept in `target/console-screenshots/` (a few are in docs/console.md). The first run on an
//! open API is `tests/console/first_run_test.py`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::KillOnDrop;

/// Waits until the `panoptes serve` on `port` answers `/readyz`; answers its base URL.
async fn engine_answers(port: u16) -> String {
    let base = format!("http://127.0.0.1:{port}");
    common::eventually(
        "the engine answers",
        Duration::from_secs(60),
        || async { ureq::get(&format!("{base}/readyz")).call().is_ok() },
        |up| *up,
    )
    .await;
    base
}

/// Runs a selenium script of tests/console (its arguments, then where its screenshots go) in the
/// real Chromium: it must exit 0 and say that every step passed.
fn browser_test(script: &str, args: &[&str], artifacts: &std::path::Path) {
    let out = Command::new(common::root().join(".local/venv-test/bin/python"))
        .arg(common::root().join("tests/console").join(script))
        .args(args)
        .arg(artifacts)
        .output()
        .expect("run the browser test (scripts/setup.sh installs selenium, chromium and chromium-driver)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser test failed (screenshots in {}):\n{text}", artifacts.display());
    assert!(text.contains("every step passed"), "{text}");
}

#[tokio::test]
async fn an_operator_signs_in_watches_enrolls_reviews_and_manages_cameras_and_a_viewer_only_reads() {
    let work = common::temp_dir("console");
    let db = common::fresh_database().await;
    let clip = common::comings_and_goings_clip(&work);
    // The photos the browser uploads, and one that is not a photo at all.
    let photos = work.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for name in ["obama.jpg", "obama2.jpg"] {
        std::fs::copy(common::photo(name), photos.join(name)).unwrap();
    }
    std::fs::write(photos.join("not-a-photo.jpg"), "a shopping list, not a picture\n").unwrap();

    let (admin, viewer) = ("console-admin-key-0123456789", "console-viewer-key-0123456789");
    let port = common::free_port();
    let _engine = KillOnDrop(
        common::serve_command(&db, port, &work.join("snapshots"))
            .env("PANOPTES_STREAMING__COOLDOWN_SECS", "1")
            .env("PANOPTES_TRACKING__LOST_SECS", "0.3")
            .env("PANOPTES_STREAMING__DEMO_CLIP", format!("\"{}\"", common::path_str(&clip)))
            .env(
                "PANOPTES_API__KEYS",
                format!("[{{name=\"ops\", role=\"admin\", key=\"{admin}\"}}, {{name=\"wall\", role=\"viewer\", key=\"{viewer}\"}}]"),
            )
            .spawn()
            .expect("start panoptes serve"),
    );
    let base = engine_answers(port).await;

    let artifacts = common::root().join("target/console-screenshots");
    let _ = std::fs::remove_dir_all(&artifacts);
    browser_test("console_test.py", &[&base, admin, viewer, &common::path_str(&photos)], &artifacts);
}

/// The first run: an engine with no key anywhere (loopback, the default) opens in the console at once,
/// says the API is open, and closes with the first key made in the Admin section
/// (`tests/console/first_run_test.py`).
#[tokio::test]
async fn a_newcomer_on_an_open_api_goes_straight_in_is_told_it_is_open_and_closes_it_with_a_key() {
    let work = common::temp_dir("console-first-run");
    let db = common::fresh_database().await;
    let port = common::free_port();
    let _engine = KillOnDrop(
        common::serve_command(&db, port, &work.join("snapshots"))
            .env("PANOPTES_STREAMING__DEMO_CLIP", "\"\"")
            .spawn()
            .expect("start panoptes serve"),
    );
    let base = engine_answers(port).await;
    // Not the other test's folder: that one is emptied at its start, and the two run at once.
    let artifacts = common::root().join("target/console-first-run-screenshots");
    browser_test("first_run_test.py", &[&base], &artifacts);
}
