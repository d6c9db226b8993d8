//! The labelled clip set's two CSV files: a clip's truth (who is in view, and when) and the enrolment
//! stills. Plain comma-separated lines, no quoting; a header line is allowed; blank lines and lines
//! starting with `#` are skipped. Every error names the file, the line and the column.

use std::path::{Path, PathBuf};

use super::VideoEvalError;

/// Who the truth calls a person nobody enrolled.
pub const STRANGER: &str = "stranger";

/// One person in view: `start_s`..`end_s` seconds from the clip's start.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TruthWindow {
    pub name: String,
    pub start_s: f64,
    pub end_s: f64,
}

impl TruthWindow {
    pub fn is_stranger(&self) -> bool {
        self.name == STRANGER
    }
}

/// One enrolment still: a person's name and the photo (relative paths are relative to the CSV's folder).
#[derive(Clone, Debug, PartialEq)]
pub struct EnrolStill {
    pub name: String,
    pub photo: PathBuf,
}

fn bad(file: &Path, line: usize, column: usize, message: impl Into<String>) -> VideoEvalError {
    VideoEvalError::Input { file: file.to_path_buf(), line, column, message: message.into() }
}

/// The data lines of a CSV with `columns` fields each: (line number, fields). A first line naming
/// the columns is skipped.
fn rows<'a>(file: &Path, text: &'a str, header: &[&str]) -> Result<Vec<(usize, Vec<&'a str>)>, VideoEvalError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if out.is_empty() && fields.first().is_some_and(|f| f.eq_ignore_ascii_case(header[0])) {
            continue;
        }
        if fields.len() != header.len() {
            return Err(bad(
                file,
                n,
                fields.len().min(header.len()) + 1,
                format!("expected {} columns ({}), found {}", header.len(), header.join(","), fields.len()),
            ));
        }
        if let Some(c) = fields.iter().position(|f| f.contains('"')) {
            return Err(bad(file, n, c + 1, "quoted fields are not supported"));
        }
        out.push((n, fields));
    }
    Ok(out)
}

fn read(file: &Path) -> Result<String, VideoEvalError> {
    std::fs::read_to_string(file).map_err(|source| VideoEvalError::Read { path: file.to_path_buf(), source })
}

/// A clip's truth: `name,start_s,end_s` per line.
pub fn parse_truth(file: &Path, text: &str) -> Result<Vec<TruthWindow>, VideoEvalError> {
    let mut windows = Vec::new();
    for (n, f) in rows(file, text, &["name", "start_s", "end_s"])? {
        if f[0].is_empty() {
            return Err(bad(file, n, 1, "empty name"));
        }
        let seconds = |c: usize| -> Result<f64, VideoEvalError> {
            match f[c].parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
                _ => Err(bad(file, n, c + 1, format!("{:?} is not a number of seconds ≥ 0", f[c]))),
            }
        };
        let (start_s, end_s) = (seconds(1)?, seconds(2)?);
        if end_s <= start_s {
            return Err(bad(file, n, 3, format!("end {end_s} s is not after start {start_s} s")));
        }
        windows.push(TruthWindow { name: f[0].to_string(), start_s, end_s });
    }
    if windows.is_empty() {
        return Err(bad(file, 1, 1, "no truth windows (expected lines name,start_s,end_s)"));
    }
    Ok(windows)
}

pub fn read_truth(file: &Path) -> Result<Vec<TruthWindow>, VideoEvalError> {
    parse_truth(file, &read(file)?)
}

/// The enrolment stills: `name,photo` per line; each name once.
pub fn parse_enrol(file: &Path, text: &str) -> Result<Vec<EnrolStill>, VideoEvalError> {
    let base = file.parent().unwrap_or(Path::new("."));
    let mut stills: Vec<EnrolStill> = Vec::new();
    for (n, f) in rows(file, text, &["name", "photo"])? {
        if f[0].is_empty() {
            return Err(bad(file, n, 1, "empty name"));
        }
        if f[0] == STRANGER {
            return Err(bad(file, n, 1, format!("{STRANGER:?} names people nobody enrolled; it cannot be enrolled")));
        }
        if stills.iter().any(|s| s.name == f[0]) {
            return Err(bad(file, n, 1, format!("{:?} is enrolled twice", f[0])));
        }
        if f[1].is_empty() {
            return Err(bad(file, n, 2, "empty photo path"));
        }
        let photo = base.join(f[1]);
        if !photo.is_file() {
            return Err(bad(file, n, 2, format!("photo {} not found", photo.display())));
        }
        stills.push(EnrolStill { name: f[0].to_string(), photo });
    }
    if stills.is_empty() {
        return Err(bad(file, 1, 1, "nobody to enroll (expected lines name,photo)"));
    }
    Ok(stills)
}

pub fn read_enrol(file: &Path) -> Result<Vec<EnrolStill>, VideoEvalError> {
    parse_enrol(file, &read(file)?)
}

/// Every person the truth names must be enrolled (or be a stranger).
pub fn check_names(file: &Path, windows: &[TruthWindow], stills: &[EnrolStill]) -> Result<(), VideoEvalError> {
    for w in windows {
        if !w.is_stranger() && !stills.iter().any(|s| s.name == w.name) {
            return Err(VideoEvalError::UnknownPerson { file: file.to_path_buf(), name: w.name.clone() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(r: Result<Vec<TruthWindow>, VideoEvalError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn truth_with_a_header_and_comments_parses() {
        let w = parse_truth(Path::new("t.csv"), "name,start_s,end_s\n# x\nobama,0,1.5\n\nstranger, 2 , 3\n").unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(w[0], TruthWindow { name: "obama".into(), start_s: 0.0, end_s: 1.5 });
        assert!(w[1].is_stranger());
    }

    #[test]
    fn malformed_truth_names_the_line_and_column() {
        let p = Path::new("t.csv");
        assert_eq!(
            err(parse_truth(p, "obama,0,1\nbiden,x,2\n")),
            "t.csv line 2, column 2: \"x\" is not a number of seconds ≥ 0"
        );
        assert_eq!(
            err(parse_truth(p, "obama,0\n")),
            "t.csv line 1, column 3: expected 3 columns (name,start_s,end_s), found 2"
        );
        assert_eq!(err(parse_truth(p, "obama,3,1\n")), "t.csv line 1, column 3: end 1 s is not after start 3 s");
        assert!(err(parse_truth(p, "name,start_s,end_s\n")).contains("no truth windows"));
    }
}
