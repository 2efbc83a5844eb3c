//! `replay play`: the session in this terminal, with its original timing.
//!
//! Output events are written to the terminal at their (capped, sped-up) times; the
//! auditor's terminal does the rendering. A jump (`--at`, `--at-command`, the `n`/`p`
//! keys) writes everything up to the target at once, so the screen is the one the user
//! saw at that moment; a jump backwards resets the terminal (RIS) and redraws from the
//! start, since output cannot be unwritten.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use schemas::{Event, EventKind};
use terminal::RawMode;
use terminal::fd::{ReadOutcome, read_within};

use crate::cli::PlayArgs;
use crate::cmd::commands::commands;
use crate::open::{OpenSession, StoreArgs, open_session};
use crate::stream::{Timed, cap_idle, speed, timed};

/// How long to sleep between checks for keys and signals.
const TICK: Duration = Duration::from_millis(50);

/// Full reset: clears the screen, scrollback aside, and every mode a program set.
const RESET: &[u8] = b"\x1bc";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Pause,
    Quit,
    Next,
    Previous,
    Step,
}

/// Waits up to `timeout` for a key on `fd` (a terminal in raw mode).
fn read_key(fd: BorrowedFd<'_>, timeout: Duration) -> Option<Key> {
    let mut buf = [0u8; 64];
    let ReadOutcome::Data(n) = read_within(fd, &mut buf, timeout).ok()? else {
        return None;
    };
    buf[..n].iter().find_map(|b| key_of(*b))
}

fn key_of(b: u8) -> Option<Key> {
    match b {
        b' ' => Some(Key::Pause),
        b'q' | b'Q' | 0x03 => Some(Key::Quit),
        b'n' => Some(Key::Next),
        b'p' => Some(Key::Previous),
        b'.' => Some(Key::Step),
        _ => None,
    }
}

/// Plays one session.
pub fn run(store_args: &StoreArgs, args: PlayArgs) -> anyhow::Result<()> {
    let (_, store) = store_args.open()?;
    let session = open_session(store.as_ref(), &args.session, &store_args.keys)?;
    let marks = jump_points(&session);
    let start_ns = start_offset(&session, &args, &marks)?;
    crate::access::record_opened(store.as_ref(), "play", &session)?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let stdin = std::io::stdin();
    let stdin = stdin.as_fd();
    // Raw mode lets single keys through; the guard restores the terminal on every return.
    let raw = RawMode::enter(stdin.as_raw_fd())?;
    let keys = raw.is_some().then_some(stdin);

    let outputs = timed(
        session
            .events
            .into_iter()
            .filter(|e| e.kind == EventKind::Output),
    );
    let outputs: Box<dyn Iterator<Item = _>> = match args.idle_limit {
        Some(limit) => Box::new(cap_idle(outputs, limit)),
        None => Box::new(outputs),
    };
    let mut player = Player::new(speed(outputs, args.speed).collect(), marks);
    if let Some(ns) = start_ns {
        player.seek(ns)?;
    }
    player.play(keys, &stop)?;
    drop(raw);
    Ok(())
}

/// Where `--at` or `--at-command` starts, in session time.
fn start_offset(
    session: &OpenSession,
    args: &PlayArgs,
    marks: &JumpPoints,
) -> anyhow::Result<Option<u64>> {
    if let Some(at) = args.at {
        return Ok(Some(u64::try_from(at.as_nanos()).unwrap_or(u64::MAX)));
    }
    let Some(n) = args.at_command else {
        return Ok(None);
    };
    match marks.commands.get(n) {
        Some(&ns) => Ok(Some(ns)),
        None => bail!(
            "session {} has {} commands (0 to {}); there is no command {n} (`replay commands {}` lists them)",
            session.info.id,
            marks.commands.len(),
            marks.commands.len().saturating_sub(1),
            session.info.id,
        ),
    }
}

/// The moments `n` and `p` jump between: every command (when its Enter was typed) and
/// every marker, in session time.
struct JumpPoints {
    commands: Vec<u64>,
    all: Vec<u64>,
}

