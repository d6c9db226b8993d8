//! `panoptes eval video`: prints what [`panoptes::video_eval`] measured, as a table or JSON.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use panoptes::video_eval::{self, score::PersonFigures, ClipInput, VideoEvalReport};
use panoptes::Settings;

pub struct EvalVideoArgs {
    pub clip: Option<PathBuf>,
    pub detect_clip: Option<PathBuf>,
    pub truth: Option<PathBuf>,
    pub enrol: Option<PathBuf>,
    pub set: PathBuf,
    pub json: bool,
}

pub async fn run(settings: Settings, args: EvalVideoArgs) -> Result<()> {
    let (clips, enrol) = match (&args.clip, &args.truth) {
        (Some(clip), Some(truth)) => {
            let Some(enrol) = &args.enrol else { bail!("--clip needs --enrol CSV (name,photo per line) too") };
            let detect = args.detect_clip.clone();
            (vec![ClipInput { clip: clip.clone(), truth: truth.clone(), detect }], enrol.clone())
        }
        (Some(_), None) => bail!("--clip needs --truth CSV (name,start_s,end_s per line) too"),
        (None, Some(_)) => bail!("--truth needs --clip FILE too"),
        (None, None) if args.detect_clip.is_some() => {
            bail!("--detect-clip goes with --clip (in a set, <clip>.detect.<ext>)")
        }
        (None, None) => {
            let (clips, enrol) = video_eval::clips_of_set(&args.set)?;
            (clips, args.enrol.clone().unwrap_or(enrol))
        }
    };
    let report = video_eval::evaluate(settings, &clips, &enrol).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report, &enrol);
    }
    Ok(())
}

fn row(clip: &str, person: &str, f: &PersonFigures) {
    let stranger = person == video_eval::truth::STRANGER;
    let dash = |v: u32| if stranger { "-".to_string() } else { v.to_string() };
    println!(
        "{clip:<12} {person:<11} {:>8} {:>5} {:>7} {:>6} {:>10} {:>10} {:>7} {:>9} {:>11}",
        f.expected,
        f.found,
        dash(f.correct),
        dash(f.missed),
        f.wrong_person,
        f.strangers_matched,
        f.unknown,
        f.ambiguous,
        f.appearances
    );
}

fn print_table(r: &VideoEvalReport, enrol: &Path) {
    println!(
        "panoptes eval video: embedder {}, match threshold {}, enrolled from {}",
        r.embedder,
        r.match_threshold.map_or("?".into(), |t| format!("{t:.3}")),
        enrol.display()
    );
    println!(
        "{:<12} {:<11} {:>8} {:>5} {:>7} {:>6} {:>10} {:>10} {:>7} {:>9} {:>11}",
        "clip",
        "person",
        "expected",
        "found",
        "correct",
        "missed",
        "wrong",
        "strangers",
        "unknown",
        "ambiguous",
        "appearances"
    );
    println!("{:<12} {:<11} {:>8} {:>5} {:>7} {:>6} {:>10} {:>10}", "", "", "windows", "", "", "", "person", "matched");
    for c in &r.clips {
        for (name, f) in &c.persons {
            row(&c.clip, name, f);
        }
    }
    for (name, f) in &r.persons {
        row("all clips", name, f);
    }
    row("all clips", "enrolled+", &r.totals);
    for c in &r.clips {
        println!(
            "{}: {:.1} s, {} frames, {} sampled for analysis, {} dropped (a worker busy), {} delivered late",
            c.clip, c.seconds, c.frames, c.sampled, c.dropped, c.late_frames
        );
    }
    println!(
        "found = a truth window with an appearance; correct = one matched to its person; strangers matched = \
         a match in a stranger's window or in none (enrolled+: windows of enrolled people, appearances of all); \
         {:.0} s in all",
        r.wall_s
    );
}
