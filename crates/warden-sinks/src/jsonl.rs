//! JSON-lines files of OCSF objects, for SIEM file collectors (Filebeat, Vector, the Splunk
//! forwarder…): the server appends every ledger event to each `jsonl_file` sink.
//!
//! Each batch is serialised into one buffer and appended with a single write to a file opened
//! in append mode, then `fsync`ed. The file is reopened for every batch, so a log rotation that
//! moves it away is followed without a signal; it is created with mode 0600 when absent.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// An append-only JSON-lines file.
#[derive(Debug, Clone)]
pub struct JsonlFile {
    path: PathBuf,
}

impl JsonlFile {
    /// The file at `path`, created (mode 0600) if absent; fails if it cannot be opened for
    /// appending.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        open_append(&path)?;
        Ok(Self { path })
    }

    /// Where the lines go.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line per value, then syncs the file to disk.
    pub async fn append_batch(&self, values: &[Value]) -> io::Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for v in values {
            serde_json::to_writer(&mut buf, v)?;
            buf.push(b'\n');
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut file = open_append(&path)?;
            file.write_all(&buf)?;
            file.sync_data()
        })
        .await
        .map_err(io::Error::other)?
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}
