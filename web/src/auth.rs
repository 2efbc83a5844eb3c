//! Who may log in and what they may see: the `--auth` TOML file (users with argon2
//! password hashes, API tokens stored as their SHA-256, roles over hosts and users).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Why the auth file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// It could not be read.
    #[error("cannot read the auth file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not TOML of the expected layout.
    #[error("auth file {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, from the TOML parser.
        reason: String,
    },
    /// It is TOML but says something that cannot be right.
    #[error("auth file {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthToml {
    #[serde(default)]
    user: Vec<UserToml>,
    #[serde(default)]
    token: Vec<TokenToml>,
    #[serde(default)]
    role: Vec<Role>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserToml {
    name: String,
    password_hash: String,
    #[serde(default)]
    roles: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenToml {
    name: String,
    sha256: String,
    #[serde(default)]
    roles: Vec<String>,
}

/// A role: the sessions of which users on which hosts its holders may list, search, play
/// and report on. Both lists are globs (`*` any run of characters, `?` one); a session
/// is covered when its host matches one of `hosts` and its user one of `users`. Empty
/// lists cover nothing.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Its name, as users and tokens refer to it.
    pub name: String,
    /// Host globs.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// User globs.
    #[serde(default)]
    pub users: Vec<String>,
}

impl Role {
    /// Whether this role covers a session of `user` on `host`.
    pub fn covers(&self, user: &str, host: &str) -> bool {
        self.hosts.iter().any(|g| glob_match(g, host))
            && self.users.iter().any(|g| glob_match(g, user))
    }
}

/// Someone who may log in with a password.
#[derive(Clone, Debug)]
struct User {
    password_hash: String,
    roles: Vec<String>,
}

/// Someone who may call the API with a bearer token.
#[derive(Clone, Debug)]
struct Token {
    name: String,
    roles: Vec<String>,
}

/// The loaded auth file.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    users: HashMap<String, User>,
    /// By the SHA-256 of the token (raw bytes).
    tokens: HashMap<[u8; 32], Token>,
    roles: HashMap<String, Role>,
}

/// Whoever is calling, once authenticated: a name (a user's or a token's) and the roles
/// it holds, resolved.
#[derive(Clone, Debug)]
pub struct Caller {
    /// `NAME` of a user, `token:NAME` of a token.
    pub name: String,
    /// Its roles.
    pub roles: Vec<Role>,
}

impl AuthConfig {
    /// Reads and checks the auth file.
    pub fn load(path: &Path) -> Result<AuthConfig, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        AuthConfig::parse(&text).map_err(|e| match e {
            AuthError::Parse { reason, .. } => AuthError::Parse {
                path: path.to_path_buf(),
                reason,
            },
            AuthError::Invalid { reason, .. } => AuthError::Invalid {
                path: path.to_path_buf(),
                reason,
            },
            e => e,
        })
    }

    /// Parses and checks the text of an auth file (errors name no path).
    pub fn parse(text: &str) -> Result<AuthConfig, AuthError> {
        let parsed: AuthToml = toml::from_str(text).map_err(|e| AuthError::Parse {
            path: PathBuf::new(),
            reason: e.to_string(),
        })?;
        let invalid = |reason: String| AuthError::Invalid {
            path: PathBuf::new(),
            reason,
        };
        let mut roles = HashMap::new();
        for r in parsed.role {
            if roles.insert(r.name.clone(), r.clone()).is_some() {
                return Err(invalid(format!("role {:?} is defined twice", r.name)));
            }
        }
        let check_roles = |who: &str, rs: &[String]| {
            rs.iter()
                .find(|r| !roles.contains_key(*r))
                .map_or(Ok(()), |r| {
                    Err(invalid(format!(
                        "{who} has role {r:?}, which no [[role]] defines"
                    )))
                })
        };
        let mut users = HashMap::new();
        for u in parsed.user {
            check_roles(&format!("user {:?}", u.name), &u.roles)?;
            PasswordHash::new(&u.password_hash).map_err(|e| {
                invalid(format!(
                    "user {:?}: password_hash is not a PHC string ({e}); make one with `replay serve hash-password`",
                    u.name
                ))
            })?;
            if u.name.is_empty() || u.name.starts_with("token:") {
                return Err(invalid(format!("user name {:?} is not allowed", u.name)));
            }
            let user = User {
                password_hash: u.password_hash,
                roles: u.roles,
            };
            if users.insert(u.name.clone(), user).is_some() {
                return Err(invalid(format!("user {:?} is defined twice", u.name)));
            }
        }
        let mut tokens = HashMap::new();
        for t in parsed.token {
            check_roles(&format!("token {:?}", t.name), &t.roles)?;
            let digest = parse_sha256(&t.sha256).ok_or_else(|| {
                invalid(format!(
                    "token {:?}: sha256 must be 64 hex digits (`printf %s TOKEN | sha256sum`)",
                    t.name
                ))
            })?;
            let token = Token {
                name: t.name.clone(),
                roles: t.roles,
            };
            if tokens.insert(digest, token).is_some() {
                return Err(invalid(format!(
                    "token {:?} has the sha256 of another",
                    t.name
                )));
            }
        }
        Ok(AuthConfig {
            users,
            tokens,
            roles,
        })
    }

    fn resolve(&self, roles: &[String]) -> Vec<Role> {
        roles
            .iter()
            .filter_map(|r| self.roles.get(r).cloned())
            .collect()
    }

    /// The user `name` if `password` is theirs. An unknown user costs the same work as a
    /// wrong password.
    pub fn check_password(&self, name: &str, password: &str) -> Option<Caller> {
        // A hash of nothing useful, so that unknown names take as long as known ones.
        static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let dummy = DUMMY.get_or_init(|| hash_password("no such user").unwrap_or_default());
        let user = self.users.get(name);
        let hash = user.map_or(dummy.as_str(), |u| u.password_hash.as_str());
        let ok = PasswordHash::new(hash).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
        match (ok, user) {
            (true, Some(u)) => Some(Caller {
                name: name.to_string(),
                roles: self.resolve(&u.roles),
            }),
            _ => None,
        }
    }

    /// The token holder of a bearer token, if it is one of ours.
    pub fn check_token(&self, token: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.tokens.get(&digest).map(|t| Caller {
            name: format!("token:{}", t.name),
            roles: self.resolve(&t.roles),
        })
    }

    /// The roles of user `name` now (after a login, the session keeps its caller).
    pub fn user_exists(&self, name: &str) -> bool {
        self.users.contains_key(name)
    }
}

