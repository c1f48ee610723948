//! The commit this binary is built from, for `jt_build_info{commit}`: `JT_BUILD_COMMIT` when set
//! (a build without the repository, e.g. in a container), else `git rev-parse --short HEAD`,
//! else `unknown`. Never fails the build: outside a git checkout the commit is just unknown.

use std::path::Path;
use std::process::Command;

fn main() {
    // Declaring what to watch also stops cargo from re-running this on every source change.
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=JT_BUILD_COMMIT");
    let commit = std::env::var("JT_BUILD_COMMIT")
        .ok()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=JT_BUILD_COMMIT={commit}");
}

/// The short hash of HEAD, and the files to watch so that a checkout or a commit rebuilds with
/// the new one.
fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short", "HEAD"])?;
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let watched = ["HEAD", "packed-refs"]
        .into_iter()
        .map(str::to_owned)
        .chain(branch);
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name])
            && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    Some(commit)
}

/// `git ARGS`' trimmed output, run in this package's directory; `None` when git is missing,
/// fails, or prints nothing.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(std::env::var_os("CARGO_MANIFEST_DIR")?)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}
