//! PostgreSQL over TLS: clusters of the test's own with `ssl=on` and a CA and server certificate made
//! here by `openssl` (the certificate names 127.0.0.1 and localhost). libpq's `sslmode` semantics:
//! verify-full checks the chain and the host name, verify-ca the chain only, require without a CA
//! only encrypts, and a server without TLS is refused under require. `panoptes serve`, and `panoptes
//! backup` and `restore` (through pg_dump, pg_restore and psql), run against a server that accepts TLS
//! connections only.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::pg_cluster::{Cluster, ServerTls};
use common::KillOnDrop;
use panoptes_engine::storage::{connect_client, Store};

/// A CA, a server certificate it signed (for 127.0.0.1 and localhost), and another, unrelated CA.
struct Certificates {
    ca: PathBuf,
    other_ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    common::pg_cluster::run(Command::new("openssl").current_dir(dir).args(args), &format!("openssl {}", args[0]));
}

fn make_ca(dir: &Path, name: &str) -> PathBuf {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=Panoptes test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    dir.join(format!("{name}.crt"))
}

fn make_certificates(dir: &Path) -> Certificates {
    let ca = make_ca(dir, "ca");
    let other_ca = make_ca(dir, "other-ca");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    Certificates { ca, other_ca, server_cert: dir.join("server.crt"), server_key: dir.join("server.key") }
}

fn tls_cluster(work: &Path, certs: &Certificates) -> Cluster {
    Cluster::start(
        &work.join("pg"),
        Some(ServerTls { cert: &certs.server_cert, key: &certs.server_key, only_tls: true }),
    )
}

/// Whether this session's connection is encrypted, as the server sees it.
async fn encrypted(client: &tokio_postgres::Client) -> bool {
    client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.expect("pg_stat_ssl").get(0)
}

async fn refusal(url: &str) -> String {
    match connect_client(url).await {
        Ok(_) => panic!("{url} must be refused"),
        Err(e) => {
            let why = panoptes_engine::error_chain::error_chain(&e);
            eprintln!("refused as expected: {why}");
            why
        }
    }
}

