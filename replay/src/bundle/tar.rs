//! The container of a bundle: an uncompressed POSIX ustar archive of regular files, written
//! the same way every time, and a strict reader of exactly that layout.
//!
//! Every header has the same mode (0644), owner (0/0, no names) and modification time
//! (the session's start), so the archive is a function of its members: the verifier
//! writes it again from the members it read and compares the two byte for byte, which is
//! how a change to a header field, to the zero padding after a member or to the
//! end-of-archive blocks is caught and placed ([`Layout::place`]).
//!
//! The reader accepts nothing else (no GNU or PAX extensions, links, directories or
//! prefixes), checks each header's checksum and that padding is zero, bounds every size by
//! the bytes actually there, and never panics.

use std::fmt;

/// The tar block size.
pub const BLOCK: usize = 512;
/// Most members a bundle may hold; a reader stops there.
pub const MAX_ENTRIES: usize = 64;
/// Longest member name: the ustar name field, without a prefix.
pub const MAX_NAME: usize = 100;

/// One member as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The full path in the archive.
    pub name: String,
    /// The member's bytes.
    pub data: &'a [u8],
}

/// Why an archive could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}at byte {offset}: {reason}", .member.as_ref().map(|m| format!("{m}: ")).unwrap_or_default())]
pub struct TarError {
    /// Byte offset of the damage in the file.
    pub offset: usize,
    /// The member the damage is in or next to, as well as it can be told.
    pub member: Option<String>,
    /// What is wrong.
    pub reason: String,
}

/// A region of a written archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Region {
    /// The header of the named member.
    Header(String),
    /// The data of the named member.
    Data(String),
    /// The zero padding after the named member's data.
    Padding(String),
    /// The two zero blocks that end the archive.
    End,
    /// Bytes after the end of the archive.
    Trailing,
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Region::Header(m) => write!(f, "the tar header of {m}"),
            Region::Data(m) => write!(f, "the data of {m}"),
            Region::Padding(m) => write!(f, "the zero padding after {m}"),
            Region::End => write!(f, "the end-of-archive blocks"),
            Region::Trailing => write!(f, "bytes after the end of the archive"),
        }
    }
}

/// Where each part of a written archive lies: (start offset, region), in order.
#[derive(Clone, Debug, Default)]
pub struct Layout(Vec<(usize, Region)>);

impl Layout {
    /// The region holding byte `offset`.
    pub fn place(&self, offset: usize) -> Region {
        self.0
            .iter()
            .rev()
            .find(|(start, _)| *start <= offset)
            .map_or(Region::Trailing, |(_, r)| r.clone())
    }
}

fn octal(field: &mut [u8], value: u64) {
    // `width` digits and a NUL; the values written (sizes below 8 GiB, times, 0644) fit.
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    let text = &text.as_bytes()[text.len().saturating_sub(width)..];
    field[..width].copy_from_slice(text);
    field[width] = 0;
}

fn header(name: &str, size: usize, mtime: u64) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let name = name.as_bytes();
    let n = name.len().min(MAX_NAME);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size as u64);
    octal(&mut h[136..148], mtime);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum = checksum(&h);
    octal(&mut h[148..155], sum);
    h[155] = b' ';
    h
}

/// The header checksum: every byte, with the checksum field counted as spaces.
fn checksum(h: &[u8]) -> u64 {
    h.iter()
        .enumerate()
        .map(|(i, &b)| u64::from(if (148..156).contains(&i) { b' ' } else { b }))
        .sum()
}

fn padding(len: usize) -> usize {
    (BLOCK - len % BLOCK) % BLOCK
}

