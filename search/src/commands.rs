//! Commands as the user saw them: the command lines of a session, read off the emulated
//! screen rather than pieced together from keystrokes.
//!
//! The session's output is fed to a `vt100` emulator; input events only say *when* to
//! look. The rule:
//!
//! - **When a command line is taken.** After an input event holding Enter (`\r` or `\n`),
//!   the line is read just before the first line feed that the output produces next: the
//!   output event is split at that byte. Readline redraws the accepted line (leaving a
//!   `(reverse-i-search)` display, say) before it prints that newline, so the screen then
//!   shows the line that runs, after backspaces, history recall, Ctrl-R and tab
//!   completion. If more input comes before any line feed, the line is read then.
//! - **What the line is.** The cursor's row joined with the rows it wraps from and into,
//!   from where the command started to the end.
//! - **Where the command starts (the prompt is left out).** With OSC 133 marks, the
//!   cursor position at the last `B` (command start) mark. Without them, the cursor
//!   position at the first keystroke typed after the previous command was taken: that is
//!   where the prompt ended. If that position is no longer on the line (the screen was
//!   cleared and redrawn), its column on the line's first row is used.
//! - **Continuations.** A line ending in `\` is joined with the next one (the `\` and the
//!   line break removed, as the shell does) and the command is dated by the last Enter.
//! - **Empty lines** give no command.
//! - **Full-screen programs.** While the alternate screen is active, Enter is not a shell
//!   command, with one exception: vi's shell escape. If the cursor's row reads `:!cmd`
//!   when Enter is typed, `cmd` is a command.
//! - **Exit status** comes from an OSC 133 `D;<status>` mark that follows the command
//!   (before another command is taken); without marks it is unknown. A `D` after an empty
//!   line is ignored, so a status is never attached to the wrong command.
//! - **Output** is the rendered text (escape sequences applied, not stripped) of the rows
//!   between the command's line and the next command's line (or the next `A`, prompt
//!   start, mark; or the end of the session), cut at [`OUTPUT_CAP`] bytes. Only rows the
//!   emulator still holds are kept: the screen and [`SCROLLBACK_ROWS`] rows above it, so
//!   the start of a very long output can be missing. Output drawn on the alternate screen
//!   is not part of it. At the end of the session, the row the cursor stands in after
//!   some text (usually the next prompt) is left out.
//!
//! Known limits: without marks, a line typed to a program that reads from the terminal
//! with echo on (`cat`, a REPL) looks like a command line and is reported as one; several
//! lines pasted in one input event give one command (the first line echoed). Nested
//! shells need nothing special: the rule looks at the screen, not at a prompt string.

use std::num::NonZeroU16;

use schemas::{Event, EventKind, SessionStart};

/// The most output text kept per command, in bytes.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// Rows kept above the screen while extracting, which bounds how far back a long
/// output can be read.
pub const SCROLLBACK_ROWS: usize = 4096;

/// One command line as it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// 0-based position among the session's commands.
    pub index: usize,
    /// Offset into the session of the Enter that ran it.
    pub elapsed_ns: u64,
    /// The command line, prompt left out, trimmed.
    pub line: String,
    /// What the command printed, rendered, at most [`OUTPUT_CAP`] bytes.
    pub output: String,
    /// The output was cut at [`OUTPUT_CAP`] (or started before the rows still held).
    pub output_truncated: bool,
    /// Exit status reported by the shell through OSC 133 `D`.
    pub exit_status: Option<i32>,
}

/// The commands of a session's events (sorted by seq). The terminal starts at
/// `start_size` (cols, rows) unless a `start` event in `events` says otherwise.
/// Never panics, whatever the events hold.
pub fn extract_commands(events: &[Event], start_size: (u16, u16)) -> Vec<Command> {
    extract(events, start_size).commands
}

