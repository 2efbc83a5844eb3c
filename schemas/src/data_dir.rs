//! The one data directory that `auditty-agent`, `auditty-ingest` and `replay` agree on.
//!
//! `--data-dir DIR`, else `AUDITTY_DATA_DIR`, else `$XDG_DATA_HOME/auditty`, else
//! `$HOME/.local/share/auditty`. It holds `spool/` (the agent's chunks waiting to be
//! ingested) and `store/` (the local Parquet store), so the embedded flow needs no flags.

use std::path::{Path, PathBuf};

/// `--data-dir DIR`, the flag every binary takes (with the `clap` feature).
#[cfg(feature = "clap")]
#[derive(clap::Args, Clone, Debug, Default)]
pub struct DataDirArg {
    /// Data directory: spool/, the local store/, the node key and the trust file.
    /// Default: $AUDITTY_DATA_DIR, else $XDG_DATA_HOME/auditty, else ~/.local/share/auditty.
    #[arg(
        long = "data-dir",
        global = true,
        env = ENV_VAR,
        value_name = "DIR"
    )]
    pub dir: Option<PathBuf>,
}

#[cfg(feature = "clap")]
impl DataDirArg {
    /// The directory given on the command line or in the environment, if any; pass it to
    /// [`DataDir::resolve`].
    pub fn path(&self) -> Option<&Path> {
        self.dir.as_deref()
    }
}

/// Environment variable naming the data directory.
pub const ENV_VAR: &str = "AUDITTY_DATA_DIR";

/// The resolved data directory and the default locations inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir(pub PathBuf);

/// No data directory could be determined.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot tell where auditty keeps its data: none of --data-dir, {ENV_VAR}, XDG_DATA_HOME or HOME is set; pass --data-dir DIR"
)]
pub struct NoDataDir;

impl DataDir {
    /// Resolves the data directory from an explicit flag value, then the environment.
    /// Binaries usually bind the flag to [`ENV_VAR`] already; both are honoured here.
    pub fn resolve(flag: Option<&Path>) -> Result<DataDir, NoDataDir> {
        let from_env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let Some(p) = flag {
            return Ok(DataDir(p.to_path_buf()));
        }
        if let Some(p) = from_env(ENV_VAR) {
            return Ok(DataDir(p));
        }
        if let Some(p) = from_env("XDG_DATA_HOME") {
            return Ok(DataDir(p.join("auditty")));
        }
        if let Some(p) = from_env("HOME") {
            return Ok(DataDir(p.join(".local/share/auditty")));
        }
        Err(NoDataDir)
    }

    /// Where the agent writes chunks and the embedded ingester reads them.
    pub fn spool(&self) -> PathBuf {
        self.0.join("spool")
    }

    /// The local Parquet store.
    pub fn store(&self) -> PathBuf {
        self.0.join("store")
    }

    /// The search index `replay index` builds from the store (derived, rebuildable).
    pub fn index(&self) -> PathBuf {
        self.0.join("index")
    }

    /// The node's checkpoint-signing key.
    pub fn node_key(&self) -> PathBuf {
        self.0.join("node.key")
    }

    /// The public keys `replay verify` trusts; the agent adds its own on creating its key.
    pub fn trusted_keys(&self) -> PathBuf {
        self.0.join("trusted-keys")
    }
}
