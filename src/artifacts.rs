//! The artifact store: files under `<data-dir>/artifacts`, written durably (temp file, fsync,
//! rename, fsync of the directory) before their `ArtifactStored` event is appended.
//!
//! Paths come from clients, so every one is checked: relative, no `.`/`..` segments, no NUL,
//! and no symlink anywhere between the root and the file. Nothing is written outside the root.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("Invalid path: {0}")]
    InvalidPath(String),
    #[error("Artifact '{0}' does not exist")]
    NotFound(String),
    #[error("artifact store I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// The log stream of artifact events.
pub const ARTIFACT_STREAM: &str = "artifacts";

pub struct ArtifactStore {
    root: PathBuf,
}

/// A validated, normalised relative artifact path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactPath(String);

impl ArtifactPath {
    pub fn parse(raw: &str) -> Result<ArtifactPath, ArtifactError> {
        let invalid = || ArtifactError::InvalidPath(raw.to_string());
        if raw.starts_with('/') || raw.starts_with('\\') || raw.contains('\0') || raw.contains('\\')
        {
            return Err(invalid());
        }
        let segments: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
        if segments.is_empty() || segments.iter().any(|s| *s == "." || *s == "..") {
            return Err(invalid());
        }
        // A Windows drive prefix such as `C:` is absolute there; refuse it everywhere.
        if segments[0].len() == 2 && segments[0].ends_with(':') {
            return Err(invalid());
        }
        Ok(ArtifactPath(segments.join("/")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The run this path belongs to, for paths shaped `<experiment>/<run_id>/artifacts/...`.
    pub fn run_id(&self) -> Option<String> {
        let mut it = self.0.split('/');
        let (_exp, run, art) = (it.next()?, it.next()?, it.next()?);
        (art == "artifacts" && run.len() == 32 && run.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| run.to_string())
    }
}

impl ArtifactStore {
    pub fn open(root: PathBuf) -> Result<ArtifactStore, ArtifactError> {
        fs::create_dir_all(&root)?;
        Ok(ArtifactStore {
            root: root.canonicalize()?,
        })
    }

    /// Create the parent directories of `path`, refusing to follow any symlink on the way.
    fn prepare_parent(&self, path: &ArtifactPath) -> Result<PathBuf, ArtifactError> {
        let mut dir = self.root.clone();
        let segments: Vec<&str> = path.0.split('/').collect();
        for seg in &segments[..segments.len() - 1] {
            dir.push(seg);
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
                    return Err(ArtifactError::InvalidPath(path.0.clone()))
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::create_dir(&dir)
                    .or_else(|e| match e.kind() {
                        std::io::ErrorKind::AlreadyExists => Ok(()),
                        _ => Err(e),
                    })?,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(dir)
    }

    /// Resolve an existing file, refusing symlinks anywhere on the path.
    fn existing(&self, path: &ArtifactPath) -> Result<PathBuf, ArtifactError> {
        let mut p = self.root.clone();
        for seg in path.0.split('/') {
            p.push(seg);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(ArtifactError::InvalidPath(path.0.clone()))
                }
                Ok(_) => {}
                Err(_) => return Err(ArtifactError::NotFound(path.0.clone())),
            }
        }
        Ok(p)
    }

    /// Start writing `path`; the returned writer makes it visible and durable on `commit`.
    pub fn create(&self, path: &ArtifactPath) -> Result<PendingArtifact, ArtifactError> {
        let dir = self.prepare_parent(path)?;
        let name = path.0.rsplit('/').next().unwrap_or_default().to_string();
        let final_path = dir.join(&name);
        if let Ok(m) = fs::symlink_metadata(&final_path) {
            if m.file_type().is_symlink() || m.is_dir() {
                return Err(ArtifactError::InvalidPath(path.0.clone()));
            }
        }
        let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        Ok(PendingArtifact {
            file,
            tmp,
            final_path,
            dir,
            size: 0,
            crc: 0,
        })
    }

    pub fn open_file(&self, path: &ArtifactPath) -> Result<(File, u64), ArtifactError> {
        let p = self.existing(path)?;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&p)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(ArtifactError::NotFound(path.0.clone()));
        }
        Ok((file, meta.len()))
    }

    /// Remove a file or a directory tree.
    pub fn delete(&self, path: &ArtifactPath) -> Result<(), ArtifactError> {
        let p = self.existing(path)?;
        if fs::symlink_metadata(&p)?.is_dir() {
            fs::remove_dir_all(&p)?;
        } else {
            fs::remove_file(&p)?;
        }
        if let Some(parent) = p.parent() {
            File::open(parent)?.sync_all()?;
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// A file being uploaded. Dropped without `commit`, it leaves nothing behind.
pub struct PendingArtifact {
    file: File,
    tmp: PathBuf,
    final_path: PathBuf,
    dir: PathBuf,
    size: u64,
    crc: u32,
}

impl PendingArtifact {
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), ArtifactError> {
        self.file.write_all(chunk)?;
        self.size += chunk.len() as u64;
        self.crc = crc32c::crc32c_append(self.crc, chunk);
        Ok(())
    }

    /// Sync the data, move it into place and sync the directory. Returns (size, crc32c).
    pub fn commit(self) -> Result<(u64, u32), ArtifactError> {
        self.file.sync_data()?;
        fs::rename(&self.tmp, &self.final_path)?;
        File::open(&self.dir)?.sync_all()?;
        let out = (self.size, self.crc);
        std::mem::forget(self);
        Ok(out)
    }
}

impl Drop for PendingArtifact {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_validated() {
        for ok in ["a", "1/abc/artifacts/model/MLmodel", "a//b/", "x y.txt"] {
            assert!(ArtifactPath::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a/./b",
            "C:/x",
            "a\\..\\b",
            "a\0b",
        ] {
            assert!(ArtifactPath::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(ArtifactPath::parse("a//b/").unwrap().as_str(), "a/b");
    }

    #[test]
    fn writes_commit_atomically_and_symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path().join("art")).unwrap();
        let p = ArtifactPath::parse("1/r/file.txt").unwrap();
        let mut w = store.create(&p).unwrap();
        w.write(b"hello").unwrap();
        drop(w);
        assert!(matches!(
            store.open_file(&p),
            Err(ArtifactError::NotFound(_))
        ));
        let mut w = store.create(&p).unwrap();
        w.write(b"hello").unwrap();
        assert_eq!(w.commit().unwrap().0, 5);
        assert_eq!(store.open_file(&p).unwrap().1, 5);

        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, store.root().join("link")).unwrap();
        let evil = ArtifactPath::parse("link/x.txt").unwrap();
        assert!(matches!(
            store.create(&evil),
            Err(ArtifactError::InvalidPath(_))
        ));
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    }
}
