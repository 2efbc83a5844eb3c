//! The node key that signs checkpoints, and the trust file verifiers check signers against.
//!
//! - Node key file: one line `AUDITTY-NODE-KEY-1 BASE64(32-byte ed25519 seed)`, mode 0600,
//!   created on the agent's first run.
//! - Public key text: `ed25519:BASE64(32 bytes)`.
//! - Trust file: one public key per line, optionally followed by a comment (the host
//!   name); `#` starts a comment line. `auditty-agent node-key` prints the line to add.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::SigningKey;

const NODE_KEY_TAG: &str = "AUDITTY-NODE-KEY-1";
const PUBLIC_PREFIX: &str = "ed25519:";

/// What went wrong with a key or trust file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A node key file does not hold a node key.
    #[error(
        "{path} is not an auditty node key (expected one line '{NODE_KEY_TAG} BASE64'); move it away to create a new key"
    )]
    BadNodeKey {
        /// The file.
        path: PathBuf,
    },
    /// A public key does not parse.
    #[error("'{text}' is not a public key (expected ed25519:BASE64 of 32 bytes)")]
    BadPublicKey {
        /// The text, control characters escaped.
        text: String,
    },
    /// A trust file line does not parse.
    #[error("{path} line {line}: {reason}")]
    BadTrustLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// An ed25519 public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `signature` is this key's ed25519 signature of `message` (strict: no
    /// small-order keys, no malleable signatures). Any bytes may be passed; a signature
    /// that is not 64 bytes long is simply not valid.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = <[u8; 64]>::try_from(signature) else {
            return false;
        };
        ed25519_dalek::VerifyingKey::from_bytes(&self.0).is_ok_and(|vk| {
            vk.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig))
                .is_ok()
        })
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", B64.encode(self.0))
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix(PUBLIC_PREFIX)
            .and_then(|b| B64.decode(b).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(PublicKey)
            .ok_or_else(|| KeyError::BadPublicKey {
                text: schemas::text::escape_controls(&s.chars().take(80).collect::<String>()),
            })
    }
}

/// A node's signing key.
pub struct NodeKey {
    key: SigningKey,
}

impl NodeKey {
    /// A key from its seed (tests, benchmarks).
    pub fn from_seed(seed: [u8; 32]) -> NodeKey {
        NodeKey {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Loads the key at `path`, creating it (mode 0600) if there is none. Two agents
    /// starting at once end up with the same key: the file appears atomically with its
    /// full contents, and the loser of the race reads the winner's.
    pub fn load_or_create(path: &Path) -> Result<(NodeKey, bool), KeyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => return Ok((Self::parse(path, &text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(KeyError::Io {
                    op: "cannot read node key",
                    path: path.into(),
                    source,
                });
            }
        }
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut seed[..]).map_err(|e| KeyError::Io {
            op: "no randomness for a new node key",
            path: path.into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let io = |op: &'static str| {
            let path = path.to_path_buf();
            move |source| KeyError::Io { op, path, source }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io("cannot create the directory of"))?;
        }
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let text = zeroize::Zeroizing::new(format!("{NODE_KEY_TAG} {}\n", B64.encode(*seed)));
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io("cannot create node key"))?;
            f.write_all(text.as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(io("cannot write node key"))?;
        }
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok((Self::from_seed(*seed), true)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(io("cannot read node key"))?;
                Ok((Self::parse(path, &text)?, false))
            }
            Err(e) => Err(io("cannot create node key")(e)),
        }
    }

    /// Loads the key at `path`; `Ok(None)` if there is none (this node never recorded).
    pub fn load(path: &Path) -> Result<Option<NodeKey>, KeyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(KeyError::Io {
                op: "cannot read node key",
                path: path.into(),
                source,
            }),
        }
    }

    fn parse(path: &Path, text: &str) -> Result<NodeKey, KeyError> {
        let seed = text
            .lines()
            .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .and_then(|l| l.trim().strip_prefix(NODE_KEY_TAG))
            .and_then(|b| B64.decode(b.trim()).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| KeyError::BadNodeKey { path: path.into() })?;
        Ok(Self::from_seed(seed))
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.key.verifying_key().to_bytes())
    }

    /// The ed25519 signature of `message`, for signers outside this crate (reviews of
    /// sessions: the `review` crate). The message must start with a domain string of its
    /// own, such as `auditty-review-v1\0`, so that no signature made for one purpose
    /// (checkpoints, ledger heads, reviews) is valid for another.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.key.sign(message).to_bytes()
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