/// What a session showed, for the index: its commands, and the output before the first
/// of them (a login banner; all of the output of a session that ran a program rather
/// than a shell, or in which nothing was typed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// As [`extract_commands`] gives them.
    pub commands: Vec<Command>,
    /// The rendered output before the first command, at most [`OUTPUT_CAP`] bytes.
    pub leading_output: String,
}

/// [`extract_commands`], and the output before the first command.
pub fn extract(events: &[Event], start_size: (u16, u16)) -> Extracted {
    let (cols, rows) = events
        .iter()
        .find(|e| e.kind == EventKind::Start)
        .and_then(|e| SessionStart::from_bytes(&e.data).ok())
        .filter(|s| s.cols > 0 && s.rows > 0)
        .map_or(start_size, |s| (s.cols, s.rows));
    let mut x = Extractor::new(cols, rows);
    for e in events {
        match e.kind {
            EventKind::Output => x.output(&e.data),
            EventKind::Input => x.input(e),
            EventKind::Resize => {
                if let Some((c, r)) = schemas::event::parse_size(&e.data) {
                    x.parser.set_size(dim(r), dim(c));
                }
            }
            _ => {}
        }
    }
    x.finish()
}

fn dim(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}

/// A place on the main screen; `row` counts every row since the session began, so it
/// stays put when the screen scrolls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    row: u64,
    col: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    PromptStart(Pos),
    CommandStart(Pos),
    CommandEnd(Option<i32>),
}

/// What the emulator reports back: OSC 133 marks with where the cursor was, and how
/// many main-screen rows fell off the scrollback (for [`Pos::row`]).
#[derive(Default)]
struct Observer {
    discarded: u64,
    marks: Vec<Mark>,
}

impl vt100::Callbacks for Observer {
    fn unhandled_osc(&mut self, screen: &mut vt100::Screen, params: &[&[u8]]) {
        let [b"133", kind, rest @ ..] = params else {
            return;
        };
        if screen.alternate_screen() {
            return;
        }
        let pos = cursor(screen, self.discarded);
        match *kind {
            b"A" => self.marks.push(Mark::PromptStart(pos)),
            b"B" => self.marks.push(Mark::CommandStart(pos)),
            b"D" => {
                let status = rest
                    .first()
                    .and_then(|s| std::str::from_utf8(s).ok())
                    .and_then(|s| s.trim().parse().ok());
                self.marks.push(Mark::CommandEnd(status));
            }
            _ => {}
        }
    }

    fn on_scroll(&mut self, _: vt100::capture::RowContents<'_>, alternate_screen: bool) {
        if !alternate_screen {
            self.discarded += 1;
        }
    }
}

/// The text of visible row `row` from column `col` on, trailing blanks removed. Not
/// `Screen::rows(..).nth(row)`, which formats every row above it first: that was a fifth
/// of the index build (bench/README.md).
fn row_text(screen: &vt100::Screen, row: u16, col: u16) -> String {
    let (_, cols) = screen.size();
    if col >= cols.get() {
        return String::new();
    }
    // A range of two rows takes the branch of `contents_between` that skips rows without
    // formatting them; the second row contributes nothing at width 0.
    let mut text = screen.contents_between(row, col, row.saturating_add(1), 0);
    text.truncate(text.trim_end().len());
    text
}

fn top_row(screen: &vt100::Screen, discarded: u64) -> u64 {
    discarded + screen.scrollback_len() as u64
}

fn cursor(screen: &vt100::Screen, discarded: u64) -> Pos {
    let (row, col) = screen.cursor_position();
    Pos {
        row: top_row(screen, discarded) + u64::from(row),
        col,
    }
}

struct Extractor {
    parser: vt100::Parser<Observer>,
    commands: Vec<Command>,
    /// Where the next command line starts, once known.
    start: Option<Pos>,
    /// The first keystroke from now on says where the prompt ended.
    want_start: bool,
    /// The column of the last known start, for lines whose start was not seen.
    last_start_col: u16,
    /// An Enter waiting for the shell's line feed.
    enter_at: Option<u64>,
    /// The text so far of a line continued with `\`.
    continued: Option<String>,
    /// The first row of the last command's output, until that output is read.
    output_from: Option<u64>,
    /// The command an OSC 133 `D` would report on.
    status_for: Option<usize>,
    /// The output before the first command, once it is closed.
    leading_output: String,
}

