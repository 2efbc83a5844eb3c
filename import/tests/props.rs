//! Property tests: no input makes a decoder panic, and what we (or the project's
//! encoders) write decodes back to the same frames.

use import::{Format, asciicast, detect, script, sudo, tlog, ttyrec};
use proptest::prelude::*;
use schemas::EventKind;

/// Output frames: (microseconds after the previous one, bytes).
fn frames() -> impl Strategy<Value = Vec<(u64, Vec<u8>)>> {
    prop::collection::vec(
        (0u64..5_000_000, prop::collection::vec(any::<u8>(), 1..64)),
        0..20,
    )
}

/// Text frames: (microseconds after the previous one, text).
fn text_frames() -> impl Strategy<Value = Vec<(u64, String)>> {
    prop::collection::vec((0u64..5_000_000, "[ -~żółć🦀\r\n\x1b]{1,40}"), 0..20)
}

fn absolute<T: Clone>(frames: &[(u64, T)]) -> Vec<(u64, T)> {
    let mut at = 0;
    frames
        .iter()
        .map(|(d, x)| {
            at += d;
            (at, x.clone())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = asciicast::decode(&bytes);
        let _ = ttyrec::decode(&bytes);
        let _ = tlog::decode(&bytes);
        let _ = sudo::inflate("ttyout", &bytes);
        let _ = detect::sniff(&bytes);
        let _ = script::decode(script::Files { timing: &bytes, output: &bytes, input: Some(&bytes) });
        let mut files = sudo::Files::new();
        files.insert("timing".into(), bytes.clone());
        files.insert("ttyout".into(), bytes.clone());
        files.insert("log".into(), bytes.clone());
        files.insert("log.json".into(), bytes);
        let _ = sudo::decode(&files);
    }

    /// Lines that look like the formats, with random damage, reach every branch of the
    /// parsers rather than failing at the first byte.
    #[test]
    fn damaged_recordings_never_panic(
        lines in prop::collection::vec(
            prop::sample::select(vec![
                "{\"version\": 2, \"width\": 80, \"height\": 24}",
                "{\"version\": 3, \"term\": {\"cols\": 80, \"rows\": 24}}",
                "{\"version\": 1, \"width\": 80, \"height\": 24, \"stdout\": [[0.5, \"a\"], [1, \"b\"]]}",
                "[0.5, \"o\", \"abc\"]", "[1e308, \"r\", \"80x24\"]", "[-1, \"i\", \"x\"]", "[0, \"x\", \"3\"]",
                "# comment", "",
                "{\"ver\":\"2.3\",\"rec\":\"r\",\"id\":1,\"pos\":0,\"timing\":\"=80x24+5>3]1/1<1[0/2\",\"in_txt\":\"x\",\"in_bin\":[1,2],\"out_txt\":\"ab\u{fffd}c\",\"out_bin\":[300]}",
                "O 0.5 3", "I 0.1 1", "S 0.2 SIGWINCH ROWS=0 COLS=99999", "H 0 START_TIME 2026-13-40 99:99:99+99:99", "0.5 3",
                "4 0.5 3", "5 0.1 24 80", "7 0 SIGTSTP", "9 1 1",
            ]),
            0..12,
        ),
        flip in any::<(usize, u8)>(),
    ) {
        let mut bytes = lines.join("\n").into_bytes();
        if !bytes.is_empty() {
            let i = flip.0 % bytes.len();
            bytes[i] ^= flip.1;
        }
        let _ = asciicast::decode(&bytes);
        let _ = tlog::decode(&bytes);
        let ts = b"Script started on 2026-11-30 07:58:28+00:00 [COLUMNS=\"80\"]\nabcdefgh\nScript done on x\n";
        let _ = script::decode(script::Files { timing: &bytes, output: ts, input: None });
        let mut files = sudo::Files::new();
        files.insert("timing".into(), bytes.clone());
        files.insert("ttyout".into(), b"abcdefgh".to_vec());
        let _ = sudo::decode(&files);
    }

    #[test]
    fn ttyrec_round_trips(start in 631_152_000_000_000u64..4_000_000_000_000_000, fs in frames()) {
        prop_assume!(!fs.is_empty());
        let abs = absolute(&fs);
        let bytes = ttyrec::encode(start, &abs);
        prop_assert!(detect::sniff(&bytes) == detect::Sniffed::Recording(Format::Ttyrec));
        let rec = ttyrec::decode(&bytes).unwrap();
        let first = abs[0].0;
        prop_assert_eq!(rec.start_time_ns, Some((start + first) as i64 * 1000));
        let got: Vec<(u64, Vec<u8>)> = rec.frames.iter().map(|f| (f.elapsed_ns / 1000 + first, f.data.clone())).collect();
        prop_assert_eq!(got, abs);
    }

    #[test]
    fn asciicast_v2_from_our_encoder_round_trips(fs in text_frames(), cols in 1u16..500, rows in 1u16..200) {
        let mut enc = schemas::asciicast::Encoder::default();
        let mut text = enc.header(&schemas::asciicast::HeaderV2 { version: 2, width: cols, height: rows, ..Default::default() });
        let abs = absolute(&fs);
        for (us, t) in &abs {
            text += &enc.event(us * 1000, 'o', t.as_bytes()).unwrap();
        }
        let rec = asciicast::decode(text.as_bytes()).unwrap();
        prop_assert_eq!(rec.format, Format::AsciicastV2);
        prop_assert_eq!(rec.size, Some((cols, rows)));
        let got: Vec<(u64, String)> = rec.frames.iter().map(|f| (f.elapsed_ns / 1000, String::from_utf8(f.data.clone()).unwrap())).collect();
        prop_assert_eq!(got, abs);
    }

    #[test]
    fn script_classic_round_trips(fs in frames()) {
        let mut timing = String::new();
        let mut ts = b"Script started on 2026-11-30 07:58:28+00:00 [TERM=\"xterm\" COLUMNS=\"80\" LINES=\"24\"]\n".to_vec();
        for (d, data) in &fs {
            timing += &format!("{}.{:06} {}\n", d / 1_000_000, d % 1_000_000, data.len());
            ts.extend_from_slice(data);
        }
        ts.extend_from_slice(b"\nScript done on 2026-11-30 07:58:29+00:00 [COMMAND_EXIT_CODE=\"0\"]\n");
        let rec = script::decode(script::Files { timing: timing.as_bytes(), output: &ts, input: None }).unwrap();
        let got: Vec<(u64, Vec<u8>)> = rec.frames.iter().map(|f| (f.elapsed_ns / 1000, f.data.clone())).collect();
        prop_assert_eq!(got, absolute(&fs));
        prop_assert_eq!(rec.exit_status, Some(0));
    }

    #[test]
    fn tlog_round_trips(fs in prop::collection::vec((0u64..5000, "[ -~żółć🦀\r\n]{1,40}", any::<bool>()), 1..20)) {
        // One message per frame, text only, alternating directions as generated.
        let mut lines = String::new();
        let mut pos = 0u64;
        for (i, (delay, t, is_input)) in fs.iter().enumerate() {
            pos += delay;
            let n = t.chars().count();
            let (timing, input, output) = if *is_input { (format!("<{n}"), t.as_str(), "") } else { (format!(">{n}"), "", t.as_str()) };
            let msg = serde_json::json!({"ver": "2.3", "host": "h", "rec": "r", "user": "u", "term": "xterm", "session": 1,
                "id": i + 1, "pos": pos, "timing": timing, "in_txt": input, "in_bin": [], "out_txt": output, "out_bin": []});
            lines += &format!("{msg}\n");
        }
        let recs = tlog::decode(lines.as_bytes()).unwrap();
        prop_assert_eq!(recs.len(), 1);
        let mut pos = 0u64;
        let want: Vec<(u64, EventKind, Vec<u8>)> = fs.iter().map(|(d, t, i)| {
            pos += d;
            (pos * 1_000_000, if *i { EventKind::Input } else { EventKind::Output }, t.as_bytes().to_vec())
        }).collect();
        let got: Vec<(u64, EventKind, Vec<u8>)> = recs[0].frames.iter().map(|f| (f.elapsed_ns, f.kind, f.data.clone())).collect();
        prop_assert_eq!(got, want);
    }
}
