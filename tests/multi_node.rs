//! Scale-out with real processes: three `panoptes serve` on one PostgreSQL, the same settings, six
//! file cameras. Every 300 ms each node's API says which cameras run there: at no moment does a
//! camera run on two nodes, and the leases divide the cameras 2/2/2. Then `kill -9` of a node: its
//! cameras run elsewhere within the lease time (< 30 s, measured); a node that joins takes its share;
//! SIGTERM of a node hands its cameras over at once. And a node over its latency budget advertises
//! less capacity, so an idle node takes cameras from it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Child;
use std::time::{Duration, Instant};

use common::KillOnDrop;

const CAMERAS: usize = 6;

/// The tests here start several engines each: one at a time, so that they measure hand-overs, not
/// two tests fighting over the CPU.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Node {
    name: &'static str,
    api: String,
    process: KillOnDrop,
}

fn start(db: &str, name: &'static str, work: &std::path::Path) -> Node {
    start_with(db, name, work, &[])
}

fn start_with(db: &str, name: &'static str, work: &std::path::Path, env: &[(&str, &str)]) -> Node {
    let port = common::free_port();
    let process = KillOnDrop(
        common::serve_command(db, port, &work.join(format!("snapshots-{name}")))
            .envs(env.iter().copied())
            .env("PANOPTES_STREAMING__NODE_ID", format!("\"{name}\""))
            .env("PANOPTES_STREAMING__DEMO_CLIP", "\"\"")
            .env("PANOPTES_STREAMING__INFERENCE_WORKERS", "1")
            .env("PANOPTES_STREAMING__DECODER_THREADS", "1")
            // Each showing of the person is its own appearance (as in tests/database_outage.rs).
            .env("PANOPTES_STREAMING__COOLDOWN_SECS", "1")
            .env("PANOPTES_TRACKING__LOST_SECS", "0.3")
            .spawn()
            .expect("start panoptes serve"),
    );
    Node { name, api: format!("http://127.0.0.1:{port}"), process }
}

/// The cameras running on a node (those its API reports a live status for); None if it does not answer.
fn running(node: &Node) -> Option<BTreeSet<i64>> {
    let body: serde_json::Value = ureq::get(&format!("{}/api/v1/cameras", node.api))
        .timeout(Duration::from_secs(5))
        .call()
        .ok()?
        .into_json()
        .ok()?;
    Some(body["items"].as_array()?.iter().filter(|c| !c["status"].is_null()).filter_map(|c| c["id"].as_i64()).collect())
}

/// Who runs what now, over the nodes still alive.
fn survey(nodes: &[&Node]) -> BTreeMap<&'static str, BTreeSet<i64>> {
    nodes.iter().filter_map(|n| running(n).map(|r| (n.name, r))).collect()
}

/// Cameras running on more than one node in one survey.
fn doubled(s: &BTreeMap<&'static str, BTreeSet<i64>>) -> Vec<i64> {
    let mut seen = BTreeMap::<i64, usize>::new();
    for cams in s.values() {
        for c in cams {
            *seen.entry(*c).or_default() += 1;
        }
    }
    seen.into_iter().filter(|(_, n)| *n > 1).map(|(c, _)| c).collect()
}

