//! Where the agent works: the git remote and branch of the hook's working directory (the
//! payload's `cwd`, else its first workspace root), sent as the OpenTelemetry VCS resource
//! attributes `vcs.repository.url.full` and `vcs.ref.head.name`, so Antenna can group spend by
//! repository and branch. Runs after Cursor has its answer; no git, no repository: nothing.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Map, Value};

/// The VCS attributes of the payload's directory, if it is in a git work tree.
pub fn workplace(payload: &Map<String, Value>) -> Vec<(String, String)> {
    let dir = payload
        .get("cwd")
        .and_then(Value::as_str)
        .or_else(|| payload.get("workspace_roots").and_then(Value::as_array)?.first()?.as_str())
        .map(Path::new)
        .filter(|d| d.is_absolute() && d.is_dir());
    let Some(dir) = dir else { return Vec::new() };
    let mut out = Vec::new();
    if let Some(url) = git(dir, &["remote", "get-url", "origin"]) {
        out.push(("vcs.repository.url.full".to_owned(), without_credentials(&url)));
    }
    // The branch checked out (none on a detached HEAD).
    if let Some(branch) = git(dir, &["symbolic-ref", "--short", "-q", "HEAD"]) {
        out.push(("vcs.ref.head.name".to_owned(), branch));
    }
    out
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// A remote URL without the user name and password some clones keep in it
/// (`https://user:token@host/org/repo` -> `https://host/org/repo`): a token never leaves the
/// machine in telemetry.
pub fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_leave_in_a_remote_url() {
        assert_eq!(
            without_credentials("https://user:ghp_secret@github.com/org/repo.git"),
            "https://github.com/org/repo.git"
        );
        assert_eq!(without_credentials("https://github.com/org/repo"), "https://github.com/org/repo");
        assert_eq!(without_credentials("git@github.com:org/repo.git"), "git@github.com:org/repo.git");
    }

    #[test]
    fn a_git_work_tree_gives_its_remote_and_branch_anything_else_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let run = |args: &[&str]| {
            let ok =
                Command::new("git").arg("-C").arg(dir.path()).args(args).output().is_ok_and(|o| o.status.success());
            assert!(ok, "git {args:?}");
        };
        run(&["init", "-q", "-b", "feature/x"]);
        run(&["remote", "add", "origin", "https://bot:tok@git.example.com/org/app.git"]);
        let mut payload = Map::new();
        payload.insert("cwd".into(), Value::String(dir.path().display().to_string()));
        assert_eq!(
            workplace(&payload),
            vec![
                ("vcs.repository.url.full".to_owned(), "https://git.example.com/org/app.git".to_owned()),
                ("vcs.ref.head.name".to_owned(), "feature/x".to_owned()),
            ]
        );
        payload.insert("cwd".into(), Value::String("/no/such/dir".into()));
        assert!(workplace(&payload).is_empty());
    }
}
