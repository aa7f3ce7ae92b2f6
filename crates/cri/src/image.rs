//! Deterministic OCI images without a registry: a root filesystem (a directory, or files given in
//! memory) becomes one gzip layer, a config and a manifest in an OCI image-layout tar
//! (`oci-layout`, `index.json`, `blobs/sha256/…`) named by the `io.containerd.image.name`
//! annotation. Same input, same bytes: entries sorted, owners root, times zero.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// One entry of a root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir { mode: u32 },
    File { mode: u32, data: Vec<u8> },
    Symlink { target: String },
}

/// A root filesystem: entries by their path relative to `/` (no leading slash).
pub type Rootfs = BTreeMap<String, Entry>;

/// What an image runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// Fully qualified name, e.g. `oxkube.local/pause:3.10`.
    pub name: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

/// A step of building an image that failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a file, directory or symlink")]
    Special { path: PathBuf },
    #[error("writing the tar entry {path}")]
    Tar {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("compressing the layer")]
    Gzip(#[source] std::io::Error),
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("image name {0:?} must be domain-qualified with a tag, e.g. oxkube.local/name:tag")]
    Name(String),
}

/// Reads a directory into a [`Rootfs`] (permissions and symlinks kept, owners and times dropped).
pub fn read_rootfs(dir: &Path) -> Result<Rootfs, ImageError> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Rootfs::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let read = |source| ImageError::Read {
            path: current.clone(),
            source,
        };
        for entry in std::fs::read_dir(&current).map_err(read)? {
            let entry = entry.map_err(read)?;
            let path = entry.path();
            let err = |source| ImageError::Read {
                path: path.clone(),
                source,
            };
            let meta = std::fs::symlink_metadata(&path).map_err(err)?;
            let rel = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let mode = meta.permissions().mode() & 0o7777;
            let value = if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).map_err(err)?;
                Entry::Symlink {
                    target: target.to_string_lossy().into_owned(),
                }
            } else if meta.is_dir() {
                pending.push(path.clone());
                Entry::Dir { mode }
            } else if meta.is_file() {
                Entry::File {
                    mode,
                    data: std::fs::read(&path).map_err(err)?,
                }
            } else {
                return Err(ImageError::Special { path });
            };
            out.insert(rel, value);
        }
    }
    Ok(out)
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// Appends one file to a tar.
fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<(), ImageError> {
    let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
    tar.append_data(&mut h, path, data)
        .map_err(|source| ImageError::Tar {
            path: path.into(),
            source,
        })
}

/// The uncompressed layer tar of a root filesystem.
pub fn layer(rootfs: &Rootfs) -> Result<Vec<u8>, ImageError> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, entry) in rootfs {
        let err = |source| ImageError::Tar {
            path: path.clone(),
            source,
        };
        match entry {
            Entry::Dir { mode } => {
                let mut h = header(tar::EntryType::Directory, *mode, 0);
                tar.append_data(&mut h, format!("{path}/"), std::io::empty())
                    .map_err(err)?;
            }
            Entry::File { mode, data } => {
                let mut h = header(tar::EntryType::Regular, *mode, data.len() as u64);
                tar.append_data(&mut h, path, data.as_slice())
                    .map_err(err)?;
            }
            Entry::Symlink { target } => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                tar.append_link(&mut h, path, target).map_err(err)?;
            }
        }
    }
    tar.into_inner().map_err(|source| ImageError::Tar {
        path: "(end)".into(),
        source,
    })
}