/// An argon2id PHC string of `password`, with a random salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?
        .to_string())
}

fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Whether `text` matches `glob`: `*` any run of characters (also none), `?` exactly
/// one; everything else stands for itself. Matches whole strings.
pub fn glob_match(glob: &str, text: &str) -> bool {
    let g: Vec<char> = glob.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut gi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == t[ti]) {
            gi += 1;
            ti += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some((gi, ti));
            gi += 1;
        } else if let Some((sg, st)) = star {
            gi = sg + 1;
            ti = st + 1;
            star = Some((sg, st + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_match("web-*", "web-1"));
        assert!(glob_match("web-*", "web-"));
        assert!(!glob_match("web-*", "db-1"));
        assert!(!glob_match("web-*", "xweb-1"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("db-?", "db-1"));
        assert!(!glob_match("db-?", "db-12"));
        assert!(glob_match("*-1", "web-1"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(!glob_match("", "x"));
        assert!(glob_match("", ""));
    }

    #[test]
    fn roles_need_both_a_host_and_a_user_match() {
        let role = Role {
            name: "web".into(),
            hosts: vec!["web-*".into()],
            users: vec!["*".into()],
        };
        assert!(role.covers("alice", "web-1"));
        assert!(!role.covers("alice", "db-1"));
        let none = Role {
            name: "none".into(),
            hosts: vec!["*".into()],
            users: vec![],
        };
        assert!(!none.covers("alice", "web-1"));
    }

    fn sample(hash: &str) -> String {
        format!(
            "[[role]]\nname = \"web\"\nhosts = [\"web-*\"]\nusers = [\"*\"]\n\n\
             [[user]]\nname = \"alice\"\npassword_hash = \"{hash}\"\nroles = [\"web\"]\n\n\
             [[token]]\nname = \"ci\"\nsha256 = \"{}\"\nroles = [\"web\"]\n",
            "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
        )
    }

    #[test]
    fn passwords_and_tokens_authenticate() {
        let hash = hash_password("s3cret").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let auth = AuthConfig::parse(&sample(&hash)).unwrap();
        let alice = auth.check_password("alice", "s3cret").unwrap();
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.roles.len(), 1);
        assert!(auth.check_password("alice", "wrong").is_none());
        assert!(auth.check_password("bob", "s3cret").is_none());
        // sha256("foo")
        let ci = auth.check_token("foo").unwrap();
        assert_eq!(ci.name, "token:ci");
        assert!(auth.check_token("bar").is_none());
    }

    #[test]
    fn bad_auth_files_are_refused_with_a_reason() {
        let hash = hash_password("x").unwrap();
        let err = |text: &str| AuthConfig::parse(text).unwrap_err().to_string();
        assert!(err("[[user]]\nname = \"a\"\n").contains("password_hash"));
        assert!(err("[[user]]\nname = \"a\"\npassword_hash = \"plain\"\n").contains("PHC"));
        assert!(
            err(&format!(
                "[[user]]\nname = \"a\"\npassword_hash = \"{hash}\"\nroles = [\"nope\"]\n"
            ))
            .contains("no [[role]] defines")
        );
        assert!(err("[[token]]\nname = \"t\"\nsha256 = \"abc\"\n").contains("64 hex digits"));
        assert!(err("[[role]]\nname = \"r\"\nhost = [\"x\"]\n").contains("unknown field"));
        assert!(err("[[role]]\nname = \"r\"\n[[role]]\nname = \"r\"\n").contains("twice"));
        let dir = tempfile::tempdir().unwrap();
        let missing = AuthConfig::load(&dir.path().join("auth.toml")).unwrap_err();
        assert!(missing.to_string().contains("auth.toml"), "{missing}");
    }
}
