//! The write-ahead log: framed, checksummed records in segment files named by their first revision,
//! appended in batches and synced once per batch (group commit). Recovery reads segments in order and
//! drops a torn tail of the newest segment; damage anywhere else is an error, never skipped.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::EmbeddedError;
use super::mvcc::Record;
use crate::Revision;

const KIND_PUT: u8 = 1;
const KIND_DELETE: u8 = 2;
/// A frame's header: payload length (u32 LE) and CRC-32 of the payload (u32 LE).
const HEADER: usize = 8;
/// No record is larger than this; a header claiming more is damage, not a record.
pub const MAX_RECORD: usize = 64 << 20;

/// The file name of the segment whose first record has revision `first`.
pub fn segment_name(first: Revision) -> String {
    format!("wal-{first:020}.log")
}

/// The first revision named by a segment's file name.
pub fn parse_segment_name(name: &str) -> Option<Revision> {
    name.strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// Appends one framed record to `buf`.
pub fn encode(record: &Record, buf: &mut Vec<u8>) {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER]);
    match &record.value {
        Some(_) => buf.push(KIND_PUT),
        None => buf.push(KIND_DELETE),
    }
    buf.extend_from_slice(&record.revision.to_le_bytes());
    put_bytes(buf, &record.key);
    if let Some(value) = &record.value {
        put_bytes(buf, value);
    }
    let payload_len = buf.len() - start - HEADER;
    let crc = crc32fast::hash(&buf[start + HEADER..]);
    // Lengths fit: keys and values are bounded far below 4 GiB by the callers.
    let len = u32::try_from(payload_len).unwrap_or(u32::MAX);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(bytes);
}

/// Why a frame could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameDamage {
    /// The data ends inside the frame.
    Truncated,
    /// The checksum does not match the payload.
    Checksum,
    /// The frame is whole and checksummed but does not parse as a record.
    Malformed,
}

impl std::fmt::Display for FrameDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FrameDamage::Truncated => "truncated record",
            FrameDamage::Checksum => "checksum mismatch",
            FrameDamage::Malformed => "malformed record",
        })
    }
}

/// Decodes the frame at the start of `data`: the record and the frame's length.
pub fn decode(data: &[u8]) -> Result<(Record, usize), FrameDamage> {
    if data.len() < HEADER {
        return Err(FrameDamage::Truncated);
    }
    let len = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let crc = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
    if len > MAX_RECORD {
        return Err(FrameDamage::Checksum);
    }
    let Some(payload) = data.get(HEADER..HEADER + len) else {
        return Err(FrameDamage::Truncated);
    };
    if crc32fast::hash(payload) != crc {
        return Err(FrameDamage::Checksum);
    }
    let record = parse_payload(payload).ok_or(FrameDamage::Malformed)?;
    Ok((record, HEADER + len))
}

fn parse_payload(p: &[u8]) -> Option<Record> {
    let (&kind, rest) = p.split_first()?;
    let revision = Revision::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    let (key, rest) = take_bytes(&rest[8..])?;
    let value = match kind {
        KIND_PUT => {
            let (value, rest) = take_bytes(rest)?;
            if !rest.is_empty() {
                return None;
            }
            Some(Bytes::copy_from_slice(value))
        }
        KIND_DELETE if rest.is_empty() => None,
        _ => return None,
    };
    Some(Record {
        revision,
        key: Bytes::copy_from_slice(key),
        value,
    })
}

fn take_bytes(p: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_le_bytes(p.get(..4)?.try_into().ok()?) as usize;
    let bytes = p.get(4..4 + len)?;
    Some((bytes, &p[4 + len..]))
}

/// What reading one segment found.
#[derive(Debug)]
pub struct SegmentRead {
    pub records: Vec<Record>,
    /// Bytes up to the end of the last whole record.
    pub valid_len: u64,
    /// The damage that stopped the read, if the segment did not end cleanly.
    pub damage: Option<FrameDamage>,
}

