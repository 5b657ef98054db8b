//! Records the commit the binary is built from, for `zapgate --version`:
//! `GIT_COMMIT` is the short hash, or `unknown` outside a git checkout.

use std::{path::Path, process::Command};

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_owned())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    // HEAD moves when a branch is checked out (HEAD changes) or committed to
    // (the branch's ref, loose or packed, changes). `--git-path` resolves
    // each inside worktrees too. A path that does not exist is left out:
    // Cargo would rerun this script on every build.
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let watched = ["HEAD", "packed-refs"]
        .into_iter()
        .map(str::to_owned)
        .chain(branch)
        .filter_map(|name| git(&["rev-parse", "--git-path", &name]));
    for path in watched {
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!(
        "cargo:rustc-env=GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
}
