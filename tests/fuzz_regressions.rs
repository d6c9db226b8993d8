//! Every kept fuzz input, replayed through the fuzz targets' own harness (`fuzz/src/lib.rs`): the seeds
//! the fuzzers start from and each input a fuzzer once broke the engine with (`fuzz/regressions/`),
//! so a fixed finding stays fixed without the nightly-only instrumented build.

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::PathBuf;

/// The kept inputs of one target: its seeds and its regressions.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for kind in ["seeds", "regressions"] {
        let dir = root.join(kind).join(target);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() && path.file_name().is_some_and(|n| n != "README.md") {
                let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                out.push((path, bytes));
            }
        }
    }
    assert!(!out.is_empty(), "no kept inputs for {target}");
    out
}

fn replay(target: &str, run: fn(&[u8])) {
    for (path, bytes) in inputs(target) {
        eprintln!("{target}: {}", path.display());
        run(&bytes);
    }
}

#[test]
fn h264_access_units() {
    replay("h264_access_units", harness::h264_access_units);
}

#[test]
fn enrollment_image() {
    replay("enrollment_image", harness::enrollment_image);
}

#[test]
fn api_json_body() {
    harness::api_json_body_init();
    replay("api_json_body", harness::api_json_body);
}