/// Reads every whole record of a segment, stopping at the first damaged frame.
pub fn read_segment(path: &Path) -> Result<SegmentRead, EmbeddedError> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(|source| EmbeddedError::ReadSegment {
            path: path.to_owned(),
            source,
        })?;
    let mut records = Vec::new();
    let mut offset = 0;
    let mut damage = None;
    while offset < data.len() {
        match decode(&data[offset..]) {
            Ok((record, used)) => {
                records.push(record);
                offset += used;
            }
            Err(d) => {
                damage = Some(d);
                break;
            }
        }
    }
    Ok(SegmentRead {
        records,
        valid_len: offset as u64,
        damage,
    })
}

/// The segment being appended to.
#[derive(Debug)]
pub struct Segment {
    file: File,
    path: PathBuf,
    pub first: Revision,
    pub bytes: u64,
}

impl Segment {
    /// Creates a new, empty segment for records from revision `first` on, durably (the directory
    /// entry is synced too).
    pub fn create(dir: &Path, first: Revision) -> Result<Segment, EmbeddedError> {
        let path = dir.join(segment_name(first));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|source| EmbeddedError::CreateSegment {
                path: path.clone(),
                source,
            })?;
        sync_dir(dir)?;
        Ok(Segment {
            file,
            path,
            first,
            bytes: 0,
        })
    }

    /// Reopens an existing segment for appending after its first `valid_len` bytes, cutting off
    /// anything after them (a torn tail).
    pub fn reopen(path: &Path, first: Revision, valid_len: u64) -> Result<Segment, EmbeddedError> {
        let err = |source| EmbeddedError::CreateSegment {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new().write(true).open(path).map_err(err)?;
        file.set_len(valid_len).map_err(err)?;
        file.sync_all().map_err(err)?;
        let mut segment = Segment {
            file,
            path: path.to_owned(),
            first,
            bytes: valid_len,
        };
        segment.seek_end()?;
        Ok(segment)
    }

    fn seek_end(&mut self) -> Result<(), EmbeddedError> {
        use std::io::Seek;
        self.file
            .seek(std::io::SeekFrom::End(0))
            .map(|_| ())
            .map_err(|source| EmbeddedError::CreateSegment {
                path: self.path.clone(),
                source,
            })
    }

    /// Appends already-framed records and waits until they are on disk.
    pub fn append_durably(&mut self, framed: &[u8]) -> Result<(), EmbeddedError> {
        self.file
            .write_all(framed)
            .map_err(|source| EmbeddedError::WriteWal {
                path: self.path.clone(),
                source,
            })?;
        self.file
            .sync_data()
            .map_err(|source| EmbeddedError::SyncWal {
                path: self.path.clone(),
                source,
            })?;
        self.bytes += framed.len() as u64;
        Ok(())
    }
}

/// Makes directory entries (new, renamed or removed files) durable.
pub fn sync_dir(dir: &Path) -> Result<(), EmbeddedError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| EmbeddedError::SyncDir {
            path: dir.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(revision: Revision, key: &[u8], value: Option<&[u8]>) -> Record {
        Record {
            revision,
            key: Bytes::copy_from_slice(key),
            value: value.map(Bytes::copy_from_slice),
        }
    }

    #[test]
    fn segment_names_sort_by_revision_and_parse_back() {
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert!(segment_name(9) < segment_name(10));
        assert_eq!(parse_segment_name("wal-x.log"), None);
    }

    #[test]
    fn a_flipped_bit_or_a_cut_is_detected() {
        let mut buf = Vec::new();
        encode(&record(7, b"/k", Some(b"value")), &mut buf);
        let whole = buf.clone();
        assert!(decode(&whole).is_ok());
        assert_eq!(
            decode(&whole[..whole.len() - 1]).err(),
            Some(FrameDamage::Truncated)
        );
        let mut flipped = whole.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(decode(&flipped).err(), Some(FrameDamage::Checksum));
    }

    proptest! {
        #[test]
        fn frames_round_trip(
            revision in 1i64..i64::MAX,
            key in proptest::collection::vec(any::<u8>(), 0..64),
            value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..256)),
        ) {
            let r = record(revision, &key, value.as_deref());
            let mut buf = Vec::new();
            encode(&r, &mut buf);
            let (back, used) = decode(&buf).expect("decodes");
            prop_assert_eq!(back, r);
            prop_assert_eq!(used, buf.len());
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = decode(&data);
        }
    }
}
