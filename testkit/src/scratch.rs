//! Per-test names and directories, so parallel tests never share a
//! resource and nothing lands in the work tree.

use std::path::PathBuf;

/// A short unique name for per-test resources.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    // The random tail of a v7 UUID; the timestamp head would collide less
    // visibly but makes names long.
    format!("{prefix}_{}", &id[16..])
}

/// A directory under the system's temporary directory, removed when
/// dropped: where a test's service keeps its files (never the work tree).
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, uniquely named directory.
    pub fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(unique_name(prefix));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create {}: {e}", dir.display());
        }
        Self(dir)
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
