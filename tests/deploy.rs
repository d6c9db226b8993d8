//! The deployment files (`deploy/`) pass the checks their formats' own tools make (hadolint,
//! kubernetes-validate --strict, the Compose Specification's schema, through `deploy/check.sh`), and
//! each check does fail on the mistake it is there for.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn check(dir: &Path) -> Output {
    Command::new(common::root().join("deploy/check.sh")).arg(dir).output().expect("run deploy/check.sh")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A copy of `deploy/` (and the `grafana/` folder its Compose file mounts) with one file edited.
fn broken(tag: &str, file: &str, from: &str, to: &str) -> std::path::PathBuf {
    let root = common::temp_dir(tag);
    let copy = |from: &Path, to: &Path| {
        let status = Command::new("cp").arg("-r").arg(from).arg(to).status().expect("cp");
        assert!(status.success());
    };
    copy(&common::root().join("deploy"), &root.join("deploy"));
    copy(&common::root().join("grafana"), &root.join("grafana"));
    let path = root.join("deploy").join(file);
    let original = std::fs::read_to_string(&path).unwrap();
    assert!(original.contains(from), "{file} no longer contains {from:?}");
    std::fs::write(&path, original.replacen(from, to, 1)).unwrap();
    root.join("deploy")
}

#[test]
fn the_deployment_files_pass_their_tools_and_each_check_catches_its_mistake() {
    let o = check(&common::root().join("deploy"));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("all checks passed"), "{}", text(&o));

    let cases = [
        // An untagged base image (hadolint DL3006).
        ("Dockerfile", "FROM debian:bookworm-slim", "FROM debian", "DL3006"),
        // A misspelled field: strict validation against the Kubernetes API's schema.
        ("k8s/deployment.yaml", "readinessProbe:", "readinesProbe:", "readinesProbe"),
        // A wrong type.
        ("k8s/hpa.yaml", "minReplicas: 2", "minReplicas: two", "minReplicas"),
        // A key Compose does not know.
        ("compose.yaml", "stop_grace_period: 30s", "stop_grace_periods: 30s", "stop_grace_periods"),
        // Two nodes with one node id would fight over the same leases.
        ("compose.yaml", "NODE_ID: panoptes-b", "NODE_ID: panoptes-a", "distinct PANOPTES_STREAMING__NODE_ID"),
        // A mounted file that is not there.
        ("compose.yaml", "./prometheus.yml:", "./prometheus.yaml:", "./prometheus.yaml does not exist"),
        // A default admin key: every copy of the file would share it.
        ("compose.yaml", "PANOPTES_ADMIN_KEY:?", "PANOPTES_ADMIN_KEY:-", "must come from the operator"),
    ];
    for (n, (file, from, to, expected)) in cases.into_iter().enumerate() {
        let dir = broken(&format!("deploy-{n}"), file, from, to);
        let o = check(&dir);
        assert!(!o.status.success(), "{file} with {to:?} passed:\n{}", text(&o));
        assert!(text(&o).contains(expected), "{file} with {to:?}: expected {expected:?} in\n{}", text(&o));
    }
}
