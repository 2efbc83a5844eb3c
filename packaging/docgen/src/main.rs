//! `auditty-docgen OUT_DIR`: the man pages and shell completions of the packaged
//! programs (`auditty-agent`, `auditty-ingest`, `replay`), generated from their clap
//! definitions, so that they cannot drift from `--help`. `scripts/package-deb` runs it
//! and lays the files out in the packages:
//!
//! ```text
//! OUT_DIR/man/<program>.1, <program>-<subcommand>.1     section 1, roff
//! OUT_DIR/bash/<program>                                bash-completion
//! OUT_DIR/zsh/_<program>                                zsh
//! OUT_DIR/fish/<program>.fish                           fish
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Command, CommandFactory, Parser};
use clap_complete::Shell;

/// Writes the man pages and shell completions of auditty's programs.
#[derive(Parser, Debug)]
#[command(name = "auditty-docgen", version, about)]
struct Args {
    /// Directory to write man/, bash/, zsh/ and fish/ into (created if missing).
    #[arg(value_name = "OUT_DIR")]
    out: PathBuf,
}

/// The FILES and ENVIRONMENT sections of the configured programs' pages: the file is
/// read before clap parses, so clap's definitions do not describe it.
const CONFIG_SECTIONS: &str = r#".SH FILES
.TP
\fI/etc/auditty/auditty.toml\fR
The configuration file (TOML), read when it exists. Its keys are the long options of this
page, in a table per program and subcommand: \fB[agent]\fR for the agent's global options,
\fB[agent.record]\fR, \fB[agent.ship]\fR, \fB[ingest]\fR, \fB[ingest.run]\fR; \fBdata_dir\fR
and \fBchunk_bytes\fR are \fB\-\-data\-dir\fR and \fB\-\-chunk\-bytes\fR. An option given on
the command line beats its environment variable, which beats the file, which beats the
default. Unknown keys and invalid values are errors naming the file, line and column;
\fBconfig check\fR prints every setting and where it came from.
.SH ENVIRONMENT
.TP
\fBAUDITTY_CONFIG\fR
Another configuration file, as \fB\-\-config\fR.
.TP
\fBAUDITTY_LOG\fR
What to log on standard error (\fBinfo\fR, \fBdebug\fR, or a tracing filter).
"#;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let programs = [
        (agent::cli::Cli::command(), true),
        (ingest::cli::Cli::command(), true),
        (replay::cli::Cli::command(), false),
    ];
    for (cmd, configured) in programs {
        let name = cmd.get_name().to_string();
        let mut built = cmd.clone();
        built.build();
        man_pages(&built, &args.out.join("man"), configured)
            .with_context(|| format!("cannot write the man pages of {name}"))?;
        completions(cmd, &args.out)
            .with_context(|| format!("cannot write the completions of {name}"))?;
    }
    Ok(())
}

/// The page of `cmd` and, as `<program>-<subcommand>.1`, one per visible subcommand.
fn man_pages(cmd: &Command, dir: &Path, configured: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut page)?;
    }
    if cmd.get_after_help().is_some() || cmd.get_after_long_help().is_some() {
        man.render_extra_section(&mut page)?;
    }
    if configured {
        page.extend_from_slice(CONFIG_SECTIONS.as_bytes());
    }
    if cmd.get_version().is_some() {
        man.render_version_section(&mut page)?;
    }
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        man_pages(sub, dir, configured)?;
    }
    Ok(())
}

/// bash, zsh and fish completions of `cmd`.
fn completions(mut cmd: Command, out: &Path) -> anyhow::Result<()> {
    let name = cmd.get_name().to_string();
    for (shell, file) in [
        (Shell::Bash, name.clone()),
        (Shell::Zsh, format!("_{name}")),
        (Shell::Fish, format!("{name}.fish")),
    ] {
        let dir = out.join(shell.to_string());
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(file);
        let mut f = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        clap_complete::generate(shell, &mut cmd, &name, &mut f);
    }
    Ok(())
}
