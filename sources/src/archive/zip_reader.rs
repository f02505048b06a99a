//! Reading a zip file into an index.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use zip::ZipArchive;

use super::{ArchiveLimits, Index, IndexBuilder, LoadError, key_of};

pub(super) fn load(path: &Path, limits: ArchiveLimits) -> Result<Index, LoadError> {
    let file = File::open(path)
        .map_err(|e| LoadError::Unreadable(format!("cannot open the archive: {e}")))?;
    let mut zip = ZipArchive::new(BufReader::new(file))
        .map_err(|e| LoadError::Unreadable(format!("not a readable zip archive: {e}")))?;
    let mut builder = IndexBuilder::new(limits);
    for i in 0..zip.len() {
        let name = match zip.name_for_index(i) {
            Some(Ok(name)) => name.into_owned(),
            Some(Err(e)) => {
                return Err(LoadError::rejected(
                    &format!("#{i}"),
                    format!("unreadable entry name: {e}"),
                ));
            }
            None => continue,
        };
        builder.count(&name)?;
        let entry = zip
            .by_index(i)
            .map_err(|e| LoadError::rejected(&name, format!("cannot read the entry: {e}")))?;
        if entry.is_symlink() {
            return Err(LoadError::rejected(&name, "symbolic links are not allowed"));
        }
        if entry.is_dir() {
            // Checked all the same: an archive naming `../` is refused.
            key_of(&name)?;
            continue;
        }
        if entry.encrypted() {
            return Err(LoadError::rejected(
                &name,
                "encrypted entries are not supported",
            ));
        }
        let declared = entry.size();
        builder.add(&name, declared, entry)?;
    }
    Ok(builder.finish())
}
