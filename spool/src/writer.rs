//! Appending entries for one session.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::{ENTRY_MAGIC, MAX_ENTRY_BYTES, SEGMENT_SUFFIX, SpoolError, entry_crc, io_err};

/// Limits of a spool.
#[derive(Clone, Copy, Debug)]
pub struct SpoolOptions {
    /// Total bytes the spool directory may hold, all sessions together.
    pub max_bytes: u64,
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        SpoolOptions {
            max_bytes: 1 << 30,
            segment_bytes: 8 << 20,
        }
    }
}

/// Appends entries to a session's segment files. See the crate docs.
pub struct SpoolWriter {
    dir: PathBuf,
    name: String,
    options: SpoolOptions,
    index: u32,
    file: File,
    path: PathBuf,
    segment_len: u64,
    /// Bytes in the directory as of the last scan plus what we wrote since.
    used_estimate: u64,
    buf: Vec<u8>,
}

impl SpoolWriter {
    /// Starts writing segments named `<name>-000000.seg`, … in `dir` (created if needed).
    /// Fails with [`SpoolError::Full`] if the spool is already at its cap.
    pub fn create(
        dir: &Path,
        name: &str,
        options: SpoolOptions,
    ) -> Result<SpoolWriter, SpoolError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir, "create directory"))?;
        let used = dir_size(dir)?;
        if used >= options.max_bytes {
            return Err(SpoolError::Full {
                dir: dir.to_path_buf(),
                used,
                cap: options.max_bytes,
            });
        }
        let (file, path) = open_segment(dir, name, 0)?;
        Ok(SpoolWriter {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            options,
            index: 0,
            file,
            path,
            segment_len: 0,
            used_estimate: used,
            buf: Vec::with_capacity(128 << 10),
        })
    }

    /// The segment currently written.
    pub fn current_segment(&self) -> &Path {
        &self.path
    }

    /// Appends one entry. It is durable after the next [`SpoolWriter::sync`].
    pub fn append(&mut self, payload: &[u8]) -> Result<(), SpoolError> {
        if payload.len() > MAX_ENTRY_BYTES {
            return Err(SpoolError::EntryTooLarge(payload.len()));
        }
        let entry_len = (payload.len() + crate::ENTRY_HEADER_LEN) as u64;
        if self.used_estimate + entry_len > self.options.max_bytes {
            // Others may have drained the spool since we last looked.
            let used = dir_size(&self.dir)?;
            self.used_estimate = used;
            if used + entry_len > self.options.max_bytes {
                return Err(SpoolError::Full {
                    dir: self.dir.clone(),
                    used,
                    cap: self.options.max_bytes,
                });
            }
        }
        if self.segment_len > 0 && self.segment_len + entry_len > self.options.segment_bytes {
            self.rotate()?;
        }
        let len_bytes = (payload.len() as u32).to_le_bytes();
        self.buf.clear();
        self.buf.extend_from_slice(&ENTRY_MAGIC);
        self.buf.extend_from_slice(&len_bytes);
        self.buf
            .extend_from_slice(&entry_crc(len_bytes, payload).to_le_bytes());
        self.buf.extend_from_slice(payload);
        self.file
            .write_all(&self.buf)
            .map_err(io_err(&self.path, "append"))?;
        self.segment_len += entry_len;
        self.used_estimate += entry_len;
        Ok(())
    }

    /// Makes every appended entry durable (fdatasync).
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        self.file.sync_data().map_err(io_err(&self.path, "fsync"))
    }

    /// Syncs and closes the current segment, releasing its lock so readers may delete it.
    pub fn finish(mut self) -> Result<(), SpoolError> {
        self.sync()
    }

    fn rotate(&mut self) -> Result<(), SpoolError> {
        self.sync()?;
        let (file, path) = open_segment(&self.dir, &self.name, self.index + 1)?;
        // Dropping the old file releases its lock only after the new one is in place, so a
        // reader never sees the session without a locked segment mid-rotation.
        self.file = file;
        self.path = path;
        self.index += 1;
        self.segment_len = 0;
        Ok(())
    }
}

fn open_segment(dir: &Path, name: &str, index: u32) -> Result<(File, PathBuf), SpoolError> {
    let path = dir.join(format!("{name}-{index:06}{SEGMENT_SUFFIX}"));
    // The segment is created and locked under a name readers ignore, then renamed: a
    // reader must never see it unlocked, or it would take it for abandoned and delete it.
    let new_path = dir.join(format!(".{name}-{index:06}{SEGMENT_SUFFIX}.new"));
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&new_path)
        .map_err(io_err(&new_path, "create segment"))?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(io_err(&new_path, "lock segment")(
            std::io::Error::last_os_error(),
        ));
    }
    std::fs::rename(&new_path, &path).map_err(io_err(&path, "rename segment into place"))?;
    // The directory entry must survive a crash too, or the data in the file is orphaned.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "fsync directory"))?;
    Ok((file, path))
}

/// Total size of the regular files in `dir`.
pub fn dir_size(dir: &Path) -> Result<u64, SpoolError> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(io_err(dir, "list directory"))? {
        let entry = entry.map_err(io_err(dir, "list directory"))?;
        // A file deleted between listing and stat is simply not counted.
        if let Ok(meta) = entry.metadata()
            && meta.is_file()
        {
            total += meta.len();
        }
    }
    Ok(total)
}
