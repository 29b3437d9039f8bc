//! The docs stay true to the code, where a check can say so:
//!
//! * every crate and module root that declares public modules names each of
//!   them in its `//!` docs (a module list that names half the modules is a
//!   map that lies);
//! * every workspace package inherits the workspace's `rust-version`, so
//!   clippy's `incompatible_msrv` lint (run with `-D warnings` by
//!   `scripts/test`) refuses a standard library item newer than the version
//!   the workspace declares.
//!
//! Sizes the docs state are checked where they are stated (`Conn`, `TcpConn`,
//! `Entry`: tests in `dataplane::conntrack`).

use std::fs;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// Every `lib.rs` and `mod.rs` under the workspace's crates (not `target`).
fn module_roots(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name();
        if path.is_dir() {
            if name != "target" && name != ".git" && name != "fuzz" {
                module_roots(&path, out);
            }
        } else if name == "lib.rs" || name == "mod.rs" {
            out.push(path);
        }
    }
}

#[test]
fn module_docs_name_every_public_module() {
    let mut roots = Vec::new();
    module_roots(&workspace(), &mut roots);
    assert!(roots.len() > 10, "found the crates: {roots:?}");
    let mut missing = Vec::new();
    for root in roots {
        let text = fs::read_to_string(&root).unwrap();
        let docs: String = text
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        for line in text.lines() {
            let Some(name) = line
                .strip_prefix("pub mod ")
                .and_then(|r| r.strip_suffix(';'))
            else {
                continue;
            };
            if !docs.contains(&format!("`{name}`")) {
                missing.push(format!("{}: `{name}`", root.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "public modules the docs of their parent do not name:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_package_declares_the_workspace_rust_version() {
    let root = workspace();
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let members = manifest
        .split_once("members = [")
        .and_then(|(_, r)| r.split_once(']'))
        .map(|(m, _)| m)
        .expect("a members list");
    let mut missing = Vec::new();
    for member in members.split(',') {
        let member = member.trim().trim_matches('"');
        if member.is_empty() {
            continue;
        }
        let text = fs::read_to_string(root.join(member).join("Cargo.toml")).unwrap();
        if !text.contains("rust-version.workspace = true") {
            missing.push(member.to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "packages that do not inherit rust-version: {missing:?}"
    );
    assert!(
        manifest.contains("rust-version = \"1."),
        "the workspace declares one"
    );
}
