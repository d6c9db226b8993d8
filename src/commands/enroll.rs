//! `panoptes enroll --name NAME photo...`: creates a person from one or more photos.

use std::path::PathBuf;

use anyhow::{bail, Result};
use panoptes_engine::enrollment::enroll_photo;

use panoptes::Context;

pub async fn run(mut ctx: Context, name: &str, person_id: Option<i64>, photos: &[PathBuf]) -> Result<()> {
    let name = name.trim();
    if person_id.is_none() && (name.is_empty() || name.chars().count() > 200) {
        bail!("--name must be 1 to 200 characters");
    }
    let (person, created) = match person_id {
        Some(id) => match ctx.store.person(id).await? {
            Some(p) => (p, false),
            None => bail!("no person with id {id}"),
        },
        None => (ctx.store.create_person(name, &serde_json::json!({})).await?, true),
    };
    let mut enrolled = 0;
    for photo in photos {
        let bytes = match std::fs::read(photo) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{}: cannot read: {e}", photo.display());
                continue;
            }
        };
        match enroll_photo(&mut ctx.pipeline, &ctx.store, &ctx.gallery, &ctx.settings.enrollment, person.id, &bytes)
            .await
        {
            Ok(e) if e.embedding_id.is_some() => {
                enrolled += 1;
                println!("{}: enrolled (detection score {:.2})", photo.display(), e.det_score);
                if let Some(w) = e.warning {
                    eprintln!("{}: warning: {w}", photo.display());
                }
            }
            Ok(_) => println!("{}: already enrolled for this person", photo.display()),
            Err(e) => eprintln!("{}: refused [{}]: {e}", photo.display(), e.code()),
        }
    }
    if enrolled == 0 && created {
        ctx.store.delete_person(person.id).await?;
        bail!("no photo could be enrolled; person {:?} was not created", person.name);
    }
    println!("person {} {:?}: {} face(s) enrolled now", person.id, person.name, enrolled);
    Ok(())
}