/// Writes `members` (path, bytes) as an archive, in the order given, and says where each
/// part lies. Names longer than [`MAX_NAME`] bytes are cut (the bundle's are short).
pub fn write(members: &[(String, &[u8])], mtime: u64) -> (Vec<u8>, Layout) {
    let total: usize = members
        .iter()
        .map(|(_, d)| BLOCK + d.len() + padding(d.len()))
        .sum::<usize>()
        + 2 * BLOCK;
    let mut out = Vec::with_capacity(total);
    let mut layout = Vec::with_capacity(members.len() * 3 + 2);
    for (name, data) in members {
        layout.push((out.len(), Region::Header(name.clone())));
        out.extend_from_slice(&header(name, data.len(), mtime));
        layout.push((out.len(), Region::Data(name.clone())));
        out.extend_from_slice(data);
        layout.push((out.len(), Region::Padding(name.clone())));
        out.resize(out.len() + padding(data.len()), 0);
    }
    layout.push((out.len(), Region::End));
    out.resize(out.len() + 2 * BLOCK, 0);
    layout.push((out.len(), Region::Trailing));
    (out, Layout(layout))
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let end = field
        .iter()
        .position(|&b| b == 0 || b == b' ')
        .unwrap_or(field.len());
    let digits = &field[..end];
    if digits.is_empty() || field[end..].iter().any(|&b| b != 0 && b != b' ') {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        if (b'0'..=b'7').contains(&d) {
            acc.checked_mul(8)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

/// Reads an archive written by [`write`] (or anything of the same strict shape).
pub fn read(bytes: &[u8]) -> Result<Vec<Entry<'_>>, TarError> {
    let mut entries: Vec<Entry<'_>> = Vec::new();
    let mut at = 0usize;
    let err = |offset: usize, member: Option<String>, reason: String| TarError {
        offset,
        member,
        reason,
    };
    loop {
        let after = entries
            .last()
            .map(|e| format!("the member after {}", e.name));
        let Some(h) = bytes.get(at..at + BLOCK) else {
            return Err(err(
                at,
                after,
                format!(
                    "the archive ends after {} bytes, without its end-of-archive blocks (cut short?)",
                    bytes.len()
                ),
            ));
        };
        if h.iter().all(|&b| b == 0) {
            return end_of_archive(bytes, at).map(|()| entries);
        }
        if entries.len() == MAX_ENTRIES {
            return Err(err(at, after, format!("more than {MAX_ENTRIES} members")));
        }
        let name_field = &h[..MAX_NAME];
        let name_end = name_field.iter().position(|&b| b == 0).unwrap_or(MAX_NAME);
        let claimed = String::from_utf8_lossy(&name_field[..name_end]).into_owned();
        let member = Some(if claimed.is_empty() {
            after.unwrap_or_else(|| "the first member".into())
        } else {
            schemas::text::escape_controls(&claimed)
        });
        let stored_sum = parse_octal(&h[148..156]);
        if stored_sum != Some(checksum(h)) {
            return Err(err(at, member, "its tar header fails its checksum".into()));
        }
        if &h[257..263] != b"ustar\0" || &h[263..265] != b"00" || h[156] != b'0' {
            return Err(err(
                at,
                member,
                "its tar header is not a plain ustar regular file".into(),
            ));
        }
        if h[345..500].iter().any(|&b| b != 0) || claimed.is_empty() {
            return Err(err(at, member, "its tar header names no plain path".into()));
        }
        let name = std::str::from_utf8(&name_field[..name_end])
            .map_err(|_| err(at, member.clone(), "its name is not UTF-8".into()))?
            .to_string();
        let size = parse_octal(&h[124..136])
            .and_then(|s| usize::try_from(s).ok())
            .ok_or_else(|| err(at, member.clone(), "its size field is not a number".into()))?;
        let start = at + BLOCK;
        let data = start
            .checked_add(size)
            .and_then(|end| bytes.get(start..end))
            .ok_or_else(|| {
                err(
                    at,
                    member.clone(),
                    format!(
                        "its header claims {size} bytes, but the file ends {} bytes later",
                        bytes.len() - start
                    ),
                )
            })?;
        let pad_end = start + size + padding(size);
        let pad = bytes.get(start + size..pad_end).ok_or_else(|| {
            err(
                start + size,
                member.clone(),
                "the file ends inside the padding after it".into(),
            )
        })?;
        if let Some(i) = pad.iter().position(|&b| b != 0) {
            return Err(err(
                start + size + i,
                member,
                "the padding after it is not zero".into(),
            ));
        }
        entries.push(Entry { name, data });
        at = pad_end;
    }
}

/// Checks the two zero blocks at `at` and that nothing follows them.
fn end_of_archive(bytes: &[u8], at: usize) -> Result<(), TarError> {
    let second = bytes
        .get(at + BLOCK..at + 2 * BLOCK)
        .ok_or_else(|| TarError {
            offset: at + BLOCK,
            member: Some("the end-of-archive blocks".into()),
            reason: "the archive is cut short inside them".into(),
        })?;
    if let Some(i) = second.iter().position(|&b| b != 0) {
        return Err(TarError {
            offset: at + BLOCK + i,
            member: Some("the end-of-archive blocks".into()),
            reason: "they are not zero".into(),
        });
    }
    if bytes.len() > at + 2 * BLOCK {
        return Err(TarError {
            offset: at + 2 * BLOCK,
            member: Some("the end of the archive".into()),
            reason: format!(
                "{} bytes follow the end-of-archive blocks",
                bytes.len() - at - 2 * BLOCK
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<(String, Vec<u8>)> {
        vec![
            ("b/README.txt".into(), b"hello\n".to_vec()),
            ("b/empty".into(), Vec::new()),
            ("b/block".into(), vec![7u8; BLOCK]),
            ("b/proof/x.json".into(), vec![b'x'; 1300]),
        ]
    }

    fn written() -> (Vec<u8>, Layout) {
        let s = sample();
        let members: Vec<(String, &[u8])> =
            s.iter().map(|(n, d)| (n.clone(), d.as_slice())).collect();
        write(&members, 1_700_000_000)
    }

    #[test]
    fn what_is_written_reads_back() {
        let (bytes, layout) = written();
        assert_eq!(bytes.len() % BLOCK, 0);
        let entries = read(&bytes).unwrap();
        let got: Vec<(String, Vec<u8>)> = entries
            .iter()
            .map(|e| (e.name.clone(), e.data.to_vec()))
            .collect();
        assert_eq!(got, sample());
        assert_eq!(layout.place(0), Region::Header("b/README.txt".into()));
        assert_eq!(layout.place(512), Region::Data("b/README.txt".into()));
        assert_eq!(layout.place(520), Region::Padding("b/README.txt".into()));
        assert_eq!(layout.place(bytes.len() - 1), Region::End);
        assert_eq!(layout.place(bytes.len()), Region::Trailing);
    }

    /// GNU tar lists and extracts what we write, with the same contents.
    #[test]
    fn system_tar_extracts_it() {
        let (bytes, _) = written();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.tar");
        std::fs::write(&file, &bytes).unwrap();
        let out = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&file)
            .current_dir(dir.path())
            .output()
            .expect("run tar");
        assert!(out.status.success(), "{out:?}");
        for (name, data) in sample() {
            assert_eq!(
                std::fs::read(dir.path().join(&name)).unwrap(),
                data,
                "{name}"
            );
        }
    }

    #[test]
    fn damage_is_placed() {
        let (good, _) = written();
        let cases: Vec<(usize, &str)> = vec![
            (
                140,
                "b/README.txt: at byte 0: its tar header fails its checksum",
            ),
            (
                600,
                "b/README.txt: at byte 600: the padding after it is not zero",
            ),
            (
                1024 + 110,
                "b/empty: at byte 1024: its tar header fails its checksum",
            ),
            (good.len() - 3, "the end-of-archive blocks: at byte"),
        ];
        for (at, want) in cases {
            let mut bad = good.clone();
            bad[at] ^= 0x20;
            let e = read(&bad).unwrap_err().to_string();
            assert!(e.starts_with(want), "byte {at}: {e}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(
            read(&long)
                .unwrap_err()
                .to_string()
                .contains("1 bytes follow")
        );
        let e = read(&good[..good.len() - 600]).unwrap_err().to_string();
        assert!(e.contains("cut short"), "{e}");
        let e = read(&good[..700]).unwrap_err().to_string();
        assert!(e.contains("ends inside the padding"), "{e}");
        let e = read(&good[..1024]).unwrap_err().to_string();
        assert!(e.contains("without its end-of-archive"), "{e}");
    }

    proptest! {
        #[test]
        fn reading_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let _ = read(&bytes);
        }

        #[test]
        fn damaged_archives_never_panic(at in 0usize..4096, value in any::<u8>(), cut in 0usize..5000) {
            let (mut bytes, _) = written();
            let at = at % bytes.len();
            bytes[at] = value;
            bytes.truncate(cut.max(1));
            let _ = read(&bytes);
        }
    }
}
