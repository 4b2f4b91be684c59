//! Content-addressed storage for uploaded models and datasets: `<root>/sha256/<hex>`.
//! The same bytes are stored once. A blob is written to a temporary file, hashed on the way,
//! synced, checked by the caller, then renamed into place; dropped before that, it leaves
//! nothing behind.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the upload exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("no stored blob {0}")]
    NotFound(String),
    #[error("blob store I/O error: {0}")]
    Io(#[from] std::io::Error),
}

pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    pub fn open(root: PathBuf) -> Result<BlobStore, BlobError> {
        fs::create_dir_all(root.join("sha256"))?;
        let tmp = root.join("tmp");
        // Leftovers of uploads interrupted by a crash.
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp)?;
        Ok(BlobStore { root })
    }

    /// Start a blob of at most `limit` bytes.
    pub fn begin(&self, limit: u64) -> Result<PendingBlob, BlobError> {
        let tmp = self
            .root
            .join("tmp")
            .join(uuid::Uuid::new_v4().simple().to_string());
        Ok(PendingBlob {
            file: File::create(&tmp)?,
            tmp,
            hasher: Sha256::new(),
            size: 0,
            limit,
        })
    }

    /// Where blob `sha256` lives (whether or not it exists). Only hex digests are accepted, so
    /// the path never leaves the store.
    pub fn path(&self, sha256: &str) -> Result<PathBuf, BlobError> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BlobError::NotFound(sha256.to_string()));
        }
        Ok(self.root.join("sha256").join(sha256.to_ascii_lowercase()))
    }

    pub fn read(&self, sha256: &str) -> Result<Vec<u8>, BlobError> {
        let p = self.path(sha256)?;
        fs::read(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => BlobError::NotFound(sha256.to_string()),
            _ => BlobError::Io(e),
        })
    }

    pub fn contains(&self, sha256: &str) -> bool {
        self.path(sha256).is_ok_and(|p| p.exists())
    }

    /// Store `bytes`; returns their SHA-256.
    pub fn put(&self, bytes: &[u8]) -> Result<String, BlobError> {
        let mut b = self.begin(u64::MAX)?;
        b.write(bytes)?;
        let sha = b.sha256();
        self.commit(b)?;
        Ok(sha)
    }

    /// Make a finished blob durable under its digest.
    pub fn commit(&self, blob: PendingBlob) -> Result<String, BlobError> {
        let sha = blob.sha256();
        let target = self.path(&sha)?;
        if target.exists() {
            // Already stored: the temporary copy is dropped (and removed).
            return Ok(sha);
        }
        blob.file.sync_data()?;
        fs::rename(&blob.tmp, &target)?;
        File::open(self.root.join("sha256"))?.sync_all()?;
        std::mem::forget(blob);
        Ok(sha)
    }
}

pub struct PendingBlob {
    file: File,
    tmp: PathBuf,
    hasher: Sha256,
    size: u64,
    limit: u64,
}

impl PendingBlob {
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(BlobError::TooLarge { limit: self.limit });
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk)?;
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn sha256(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// The temporary file, for validating the content before committing it.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_are_stored_once_and_drops_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("blobs")).unwrap();
        let a = store.put(b"hello").unwrap();
        let b = store.put(b"hello").unwrap();
        assert_eq!(a, b);
        assert_eq!(store.read(&a).unwrap(), b"hello");
        assert_eq!(
            fs::read_dir(dir.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            1
        );

        let mut p = store.begin(4).unwrap();
        assert!(matches!(
            p.write(b"12345"),
            Err(BlobError::TooLarge { limit: 4 })
        ));
        drop(p);
        assert_eq!(
            fs::read_dir(dir.path().join("blobs/tmp")).unwrap().count(),
            0
        );
        assert!(store.path("../etc").is_err());
    }
}
