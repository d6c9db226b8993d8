//! The OpenAPI document the API serves is valid OpenAPI 3, checked by an independent validator
//! (openapi-spec-validator from PyPI, installed by scripts/setup.sh). That it lists exactly the
//! registered routes is checked by the unit test in api/src/openapi.rs.

mod common;

use std::process::Command;

#[test]
fn the_openapi_document_passes_an_independent_validator() {
    let python = common::root().join(".local/venv-test/bin/python");
    assert!(python.is_file(), "{} missing: run scripts/setup.sh", python.display());
    let document = common::root().join("api/openapi/openapi.json");
    let out = Command::new(&python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&document)
        .output()
        .expect("run openapi-spec-validator");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("OK"), "{text}");
}
