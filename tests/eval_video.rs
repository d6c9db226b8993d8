//! `panoptes eval video` on the real engine: a short labelled clip (an enrolled person from another
//! photo, then six strangers) is played through the assembly `serve` uses and its stored appearances
//! scored against the truth; bad inputs are refused before anything runs, naming the file, line and
//! column.

mod common;

use std::path::{Path, PathBuf};

use panoptes::video_eval::{self, ClipInput, VideoEvalError};

/// obama2.jpg for 3 s, an empty scene for 1 s, then t1.jpg (six strangers) for 3 s: 10 fps MP4.
fn labelled_clip(dir: &Path) -> PathBuf {
    let out = dir.join("obama-then-strangers.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-loop", "1", "-t", "3", "-i"])
        .arg(common::photo("obama2.jpg"))
        .args(["-loop", "1", "-t", "1", "-i"])
        .arg(common::photo("obama2.jpg"))
        .args(["-loop", "1", "-t", "3", "-i"])
        .arg(common::photo("t1.jpg"))
        .args([
            "-filter_complex",
            "[0]scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:(ow-iw)/2:(oh-ih)/2,setsar=1[a];\
             [1]crop=iw/3:ih/3:0:ih*2/3,scale=1280:720,setsar=1[b];\
             [2]scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:(ow-iw)/2:(oh-ih)/2,setsar=1[c];\
             [a][b][c]concat=n=3:v=1,fps=10[v]",
            "-map",
            "[v]",
            "-c:v",
            "libx264",
            "-profile:v",
            "main",
            "-bf",
            "2",
            "-g",
            "20",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg (installed by scripts/setup.sh)");
    assert!(status.success(), "ffmpeg failed");
    out
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn enrol_csv(dir: &Path) -> PathBuf {
    write(dir, "enrol.csv", &format!("name,photo\nobama,{}\n", common::path_str(&common::photo("obama.jpg"))))
}

fn settings() -> panoptes::Settings {
    common::engine_settings(&common::admin_url(), "eval-video")
}

#[actix_web::test]
async fn an_enrolled_person_is_found_and_no_stranger_is_matched() {
    let dir = common::temp_dir("eval-video");
    let clip = labelled_clip(&dir);
    let truth = write(&dir, "truth.csv", "name,start_s,end_s\nobama,0,3\nstranger,4,7\n");
    let report = video_eval::evaluate(settings(), &[ClipInput { clip, truth, detect: None }], &enrol_csv(&dir))
        .await
        .expect("the evaluation runs");
    assert_eq!(report.clips.len(), 1);
    let c = &report.clips[0];
    assert_eq!(c.frames, 70);
    assert!(c.sampled > 0, "no frame sampled for analysis");
    let obama = &c.persons["obama"];
    assert_eq!(obama.expected, 1);
    assert_eq!((obama.correct, obama.missed), (1, 0), "obama (enrolled from obama.jpg, seen as obama2.jpg): {c:#?}");
    let strangers_matched: u32 = c.persons.values().map(|f| f.strangers_matched).sum();
    assert_eq!(strangers_matched, 0, "a stranger was matched: {:#?}", c.appearances);
    // Every appearance was judged, and the correct one lies in obama's window.
    assert!(c.appearances.iter().all(|a| !a.verdict.is_empty()));
    let correct = c.appearances.iter().find(|a| a.verdict == "correct").expect("a correct appearance");
    assert_eq!(
        (correct.person.as_deref(), correct.decision.as_str(), correct.window),
        (Some("obama"), "matched", Some(0))
    );
    assert!(correct.start_s < 3.5 && correct.end_s > 0.0, "{correct:?}");
    assert_eq!((report.totals.expected, report.totals.correct), (1, 1));
}

/// The far walker of scripts/setup.sh (a face of ~36 px in a 1080p main stream, ~12 px in its 640×360
/// substream): found in the substream either way, recognised only when its face is cropped from the
/// main stream.
#[actix_web::test]
async fn a_face_only_the_main_stream_resolves_is_recognised_with_main_stream_crops_and_not_without() {
    let set = common::root().join(".local/demo/far-walk");
    assert!(set.join("far-walk.detect.h264").is_file(), "{} missing: run scripts/setup.sh", set.display());
    let truth = set.join("far-walk.truth.csv");
    let enrol = set.join("enrol.csv");
    let run = |clip: &str, detect: Option<&str>| {
        let input = ClipInput { clip: set.join(clip), truth: truth.clone(), detect: detect.map(|d| set.join(d)) };
        let enrol = enrol.clone();
        async move { video_eval::evaluate(settings(), &[input], &enrol).await.expect("the evaluation runs") }
    };
    let alone = run("far-walk.detect.h264", None).await;
    let paired = run("far-walk.h264", Some("far-walk.detect.h264")).await;
    let (alone, paired) = (&alone.clips[0], &paired.clips[0]);
    eprintln!("substream alone: {:?}\nwith main-stream crops: {:?}", alone.appearances, paired.appearances);
    assert_eq!(alone.persons["obama"].found, 1, "the substream's detector sees the 12 px face: {alone:#?}");
    assert_eq!(alone.persons["obama"].correct, 0, "a 12 px face recognised from the substream alone: {alone:#?}");
    let obama = &paired.persons["obama"];
    assert_eq!((obama.correct, obama.wrong_person, obama.strangers_matched), (1, 0, 0), "{paired:#?}");
}

async fn refused(clip: PathBuf, truth: PathBuf, enrol: PathBuf) -> String {
    match video_eval::evaluate(settings(), &[ClipInput { clip, truth, detect: None }], &enrol).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("bad input accepted"),
    }
}

#[actix_web::test]
async fn bad_inputs_are_refused_naming_the_file_line_and_column() {
    let dir = common::temp_dir("eval-video-bad");
    let clip = write(&dir, "clip.mp4", "not looked at: the inputs are checked first");
    let enrol = enrol_csv(&dir);
    let truth = write(&dir, "t1.csv", "name,start_s,end_s\nobama,0,3\nobama,4,soon\n");
    let e = refused(clip.clone(), truth.clone(), enrol.clone()).await;
    assert_eq!(e, format!("{} line 3, column 3: \"soon\" is not a number of seconds ≥ 0", truth.display()));

    let truth = write(&dir, "t2.csv", "obama,0,3,extra\n");
    let e = refused(clip.clone(), truth.clone(), enrol.clone()).await;
    assert!(e.starts_with(&format!("{} line 1, column 4: expected 3 columns", truth.display())), "{e}");

    let truth = write(&dir, "t3.csv", "obama,0,3\nbiden,1,2\n");
    let e = refused(clip.clone(), truth.clone(), enrol.clone()).await;
    assert!(e.contains("\"biden\" is in the truth but not in the enrolment CSV"), "{e}");

    let good = write(&dir, "good.csv", "obama,0,3\n");
    let e = refused(dir.join("missing.mp4"), good.clone(), enrol.clone()).await;
    assert!(e.contains("missing.mp4"), "{e}");

    let bad_enrol = write(&dir, "enrol-bad.csv", "name,photo\nobama,nowhere.jpg\n");
    let e = refused(clip.clone(), good.clone(), bad_enrol.clone()).await;
    assert!(e.starts_with(&format!("{} line 2, column 2: photo", bad_enrol.display())), "{e}");
    assert!(e.contains("nowhere.jpg not found"), "{e}");

    // A file that is not video is named before any database is made: here the server is one that
    // cannot be reached, and the error is still the clip's.
    let mut unreachable = settings();
    unreachable.database.url = "postgresql://postgres@127.0.0.1:1/postgres".into();
    let e = match video_eval::evaluate(
        unreachable,
        &[ClipInput { clip: clip.clone(), truth: good.clone(), detect: None }],
        &enrol,
    )
    .await
    {
        Err(e) => panoptes_engine::error_chain::error_chain(&e),
        Ok(_) => panic!("a text file played as video"),
    };
    assert!(e.starts_with(&format!("the clip {}", clip.display())), "{e}");

    // A set folder without clips.
    match video_eval::clips_of_set(&common::temp_dir("eval-video-empty")) {
        Err(VideoEvalError::NoClips(_)) => {}
        other => panic!("expected NoClips, got {other:?}"),
    }
}