fn jump_points(session: &OpenSession) -> JumpPoints {
    let commands: Vec<u64> = commands(session).iter().map(|c| c.elapsed_ns).collect();
    let mut all = commands.clone();
    all.extend(
        session
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Marker)
            .map(|e| e.elapsed_ns),
    );
    all.sort_unstable();
    all.dedup();
    JumpPoints { commands, all }
}

/// The playback state: which output comes next, and the clock it is timed by.
struct Player<W: Write = std::io::StdoutLock<'static>> {
    out: W,
    outputs: Vec<Timed>,
    marks: JumpPoints,
    /// The next output to show.
    next: usize,
    /// The session time the screen shows: the last jump target or the last output shown.
    shown_ns: u64,
    /// Playback time zero, while playing.
    clock: Instant,
    paused_at: Option<Instant>,
    /// A jump or step while paused: resuming times the next output from the screen shown,
    /// not from where the pause began.
    moved_while_paused: bool,
}

impl Player {
    fn new(outputs: Vec<Timed>, marks: JumpPoints) -> Player {
        Player::with_output(std::io::stdout().lock(), outputs, marks)
    }
}

impl<W: Write> Player<W> {
    fn with_output(out: W, outputs: Vec<Timed>, marks: JumpPoints) -> Player<W> {
        Player {
            out,
            outputs,
            marks,
            next: 0,
            shown_ns: 0,
            clock: Instant::now(),
            paused_at: None,
            moved_while_paused: false,
        }
    }

    /// Plays to the end, or until `q` or a signal.
    fn play(&mut self, keys: Option<BorrowedFd<'_>>, stop: &AtomicBool) -> std::io::Result<()> {
        while self.next < self.outputs.len() && !stop.load(Ordering::Relaxed) {
            let at = self.outputs[self.next].at;
            if self.paused_at.is_none() && self.clock.elapsed() >= at {
                self.show_next()?;
                continue;
            }
            let wait = match self.paused_at {
                Some(_) => TICK,
                None => at.saturating_sub(self.clock.elapsed()).min(TICK),
            };
            let key = match keys {
                Some(fd) => read_key(fd, wait),
                None => {
                    std::thread::sleep(wait);
                    None
                }
            };
            if key == Some(Key::Quit) {
                break;
            }
            if let Some(key) = key {
                self.on_key(key)?;
            }
        }
        Ok(())
    }

    fn on_key(&mut self, key: Key) -> std::io::Result<()> {
        match key {
            Key::Pause => self.toggle_pause(),
            Key::Next => {
                let shown = self.shown_ns;
                if let Some(&t) = self.marks.all.iter().find(|&&t| t > shown) {
                    self.seek(t)?;
                }
            }
            Key::Previous => {
                let shown = self.shown_ns;
                if let Some(&t) = self.marks.all.iter().rev().find(|&&t| t < shown) {
                    self.seek(t)?;
                }
            }
            Key::Step if self.paused_at.is_some() && self.next < self.outputs.len() => {
                self.show_next()?;
                self.moved_while_paused = true;
            }
            Key::Step | Key::Quit => {}
        }
        Ok(())
    }

    fn toggle_pause(&mut self) {
        match self.paused_at.take() {
            Some(_) if self.moved_while_paused => {
                self.moved_while_paused = false;
                self.restart_clock();
            }
            // Resuming shifts the clock by the pause, so timing stays relative.
            Some(p) => self.clock += p.elapsed(),
            None => self.paused_at = Some(Instant::now()),
        }
    }

    /// Draws the screen as it was at session time `target_ns`: every output before it.
    fn seek(&mut self, target_ns: u64) -> std::io::Result<()> {
        let to = self
            .outputs
            .partition_point(|t| t.event.elapsed_ns < target_ns);
        let from = if to < self.next {
            self.out.write_all(RESET)?;
            0
        } else {
            self.next
        };
        for t in &self.outputs[from..to] {
            self.out.write_all(&t.event.data)?;
        }
        self.out.flush()?;
        self.next = to;
        self.shown_ns = target_ns;
        if self.paused_at.is_some() {
            self.moved_while_paused = true;
        } else {
            self.restart_clock();
        }
        Ok(())
    }

