//! MQTT against Debian's mosquitto, started by the test, under a real `panoptes serve` (Obama
//! enrolled; the demo camera shows him for 1 s in every 2.5 s with a 1 s cooldown, so appearances keep
//! coming): availability, Home Assistant discovery, the camera's state, appearances on
//! `panoptes/events` and the retained last person seen; then the broker is stopped for 10 s — the
//! engine loses no frame and keeps analysing — and started again: the engine reconnects by itself
//! and new appearances arrive. Last, the engine is killed: the broker publishes its last will.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::KillOnDrop;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

/// mosquitto listening on 127.0.0.1:`port`, anonymous, nothing kept on disk.
fn mosquitto(dir: &std::path::Path, port: u16) -> KillOnDrop {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")).unwrap();
    mosquitto_with(&conf)
}

/// mosquitto with the configuration file `conf`.
fn mosquitto_with(conf: &std::path::Path) -> KillOnDrop {
    KillOnDrop(
        Command::new("mosquitto")
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto (scripts/setup.sh installs it)"),
    )
}

/// Every message seen on `panoptes/#` and `homeassistant/#`, in order: (topic, retained, payload).
type Seen = Arc<Mutex<Vec<(String, bool, String)>>>;

/// A subscriber that subscribes again after every reconnection (clean sessions forget them).
fn subscribe(port: u16) -> Seen {
    let seen: Seen = Arc::default();
    let mut options = MqttOptions::new(format!("test-{port}"), "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    let sink = seen.clone();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    for filter in ["panoptes/#", "homeassistant/#"] {
                        let _ = client.subscribe(filter, QoS::AtLeastOnce).await;
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let payload = String::from_utf8_lossy(&p.payload).into_owned();
                    sink.lock().unwrap().push((p.topic.clone(), p.retain, payload));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    seen
}

fn messages(seen: &Seen, topic: &str) -> Vec<(bool, String)> {
    seen.lock().unwrap().iter().filter(|(t, _, _)| t == topic).map(|(_, r, p)| (*r, p.clone())).collect()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn get(url: &str) -> serde_json::Value {
    ureq::get(url).timeout(Duration::from_secs(10)).call().expect(url).into_json().expect("JSON")
}

/// The demo camera's counters from the API: (frames received, frames dropped).
fn demo_frames(api: &str) -> (u64, u64) {
    let cameras = get(&format!("{api}/api/v1/cameras"));
    let demo = cameras["items"].as_array().unwrap().iter().find(|c| c["name"] == "demo").cloned().unwrap_or_default();
    let s = &demo["status"];
    (s["frames_received"].as_u64().unwrap_or(0), s["frames_dropped"].as_u64().unwrap_or(0))
}

#[tokio::test]
async fn appearances_states_and_discovery_reach_mqtt_and_a_broker_outage_costs_the_engine_nothing() {
    let work = common::temp_dir("mqtt");
    let db = common::fresh_database().await;
    common::enroll_with_cli(&db, "Barack Obama", "obama.jpg");
    let clip = common::comings_and_goings_clip(&work);
    let broker_port = common::free_port();
    let mut broker = mosquitto(&work, broker_port);
    let seen = subscribe(broker_port);

    let port = common::free_port();
    let engine = KillOnDrop(
        common::serve_command(&db, port, &work.join("snapshots"))
            .env("PANOPTES_STREAMING__COOLDOWN_SECS", "1")
            .env("PANOPTES_TRACKING__LOST_SECS", "0.3")
            .env("PANOPTES_STREAMING__DEMO_CLIP", format!("\"{}\"", common::path_str(&clip)))
            .env("PANOPTES_STREAMING__NODE_ID", "\"node-a\"")
            .env("PANOPTES_MQTT__URL", format!("\"mqtt://127.0.0.1:{broker_port}\""))
            .spawn()
            .expect("start panoptes serve"),
    );
    let api = format!("http://127.0.0.1:{port}");
    let limit = Duration::from_secs(60);

    // Availability, discovery and the camera's state.
    let availability = "panoptes/node/node-a/availability";
    common::eventually(
        "the engine says it is online",
        limit,
        || async { messages(&seen, availability) },
        |m| m.iter().any(|(_, p)| p == "online"),
    )
    .await;
    let cameras = get(&format!("{api}/api/v1/cameras"));
    let demo_id =
        cameras["items"].as_array().unwrap().iter().find(|c| c["name"] == "demo").unwrap()["id"].as_i64().unwrap();
    let discovery_topic = format!("homeassistant/sensor/panoptes_{demo_id}/config");
    let discovery =
        common::eventually("discovery", limit, || async { messages(&seen, &discovery_topic) }, |m| !m.is_empty()).await;
    let config = json(&discovery[0].1);
    assert_eq!(config["state_topic"], "panoptes/demo/person", "{config}");
    assert_eq!(config["availability_topic"], availability, "{config}");
    assert_eq!(config["unique_id"], format!("panoptes_{demo_id}_person"), "{config}");
    assert!(config["value_template"].as_str().is_some_and(|t| t.contains("person_name")), "{config}");
    assert_eq!(config["device"]["name"], "demo", "{config}");
    let states = common::eventually(
        "the camera's state",
        limit,
        || async { messages(&seen, "panoptes/demo/state") },
        |m| m.iter().any(|(_, p)| json(p)["state"] == "streaming"),
    )
    .await;
    assert_eq!(json(&states.last().unwrap().1)["camera_id"], demo_id);

    // Appearances.
    let events = common::eventually(
        "an appearance on panoptes/events",
        limit,
        || async { messages(&seen, "panoptes/events") },
        |m| !m.is_empty(),
    )
    .await;
    let event = json(&events[0].1);
    assert_eq!(event["person_name"], "Barack Obama", "{event}");
    assert_eq!(event["camera_id"], demo_id, "{event}");
    assert_eq!(event["camera_topic"], "demo", "{event}");
    assert!(event["id"].as_i64().is_some(), "the event names its stored row: {event}");
    let person = messages(&seen, "panoptes/demo/person");
    let last = json(&person.last().expect("the last person seen").1);
    assert_eq!(last["person_name"], "Barack Obama", "{last}");

    // The broker goes away for 10 s.
    let (received_before, dropped_before) = demo_frames(&api);
    let analysed_before = common::api_metric(&api, "panoptes_frames_analysed_total");
    let connections_before = common::api_metric(&api, "panoptes_mqtt_connections_total");
    let _ = broker.0.kill();
    let _ = broker.0.wait();
    let stopped = Instant::now();
    common::eventually(
        "the engine notices",
        limit,
        || async { common::api_metric(&api, "panoptes_mqtt_connected") },
        |v| *v == 0.0,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(stopped.elapsed())).await;
    let (received_during, dropped_during) = demo_frames(&api);
    let analysed_during = common::api_metric(&api, "panoptes_frames_analysed_total");
    // 10 s of a 10 fps camera: about 100 frames arrived, none was dropped, analysis went on.
    assert!(received_during >= received_before + 80, "frames received {received_before} -> {received_during}");
    assert_eq!(dropped_during, dropped_before, "no frame dropped while the broker was away");
    assert!(analysed_during > analysed_before + 5.0, "analysed {analysed_before} -> {analysed_during}");

    // Back on the same port: the engine reconnects by itself, says it is online, and publishes again.
    let events_before = messages(&seen, "panoptes/events").len();
    let broker_again = mosquitto(&work, broker_port);
    let reconnected = Instant::now();
    common::eventually(
        "the engine reconnects",
        limit,
        || async { common::api_metric(&api, "panoptes_mqtt_connections_total") },
        |v| *v > connections_before,
    )
    .await;
    eprintln!("reconnected {:.1} s after the broker returned", reconnected.elapsed().as_secs_f64());
    assert_eq!(common::api_metric(&api, "panoptes_mqtt_connected"), 1.0);
    common::eventually(
        "new appearances arrive",
        limit,
        || async { messages(&seen, "panoptes/events").len() },
        |n| *n > events_before,
    )
    .await;
    let online: Vec<_> = messages(&seen, availability).into_iter().filter(|(_, p)| p == "online").collect();
    assert!(online.len() >= 2, "online again after the reconnection: {online:?}");
    let by_topic: HashMap<String, usize> = seen.lock().unwrap().iter().fold(HashMap::new(), |mut m, (t, _, _)| {
        *m.entry(t.clone()).or_default() += 1;
        m
    });
    eprintln!(
        "messages by topic: {by_topic:?}; frames dropped at inference (latest wins, load) meanwhile: {}",
        common::api_metric(&api, "panoptes_frames_dropped_total")
    );

    // The engine dies without a word: the broker publishes its last will.
    let mut engine = engine;
    let _ = engine.0.kill();
    let _ = engine.0.wait();
    common::eventually(
        "the last will says offline",
        limit,
        || async { messages(&seen, availability) },
        |m| m.last().is_some_and(|(_, p)| p == "offline"),
    )
    .await;
    drop(broker_again);
}

/// Runs `openssl ARGS` in `dir`, which must succeed.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A certificate authority `name`.pem (and its key), made fresh for the test.
fn authority(dir: &std::path::Path, name: &str) {
    let (key, cert, subject) = (format!("{name}.key"), format!("{name}.pem"), format!("/CN=panoptes test {name}"));
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &subject, "-keyout", &key, "-out",
            &cert,
        ],
    );
}

