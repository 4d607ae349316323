//! Feature: the test suites' layout: each test file names what it covers.
//!
//! Every `.rs` file under a `tests/` folder of the workspace opens with a
//! `//!` line saying which section of the HTTP contract it covers
//! (`Contract § Tokens: …`), which feature (`Feature: …`), or that it only
//! supports the others (`Test support: …`). The book's testing chapter and
//! a newcomer reading `head -1` rely on it.

use std::path::{Path, PathBuf};

/// The headings of the HTTP contract, less their parenthesised notes.
const SECTIONS: &[&str] = &[
    "Shape",
    "Tokens",
    "Delivery of the refresh token",
    "Auth server",
    "Resource API",
    "Internal listener",
    "Account lifecycle",
    "Administration and audit",
    "Standards endpoints",
    "Second factors and step-up",
    "Passkeys",
    "OpenID Connect provider",
    "Configuration",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `.rs` files under every `tests/` folder, build outputs aside.
fn test_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, in_tests: bool, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    walk(&path, in_tests || name == "tests", out);
                }
            } else if in_tests && name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&workspace(), false, &mut files);
    files
}

#[test]
fn every_test_file_opens_with_what_it_covers() {
    let files = test_files();
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("stack-tests/tests/e2e/test_files.rs")),
        "{files:?}"
    );
    let mut wrong = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let ok = match first.strip_prefix("//! Contract § ") {
            // Every `§ Section` of the line names a real section.
            Some(_) => first.split("§ ").skip(1).all(|rest| {
                SECTIONS.iter().any(|s| {
                    rest.starts_with(s) && !rest[s.len()..].starts_with(char::is_alphanumeric)
                })
            }),
            None => ["//! Feature: ", "//! Test support: "]
                .iter()
                .any(|p| first.starts_with(p)),
        };
        if !ok {
            let relative = file.strip_prefix(workspace()).unwrap().display();
            wrong.push(format!("{relative}: {first}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "test files that do not open with `//! Contract § <section>: …`, `//! Feature: …` \
         or `//! Test support: …`:\n{}",
        wrong.join("\n")
    );
}
