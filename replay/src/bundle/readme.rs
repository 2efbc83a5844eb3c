//! `README.txt`: what each member is and how to check the bundle, for a recipient who has
//! nothing of auditty but (perhaps) `replay`.

use super::facts::{Facts, rfc3339};
use super::names;

/// The README of the bundle of `f`.
pub fn readme(f: &Facts<'_>) -> Vec<u8> {
    let id = f.id;
    let esc = |s: &str| schemas::text::escape_controls(s);
    let who = match &f.start {
        Some(s) => format!(
            "user {} on host {}, command: {}",
            esc(&s.user),
            esc(&s.host),
            esc(&s.command_line())
        ),
        None => "no readable start row: who and where are unknown".to_string(),
    };
    let ended = match &f.end {
        Some(_) => format!(
            "ended {} ({} s later)",
            rfc3339(f.start_time_ns.saturating_add_unsigned(f.duration_ns)),
            f.duration_ns / 1_000_000_000
        ),
        None => "never ended (the recording stops without an end row)".to_string(),
    };
    let sealed = sealed_paragraph(f);
    let (contents, key) = content_lines(f);
    let text = format!(
        "auditty evidence bundle (format {version}) of session {id}\n\
         \n\
         The session: {who}; started {started}, {ended}.\n\
         {sealed}\n\
         \n\
         Every file here is either the session's stored rows (rows.jsonl), which the recording node\n\
         hash-chained and signed while recording, or derived from those rows by `replay export`.\n\
         So the bundle says nothing that its signed rows do not say, and a change to any byte of it\n\
         is found by checking it as below.\n\
         \n\
         Files\n\
         \x20 {readme:<24} this text\n\
         \x20 {manifest:<24} SHA-256 of every other file (`sha256sum -c` reads it)\n\
         \x20 {session:<24} the metadata, from the signed start and end rows: who, where, when, exit status\n\
         {contents}\
         \x20 {rows:<24} the stored rows, one JSON object per line: seq, seq_last, elapsed_ns, kind, data (base64)\n\
         {key}\
         \x20 {checkpoints:<24} the signed checkpoints (also in rows.jsonl), one per line with its seq\n\
         \x20 {keys:<24} the public key(s) that signed them, as trust-file lines\n\
         \x20 {chain:<24} the hash-chain head after the last row, and what the last checkpoint signed\n\
         \n\
         Check it with replay (offline: it reads only this file)\n\
         \x20 replay verify --bundle FILE.tar --trust KEYS\n\
         \n\
         KEYS is a trust file holding the recording node's public key, obtained from the node's\n\
         operator, not from this bundle (on the node: `auditty-agent node-key`). replay recomputes the\n\
         chain from rows.jsonl, checks each checkpoint's signature, says whether the signing key is\n\
         in KEYS, checks every file against the manifest, and derives every other file again from\n\
         the rows, comparing byte for byte. Exit status 0: intact and signed by a trusted key;\n\
         1: something changed or is not trusted (each problem is named with its file); 2: could\n\
         not check.\n\
         \n\
         Check it by hand\n\
         \x20 tar -xf FILE.tar && cd auditty-{id} && sha256sum -c {manifest}\n\
         \x20   shows that the files are the ones the manifest lists. Anyone can rewrite a manifest, so\n\
         \x20   this proves nothing alone; the signatures below do.\n\
         \x20 The chain (integrity/FORMAT.md in auditty's source): BLAKE3 hashes, integers as u64\n\
         \x20 little-endian. For each row of rows.jsonl in order, its unit is\n\
         \x20   H(\"auditty-event-v1\" | seq | elapsed_ns | kind byte | len(data) | data)\n\
         \x20 (kind bytes: start 0, input 1, output 2, resize 3, marker 4, end 5, checkpoint 6,\n\
         \x20 redacted 7), or H(\"auditty-sealed-v1\" | len(data) | data) for a sealed row. The chain\n\
         \x20 starts at H(\"auditty-chain-v1\" | the 16 bytes of the session id) and each row makes it\n\
         \x20 H(previous | unit). A checkpoint at seq N signs (ed25519, key in its `key`) the chain\n\
         \x20 after the rows below N: \"auditty-checkpoint-v2\\0\" | session id | from | through | g |\n\
         \x20 chain | H(tags). The `head` in {chain} is the chain after every row.\n",
        version = super::FORMAT_VERSION,
        started = rfc3339(f.start_time_ns),
        readme = names::README,
        manifest = names::MANIFEST,
        session = names::SESSION,
        rows = names::ROWS,
        checkpoints = names::CHECKPOINTS,
        keys = names::KEYS,
        chain = names::CHAIN,
    );
    text.into_bytes()
}

/// What the README says about sealing.
fn sealed_paragraph(f: &Facts<'_>) -> String {
    match (f.sealed, f.contents) {
        (false, _) => "It was recorded in the clear.".to_string(),
        (true, true) => format!(
            "It was SEALED (encrypted end to end for its auditors). The exporter could open it, so the\n\
             bundle holds its contents, and {} holds this one session's data key, with which the\n\
             verifier opens the sealed rows and derives the contents again.{}",
            names::DATA_KEY,
            if f.unopened.is_empty() {
                String::new()
            } else {
                format!(
                    "\n{} sealed chunk(s) did not open with it; session.json lists them.",
                    f.unopened.len()
                )
            }
        ),
        (true, false) => format!(
            "It was SEALED (encrypted end to end for its auditors), and the exporter had no key for it:\n\
             the bundle holds the sealed rows and their proof, but no asciicast or transcript. The rows\n\
             still verify (the chain runs over the sealed chunks as stored); reading them needs a key\n\
             of one of the recipients in {}.",
            names::SESSION
        ),
    }
}

/// The lines of the file list for the contents and the data key (empty when absent).
fn content_lines(f: &Facts<'_>) -> (String, String) {
    let contents = if f.contents {
        format!(
            "  {cast:<24} the session as asciicast v2: `asciinema play {cast}` replays it with its timing\n\
             \x20 {transcript:<24} what the screen showed, as plain text (rendered through a terminal emulator)\n",
            cast = names::CAST,
            transcript = names::TRANSCRIPT,
        )
    } else {
        String::new()
    };
    let key = if f.sealed && f.contents {
        format!(
            "  {:<24} the session's data key (XChaCha20-Poly1305, base64); it opens this session only\n",
            names::DATA_KEY
        )
    } else {
        String::new()
    };
    (contents, key)
}