/// MQTT over TLS with a username and password, against mosquitto's TLS listener (a certificate for
/// 127.0.0.1 signed by a CA made here): the engine given that CA and the right password connects and
/// says it is online; an engine given another CA, and one given a wrong password, do not connect,
/// keep serving, and count no connection.
#[tokio::test]
async fn mqtt_over_tls_checks_the_broker_certificate_and_the_credentials() {
    let work = common::temp_dir("mqtt-tls");
    authority(&work, "ca");
    authority(&work, "stranger");
    openssl(
        &work,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(work.join("san.ext"), "subjectAltName = IP:127.0.0.1\n").unwrap();
    openssl(
        &work,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
    let passwd = work.join("passwd");
    let status = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&passwd)
        .args(["panoptes", "s3cret"])
        .status()
        .expect("mosquitto_passwd (in Debian's mosquitto)");
    assert!(status.success());

    // A plain listener for the test's own subscriber, and the TLS one with passwords for the engines.
    let (plain, tls) = (common::free_port(), common::free_port());
    let conf = work.join("mosquitto-tls.conf");
    let path = |f: &str| common::path_str(&work.join(f));
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings true\npersistence false\n# As root, stay root: the files are the test's.\nuser root\n\
             listener {plain} 127.0.0.1\nallow_anonymous true\n\
             listener {tls} 127.0.0.1\nallow_anonymous false\npassword_file {}\ncafile {}\ncertfile {}\nkeyfile {}\n",
            path("passwd"),
            path("ca.pem"),
            path("server.pem"),
            path("server.key"),
        ),
    )
    .unwrap();
    let _broker = mosquitto_with(&conf);
    let seen = subscribe(plain);

    let db = common::fresh_database().await;
    let engine = |node: &str, ca: &str, password: &str| {
        let port = common::free_port();
        let child = common::serve_command(&db, port, &work.join(format!("snapshots-{node}")))
            .env("PANOPTES_STREAMING__DEMO_CLIP", "\"\"")
            .env("PANOPTES_STREAMING__NODE_ID", format!("\"{node}\""))
            .env("PANOPTES_MQTT__URL", format!("\"mqtts://127.0.0.1:{tls}\""))
            .env("PANOPTES_MQTT__CA_FILE", format!("\"{}\"", path(ca)))
            .env("PANOPTES_MQTT__USERNAME", "\"panoptes\"")
            .env("PANOPTES_MQTT__PASSWORD", format!("\"{password}\""))
            .stderr(std::fs::File::create(work.join(format!("{node}.log"))).expect("log file"))
            .spawn()
            .expect("start panoptes serve");
        (KillOnDrop(child), format!("http://127.0.0.1:{port}"))
    };
    let (_trusted, trusted_api) = engine("trusted", "ca.pem", "s3cret");
    let (_stranger, stranger_api) = engine("stranger", "stranger.pem", "s3cret");
    let (_wrong_password, wrong_password_api) = engine("wrong-password", "ca.pem", "guess");
    let limit = Duration::from_secs(60);

    common::eventually(
        "the engine with the right CA and password says it is online",
        limit,
        || async { messages(&seen, "panoptes/node/trusted/availability") },
        |m| m.iter().any(|(_, p)| p == "online"),
    )
    .await;
    assert_eq!(common::api_metric(&trusted_api, "panoptes_mqtt_connected"), 1.0);
    assert!(common::api_metric(&trusted_api, "panoptes_mqtt_connections_total") >= 1.0);

    // The other two had as long, and a few reconnection attempts more: never connected, still serving,
    // and their logs say why at the default level.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for (node, api, reason) in
        [("stranger", &stranger_api, "certificate"), ("wrong-password", &wrong_password_api, "refused")]
    {
        let log = std::fs::read_to_string(work.join(format!("{node}.log"))).expect("the engine's log");
        let said = log.lines().find(|l| l.contains("MQTT cannot connect")).unwrap_or_else(|| panic!("{node}: {log}"));
        assert!(said.to_lowercase().contains(reason), "{node} says: {said}");
        assert!(said.contains(&format!("127.0.0.1:{tls}")), "{node} names the broker: {said}");
        assert_eq!(common::api_metric(api, "panoptes_mqtt_connected"), 0.0, "{node} connected");
        assert_eq!(common::api_metric(api, "panoptes_mqtt_connections_total"), 0.0, "{node} connected");
        assert!(messages(&seen, &format!("panoptes/node/{node}/availability")).is_empty(), "{node} published");
        let ready = ureq::get(&format!("{api}/readyz")).call().expect("readyz");
        assert_eq!(ready.status(), 200, "{node} still serves");
    }
}
