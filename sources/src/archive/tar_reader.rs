//! Reading a .tar.gz file into an index.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use flate2::read::MultiGzDecoder;
use tar::EntryType;

use super::{ArchiveLimits, Index, IndexBuilder, LoadError, key_of, size_text};

/// What the decompressed tar stream may hold besides the entries' content,
/// per allowed entry: its header, padding, and long-name or PAX headers.
const OVERHEAD_PER_ENTRY: u64 = 4 * 1024;

/// A reader that fails once more than `left` bytes went through it, and
/// says so in `hit`: the bound on the decompressed stream, whatever the
/// headers claim (tar reads GNU long names and PAX headers whole).
struct Bounded<R> {
    inner: R,
    left: u64,
    hit: Rc<Cell<bool>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // Anything more is over the bound; end of stream is fine.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.hit.set(true);
            return Err(io::Error::other("the decompressed archive is too large"));
        }
        let max = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..max])?;
        self.left = self
            .left
            .saturating_sub(u64::try_from(n).unwrap_or(u64::MAX));
        Ok(n)
    }
}

pub(super) fn load(path: &Path, limits: ArchiveLimits) -> Result<Index, LoadError> {
    let file = File::open(path)
        .map_err(|e| LoadError::Unreadable(format!("cannot open the archive: {e}")))?;
    let hit = Rc::new(Cell::new(false));
    let stream_cap = limits
        .max_total_size
        .saturating_add(limits.max_entries.saturating_mul(OVERHEAD_PER_ENTRY))
        .saturating_add(64 * 1024);
    let stream = Bounded {
        inner: MultiGzDecoder::new(BufReader::new(file)),
        left: stream_cap,
        hit: Rc::clone(&hit),
    };
    let mut archive = tar::Archive::new(stream);
    let mut builder = IndexBuilder::new(limits);
    let bomb = |entry: &str| {
        LoadError::rejected(
            entry,
            format!(
                "the decompressed archive is larger than the {} limit (plus headers)",
                size_text(limits.max_total_size)
            ),
        )
    };
    let unreadable = |e: io::Error, entry: &str| {
        if hit.get() {
            bomb(entry)
        } else {
            LoadError::Unreadable(format!("not a readable .tar.gz archive: {e}"))
        }
    };
    let mut last = String::new();
    let entries = archive.entries().map_err(|e| unreadable(e, ""))?;
    for entry in entries {
        let entry = entry.map_err(|e| unreadable(e, &last))?;
        let name = String::from_utf8(entry.path_bytes().into_owned()).map_err(|e| {
            LoadError::rejected(
                &String::from_utf8_lossy(e.as_bytes()),
                "entry paths must be UTF-8",
            )
        })?;
        builder.count(&name)?;
        match entry.header().entry_type() {
            EntryType::Regular => {
                let declared = entry.size();
                match builder.add(&name, declared, entry) {
                    Err(LoadError::Unreadable(_)) if hit.get() => return Err(bomb(&name)),
                    result => result?,
                }
            }
            EntryType::Directory => {
                key_of(&name)?;
            }
            // PAX global headers carry metadata (e.g. `git archive`'s
            // commit id), not files.
            EntryType::XGlobalHeader => {}
            EntryType::Symlink | EntryType::Link => {
                return Err(LoadError::rejected(
                    &name,
                    "symbolic and hard links are not allowed",
                ));
            }
            other => {
                return Err(LoadError::rejected(
                    &name,
                    format!("unsupported entry type {other:?}"),
                ));
            }
        }
        last = name;
    }
    // The rest of the stream (end-of-archive blocks, the gzip trailer with
    // its checksum), still bounded.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| unreadable(e, &last))?;
    Ok(builder.finish())
}
