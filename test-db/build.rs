//! Keys the template database by the migrations' contents: an edited or added
//! migration names a new template, so no test ever clones a stale schema.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn main() {
    let migrations = Path::new("../migrations");
    // A directory: cargo reruns this when anything under it changes, and the
    // embedded migrations are rebuilt with it.
    println!("cargo:rerun-if-changed=../migrations");
    let mut files = Vec::new();
    collect(migrations, &mut files);
    files.sort();
    let mut hash = Sha256::new();
    for file in &files {
        let relative = file.strip_prefix(migrations).unwrap_or(file);
        hash.update(relative.to_string_lossy().as_bytes());
        hash.update([0]);
        match std::fs::read(file) {
            Ok(contents) => hash.update(&contents),
            Err(e) => panic!("reading {}: {e}", file.display()),
        }
        hash.update([0]);
    }
    let digest: String = hash
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("cargo:rustc-env=TEST_DB_MIGRATIONS_HASH={digest}");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
