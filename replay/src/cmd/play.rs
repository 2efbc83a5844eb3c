//! `replay play`: the session in this terminal, with its original timing.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use schemas::EventKind;
use terminal::RawMode;
use terminal::fd::{ReadOutcome, read_within};

use crate::cli::PlayArgs;
use crate::open::{StoreArgs, open_session};
use crate::stream::{cap_idle, speed, timed};

/// How long to sleep between checks for keys and signals.
const TICK: Duration = Duration::from_millis(50);

enum Key {
    Pause,
    Quit,
}

/// Waits up to `timeout` for a key on `fd` (a terminal in raw mode).
fn read_key(fd: BorrowedFd<'_>, timeout: Duration) -> Option<Key> {
    let mut buf = [0u8; 64];
    let ReadOutcome::Data(n) = read_within(fd, &mut buf, timeout).ok()? else {
        return None;
    };
    buf[..n].iter().find_map(|b| match b {
        b' ' => Some(Key::Pause),
        b'q' | b'Q' | 0x03 => Some(Key::Quit),
        _ => None,
    })
}

/// Plays one session.
pub fn run(store_args: &StoreArgs, args: PlayArgs) -> anyhow::Result<()> {
    let (_, store) = store_args.open()?;
    let session = open_session(store.as_ref(), &args.session, &store_args.keys)?;

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
    let keys = raw.is_some();

    let events = timed(
        session
            .events
            .into_iter()
            .filter(|e| e.kind == EventKind::Output),
    );
    let events: Box<dyn Iterator<Item = _>> = match args.idle_limit {
        Some(limit) => Box::new(cap_idle(events, limit)),
        None => Box::new(events),
    };
    let mut out = std::io::stdout().lock();
    let mut clock = Instant::now();
    let mut paused_at: Option<Instant> = None;
    'events: for t in speed(events, args.speed) {
        loop {
            if stop.load(Ordering::Relaxed) {
                break 'events;
            }
            let due = paused_at.is_none() && clock.elapsed() >= t.at;
            if due {
                break;
            }
            let wait = match paused_at {
                Some(_) => TICK,
                None => t.at.saturating_sub(clock.elapsed()).min(TICK),
            };
            let key = if keys {
                read_key(stdin, wait)
            } else {
                std::thread::sleep(wait);
                None
            };
            match key {
                Some(Key::Quit) => break 'events,
                Some(Key::Pause) => match paused_at.take() {
                    // Resuming shifts the clock by the pause, so timing stays relative.
                    Some(p) => clock += p.elapsed(),
                    None => paused_at = Some(Instant::now()),
                },
                None => {}
            }
        }
        out.write_all(&t.event.data)?;
        out.flush()?;
    }
    drop(raw);
    Ok(())
}
