//! `panoptes identify photo`: every face with its box, detection score and best matches.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Serialize;

use panoptes::Context;

#[derive(Serialize)]
struct FaceReport {
    bbox: panoptes_engine::geometry::BBox,
    detection_score: f32,
    matches: Vec<MatchReport>,
}

#[derive(Serialize)]
struct MatchReport {
    person_id: i64,
    name: String,
    score: f32,
    is_match: bool,
}

pub async fn run(mut ctx: Context, photo: &Path, json: bool) -> Result<()> {
    let bytes = std::fs::read(photo).with_context(|| format!("reading {}", photo.display()))?;
    let faces = ctx.pipeline.analyze_bytes(&bytes).with_context(|| format!("{}", photo.display()))?;
    let mut reports = Vec::new();
    let threshold = {
        let gallery = ctx.gallery.read().unwrap_or_else(|p| p.into_inner());
        for f in &faces {
            reports.push((f, gallery.search(ctx.pipeline.model(), &f.embedding, ctx.settings.gallery.top_k)?));
        }
        gallery.judgement().match_threshold
    };
    let ids: Vec<i64> = reports.iter().flat_map(|(_, m)| m.iter().map(|m| m.person_id)).collect();
    let names: HashMap<i64, String> = ctx.store.person_names(&ids).await?.into_iter().collect();
    let out: Vec<FaceReport> = reports
        .into_iter()
        .map(|(f, matches)| FaceReport {
            bbox: f.face.bbox,
            detection_score: f.face.score,
            matches: matches
                .into_iter()
                .map(|m| MatchReport {
                    person_id: m.person_id,
                    name: names.get(&m.person_id).cloned().unwrap_or_default(),
                    score: m.score,
                    is_match: m.score >= threshold,
                })
                .collect(),
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("{}: {} face(s)", photo.display(), out.len());
    for (i, f) in out.iter().enumerate() {
        let b = f.bbox;
        println!(
            "face {}: box x={:.0} y={:.0} w={:.0} h={:.0}  detection {:.3}",
            i + 1,
            b.x,
            b.y,
            b.width,
            b.height,
            f.detection_score
        );
        if f.matches.is_empty() {
            println!("  (gallery is empty)");
        }
        for (rank, m) in f.matches.iter().enumerate() {
            let verdict = if m.is_match { "MATCH" } else { "" };
            println!("  {}. {} (person {})  {:.3}  {}", rank + 1, m.name, m.person_id, m.score, verdict);
        }
    }
    Ok(())
}