/// The public keys a verifier trusts, with their comments (usually host names).
#[derive(Clone, Debug, Default)]
pub struct TrustSet {
    keys: BTreeMap<PublicKey, String>,
}

impl TrustSet {
    /// Reads a trust file.
    pub fn load(path: &Path) -> Result<TrustSet, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            op: "cannot read trust file",
            path: path.into(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses the text of a trust file (`path` is for messages).
    pub fn parse(path: &Path, text: &str) -> Result<TrustSet, KeyError> {
        let mut keys = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, comment) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let key: PublicKey = key.parse().map_err(|e: KeyError| KeyError::BadTrustLine {
                path: path.into(),
                line: i + 1,
                reason: e.to_string(),
            })?;
            keys.insert(key, comment.trim().to_string());
        }
        Ok(TrustSet { keys })
    }

    /// Adds a key.
    pub fn insert(&mut self, key: PublicKey, comment: &str) {
        self.keys.insert(key, comment.to_string());
    }

    /// The comment of a trusted key, if it is trusted.
    pub fn get(&self, key: &PublicKey) -> Option<&str> {
        self.keys.get(key).map(String::as_str)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Appends `key comment` to the trust file at `path` unless the key is already there.
pub fn add_to_trust_file(path: &Path, key: &PublicKey, comment: &str) -> Result<(), KeyError> {
    let existing = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(KeyError::Io {
                op: "cannot read trust file",
                path: path.into(),
                source,
            });
        }
    };
    let key_text = key.to_string();
    if existing
        .lines()
        .any(|l| l.split_whitespace().next() == Some(key_text.as_str()))
    {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| KeyError::Io {
            op: "cannot open trust file",
            path: path.into(),
            source,
        })?;
    writeln!(f, "{key_text} {comment}").map_err(|source| KeyError::Io {
        op: "cannot write trust file",
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_node_key_is_created_once_private_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/node.key");
        let (a, created) = NodeKey::load_or_create(&path).unwrap();
        assert!(created);
        let (b, created) = NodeKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a.public(), b.public());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, "garbage").unwrap();
        let e = NodeKey::load_or_create(&path).err().unwrap();
        assert!(e.to_string().contains("is not an auditty node key"), "{e}");
    }

    #[test]
    fn trust_files_parse_with_comments_and_name_bad_lines() {
        let k = NodeKey::from_seed([1; 32]).public();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trusted");
        add_to_trust_file(&path, &k, "web-1").unwrap();
        add_to_trust_file(&path, &k, "web-1").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        let t = TrustSet::load(&path).unwrap();
        assert_eq!(t.get(&k), Some("web-1"));
        let e = TrustSet::parse(&path, "# keys\n\ned25519:AAAA web\n").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
    }

    #[test]
    fn signatures_verify_under_their_key_only() {
        let a = NodeKey::from_seed([7; 32]);
        let b = NodeKey::from_seed([8; 32]);
        let sig = a.sign(b"auditty-test\0message");
        assert!(a.public().verifies(b"auditty-test\0message", &sig));
        assert!(!a.public().verifies(b"auditty-test\0massage", &sig));
        assert!(!b.public().verifies(b"auditty-test\0message", &sig));
        assert!(!a.public().verifies(b"auditty-test\0message", &sig[..63]));
    }

    proptest! {
        #[test]
        fn key_parsers_never_panic(text in ".{0,200}") {
            let _ = text.parse::<PublicKey>();
            let _ = TrustSet::parse(Path::new("t"), &text);
            let _ = NodeKey::parse(Path::new("k"), &text);
        }
    }
}
