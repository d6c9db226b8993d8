//! Search by face over 100k and 1M stored appearance faces (128-d, SFace's width): p50/p95 per
//! search and the index's memory.
//!
//! Faces are synthetic but shaped like real ones: 20 appearances per person on average, each its
//! person's centre plus noise (cosine ≈ 0.55 between two appearances of one person, ≈ 0 between
//! persons). Each query is a new appearance of a random person; 50 answers, no filter.
//!
//! - Always: the index alone (`AppearanceIndex::candidates`, the int8 pass with its error bound), one
//!   thread, and how many candidates a search rescores.
//! - With `PANOPTES_BENCH_DATABASE_URL` (an empty database; `bench/search.sh` makes one): the faces
//!   are written to PostgreSQL, each appearance an unknown stranger grouped into their identity, read
//!   into an index as an engine does at start (timed), and the whole search is timed
//!   (`search::search`: the index, then the candidates read back and scored exactly). Then one new
//!   ended unknown appearance per query is grouped online (`unknowns::group_pending`), timed.
//!
//! cargo bench -p panoptes-engine --bench search [-- 100000,1000000]

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use panoptes_engine::embed::{l2_normalized, Judgement, ModelId, ModelInfo};
use panoptes_engine::search::sync::IndexSync;
use panoptes_engine::search::{self, AppearanceIndex, Filter, SearchRequest};
use panoptes_engine::storage::{connect_client, NewDetection, Store};
use panoptes_engine::track::TrackEmbedding;
use rand::{rngs::StdRng, Rng, SeedableRng};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

const DIM: usize = 128;
const FACES_PER_PERSON: usize = 20;
const QUERIES: usize = 200;
const LIMIT: usize = 50;

fn random_unit(rng: &mut StdRng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    l2_normalized(&v)
}

/// An appearance of the person whose centre is `centre`.
fn appearance(rng: &mut StdRng, centre: &[f32]) -> Vec<f32> {
    let noise = random_unit(rng);
    l2_normalized(&centre.iter().zip(&noise).map(|(c, n)| c + 0.9 * n).collect::<Vec<_>>())
}

fn model() -> ModelInfo {
    let judgement = Judgement { match_threshold: 0.4, instant_match_score: 0.6, margin: 0.05 };
    ModelInfo { id: ModelId { name: "bench".into(), version: "0".into() }, dim: DIM, judgement }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(what: &str, n: usize, mut times: Vec<Duration>, extra: &str) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{what:<28} {n:>9} faces: p50 {:7.2} ms  p95 {:7.2} ms  max {:7.2} ms  {extra}",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.95)),
        ms(*times.last().unwrap_or(&Duration::ZERO)),
    );
}

struct Faces {
    centres: Vec<Vec<f32>>,
    vectors: Vec<Vec<f32>>,
    /// Whose appearance each face is (an index into `centres`).
    persons: Vec<usize>,
}

fn faces(n: usize, rng: &mut StdRng) -> Faces {
    let centres: Vec<Vec<f32>> = (0..n.div_ceil(FACES_PER_PERSON)).map(|_| random_unit(rng)).collect();
    let persons: Vec<usize> = (0..n).map(|_| rng.gen_range(0..centres.len())).collect();
    let vectors = persons.iter().map(|&who| appearance(rng, &centres[who])).collect();
    Faces { centres, vectors, persons }
}

fn at(i: usize) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + i as i64 * 3, 0).single().unwrap_or_default()
}

fn queries(f: &Faces, rng: &mut StdRng) -> Vec<Vec<f32>> {
    (0..QUERIES)
        .map(|_| {
            let who = rng.gen_range(0..f.centres.len());
            appearance(rng, &f.centres[who])
        })
        .collect()
}

fn index_alone(n: usize, f: &Faces, qs: &[Vec<f32>]) {
    let m = model();
    let mut index = AppearanceIndex::new(m.id.clone(), DIM);
    for (i, v) in f.vectors.iter().enumerate() {
        index.upsert(i as i64 + 1, at(i), Some(1 + (i % 16) as i64), v).expect("upsert");
    }
    let mut times = Vec::with_capacity(qs.len());
    let mut candidates = 0;
    for q in qs {
        let t = Instant::now();
        let (c, _) = index.candidates(q, LIMIT, &Filter::default()).expect("candidates");
        times.push(t.elapsed());
        candidates += c.len();
    }
    let extra = format!(
        "index {:.0} MB, {:.0} candidates per search",
        index.heap_bytes() as f64 / 1e6,
        candidates as f64 / qs.len() as f64
    );
    report("index alone (int8 pass)", n, times, &extra);
}

