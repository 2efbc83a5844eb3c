//! Embeds every file under `assets/` (written by the browser side: the vendored
//! asciinema-player, app.js, app.css) into the binary: `$OUT_DIR/assets.rs` is a list of
//! `(name, bytes)` that `static_files` serves as `/static/{name}`.

use std::path::{Path, PathBuf};

fn main() {
    // Read when the script runs, not when it was compiled: cargo gives every checkout of
    // the workspace the same build-script binary (path packages are hashed relative to the
    // workspace), so a path compiled in would name whichever checkout built it first, and a
    // clone built after that checkout was gone embedded no assets at all.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("assets");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files = Vec::new();
    walk(&dir, &dir, &mut files);
    files.sort();
    let mut out = String::from("&[\n");
    for (name, path) in &files {
        out.push_str(&format!(
            "    ({name:?}, include_bytes!({:?}) as &[u8]),\n",
            path.display().to_string()
        ));
    }
    out.push_str("]\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("assets.rs");
    std::fs::write(dest, out).expect("write assets.rs");
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, files);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let name = rel.to_string_lossy().replace('\\', "/");
            if !name.starts_with('.') && !name.contains("/.") {
                files.push((name, path.clone()));
            }
        }
    }
}
