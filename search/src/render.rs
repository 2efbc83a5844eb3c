//! A terminal emulator fed with a session's events.

use std::num::NonZeroU16;

use schemas::{Event, EventKind};

fn dim(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}

/// Rows kept above the screen, for transcripts.
const SCROLLBACK_ROWS: usize = 100_000;

/// The emulated terminal of a session.
pub struct Screen {
    parser: vt100::Parser,
}

impl Screen {
    /// A blank terminal of `cols` x `rows`.
    pub fn new(cols: u16, rows: u16) -> Screen {
        Screen {
            parser: vt100::Parser::new(dim(rows), dim(cols), SCROLLBACK_ROWS),
        }
    }

    /// Applies one event: output is drawn, resizes resize, the rest is ignored.
    pub fn apply(&mut self, event: &Event) {
        match event.kind {
            EventKind::Output => self.parser.process(&event.data),
            EventKind::Resize => {
                if let Some((cols, rows)) = schemas::event::parse_size(&event.data) {
                    self.resize(cols, rows);
                }
            }
            _ => {}
        }
    }

    /// Draws raw terminal output.
    pub fn process(&mut self, bytes: &[u8]) {
        self.parser.process(bytes);
    }

    /// Changes the size.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.parser.set_size(dim(rows), dim(cols));
    }

    /// The visible screen, one string per row, trailing spaces removed.
    pub fn rows(&self) -> Vec<String> {
        let screen = self.parser.screen();
        let (_, cols) = screen.size();
        screen
            .rows(0, cols.get())
            .map(|r| r.trim_end().to_string())
            .collect()
    }

    /// The visible screen as text, trailing blank rows removed.
    pub fn text(&self) -> String {
        let mut rows = self.rows();
        while rows.last().is_some_and(|r| r.is_empty()) {
            rows.pop();
        }
        rows.join("\n")
    }

    /// Everything that scrolled off the top followed by the screen: the session as the
    /// user read it. Full-screen programs (alternate screen) leave no scrollback.
    pub fn transcript(&mut self) -> String {
        let (rows, cols) = self.parser.screen().size();
        let (rows, cols) = (usize::from(rows.get()), cols.get());
        let depth = self.parser.screen().scrollback_len();
        let mut lines: Vec<String> = Vec::with_capacity(depth + rows);
        // Walk the scrollback a screenful at a time, oldest first; at offset `o` the top
        // visible row is scrollback line `depth - o`.
        let mut offset = depth;
        while offset > 0 {
            self.parser.screen_mut().set_scrollback(offset);
            let take = offset.min(rows);
            lines.extend(
                self.parser
                    .screen()
                    .rows(0, cols)
                    .take(take)
                    .map(|r| r.trim_end().to_string()),
            );
            offset -= take;
        }
        self.parser.screen_mut().set_scrollback(0);
        lines.extend(self.rows());
        while lines.last().is_some_and(|r| r.is_empty()) {
            lines.pop();
        }
        let mut out = lines.join("\n");
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(data: &[u8]) -> Event {
        Event {
            seq: 0,
            elapsed_ns: 0,
            kind: EventKind::Output,
            data: data.to_vec(),
        }
    }

    #[test]
    fn renders_what_the_user_saw_after_editing() {
        let mut s = Screen::new(20, 3);
        s.apply(&out(b"$ lx\x08s -l\r\n"));
        assert_eq!(s.rows()[0], "$ ls -l");
    }

    #[test]
    fn transcript_keeps_scrolled_lines_in_order() {
        let mut s = Screen::new(10, 3);
        for i in 0..10 {
            s.apply(&out(format!("line{i}\r\n").as_bytes()));
        }
        let t = s.transcript();
        let expected: String = (0..10).map(|i| format!("line{i}\n")).collect();
        assert_eq!(t, expected);
    }

    #[test]
    fn resize_events_resize() {
        let mut s = Screen::new(10, 3);
        s.apply(&Event {
            seq: 1,
            elapsed_ns: 0,
            kind: EventKind::Resize,
            data: b"30x5".to_vec(),
        });
        assert_eq!(s.rows().len(), 5);
    }
}