    fn show_next(&mut self) -> std::io::Result<()> {
        let event: &Event = &self.outputs[self.next].event;
        self.out.write_all(&event.data)?;
        self.out.flush()?;
        self.shown_ns = self.shown_ns.max(event.elapsed_ns);
        self.next += 1;
        Ok(())
    }

    /// Times the next output from the last one shown, as if playback had reached it now.
    fn restart_clock(&mut self) {
        let played = self
            .next
            .checked_sub(1)
            .map_or(Duration::ZERO, |i| self.outputs[i].at);
        self.clock = Instant::now()
            .checked_sub(played)
            .unwrap_or_else(Instant::now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(ms: u64, text: &str) -> Event {
        Event {
            seq: ms,
            elapsed_ns: ms * 1_000_000,
            kind: EventKind::Output,
            data: text.as_bytes().to_vec(),
        }
    }

    fn player(marks: Vec<u64>) -> Player<Vec<u8>> {
        let outputs = timed(vec![
            out(0, "a"),
            out(100, "b"),
            out(200, "c"),
            out(300, "d"),
        ]);
        let marks = JumpPoints {
            commands: marks.clone(),
            all: marks,
        };
        Player::with_output(Vec::new(), outputs.collect(), marks)
    }

    fn ms(n: u64) -> u64 {
        n * 1_000_000
    }

    #[test]
    fn a_jump_forward_draws_what_came_before_the_moment() {
        let mut p = player(vec![]);
        p.seek(ms(150)).unwrap();
        assert_eq!(p.out, b"ab");
        assert_eq!(p.next, 2);
        p.seek(ms(250)).unwrap();
        assert_eq!(p.out, b"abc");
    }

    #[test]
    fn a_jump_back_resets_and_redraws_from_the_start() {
        let mut p = player(vec![]);
        p.seek(ms(350)).unwrap();
        p.seek(ms(150)).unwrap();
        assert_eq!(p.out, b"abcd\x1bcab");
        assert_eq!(p.shown_ns, ms(150));
    }

    #[test]
    fn next_and_previous_go_from_mark_to_mark() {
        let mut p = player(vec![ms(150), ms(250)]);
        p.on_key(Key::Next).unwrap();
        assert_eq!((p.shown_ns, p.next), (ms(150), 2));
        p.on_key(Key::Next).unwrap();
        assert_eq!((p.shown_ns, p.next), (ms(250), 3));
        p.on_key(Key::Next).unwrap();
        assert_eq!(p.shown_ns, ms(250), "no mark after the last");
        p.on_key(Key::Previous).unwrap();
        assert_eq!((p.shown_ns, p.next), (ms(150), 2));
        assert!(p.out.ends_with(b"\x1bcab"));
    }

    #[test]
    fn step_shows_one_output_only_while_paused() {
        let mut p = player(vec![]);
        p.on_key(Key::Step).unwrap();
        assert_eq!(p.next, 0, "playing: step does nothing");
        p.on_key(Key::Pause).unwrap();
        p.on_key(Key::Step).unwrap();
        p.on_key(Key::Step).unwrap();
        assert_eq!(p.out, b"ab");
        assert!(p.paused_at.is_some());
        p.on_key(Key::Pause).unwrap();
        assert!(p.paused_at.is_none() && !p.moved_while_paused);
    }

    #[test]
    fn keys_map_to_their_actions() {
        assert_eq!(key_of(b'n'), Some(Key::Next));
        assert_eq!(key_of(b'p'), Some(Key::Previous));
        assert_eq!(key_of(b'.'), Some(Key::Step));
        assert_eq!(key_of(0x03), Some(Key::Quit));
        assert_eq!(key_of(b'x'), None);
    }
}