#[tokio::test]
async fn verify_full_connects_and_a_wrong_ca_or_host_name_is_refused_with_the_reason() {
    let work = common::temp_dir("pg-tls");
    let certs = make_certificates(&work);
    let pg = tls_cluster(&work, &certs);
    let ca = common::path_str(&certs.ca);
    let other = common::path_str(&certs.other_ca);
    let url = |host: &str, query: &str| format!("postgresql://postgres@{host}:{}/postgres?{query}", pg.port);

    // verify-full: the chain leads to the CA and the certificate names 127.0.0.1.
    let client = connect_client(&url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca}"))).await.unwrap();
    assert!(encrypted(&client).await);
    // The pool and the migrations go through the same connector.
    let store = Store::connect(&url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca}")), 2).await.unwrap();
    store.ping().await.unwrap();

    // A certificate signed by another CA is refused, under verify-full and verify-ca alike.
    for mode in ["verify-full", "verify-ca"] {
        let why = refusal(&url("127.0.0.1", &format!("sslmode={mode}&sslrootcert={other}"))).await;
        assert!(why.contains("TLS with 127.0.0.1 failed"), "{why}");
        assert!(why.contains("not signed by a CA of sslrootcert (unknown issuer)"), "{why}");
        assert!(why.contains(&format!("127.0.0.1:{}", pg.port)), "{why}");
    }
    // require with a CA given checks the chain as verify-ca does (libpq's rule).
    let why = refusal(&url("127.0.0.1", &format!("sslmode=require&sslrootcert={other}"))).await;
    assert!(why.contains("unknown issuer"), "{why}");

    // Connected by a name the certificate does not hold (db.example, reached at 127.0.0.1):
    // verify-full refuses, naming what the certificate holds; verify-ca, which checks the chain only,
    // connects.
    let by_other_name = |mode: &str| url("db.example", &format!("hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={ca}"));
    let why = refusal(&by_other_name("verify-full")).await;
    assert!(why.contains("TLS with db.example failed"), "{why}");
    assert!(why.contains("not valid for the name \"db.example\""), "{why}");
    assert!(why.contains("127.0.0.1") && why.contains("localhost"), "the names it holds: {why}");
    let client = connect_client(&by_other_name("verify-ca")).await.expect("verify-ca ignores the name");
    assert!(encrypted(&client).await);

    // require without a CA encrypts and checks nothing; prefer (the default) encrypts when offered.
    let client = connect_client(&by_other_name("require").replace(&format!("&sslrootcert={ca}"), "")).await.unwrap();
    assert!(encrypted(&client).await);
    let client = connect_client(&format!("postgresql://postgres@127.0.0.1:{}/postgres", pg.port)).await.unwrap();
    assert!(encrypted(&client).await, "prefer is the default and the server offers TLS");

    // A failover URL: the first host answers nothing, the second is checked by its own name.
    let dead = common::free_port();
    let both = format!(
        "postgresql://postgres@127.0.0.1:{dead},localhost:{}/postgres?target_session_attrs=read-write&sslmode=verify-full&sslrootcert={ca}",
        pg.port
    );
    let client = connect_client(&both).await.expect("the second host");
    assert!(encrypted(&client).await);

    // The server takes TLS connections only: without TLS it refuses, and says so.
    let why = refusal(&url("127.0.0.1", "sslmode=disable")).await;
    assert!(why.contains("no encryption"), "{why}");

    // What an operator sees: the binary's error names the host and the reason, never the password.
    let out = Command::new(env!("CARGO_BIN_EXE_panoptes"))
        .current_dir(common::root())
        .env(
            "PANOPTES_DATABASE_URL",
            format!(
                "postgresql://postgres:S3cretPw@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={other}",
                pg.port
            ),
        )
        .arg("migrate")
        .output()
        .expect("run panoptes migrate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("127.0.0.1:{}", pg.port)) && stderr.contains("unknown issuer"), "{stderr}");
    assert!(!stderr.contains("S3cretPw"), "{stderr}");

    // A missing CA file is named before any connection is tried.
    let why = refusal(&url("127.0.0.1", "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")).await;
    assert!(why.contains("cannot read sslrootcert /nonexistent/ca.pem"), "{why}");
}

#[tokio::test]
async fn require_is_refused_by_a_server_without_tls_and_prefer_falls_back() {
    let work = common::temp_dir("pg-no-tls");
    let pg = Cluster::start(&work.join("pg"), None);
    let url = |mode: &str| format!("postgresql://postgres@127.0.0.1:{}/postgres?sslmode={mode}", pg.port);
    for mode in ["require", "verify-full"] {
        let extra = if mode == "verify-full" {
            // A CA is needed to get as far as asking the server.
            let certs = make_certificates(&work);
            format!("&sslrootcert={}", common::path_str(&certs.ca))
        } else {
            String::new()
        };
        let why = refusal(&format!("{}{extra}", url(mode))).await;
        assert!(why.contains(&format!("127.0.0.1:{}", pg.port)), "names the server: {why}");
        assert!(why.contains("server does not support TLS"), "{why}");
    }
    let client = connect_client(&url("prefer")).await.expect("prefer falls back to plain");
    assert!(!encrypted(&client).await);
}

const BOUNDARY: &str = "panoptes-tls-test";

fn multipart(name: &str, photo: &[u8]) -> Vec<u8> {
    let mut b = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n{name}\r\n--{BOUNDARY}\r\n\
         Content-Disposition: form-data; name=\"photos\"; filename=\"obama.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    b.extend_from_slice(photo);
    b.extend(format!("\r\n--{BOUNDARY}--\r\n").bytes());
    b
}

#[tokio::test]
async fn serve_runs_end_to_end_against_a_server_that_takes_tls_only() {
    let work = common::temp_dir("pg-tls-serve");
    let certs = make_certificates(&work);
    let pg = tls_cluster(&work, &certs);
    pg.create_database("panoptes");
    let db = format!(
        "postgresql://postgres@127.0.0.1:{}/panoptes?sslmode=verify-full&sslrootcert={}",
        pg.port,
        common::path_str(&certs.ca)
    );
    let port = common::free_port();
    let log_path = work.join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut serve = KillOnDrop(
        common::serve_command(&db, port, &work.join("snapshots")).stderr(log).spawn().expect("start panoptes serve"),
    );
    let api = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let ready = loop {
        if let Some((200, body)) = common::api_request("GET", &format!("{api}/readyz"), None) {
            break body;
        }
        let exited = serve.0.try_wait().unwrap();
        assert!(
            exited.is_none() && Instant::now() < deadline,
            "serve not ready (exit {exited:?}): {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(ready["database"], "ok", "{ready}");

    // A person enrolled through the API is stored (over TLS: the server takes nothing else).
    let photo = common::photo_bytes("obama.jpg");
    let res = ureq::post(&format!("{api}/api/v1/persons"))
        .set("Content-Type", &format!("multipart/form-data; boundary={BOUNDARY}"))
        .timeout(Duration::from_secs(60))
        .send_bytes(&multipart("Barack Obama", &photo))
        .expect("enrol");
    assert_eq!(res.status(), 201);
    let client = connect_client(&db).await.unwrap();
    let row = client
        .query_one(
            "SELECT count(*) FROM persons p JOIN face_embeddings e ON e.person_id = p.id WHERE p.name = 'Barack Obama'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    let plain: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.datname = 'panoptes' AND a.backend_type = 'client backend' AND NOT s.ssl",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(plain, 0, "every connection of the engine is encrypted");
    let (status, _) = common::api_request("GET", &format!("{api}/api/v1/persons"), None).expect("persons");
    assert_eq!(status, 200);

    // `panoptes backup` hands sslmode and sslrootcert to pg_dump (libpq), which the server requires.
    let backup = work.join("backup");
    let out = Command::new(env!("CARGO_BIN_EXE_panoptes"))
        .current_dir(common::root())
        .env("PANOPTES_DATABASE_URL", &db)
        .env("PANOPTES_SNAPSHOTS__DIR", format!("\"{}\"", common::path_str(&work.join("snapshots"))))
        .args(["backup", &common::path_str(&backup)])
        .output()
        .expect("run panoptes backup");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["rows"]["persons"], 1);
    // … and `panoptes restore` to pg_restore and psql: into a new database on the same server.
    pg.create_database("restored");
    let out = Command::new(env!("CARGO_BIN_EXE_panoptes"))
        .current_dir(common::root())
        .env("PANOPTES_DATABASE_URL", db.replace("/panoptes?", "/restored?"))
        .env("PANOPTES_SNAPSHOTS__DIR", format!("\"{}\"", common::path_str(&work.join("restored-snapshots"))))
        .args(["restore", &common::path_str(&backup)])
        .output()
        .expect("run panoptes restore");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let restored = connect_client(&db.replace("/panoptes?", "/restored?")).await.unwrap();
    let n: i64 = restored.query_one("SELECT count(*) FROM face_embeddings", &[]).await.unwrap().get(0);
    assert_eq!(n, 1);
}