async fn write_faces(url: &str, f: &Faces) -> Result<(), Box<dyn std::error::Error>> {
    let c = connect_client(url).await?;
    c.batch_execute(
        "TRUNCATE detections, unknown_identities CASCADE; INSERT INTO cameras (id, name, url, analysis_fps, enabled)
         SELECT i, 'cam-' || i, 'rtsp://192.0.2.1/' || i, 5, false FROM generate_series(1, 16) i ON CONFLICT DO NOTHING",
    )
    .await?;
    // Every stored appearance is an unknown stranger already grouped into their identity, as after
    // the engine has run a while with unknown faces recorded.
    c.execute(
        "INSERT INTO unknown_identities (id, model_name, model_version) SELECT i, 'bench', '0' FROM generate_series(1, $1::bigint) i",
        &[&(f.centres.len() as i64)],
    )
    .await?;
    c.batch_execute("SELECT setval('unknown_identities_id_seq', (SELECT max(id) FROM unknown_identities))").await?;
    let sink = c
        .copy_in("COPY detections (id, camera_id, detected_at, score, box_x, box_y, box_w, box_h, unknown_id) FROM STDIN BINARY")
        .await?;
    let types = [
        Type::INT8,
        Type::INT8,
        Type::TIMESTAMPTZ,
        Type::FLOAT4,
        Type::FLOAT4,
        Type::FLOAT4,
        Type::FLOAT4,
        Type::FLOAT4,
        Type::INT8,
    ];
    let mut w = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
    for i in 0..f.vectors.len() {
        let (id, cam, t, who) = (i as i64 + 1, 1 + (i % 16) as i64, at(i), f.persons[i] as i64 + 1);
        w.as_mut().write(&[&id, &cam, &t, &0.0f32, &10.0f32, &10.0f32, &80.0f32, &80.0f32, &who]).await?;
    }
    w.finish().await?;
    let sink = c
        .copy_in("COPY appearance_faces (detection_id, detected_at, model_name, model_version, vector, quality) FROM STDIN BINARY")
        .await?;
    let types = [Type::INT8, Type::TIMESTAMPTZ, Type::TEXT, Type::TEXT, Type::FLOAT4_ARRAY, Type::FLOAT4];
    let mut w = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
    let m = model();
    for (i, v) in f.vectors.iter().enumerate() {
        let (id, t) = (i as i64 + 1, at(i));
        w.as_mut().write(&[&id, &t, &m.id.name, &m.id.version, v, &0.9f32]).await?;
    }
    w.finish().await?;
    c.batch_execute("SELECT setval('detections_id_seq', (SELECT max(id) FROM detections)); ANALYZE detections; ANALYZE appearance_faces").await?;
    Ok(())
}

async fn with_database(url: &str, n: usize, f: &Faces, qs: &[Vec<f32>]) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::connect(url, 4).await?;
    let t = Instant::now();
    write_faces(url, f).await?;
    println!("{:<28} {n:>9} faces: written in {:.1} s", "database fill", t.elapsed().as_secs_f64());
    let m = model();
    let index = Arc::new(RwLock::new(AppearanceIndex::new(m.id.clone(), DIM)));
    let t = Instant::now();
    IndexSync::new().refresh(&store, &index, &m).await?;
    let bytes = index.read().map(|i| i.heap_bytes()).unwrap_or(0);
    println!(
        "{:<28} {n:>9} faces: read in {:.1} s, index {:.0} MB",
        "index read at start",
        t.elapsed().as_secs_f64(),
        bytes as f64 / 1e6
    );
    let mut times = Vec::with_capacity(qs.len());
    let mut rescored = 0;
    for q in qs {
        let req = SearchRequest {
            model: m.id.clone(),
            query: q.clone(),
            cameras: Vec::new(),
            from: None,
            until: None,
            min_score: -1.0,
            after: None,
            limit: LIMIT,
        };
        let t = Instant::now();
        let page = search::search(&store, &index, &req).await?;
        times.push(t.elapsed());
        rescored += page.rescored;
    }
    report(
        "whole search (index + db)",
        n,
        times,
        &format!("{:.0} rescored per search", rescored as f64 / qs.len() as f64),
    );

    // Online grouping: new ended unknown appearances (one per query face), grouped as the engine
    // does (a search of their neighbours, the decision, the write), after the index has read them.
    let mut sync = IndexSync::new();
    sync.refresh(&store, &index, &m).await?;
    let box_ = panoptes_engine::geometry::BBox { x: 10.0, y: 10.0, width: 80.0, height: 80.0 };
    let rows: Vec<NewDetection> = qs
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let mut d = NewDetection::single(1 + (i % 16) as i64, Utc::now(), None, 0.0, 0.9, box_);
            d.last_seen_at = Some(Utc::now());
            d.face = Some(Arc::new(TrackEmbedding { model: m.id.clone(), quality: 0.9, vector: q.clone().into() }));
            d
        })
        .collect();
    store.insert_detections(&rows).await?;
    sync.refresh(&store, &index, &m).await?;
    let t = Instant::now();
    let pass = panoptes_engine::unknowns::group_pending(&store, &index, &m.id, &m.judgement).await?;
    let took = t.elapsed();
    let grouped = pass.joined + pass.created;
    println!(
        "{:<28} {n:>9} faces: {:.2} ms per unknown appearance ({grouped} grouped: {} joined an identity, {} new)",
        "online grouping",
        took.as_secs_f64() * 1e3 / grouped.max(1) as f64,
        pass.joined,
        pass.created
    );
    Ok(())
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.split(',').filter_map(|s| s.parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000, 1_000_000]);
    let database = std::env::var("PANOPTES_BENCH_DATABASE_URL").ok();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    for n in sizes {
        let mut rng = StdRng::seed_from_u64(n as u64);
        let f = faces(n, &mut rng);
        let qs = queries(&f, &mut rng);
        index_alone(n, &f, &qs);
        if let (Some(url), Ok(rt)) = (&database, &runtime) {
            if let Err(e) = rt.block_on(with_database(url, n, &f, &qs)) {
                eprintln!("database part failed: {e}");
                std::process::exit(1);
            }
        }
    }
}
