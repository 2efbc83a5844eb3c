//! What the paths given to `replay import` hold, judged from content, never from names.
//!
//! [`plan`] walks directories (a sudo I/O log directory is recognised as a whole and not
//! walked into), sniffs each file's first bytes, and pairs each `script` timing file with
//! its typescript(s): the logs an advanced timing file names, else the typescript
//! (a file starting `Script started on`) beside it, or among the files given, that the
//! timing accounts for exactly. [`Source::load`] then reads and decodes one source whole.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::session::Digest;
use crate::{Format, ImportError, Recording, asciicast, script, sudo, tlog, ttyrec};

/// One recording to import: a file, a script pair, or a sudo I/O log directory.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// A one-file format (asciicast, ttyrec, tlog).
    File {
        /// The file.
        path: PathBuf,
        /// Its format, as sniffed.
        format: Format,
    },
    /// A `script` timing file and its typescript(s).
    Script {
        /// The timing file.
        timing: PathBuf,
        /// The typescript (output; with `-B`, input too).
        output: PathBuf,
        /// A separate input log.
        input: Option<PathBuf>,
    },
    /// A sudo I/O log directory.
    SudoDir {
        /// The directory.
        dir: PathBuf,
    },
}

/// A source read and decoded.
#[derive(Debug)]
pub struct Loaded {
    /// The digest of everything read (see [`Digest`]).
    pub digest: Digest,
    /// The recordings (one, except for a tlog file holding several).
    pub recordings: Vec<Recording>,
    /// Modification time of the main file, UTC nanoseconds, when known.
    pub modified_ns: Option<i64>,
}

/// What [`plan`] found.
#[derive(Debug, Default)]
pub struct Plan {
    /// Recordings to import, in path order.
    pub sources: Vec<Source>,
    /// What cannot be imported (a path, or a timing file with the typescript it was
    /// tried with), and why: files named on the command line that hold none of our
    /// formats, script timing files without a typescript that fits.
    pub problems: Vec<(String, ImportError)>,
    /// Files met while walking a directory that hold none of our formats (or a
    /// typescript no timing file claimed); left alone.
    pub skipped: Vec<PathBuf>,
}

impl Source {
    /// The path to name in messages.
    pub fn label(&self) -> String {
        match self {
            Source::File { path, .. } | Source::SudoDir { dir: path } => path.display().to_string(),
            Source::Script {
                timing,
                output,
                input,
            } => match input {
                Some(i) => format!(
                    "{} (with {} and {})",
                    timing.display(),
                    output.display(),
                    i.display()
                ),
                None => format!("{} (with {})", timing.display(), output.display()),
            },
        }
    }

    /// The format read.
    pub fn format(&self) -> Format {
        match self {
            Source::File { format, .. } => *format,
            Source::Script { .. } => Format::Script,
            Source::SudoDir { .. } => Format::SudoIolog,
        }
    }

