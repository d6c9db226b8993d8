//! The `panoptes` binary as a user runs it: enroll, identify, persons, and its errors.

mod common;

use std::process::{Command, Output};

fn panoptes(db: &str, args: &[&str]) -> Output {
    panoptes_with(db, &[], args)
}

fn panoptes_with(db: &str, env: &[(&str, String)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_panoptes"))
        .current_dir(common::root())
        .env("PANOPTES_DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(args)
        .output()
        .expect("run panoptes")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[tokio::test]
async fn enroll_identify_list_and_delete_from_the_command_line() {
    let db = common::fresh_database().await;
    let photo = |n: &str| common::path_str(&common::photo(n));

    let o = panoptes(&db, &["enroll", "--name", "Barack Obama", &photo("obama.jpg"), &photo("obama3.jpg")]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("2 face(s) enrolled"), "{}", text(&o));

    // a group photo is refused with the reason, and no empty person is left behind
    let o = panoptes(&db, &["enroll", "--name", "Crowd", &photo("t1.jpg")]);
    assert!(!o.status.success());
    assert!(text(&o).contains("6 faces found"), "{}", text(&o));

    let o = panoptes(&db, &["identify", "--json", &photo("obama2.jpg")]);
    assert!(o.status.success(), "{}", text(&o));
    let faces: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(faces.as_array().unwrap().len(), 1);
    let top = &faces[0]["matches"][0];
    assert_eq!(top["name"], "Barack Obama");
    assert_eq!(top["is_match"], true);

    let o = panoptes(&db, &["identify", &photo("biden.jpg")]);
    assert!(o.status.success());
    assert!(!text(&o).contains("MATCH"), "biden must not match: {}", text(&o));

    let o = panoptes(&db, &["persons", "list", "--json"]);
    let persons: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(persons.as_array().unwrap().len(), 1, "{persons}");
    assert_eq!(persons[0]["faces"], 2);
    let id = persons[0]["id"].as_i64().unwrap().to_string();

    let o = panoptes(&db, &["persons", "delete", &id]);
    assert!(o.status.success(), "{}", text(&o));
    let o = panoptes(&db, &["persons", "delete", &id]);
    assert!(!o.status.success());
    assert!(text(&o).contains(&format!("no person with id {id}")));
}

#[tokio::test]
async fn bad_files_and_missing_models_fail_with_one_clear_message() {
    let db = common::fresh_database().await;
    let dir = common::temp_dir("cli");
    let empty = dir.join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let o = panoptes(&db, &["identify", &common::path_str(&empty)]);
    assert!(!o.status.success());
    assert!(text(&o).contains("the image is empty"), "{}", text(&o));

    let models_here = [("PANOPTES_MODELS__DIR", common::path_str(&dir))];
    let obama = common::path_str(&common::photo("obama.jpg"));

    let o = panoptes_with(&db, &models_here, &["identify", &obama]);
    assert!(!o.status.success());
    assert!(text(&o).contains("is missing: run models/fetch.sh"), "{}", text(&o));

    let corrupt = dir.join("face_detection_full_range.onnx");
    std::fs::write(&corrupt, b"this is not a model").unwrap();
    let o = panoptes_with(&db, &models_here, &["identify", &obama]);
    assert!(!o.status.success());
    assert!(text(&o).contains("could not be loaded"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(dir);
}