/// Surveys every 300 ms until `done` holds (checking that no camera ever runs twice); the time taken.
async fn watch(
    what: &str,
    nodes: &[&Node],
    limit: Duration,
    done: impl Fn(&BTreeMap<&'static str, BTreeSet<i64>>) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let s = survey(nodes);
        let twice = doubled(&s);
        assert!(twice.is_empty(), "{what}: cameras {twice:?} run on two nodes at once: {s:?}");
        if done(&s) {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not done after {limit:?}: {s:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn covered(s: &BTreeMap<&'static str, BTreeSet<i64>>) -> usize {
    s.values().map(BTreeSet::len).sum()
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

/// A fresh database with the schema, `cameras` file cameras showing a person every 2.5 s (analysed
/// at 2 fps) and Obama enrolled.
async fn database_with_cameras(work: &std::path::Path, cameras: usize) -> String {
    let db = common::fresh_database().await;
    let clip = common::comings_and_goings_clip(work);
    let client = panoptes_engine::storage::connect_client(&db).await.expect("connect");
    // The schema first (a node would make it; the cameras must exist before the nodes share them).
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_panoptes"))
        .arg("migrate")
        .env("PANOPTES_DATABASE_URL", &db)
        .current_dir(common::root())
        .status()
        .expect("panoptes migrate");
    assert!(status.success());
    for i in 0..cameras {
        client
            .execute(
                "INSERT INTO cameras (name, url, analysis_fps, enabled) VALUES ($1, $2, 2, true)",
                &[&format!("door-{i}"), &common::path_str(&clip)],
            )
            .await
            .expect("insert camera");
    }
    common::enroll_with_cli(&db, "Barack Obama", "obama.jpg");
    db
}

#[tokio::test]
async fn three_engine_processes_share_six_cameras_and_hand_them_over_on_kill_join_and_sigterm() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let work = common::temp_dir("multi-node");
    let db = database_with_cameras(&work, CAMERAS).await;
    // Three nodes started together.
    let mut a = start(&db, "node-a", &work);
    let b = start(&db, "node-b", &work);
    let c = start(&db, "node-c", &work);
    let t = watch("three nodes start", &[&a, &b, &c], Duration::from_secs(90), |s| {
        s.len() == 3 && covered(s) == CAMERAS && s.values().all(|r| r.len() == 2)
    })
    .await;
    eprintln!("three nodes running 2 cameras each {:.1} s after start", t.as_secs_f64());
    // A while of steady running: still nobody runs a camera twice.
    let steady = Instant::now();
    watch("steady", &[&a, &b, &c], Duration::from_secs(30), |_| steady.elapsed() > Duration::from_secs(5)).await;

    // kill -9 of node-a: its two cameras move to the others within the lease time.
    let _ = a.process.0.kill();
    let _ = a.process.0.wait();
    let moved = watch("after kill -9 of node-a", &[&b, &c], Duration::from_secs(30), |s| covered(s) == CAMERAS).await;
    eprintln!("kill -9: node-a's cameras ran elsewhere {:.1} s later (lease ttl 15 s)", moved.as_secs_f64());
    assert!(moved < Duration::from_secs(30));

    // node-d joins: it takes its share (6 cameras over 3 live nodes: 2 each).
    let d = start(&db, "node-d", &work);
    let joined = watch("node-d joins", &[&b, &c, &d], Duration::from_secs(90), |s| {
        s.get("node-d").is_some_and(|r| r.len() == 2) && covered(s) == CAMERAS
    })
    .await;
    eprintln!("node-d ran its share {:.1} s after it was started", joined.as_secs_f64());

    // SIGTERM of node-b: it stops its cameras and gives their leases back, the others take them at once.
    signal(&b.process.0, libc::SIGTERM);
    let handed = watch("after SIGTERM of node-b", &[&c, &d], Duration::from_secs(30), |s| covered(s) == CAMERAS).await;
    eprintln!("SIGTERM: node-b's cameras ran elsewhere {:.1} s later", handed.as_secs_f64());
    assert!(
        handed < Duration::from_secs(10),
        "a graceful stop hands over at once, not after the lease time: {handed:?}"
    );
    let mut b = b;
    let exit = b.process.0.wait().expect("node-b exits");
    assert!(exit.success(), "node-b exited with {exit}");

    // From the rows: every camera's clip shows Obama for 1 s in every 2.5 s, so one node makes one
    // appearance per showing, ~2.5 s apart; two nodes analysing one camera would record the same
    // showing twice, less than a second apart.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let client = panoptes_engine::storage::connect_client(&db).await.expect("connect");
    let rows = client
        .query(
            "SELECT camera_id, extract(epoch FROM detected_at - lag(detected_at) OVER w)::float8
             FROM detections WINDOW w AS (PARTITION BY camera_id ORDER BY detected_at)",
            &[],
        )
        .await
        .expect("read detections");
    let gaps: Vec<(i64, f64)> = rows.iter().filter_map(|r| Some((r.get(0), r.get::<_, Option<f64>>(1)?))).collect();
    let cameras_with_rows: BTreeSet<i64> = rows.iter().map(|r| r.get(0)).collect();
    eprintln!("{} appearances on {} cameras", rows.len(), cameras_with_rows.len());
    assert!(cameras_with_rows.len() >= CAMERAS - 1, "appearances on {cameras_with_rows:?} only");
    let close: Vec<_> = gaps.iter().filter(|(_, g)| *g < 1.0).collect();
    assert!(close.is_empty(), "a showing recorded twice (camera, seconds apart): {close:?}");
}

/// Two nodes of equal capacity share four cameras 2/2. One of them is given a latency budget of 1 ms,
/// which no analysed frame meets: it sheds the analysis rate of every camera it runs, advertises less
/// capacity over ~20 s (never below a quarter), and gives cameras up; the idle node takes them.
/// Nothing is ever analysed on both nodes meanwhile.
#[tokio::test]
async fn a_node_over_its_latency_budget_gives_cameras_to_an_idle_node() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let work = common::temp_dir("multi-node-load");
    let db = database_with_cameras(&work, 4).await;
    let busy = start_with(
        &db,
        "busy",
        &work,
        &[("PANOPTES_STREAMING__NODE_CAPACITY", "1.0"), ("PANOPTES_STREAMING__LATENCY_BUDGET_MS", "1")],
    );
    let idle = start_with(&db, "idle", &work, &[("PANOPTES_STREAMING__NODE_CAPACITY", "1.0")]);
    let t = watch("two nodes start", &[&busy, &idle], Duration::from_secs(90), |s| {
        s.len() == 2 && covered(s) == 4 && s.values().all(|r| r.len() == 2)
    })
    .await;
    eprintln!("two nodes running 2 cameras each {:.1} s after start", t.as_secs_f64());

    // Share 4 x f / (f + 1) drops to 1 once the busy node advertises f <= 1/3 of its capacity.
    let moved = watch("busy node sheds cameras", &[&busy, &idle], Duration::from_secs(150), |s| {
        s.get("busy").is_some_and(|r| r.len() == 1) && s.get("idle").is_some_and(|r| r.len() == 3)
    })
    .await;
    eprintln!("the node over its budget ran 1 camera and the idle one 3, {:.1} s later", moved.as_secs_f64());

    let client = panoptes_engine::storage::connect_client(&db).await.expect("connect");
    let advertised: f32 = client
        .query_one("SELECT capacity FROM engine_nodes WHERE node_id = 'busy'", &[])
        .await
        .expect("read the busy node's capacity")
        .get(0);
    assert!(advertised <= 1.0 / 3.0 + 1e-3, "the busy node advertises {advertised}");
    let idle_capacity: f32 = client
        .query_one("SELECT capacity FROM engine_nodes WHERE node_id = 'idle'", &[])
        .await
        .expect("read the idle node's capacity")
        .get(0);
    assert!(idle_capacity > 0.75, "the idle node advertises {idle_capacity}");
    // And it stays so: the busy node does not take its cameras back while it is still over budget.
    let steady = Instant::now();
    watch("steady", &[&busy, &idle], Duration::from_secs(30), |s| {
        if let Some(r) = s.get("busy") {
            assert_eq!(r.len(), 1, "{s:?}");
        }
        steady.elapsed() > Duration::from_secs(8)
    })
    .await;
}
