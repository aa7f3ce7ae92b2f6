//! Checkpoints: every retained version of every key at one revision, written whole to a temporary file,
//! synced, then renamed into place, so the WAL segments it covers can be deleted (bounded disk use).
//!
//! Layout: magic, revision, compacted revision, key count, then per key its versions; a CRC-32 of all
//! of it closes the file. A checkpoint is trusted only whole: a bad checksum is an error, never skipped.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::EmbeddedError;
use super::mvcc::Version;
use super::wal::sync_dir;
use crate::Revision;

const MAGIC: &[u8; 8] = b"OXKSNAP1";

/// The file name of the checkpoint covering every write up to `revision`.
pub fn checkpoint_name(revision: Revision) -> String {
    format!("checkpoint-{revision:020}.bin")
}

/// The revision named by a checkpoint's file name.
pub fn parse_checkpoint_name(name: &str) -> Option<Revision> {
    name.strip_prefix("checkpoint-")?
        .strip_suffix(".bin")?
        .parse()
        .ok()
}

/// What a checkpoint holds.
#[derive(Debug, Default)]
pub struct Checkpoint {
    pub revision: Revision,
    pub compacted: Revision,
    pub keys: BTreeMap<Bytes, Vec<Version>>,
}

/// A writer that checksums everything it passes on.
struct Crc<W> {
    inner: W,
    hasher: crc32fast::Hasher,
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn len_u32(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes()
}

fn write_body(
    w: &mut impl Write,
    revision: Revision,
    compacted: Revision,
    keys: &BTreeMap<Bytes, Vec<Version>>,
) -> std::io::Result<()> {
    w.write_all(MAGIC)?;
    w.write_all(&revision.to_le_bytes())?;
    w.write_all(&compacted.to_le_bytes())?;
    w.write_all(&(keys.len() as u64).to_le_bytes())?;
    for (key, versions) in keys {
        w.write_all(&len_u32(key.len()))?;
        w.write_all(key)?;
        w.write_all(&len_u32(versions.len()))?;
        for v in versions {
            w.write_all(&v.create_revision.to_le_bytes())?;
            w.write_all(&v.mod_revision.to_le_bytes())?;
            match &v.value {
                Some(value) => {
                    w.write_all(&[1])?;
                    w.write_all(&len_u32(value.len()))?;
                    w.write_all(value)?;
                }
                None => w.write_all(&[0])?,
            }
        }
    }
    Ok(())
}

/// Writes a checkpoint durably into `dir` and returns its path.
pub fn write(
    dir: &Path,
    revision: Revision,
    compacted: Revision,
    keys: &BTreeMap<Bytes, Vec<Version>>,
) -> Result<PathBuf, EmbeddedError> {
    let path = dir.join(checkpoint_name(revision));
    let tmp = path.with_extension("tmp");
    let err = |source| EmbeddedError::WriteCheckpoint {
        path: tmp.clone(),
        source,
    };
    let file = File::create(&tmp).map_err(err)?;
    let mut w = Crc {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: crc32fast::Hasher::new(),
    };
    write_body(&mut w, revision, compacted, keys).map_err(err)?;
    let crc = w.hasher.clone().finalize();
    let mut inner = w.inner;
    inner.write_all(&crc.to_le_bytes()).map_err(err)?;
    let file = inner.into_inner().map_err(|e| err(e.into_error()))?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    sync_dir(dir)?;
    Ok(path)
}

/// Reads a whole checkpoint, checking its checksum before trusting any of it.
pub fn read(path: &Path) -> Result<Checkpoint, EmbeddedError> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(|source| EmbeddedError::ReadCheckpoint {
            path: path.to_owned(),
            source,
        })?;
    decode(&data).map_err(|reason| EmbeddedError::CorruptCheckpoint {
        path: path.to_owned(),
        reason: reason.to_owned(),
    })
}

/// Decodes a checkpoint's bytes, checking the checksum first; the error says what is wrong.
pub fn decode(data: &[u8]) -> Result<Checkpoint, &'static str> {
    let Some(body_len) = data.len().checked_sub(4) else {
        return Err("shorter than its checksum");
    };
    let (body, crc) = data.split_at(body_len);
    let crc = u32::from_le_bytes(crc.try_into().map_err(|_| "no checksum")?);
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch");
    }
    parse(body).ok_or("malformed content")
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<usize> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize)
    }
    fn bytes(&mut self) -> Option<Bytes> {
        let n = self.u32()?;
        Some(Bytes::copy_from_slice(self.take(n)?))
    }
}

fn parse(body: &[u8]) -> Option<Checkpoint> {
    let mut c = Cursor(body);
    if c.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let revision = c.i64()?;
    let compacted = c.i64()?;
    let nkeys = u64::from_le_bytes(c.take(8)?.try_into().ok()?);
    let mut keys = BTreeMap::new();
    for _ in 0..nkeys {
        let key = c.bytes()?;
        let n = c.u32()?;
        let mut versions = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let create_revision = c.i64()?;
            let mod_revision = c.i64()?;
            let value = match c.take(1)? {
                [1] => Some(c.bytes()?),
                [0] => None,
                _ => return None,
            };
            versions.push(Version {
                create_revision,
                mod_revision,
                value,
            });
        }
        keys.insert(key, versions);
    }
    c.0.is_empty().then_some(Checkpoint {
        revision,
        compacted,
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn garbage_is_refused_without_panic(mut data in proptest::collection::vec(any::<u8>(), 0..256)) {
            // With a valid checksum, so the parser itself is reached.
            let crc = crc32fast::hash(&data);
            data.extend_from_slice(&crc.to_le_bytes());
            let _ = decode(&data);
        }
    }

    #[test]
    fn a_checkpoint_round_trips_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut keys = BTreeMap::new();
        keys.insert(
            Bytes::from_static(b"/a"),
            vec![
                Version {
                    create_revision: 2,
                    mod_revision: 2,
                    value: Some(Bytes::from_static(b"x")),
                },
                Version {
                    create_revision: 0,
                    mod_revision: 3,
                    value: None,
                },
            ],
        );
        let path = write(dir.path(), 3, 2, &keys).expect("write");
        assert_eq!(
            path.file_name()
                .and_then(|n| n.to_str())
                .and_then(parse_checkpoint_name),
            Some(3)
        );
        let back = read(&path).expect("read");
        assert_eq!((back.revision, back.compacted), (3, 2));
        assert_eq!(back.keys, keys);

        let mut data = std::fs::read(&path).expect("read bytes");
        data[12] ^= 0x40;
        std::fs::write(&path, &data).expect("write bytes");
        assert!(matches!(
            read(&path),
            Err(EmbeddedError::CorruptCheckpoint { .. })
        ));
    }
}