impl Extractor {
    fn new(cols: u16, rows: u16) -> Extractor {
        Extractor {
            parser: vt100::Parser::new_with_callbacks(
                dim(rows),
                dim(cols),
                SCROLLBACK_ROWS,
                Observer::default(),
            ),
            commands: Vec::new(),
            start: None,
            want_start: true,
            last_start_col: 0,
            enter_at: None,
            continued: None,
            // Output is collected from the first row on; until a command is pushed it is
            // the session's leading output.
            output_from: Some(0),
            status_for: None,
            leading_output: String::new(),
        }
    }

    fn input(&mut self, e: &Event) {
        if let Some(at) = self.enter_at {
            self.take_line(at);
        }
        let enter = e.data.iter().any(|&b| b == b'\r' || b == b'\n');
        let screen = self.parser.screen();
        if screen.alternate_screen() {
            if enter {
                self.vi_escape(e.elapsed_ns);
            }
            return;
        }
        if self.want_start {
            self.start = Some(cursor(screen, self.parser.callbacks().discarded));
            self.want_start = false;
        }
        if enter {
            self.enter_at = Some(e.elapsed_ns);
        }
    }

    fn output(&mut self, data: &[u8]) {
        let split = self
            .enter_at
            .and_then(|at| data.iter().position(|&b| b == b'\n').map(|i| (at, i)));
        match split {
            Some((at, i)) => {
                let (before, after) = data.split_at(i);
                self.process(before);
                self.take_line(at);
                self.process(after);
            }
            None => self.process(data),
        }
    }

    fn process(&mut self, bytes: &[u8]) {
        self.parser.process(bytes);
        let marks = std::mem::take(&mut self.parser.callbacks_mut().marks);
        for mark in marks {
            match mark {
                Mark::PromptStart(pos) => self.close_output(pos.row),
                Mark::CommandStart(pos) => {
                    self.start = Some(pos);
                    self.want_start = false;
                }
                Mark::CommandEnd(status) => {
                    if let Some(c) = self
                        .status_for
                        .take()
                        .and_then(|i| self.commands.get_mut(i))
                    {
                        c.exit_status = status;
                    }
                }
            }
        }
    }

    /// Reads the command line under the cursor, as Enter (typed at `at`) accepted it.
    fn take_line(&mut self, at: u64) {
        self.enter_at = None;
        self.status_for = None;
        let start = self.start.take();
        self.want_start = true;
        if self.parser.screen().alternate_screen() {
            return;
        }
        let (first_row, line) = self.cursor_line(start);
        self.close_output(first_row);
        let line = line.trim_end();
        if let Some(head) = line.strip_suffix('\\') {
            let mut joined = self.continued.take().unwrap_or_default();
            joined.push_str(head);
            self.continued = Some(joined);
            return;
        }
        let mut full = self.continued.take().unwrap_or_default();
        full.push_str(line);
        let next_row = cursor(self.parser.screen(), self.parser.callbacks().discarded).row + 1;
        self.push(at, full.trim(), Some(next_row));
    }

    fn push(&mut self, at: u64, line: &str, output_from: Option<u64>) {
        if line.is_empty() {
            return;
        }
        self.status_for = Some(self.commands.len());
        self.output_from = output_from;
        self.commands.push(Command {
            index: self.commands.len(),
            elapsed_ns: at,
            line: line.to_string(),
            output: String::new(),
            output_truncated: false,
            exit_status: None,
        });
    }

    /// vi's `:!cmd`, read from the cursor's row of the alternate screen.
    fn vi_escape(&mut self, at: u64) {
        let screen = self.parser.screen();
        let (row, _) = screen.cursor_position();
        let text = row_text(screen, row, 0);
        if let Some(cmd) = text.trim().strip_prefix(":!") {
            let cmd = cmd.trim().to_string();
            self.close_output(u64::MAX);
            self.push(at, &cmd, None);
            self.want_start = true;
        }
    }

