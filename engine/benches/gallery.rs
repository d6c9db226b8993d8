//! Gallery search: exact cosine top-5 over 10k, 100k and 1M random 192-d unit vectors, one thread
//! (192: MobileFaceNet's width; SFace's 128 is cheaper).
//! cargo bench -p panoptes-engine --bench gallery

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use panoptes_engine::embed::{l2_normalized, Judgement, ModelId, ModelInfo};
use panoptes_engine::gallery::Gallery;
use rand::{rngs::StdRng, Rng, SeedableRng};

const EMBEDDING_DIM: usize = 192;

fn random_unit(rng: &mut StdRng) -> Vec<f32> {
    let v: Vec<f32> = (0..EMBEDDING_DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    l2_normalized(&v)
}

fn search(c: &mut Criterion) {
    let mut group = c.benchmark_group("gallery_search_top5");
    group.sample_size(30);
    let mut rng = StdRng::seed_from_u64(7);
    let queries: Vec<Vec<f32>> = (0..16).map(|_| random_unit(&mut rng)).collect();
    for n in [10_000usize, 100_000, 1_000_000] {
        let id = ModelId { name: "bench".into(), version: "0".into() };
        let judgement = Judgement { match_threshold: 0.5, instant_match_score: 0.7, margin: 0.08 };
        let mut g = Gallery::new(ModelInfo { id: id.clone(), dim: EMBEDDING_DIM, judgement });
        for i in 0..n {
            // ~4 faces per person, as after a typical enrollment
            g.insert(i as i64, (i / 4) as i64, &random_unit(&mut rng)).expect("insert");
        }
        group.throughput(Throughput::Elements(n as u64));
        let mut q = 0;
        group.bench_with_input(BenchmarkId::new("int8_prefilter_exact", n), &g, |b, g| {
            b.iter(|| {
                q = (q + 1) % queries.len();
                g.search(&id, &queries[q], 5).expect("search")
            })
        });
        group.bench_with_input(BenchmarkId::new("f32_exhaustive", n), &g, |b, g| {
            b.iter(|| {
                q = (q + 1) % queries.len();
                g.search_exhaustive(&id, &queries[q], 5).expect("search")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);