    /// Reads and decodes the whole source.
    pub fn load(&self) -> Result<Loaded, ImportError> {
        match self {
            Source::File { path, format } => {
                let bytes = read(path)?;
                let recordings = match format {
                    Format::Ttyrec => vec![ttyrec::decode(&bytes)?],
                    Format::Tlog => tlog::decode(&bytes)?,
                    _ => vec![asciicast::decode(&bytes)?],
                };
                Ok(Loaded {
                    digest: Digest::of_file(&bytes),
                    recordings,
                    modified_ns: modified(path),
                })
            }
            Source::Script {
                timing,
                output,
                input,
            } => {
                let t = read(timing)?;
                let o = read(output)?;
                let i = match input {
                    Some(p) if p != output => Some(read(p)?),
                    _ => None,
                };
                let rec = script::decode(script::Files {
                    timing: &t,
                    output: &o,
                    input: i.as_deref(),
                })?;
                let mut parts: Vec<(&str, &[u8])> = vec![("timing", &t), ("typescript", &o)];
                if let Some(i) = &i {
                    parts.push(("input log", i));
                }
                Ok(Loaded {
                    digest: Digest::of_parts(parts),
                    recordings: vec![rec],
                    modified_ns: modified(timing),
                })
            }
            Source::SudoDir { dir } => {
                let mut raw = Vec::new();
                for name in file_names(dir)? {
                    let bytes = read(&dir.join(&name))?;
                    raw.push((name, bytes));
                }
                let mut files = sudo::Files::new();
                for (name, bytes) in &raw {
                    let known = matches!(name.as_str(), "log" | "log.json" | "timing")
                        || sudo::STREAMS.contains(&name.as_str());
                    if known {
                        files.insert(name.clone(), sudo::inflate(name, bytes)?);
                    }
                }
                let rec = sudo::decode(&files)?;
                Ok(Loaded {
                    digest: Digest::of_parts(raw.iter().map(|(n, b)| (n.as_str(), b.as_slice()))),
                    recordings: vec![rec],
                    modified_ns: modified(&dir.join("timing")),
                })
            }
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ImportError> {
    std::fs::read(path).map_err(|e| ImportError::io(path, e))
}

fn modified(path: &Path) -> Option<i64> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_nanos()).ok()
}

/// Regular files directly in `dir`, sorted by name.
fn file_names(dir: &Path) -> Result<Vec<String>, ImportError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| ImportError::io(dir, e))? {
        let entry = entry.map_err(|e| ImportError::io(dir, e))?;
        if entry
            .file_type()
            .map_err(|e| ImportError::io(&entry.path(), e))?
            .is_file()
        {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// What a file's first bytes say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// A one-file format.
    Recording(Format),
    /// A `script` timing file.
    Timing,
    /// A `script` typescript.
    Typescript,
    /// A sudo I/O log's timing file, outside its directory.
    SudoTiming,
    /// None of ours.
    Unknown,
}

/// Sniffs the first bytes of a file.
pub fn sniff(head: &[u8]) -> Sniffed {
    if tlog::sniff(head) {
        Sniffed::Recording(Format::Tlog)
    } else if let Some(v) = asciicast::sniff(head) {
        Sniffed::Recording(v)
    } else if script::sniff_typescript(head) {
        Sniffed::Typescript
    } else if script::sniff_timing(head).is_some() {
        Sniffed::Timing
    } else if is_sudo_timing(head) {
        Sniffed::SudoTiming
    } else if ttyrec::sniff(head) {
        Sniffed::Recording(Format::Ttyrec)
    } else {
        Sniffed::Unknown
    }
}

fn is_sudo_timing(head: &[u8]) -> bool {
    if head.starts_with(&[0x1f, 0x8b]) {
        return false;
    }
    let end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = String::from_utf8_lossy(&head[..end]);
    let f: Vec<&str> = line.split(' ').collect();
    f.len() >= 3
        && f[0].len() == 1
        && f[0].parse::<u8>().is_ok_and(|e| e <= 7)
        && f[1].contains('.')
}

fn head(path: &Path) -> Result<Vec<u8>, ImportError> {
    let mut buf = Vec::with_capacity(4096);
    std::fs::File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut buf))
        .map_err(|e| ImportError::io(path, e))?;
    Ok(buf)
}

fn is_sudo_dir(dir: &Path) -> bool {
    file_names(dir).is_ok_and(|names| sudo::is_iolog_dir(&names))
}

/// A file to classify: where it is, and whether it was named on the command line.
struct Candidate {
    path: PathBuf,
    explicit: bool,
    kind: Sniffed,
}

fn walk(dir: &Path, plan: &mut Plan, files: &mut Vec<Candidate>) {
    if is_sudo_dir(dir) {
        plan.sources.push(Source::SudoDir {
            dir: dir.to_path_buf(),
        });
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            plan.problems
                .push((dir.display().to_string(), ImportError::io(dir, e)));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(&p, plan, files);
        } else if p.is_file() {
            match head(&p) {
                Ok(h) => files.push(Candidate {
                    kind: sniff(&h),
                    path: p,
                    explicit: false,
                }),
                Err(e) => plan.problems.push((p.display().to_string(), e)),
            }
        }
    }
}