fn sha256(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn descriptor(media_type: &str, data: &[u8]) -> serde_json::Value {
    serde_json::json!({ "mediaType": media_type, "digest": sha256(data), "size": data.len() })
}

/// The tag of a domain-qualified, tagged image name (`oxkube.local/name:tag`).
fn tag(name: &str) -> Option<&str> {
    let (repo, tag) = name.rsplit_once(':')?;
    let (domain, _) = repo.split_once('/')?;
    (domain.contains('.') && !tag.is_empty() && !tag.contains('/')).then_some(tag)
}

/// Whether an image name is domain-qualified with a tag, as CRI takes it without rewriting.
pub fn valid_name(name: &str) -> bool {
    tag(name).is_some()
}

/// Builds the image of directory `rootfs` into the file `output`.
pub fn build_dir(rootfs: &Path, config: &ImageConfig, output: &Path) -> Result<(), ImageError> {
    let bytes = build(&read_rootfs(rootfs)?, config)?;
    std::fs::write(output, bytes).map_err(|source| ImageError::Write {
        path: output.into(),
        source,
    })
}

/// The OCI image-layout tar of `rootfs` run as `config` says.
pub fn build(rootfs: &Rootfs, config: &ImageConfig) -> Result<Vec<u8>, ImageError> {
    let tag = tag(&config.name).ok_or_else(|| ImageError::Name(config.name.clone()))?;
    let layer = layer(rootfs)?;
    let diff_id = sha256(&layer);
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    gz.write_all(&layer).map_err(ImageError::Gzip)?;
    let gz = gz.finish().map_err(ImageError::Gzip)?;
    let mut run = serde_json::Map::new();
    run.insert(
        "Env".into(),
        serde_json::json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]),
    );
    if !config.entrypoint.is_empty() {
        run.insert("Entrypoint".into(), serde_json::json!(config.entrypoint));
    }
    if !config.cmd.is_empty() {
        run.insert("Cmd".into(), serde_json::json!(config.cmd));
    }
    let image_config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": run,
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    });
    let image_config = image_config.to_string().into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", &image_config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", &gz)],
    })
    .to_string()
    .into_bytes();
    let mut entry = descriptor("application/vnd.oci.image.manifest.v1+json", &manifest);
    entry["annotations"] = serde_json::json!({
        "io.containerd.image.name": config.name,
        "org.opencontainers.image.ref.name": tag,
    });
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry],
    })
    .to_string()
    .into_bytes();
    let mut out = tar::Builder::new(Vec::new());
    append(&mut out, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    append(&mut out, "index.json", &index)?;
    let mut blobs: Vec<&[u8]> = vec![&image_config, &gz, &manifest];
    blobs.sort_by_key(|b| sha256(b));
    for blob in blobs {
        let digest = sha256(blob);
        let hex = digest.trim_start_matches("sha256:");
        append(&mut out, &format!("blobs/sha256/{hex}"), blob)?;
    }
    out.into_inner().map_err(|source| ImageError::Tar {
        path: "(end)".into(),
        source,
    })
}

/// The project's pause image: the [`crate::pause`] program as `/pause`.
pub fn pause_image(name: &str) -> Result<Vec<u8>, ImageError> {
    let rootfs = Rootfs::from([(
        "pause".to_string(),
        Entry::File {
            mode: 0o755,
            data: crate::pause::elf(),
        },
    )]);
    build(
        &rootfs,
        &ImageConfig {
            name: name.into(),
            entrypoint: vec!["/pause".into()],
            cmd: vec![],
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tar_bytes: &[u8]) -> Vec<String> {
        let mut archive = tar::Archive::new(tar_bytes);
        archive
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    #[test]
    fn a_directory_builds_the_same_bytes_every_time_in_oci_layout() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("bin")).expect("mkdir");
        std::fs::write(dir.path().join("bin/tool"), b"#!/bin/sh\n").expect("write");
        std::os::unix::fs::symlink("tool", dir.path().join("bin/sh")).expect("symlink");
        let rootfs = read_rootfs(dir.path()).expect("read");
        assert_eq!(
            rootfs.keys().collect::<Vec<_>>(),
            vec!["bin", "bin/sh", "bin/tool"]
        );
        let config = ImageConfig {
            name: "oxkube.local/tool:1".into(),
            entrypoint: vec!["sh".into()],
            cmd: vec![],
        };
        let a = build(&rootfs, &config).expect("build");
        let b = build(&read_rootfs(dir.path()).expect("read"), &config).expect("build");
        assert_eq!(a, b);
        let entries = names(&a);
        assert_eq!(entries[..2], ["oci-layout", "index.json"]);
        assert_eq!(entries.len(), 5);
        let mut archive = tar::Archive::new(a.as_slice());
        let index: serde_json::Value = archive
            .entries()
            .expect("entries")
            .map(|e| e.expect("entry"))
            .find(|e| e.path().expect("path").to_string_lossy() == "index.json")
            .map(|e| serde_json::from_reader(e).expect("json"))
            .expect("index.json");
        assert_eq!(
            index["manifests"][0]["annotations"]["io.containerd.image.name"],
            "oxkube.local/tool:1"
        );
        let layer = names(&layer(&rootfs).expect("layer"));
        assert_eq!(layer, vec!["bin/", "bin/sh", "bin/tool"]);
    }

    #[test]
    fn names_must_be_qualified_and_tagged() {
        let config = |name: &str| ImageConfig {
            name: name.into(),
            ..ImageConfig::default()
        };
        for bad in ["busybox", "busybox:1", "oxkube.local/busybox", "x/y:1"] {
            assert!(matches!(
                build(&Rootfs::new(), &config(bad)),
                Err(ImageError::Name(_))
            ));
        }
        assert!(pause_image("oxkube.local/pause:3.10").is_ok());
    }
}