    /// The text of the cursor's logical line (its row and the rows wrapped into it) from
    /// `start`, and the absolute row where that line begins.
    fn cursor_line(&mut self, start: Option<Pos>) -> (u64, String) {
        let discarded = self.parser.callbacks().discarded;
        let screen = self.parser.screen();
        let (rows, cols) = screen.size();
        let (row, _) = screen.cursor_position();
        let mut first = row;
        while first > 0 && screen.row_wrapped(first - 1) {
            first -= 1;
        }
        let mut last = row;
        while last + 1 < rows.get() && screen.row_wrapped(last) {
            last += 1;
        }
        let top = top_row(screen, discarded);
        let (from_row, from_col) = match start {
            Some(p) if p.row >= top + u64::from(first) && p.row <= top + u64::from(last) => {
                (u16::try_from(p.row - top).unwrap_or(first), p.col)
            }
            Some(p) => (first, p.col),
            None => (first, self.last_start_col),
        };
        self.last_start_col = from_col;
        let text = match (from_col >= cols.get(), from_row.saturating_add(1)) {
            (true, next) if next == last => row_text(screen, last, 0),
            (true, next) => screen.contents_between(next, 0, last, cols.get()),
            (false, _) if from_row == last => row_text(screen, last, from_col),
            (false, _) => screen.contents_between(from_row, from_col, last, cols.get()),
        };
        (top + u64::from(first), text)
    }

    /// The last command's output ends before absolute row `end`.
    fn close_output(&mut self, end: u64) {
        let Some(from) = self.output_from.take() else {
            return;
        };
        if self.parser.screen().alternate_screen() {
            return;
        }
        let (text, truncated) = self.rows_text(from, end);
        match self.commands.last_mut() {
            Some(c) => {
                c.output = text;
                c.output_truncated = truncated;
            }
            None => self.leading_output = text,
        }
    }

    /// The text of absolute rows `from..end` still held, trailing blank rows removed.
    fn rows_text(&mut self, from: u64, end: u64) -> (String, bool) {
        let discarded = self.parser.callbacks().discarded;
        let top = top_row(self.parser.screen(), discarded);
        let (rows, _) = self.parser.screen().size();
        let end = end.min(top + u64::from(rows.get()));
        let mut truncated = from < discarded;
        let mut at = from.max(discarded);
        let mut lines: Vec<String> = Vec::new();
        let mut bytes = 0usize;
        while at < end && bytes <= OUTPUT_CAP {
            let offset = usize::try_from(top.saturating_sub(at)).unwrap_or(usize::MAX);
            self.parser.screen_mut().set_scrollback(offset);
            let skip = if offset == 0 {
                usize::try_from(at - top).unwrap_or(usize::MAX)
            } else {
                0
            };
            let want = usize::try_from(end - at).unwrap_or(usize::MAX);
            let visible = if offset == 0 {
                usize::from(rows.get())
            } else {
                offset.min(usize::from(rows.get()))
            };
            let screen = self.parser.screen();
            let batch: Vec<String> = (skip..visible.min(skip.saturating_add(want)))
                .filter_map(|r| u16::try_from(r).ok())
                .map(|r| row_text(screen, r, 0))
                .collect();
            if batch.is_empty() {
                break;
            }
            at += batch.len() as u64;
            bytes += batch.iter().map(|l| l.len() + 1).sum::<usize>();
            lines.extend(batch);
        }
        self.parser.screen_mut().set_scrollback(0);
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let mut text = lines.join("\n");
        if text.len() > OUTPUT_CAP {
            let mut cut = OUTPUT_CAP;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            truncated = true;
        }
        (text, truncated)
    }