/// Finds the recordings in `paths` (files and directories).
pub fn plan(paths: &[PathBuf]) -> Plan {
    let mut plan = Plan::default();
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut plan, &mut files);
            continue;
        }
        match head(p) {
            Ok(h) => files.push(Candidate {
                kind: sniff(&h),
                path: p.clone(),
                explicit: true,
            }),
            Err(e) => plan.problems.push((p.display().to_string(), e)),
        }
    }
    let mut used: BTreeSet<PathBuf> = BTreeSet::new();
    for c in files.iter().filter(|c| c.kind == Sniffed::Timing) {
        match pair(c, &files) {
            Ok(source) => {
                if let Source::Script { output, input, .. } = &source {
                    used.insert(output.clone());
                    used.extend(input.clone());
                }
                plan.sources.push(source);
            }
            Err(Unpaired {
                label,
                error,
                tried,
            }) => {
                // The typescripts it was tried with are not reported again.
                used.extend(tried);
                plan.problems.push((label, error));
            }
        }
    }
    for c in &files {
        let problem = match c.kind {
            Sniffed::Recording(format) => {
                plan.sources.push(Source::File {
                    path: c.path.clone(),
                    format,
                });
                continue;
            }
            Sniffed::Timing => continue,
            Sniffed::Typescript if used.contains(&c.path) => continue,
            Sniffed::Typescript => {
                "a script typescript without its timing file: name the timing file too (script -t/--log-timing wrote it)"
            }
            Sniffed::SudoTiming => "a sudo I/O log timing file: import the directory that holds it",
            Sniffed::Unknown => {
                "not a recording we can import (asciicast v1/v2/v3, ttyrec, script timing + typescript, sudo I/O log directory, tlog JSON)"
            }
        };
        if c.explicit {
            plan.problems.push((
                c.path.display().to_string(),
                ImportError::Unrecognized(problem.to_string()),
            ));
        } else {
            plan.skipped.push(c.path.clone());
        }
    }
    plan.sources.sort();
    plan.sources.dedup();
    plan
}

/// A timing file no typescript fits.
struct Unpaired {
    /// The timing file, and the typescript when only one was tried.
    label: String,
    error: ImportError,
    /// The typescripts tried.
    tried: Vec<PathBuf>,
}

/// The typescript(s) of a timing file.
fn pair(timing: &Candidate, files: &[Candidate]) -> Result<Source, Unpaired> {
    let label = timing.path.display().to_string();
    let t = read(&timing.path).map_err(|error| Unpaired {
        label: label.clone(),
        error,
        tried: Vec::new(),
    })?;
    let dir = timing.path.parent().unwrap_or(Path::new("."));
    let resolve = |name: &str| -> Option<PathBuf> {
        let named = Path::new(name);
        let base = named.file_name()?;
        [named.to_path_buf(), dir.join(base)]
            .into_iter()
            .find(|p| (named.is_absolute() || p != named) && p.is_file())
            .or_else(|| {
                files
                    .iter()
                    .find(|c| c.path.file_name() == Some(base))
                    .map(|c| c.path.clone())
            })
    };
    let (out_name, in_name) = script::named_logs(&t);
    if let Some(output) = out_name.as_deref().and_then(resolve) {
        let input = in_name.as_deref().and_then(resolve);
        return Ok(Source::Script {
            timing: timing.path.clone(),
            output,
            input,
        });
    }
    // Typescripts beside the timing file, and those named with it.
    let mut candidates: BTreeSet<PathBuf> = files
        .iter()
        .filter(|c| c.kind == Sniffed::Typescript && (c.explicit || c.path.parent() == Some(dir)))
        .map(|c| c.path.clone())
        .collect();
    if let Ok(names) = file_names(dir) {
        for n in names {
            let p = dir.join(n);
            if head(&p).is_ok_and(|h| script::sniff_typescript(&h)) {
                candidates.insert(p);
            }
        }
    }
    let mut last_error = None;
    for c in &candidates {
        let o = match read(c) {
            Ok(o) => o,
            Err(e) => {
                last_error = Some(e);
                continue;
            }
        };
        let fits = script::decode(script::Files {
            timing: &t,
            output: &o,
            input: None,
        });
        match fits {
            Ok(_) => {
                return Ok(Source::Script {
                    timing: timing.path.clone(),
                    output: c.clone(),
                    input: None,
                });
            }
            Err(e) => last_error = Some(e),
        }
    }
    let tried: Vec<PathBuf> = candidates.into_iter().collect();
    let error = match (tried.as_slice(), last_error) {
        ([one], Some(e)) => {
            return Err(Unpaired {
                label: format!("{label} (with {})", one.display()),
                error: e,
                tried,
            });
        }
        ([], _) => ImportError::Unrecognized(format!(
            "a script timing file, but no typescript (a file starting \"Script started on\") is beside it in {}: name it too",
            dir.display()
        )),
        (many, _) => ImportError::Unrecognized(format!(
            "a script timing file, but none of the {} typescripts beside it fits it (each was cut off, or belongs to another timing file)",
            many.len()
        )),
    };
    Err(Unpaired {
        label,
        error,
        tried,
    })
}