    fn finish(mut self) -> Extracted {
        if let Some(at) = self.enter_at {
            self.take_line(at);
        }
        let screen = self.parser.screen();
        if !screen.alternate_screen() {
            // A row the cursor stands in after some text is unfinished: usually the next
            // prompt, which is not output.
            let at = cursor(screen, self.parser.callbacks().discarded);
            self.close_output(if at.col > 0 { at.row } else { at.row + 1 });
        }
        Extracted {
            commands: self.commands,
            leading_output: self.leading_output,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session written as a script: what the user typed and what bash echoed.
    #[derive(Default)]
    struct Script {
        events: Vec<Event>,
    }

    impl Script {
        fn push(&mut self, kind: EventKind, data: &[u8]) -> &mut Self {
            let seq = self.events.len() as u64;
            self.events.push(Event {
                seq,
                elapsed_ns: seq * 1_000,
                kind,
                data: data.to_vec(),
            });
            self
        }
        fn out(&mut self, data: &[u8]) -> &mut Self {
            self.push(EventKind::Output, data)
        }
        /// Types `keys`, echoed as `echo` by the shell.
        fn key(&mut self, keys: &[u8], echo: &[u8]) -> &mut Self {
            self.push(EventKind::Input, keys).out(echo)
        }
        /// Types text that the shell echoes as it is.
        fn typed(&mut self, text: &str) -> &mut Self {
            self.key(text.as_bytes(), text.as_bytes())
        }
        /// Enter, then what the shell prints up to its next prompt.
        fn enter(&mut self, after: &[u8]) -> &mut Self {
            self.push(EventKind::Input, b"\r").out(after)
        }
        fn commands(&self, cols: u16) -> Vec<Command> {
            extract_commands(&self.events, (cols, 24))
        }
        fn lines(&self, cols: u16) -> Vec<String> {
            self.commands(cols).into_iter().map(|c| c.line).collect()
        }
    }

    #[test]
    fn output_before_the_first_command_is_kept_apart() {
        let mut s = Script::default();
        s.out(b"Welcome to db-7\r\nLast login: never\r\n$ ")
            .typed("id");
        s.enter(b"\r\nuid=0(root)\r\n$ ");
        let x = extract(&s.events, (80, 24));
        assert_eq!(x.leading_output, "Welcome to db-7\nLast login: never");
        assert_eq!(x.commands.len(), 1);
        assert_eq!(x.commands[0].output, "uid=0(root)");

        // A session that ran a program, nothing typed: all of its output.
        let mut s = Script::default();
        s.out(b"\x1b[1mbuild\x1b[0m started\r\n")
            .out(b"3 warnings\r\n");
        let x = extract(&s.events, (80, 24));
        assert!(x.commands.is_empty());
        assert_eq!(x.leading_output, "build started\n3 warnings");
    }

    #[test]
    fn backspaces_are_applied() {
        let mut s = Script::default();
        s.out(b"$ ").typed("ls -lxy");
        s.key(b"\x7f", b"\x08\x1b[K")
            .key(b"\x7f", b"\x08\x1b[K")
            .typed("a");
        s.enter(b"\r\ntotal 0\r\n$ ");
        let cmds = s.commands(80);
        assert_eq!(cmds.len(), 1, "{cmds:?}");
        assert_eq!(cmds[0].line, "ls -la");
        assert_eq!(cmds[0].index, 0);
        assert_eq!(cmds[0].output, "total 0");
        assert_eq!(cmds[0].exit_status, None);
        // The Enter is the tenth event (seq 9).
        assert_eq!(cmds[0].elapsed_ns, 9_000);
    }

    #[test]
    fn history_recall_gives_the_line_that_ran() {
        let mut s = Script::default();
        s.out(b"$ ").typed("echo first-unique");
        s.enter(b"\r\nfirst-unique\r\n$ ");
        s.key(b"\x1b[A", b"echo first-unique");
        s.key(b"\x7f", b"\x08\x1b[K").typed("X");
        s.enter(b"\r\nfirst-uniquX\r\n$ ");
        assert_eq!(s.lines(80), ["echo first-unique", "echo first-uniquX"]);
        assert_eq!(s.commands(80)[1].output, "first-uniquX");
    }

    #[test]
    fn reverse_search_gives_the_accepted_line_not_the_search_display() {
        let mut s = Script::default();
        s.out(b"$ ").typed("echo first-unique");
        s.enter(b"\r\nfirst-unique\r\n$ ");
        s.key(b"\x12", b"\r(reverse-i-search)`': ");
        s.key(b"fir", b"\x08\x08\x08fir': echo first-unique");
        // readline puts the prompt and the accepted line back, then the newline.
        s.enter(b"\r\x1b[K$ echo first-unique\r\nfirst-unique\r\n$ ");
        assert_eq!(s.lines(80), ["echo first-unique", "echo first-unique"]);
    }

    #[test]
    fn a_wrapped_line_is_one_command() {
        let mut s = Script::default();
        let long = format!("echo {}", "x".repeat(40));
        s.out(b"$ ").typed(&long);
        s.enter(b"\r\nxx\r\n$ ");
        assert_eq!(s.lines(20), [long]);
    }

    #[test]
    fn tab_completion_gives_the_completed_line() {
        let mut s = Script::default();
        s.out(b"$ ").typed("cat /tmp/d/uni");
        s.key(b"\t", b"que-long-name.txt ");
        s.enter(b"\r\nhello\r\n$ ");
        assert_eq!(s.lines(80), ["cat /tmp/d/unique-long-name.txt"]);
    }

    #[test]
    fn osc_133_marks_give_the_start_and_the_exit_status() {
        let prompt = b"\x1b]133;A\x07$ \x1b]133;B\x07";
        let mut s = Script::default();
        s.out(b"\x1b]133;D;0\x07").out(prompt).typed("false");
        s.enter(b"\r\n\x1b]133;C\x07");
        s.out(b"\x1b]133;D;1\x07").out(prompt);
        // An empty line: bash reports the last status again, which must not stick.
        s.enter(b"\r\n\x1b]133;D;1\x07").out(prompt);
        s.typed("echo ok")
            .enter(b"\r\nok\r\n\x1b]133;D;0\x07")
            .out(prompt);
        s.typed("sleep 9").enter(b"\r\n");
        let cmds = s.commands(80);
        let got: Vec<_> = cmds
            .iter()
            .map(|c| (c.line.as_str(), c.exit_status))
            .collect();
        assert_eq!(
            got,
            [("false", Some(1)), ("echo ok", Some(0)), ("sleep 9", None)]
        );
        assert_eq!(cmds[1].output, "ok");
    }

    #[test]
    fn a_continued_line_is_joined() {
        let mut s = Script::default();
        s.out(b"$ ").typed("echo a \\");
        s.enter(b"\r\n> ").typed("b");
        s.enter(b"\r\na b\r\n$ ");
        let cmds = s.commands(80);
        assert_eq!(cmds.len(), 1, "{cmds:?}");
        assert_eq!(cmds[0].line, "echo a b");
    }

    #[test]
    fn empty_lines_are_not_commands() {
        let mut s = Script::default();
        s.out(b"$ ").enter(b"\r\n$ ").enter(b"\r\n$ ").typed("  ");
        s.enter(b"\r\n$ ");
        assert!(s.commands(80).is_empty());
    }

    #[test]
    fn full_screen_input_is_not_a_command_but_vi_shell_escapes_are() {
        let mut s = Script::default();
        s.out(b"$ ").typed("vi");
        s.enter(b"\r\n\x1b[?1049h\x1b[H\x1b[2J~\r\n~\x1b[H");
        s.key(b"ihello", b"hello")
            .key(b"\r", b"\r\n")
            .key(b"\x1b", b"");
        s.key(b":!echo from-vi", b"\x1b[24;1H:!echo from-vi");
        s.key(
            b"\r",
            b"\x1b[?1049l\r\nfrom-vi\r\n\r\nPress ENTER to continue",
        );
        s.key(b"\r", b"\x1b[?1049h\x1b[H~");
        s.key(b":q!\r", b"\x1b[24;1H:q!\x1b[?1049l\r\n");
        s.out(b"$ ").typed("echo after");
        s.enter(b"\r\nafter\r\n$ ");
        assert_eq!(s.lines(80), ["vi", "echo from-vi", "echo after"]);
    }

    #[test]
    fn a_different_prompt_in_a_nested_shell_is_left_out_too() {
        let mut s = Script::default();
        s.out(b"$ ").typed("bash");
        s.enter(b"\r\nbash-5.2# ").typed("echo nested-cmd");
        s.enter(b"\r\nnested-cmd\r\nbash-5.2# ").typed("exit");
        s.enter(b"\r\nexit\r\n$ ");
        assert_eq!(s.lines(80), ["bash", "echo nested-cmd", "exit"]);
    }

    #[test]
    fn long_output_is_capped() {
        let mut s = Script::default();
        s.out(b"$ ").typed("yes");
        s.enter(b"\r\n");
        let chunk = "y\r\n".repeat(10_000);
        for _ in 0..4 {
            s.out(chunk.as_bytes());
        }
        s.key(b"\x03", b"^C\r\n$ ");
        let cmds = s.commands(80);
        assert_eq!(cmds.len(), 1);
        assert!(cmds[0].output_truncated);
        assert!(cmds[0].output.len() <= OUTPUT_CAP);
    }

    #[test]
    fn the_start_event_sets_the_size() {
        let start = SessionStart {
            cols: 20,
            rows: 5,
            ..SessionStart::default()
        };
        let mut s = Script::default();
        s.push(EventKind::Start, &start.to_bytes());
        let long = format!("echo {}", "y".repeat(30));
        s.out(b"$ ").typed(&long);
        s.enter(b"\r\n$ ");
        // At 80 columns the line would not wrap: the start event's 20 make it.
        assert_eq!(extract_commands(&s.events, (80, 24))[0].line, long);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_events(
            events in proptest::collection::vec(
                (0u8..8, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)),
                0..64,
            ),
            cols in 0u16..300,
            rows in 0u16..100,
        ) {
            let events: Vec<Event> = events
                .into_iter()
                .enumerate()
                .map(|(i, (k, data))| Event {
                    seq: i as u64,
                    elapsed_ns: i as u64,
                    kind: match k {
                        0 | 1 => EventKind::Input,
                        2 | 3 => EventKind::Output,
                        4 => EventKind::Resize,
                        5 => EventKind::Start,
                        6 => EventKind::Marker,
                        _ => EventKind::Redacted,
                    },
                    data,
                })
                .collect();
            let _ = extract_commands(&events, (cols, rows));
        }

        #[test]
        fn never_panics_on_shell_like_bytes(
            pieces in proptest::collection::vec(
                (proptest::prelude::any::<bool>(), proptest::sample::select(vec![
                    &b"\r"[..], b"\n", b"\x1b]133;A\x07", b"\x1b]133;B\x07", b"\x1b]133;D;7\x07",
                    b"\x1b]133;D;x\x07", b"\x1b[?1049h", b"\x1b[?1049l", b"\x08\x1b[K", b"abc\\",
                    b":!ls", b"\x1b[2J", b"\x1b[H", b"\x1b[5;80H", b"\xff\xfe", b"xxxxxxxxxxxxxxxxxxx",
                ])),
                0..200,
            ),
            cols in 1u16..30,
        ) {
            let events: Vec<Event> = pieces
                .into_iter()
                .enumerate()
                .map(|(i, (input, data))| Event {
                    seq: i as u64,
                    elapsed_ns: i as u64,
                    kind: if input { EventKind::Input } else { EventKind::Output },
                    data: data.to_vec(),
                })
                .collect();
            let _ = extract_commands(&events, (cols, 3));
        }
    }
}
