//! `GitSource` over real repositories made with the `git` command line in
//! a temporary directory: reads and listings at a branch, a tag and a
//! commit id, subdirectory scoping, a bare clone, the commits a watch
//! reports, and what is refused.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use troupe_sources::{Change, GitSource, Source, SourceError, Watch};

/// How often the sources under test check their reference.
const POLL: Duration = Duration::from_millis(50);
/// A loose bound for a change to be reported.
const WAIT: Duration = Duration::from_secs(10);

/// Runs `git ARGS` in `dir` with a fixed identity and no user or system
/// configuration, so it behaves the same on any machine; returns stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Troupe Test",
            "-c",
            "user.email=test@troupe.invalid",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgSign=false",
            "-c",
            "tag.gpgSign=false",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Troupe Test")
        .env("GIT_AUTHOR_EMAIL", "test@troupe.invalid")
        .env("GIT_COMMITTER_NAME", "Troupe Test")
        .env("GIT_COMMITTER_EMAIL", "test@troupe.invalid")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("runs git (installed at /usr/local/bin/git)");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// A work tree with a repository, in a temporary directory.
struct Repo {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Repo {
    fn init() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("work");
        std::fs::create_dir(&path).expect("mkdir");
        git(&path, &["init", "-q"]);
        Repo { _dir: dir, path }
    }

    /// Writes `files` (path, content) into the work tree.
    fn write(&self, files: &[(&str, &str)]) {
        for (name, content) in files {
            let path = self.path.join(name);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(path, content).expect("writes");
        }
    }

    /// Stages everything (removals too), commits and returns the commit id.
    fn commit(&self, message: &str) -> String {
        git(&self.path, &["add", "-A"]);
        git(&self.path, &["commit", "-q", "-m", message]);
        git(&self.path, &["rev-parse", "HEAD"])
    }

    fn git(&self, args: &[&str]) -> String {
        git(&self.path, args)
    }
}

/// A repository with two commits on `main`; the first is tagged `v1`
/// (annotated) and `light` (lightweight). Returns it with the first
/// commit's id.
fn two_commits() -> (Repo, String) {
    let repo = Repo::init();
    repo.write(&[
        ("README.md", "not a script"),
        ("scripts/main.lua", "return 'main v1'"),
        ("scripts/lib/util.lua", "return 'util'"),
        ("scripts/lib/old.lua", "return 'old'"),
    ]);
    let first = repo.commit("first");
    repo.git(&["tag", "-a", "v1", "-m", "version 1"]);
    repo.git(&["tag", "light"]);
    repo.write(&[("scripts/main.lua", "return 'main v2'")]);
    repo.commit("second");
    (repo, first)
}

fn text(src: &dyn Source, key: &str) -> String {
    let script = src.get(key).unwrap_or_else(|e| panic!("{key}: {e}"));
    String::from_utf8(script.code.to_vec()).expect("utf-8")
}

fn version(src: &dyn Source, key: &str) -> u64 {
    src.get(key)
        .unwrap_or_else(|e| panic!("{key}: {e}"))
        .version
}

fn updated(key: &str) -> Change {
    Change::Updated { key: key.into() }
}

fn removed(key: &str) -> Change {
    Change::Removed { key: key.into() }
}

/// Collects changes until `want` have all been seen ([`WAIT`] at most).
fn wait_for(watch: &Watch, want: &[Change]) -> BTreeSet<Change> {
    let want: BTreeSet<Change> = want.iter().cloned().collect();
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while !want.is_subset(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match watch.recv_timeout(left) {
            Some(change) => {
                seen.insert(change);
            }
            None => panic!("saw {seen:?}, still waiting for {want:?}"),
        }
    }
    seen
}

fn open(path: &Path, reference: &str, subdir: &str) -> GitSource {
    GitSource::open(path, reference, subdir)
        .unwrap_or_else(|e| panic!("opens {reference}: {e}"))
        .poll_interval(POLL)
}

#[test]
fn reads_and_lists_at_a_branch_a_tag_and_a_commit_id() {
    let (repo, first) = two_commits();
    let branch = open(&repo.path, "main", "scripts");
    assert_eq!(text(&branch, "main.lua"), "return 'main v2'");
    assert_eq!(text(&branch, "lib/util.lua"), "return 'util'");
    assert_eq!(
        branch.list("").unwrap(),
        vec!["lib/old.lua", "lib/util.lua", "main.lua"]
    );
    assert_eq!(
        branch.list("lib/").unwrap(),
        vec!["lib/old.lua", "lib/util.lua"]
    );
    assert!(branch.list("nothing/").unwrap().is_empty());
    assert_eq!(branch.commit_id(), repo.git(&["rev-parse", "main"]));

    let short = &first[..8];
    for reference in ["v1", "light", first.as_str(), short, "refs/tags/v1"] {
        let at = open(&repo.path, reference, "scripts");
        assert_eq!(text(&at, "main.lua"), "return 'main v1'", "at {reference}");
        assert_eq!(
            at.list("").unwrap(),
            vec!["lib/old.lua", "lib/util.lua", "main.lua"]
        );
        assert_eq!(at.commit_id(), first, "{reference} names the first commit");
        // Equal content, equal version; changed content, another.
        assert_eq!(
            version(&at, "lib/util.lua"),
            version(&branch, "lib/util.lua")
        );
        assert_ne!(version(&at, "main.lua"), version(&branch, "main.lua"));
    }
    assert_eq!(
        branch.name(),
        format!("git:{}@main/scripts", repo.path.display())
    );
}

#[test]
fn the_subdirectory_scopes_the_keys() {
    let (repo, _) = two_commits();
    let root = open(&repo.path, "main", "");
    assert_eq!(
        root.list("").unwrap(),
        vec![
            "README.md",
            "scripts/lib/old.lua",
            "scripts/lib/util.lua",
            "scripts/main.lua"
        ]
    );
    assert_eq!(text(&root, "scripts/lib/util.lua"), "return 'util'");
    assert_eq!(root.name(), format!("git:{}@main", repo.path.display()));

    let lib = open(&repo.path, "main", "/scripts/lib/");
    assert_eq!(lib.list("").unwrap(), vec!["old.lua", "util.lua"]);
    assert_eq!(text(&lib, "util.lua"), "return 'util'");

    let scripts = open(&repo.path, "main", "scripts");
    assert!(matches!(
        scripts.get("README.md"),
        Err(SourceError::NotFound { .. })
    ));
    assert!(matches!(
        scripts.get("../README.md"),
        Err(SourceError::InvalidKey { .. })
    ));

    for (subdir, why) in [
        ("nothing", "no directory \"nothing\""),
        ("README.md", "not a directory"),
    ] {
        let err = GitSource::open(&repo.path, "main", subdir).unwrap_err();
        assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
        assert!(err.to_string().contains(why), "{err}");
    }
}

#[test]
fn missing_scripts_are_not_found() {
    let (repo, _) = two_commits();
    let src = open(&repo.path, "main", "scripts");
    for key in ["nope.lua", "lib", "lib/nope.lua", "scripts/main.lua"] {
        match src.get(key) {
            Err(SourceError::NotFound {
                key: k,
                source_name,
            }) => {
                assert_eq!(k, key);
                assert_eq!(source_name, src.name());
            }
            other => panic!("{key}: expected NotFound, got {other:?}"),
        }
    }
}

#[test]
fn an_unknown_reference_is_unavailable_naming_the_source() {
    let (repo, _) = two_commits();
    for reference in ["nope", "deadbeef", "", "a..b"] {
        let err = GitSource::open(&repo.path, reference, "scripts").unwrap_err();
        assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
        let message = err.to_string();
        let name = format!("git:{}@{reference}/scripts", repo.path.display());
        assert_eq!(err.source_name(), Some(name.as_str()), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }
    let err = GitSource::open(&repo.path, "nope", "scripts").unwrap_err();
    assert!(
        err.to_string()
            .contains("no branch, tag or commit named \"nope\""),
        "{err}"
    );
}

#[test]
fn a_path_that_is_not_a_repository_is_unavailable() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("main.lua"), "return 1").expect("writes");
    for path in [dir.path().to_path_buf(), dir.path().join("missing")] {
        let err = GitSource::open(&path, "main", "").unwrap_err();
        assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("git:{}@main is unavailable: ", path.display())),
            "{message}"
        );
        assert!(message.contains("cannot open the repository"), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }
    // A directory inside a work tree is not the repository either.
    let (repo, _) = two_commits();
    let err = GitSource::open(repo.path.join("scripts"), "main", "").unwrap_err();
    assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
}

#[test]
fn a_new_commit_on_the_watched_branch_is_reported() {
    let (repo, _) = two_commits();
    let src = open(&repo.path, "main", "scripts");
    let watch = src.watch("").unwrap();
    let lib_watch = src.watch("lib/").unwrap();
    let before = version(&src, "lib/util.lua");

    // One commit that adds, changes and removes a script, and changes a
    // file outside the subdirectory.
    repo.write(&[
        ("scripts/new.lua", "return 'new'"),
        ("scripts/main.lua", "return 'main v3'"),
        ("README.md", "changed, but not a script"),
    ]);
    std::fs::remove_file(repo.path.join("scripts/lib/old.lua")).expect("rm");
    let third = repo.commit("third");

    let seen = wait_for(
        &watch,
        &[
            updated("new.lua"),
            updated("main.lua"),
            removed("lib/old.lua"),
        ],
    );
    assert_eq!(seen.len(), 3, "nothing else changed: {seen:?}");
    wait_for(&lib_watch, &[removed("lib/old.lua")]);
    assert_eq!(text(&src, "main.lua"), "return 'main v3'");
    assert_eq!(text(&src, "new.lua"), "return 'new'");
    assert!(matches!(
        src.get("lib/old.lua"),
        Err(SourceError::NotFound { .. })
    ));
    assert_eq!(version(&src, "lib/util.lua"), before);
    assert_eq!(
        src.list("").unwrap(),
        vec!["lib/util.lua", "main.lua", "new.lua"]
    );
    assert_eq!(src.commit_id(), third);

    // A commit that changes nothing under the subdirectory reports nothing.
    repo.write(&[("README.md", "changed again")]);
    repo.commit("fourth");
    repo.write(&[("scripts/lib/util.lua", "return 'util v2'")]);
    repo.commit("fifth");
    let seen = wait_for(&watch, &[updated("lib/util.lua")]);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(watch.try_recv(), None);
    assert!(
        lib_watch
            .try_recv()
            .is_none_or(|c| c == updated("lib/util.lua"))
    );
}

#[test]
fn a_moved_branch_is_seen_by_get_without_a_watch() {
    let (repo, _) = two_commits();
    let src = GitSource::open(&repo.path, "main", "scripts").unwrap();
    assert_eq!(text(&src, "main.lua"), "return 'main v2'");
    repo.write(&[("scripts/main.lua", "return 'main v3'")]);
    repo.commit("third");
    assert_eq!(text(&src, "main.lua"), "return 'main v3'");
    // Rewinding the branch is a move too.
    repo.git(&["reset", "-q", "--hard", "HEAD~2"]);
    assert_eq!(text(&src, "main.lua"), "return 'main v1'");
}

#[test]
fn a_watched_tag_or_commit_does_not_change_when_the_branch_moves() {
    let (repo, first) = two_commits();
    let branch = open(&repo.path, "main", "scripts");
    let tag = open(&repo.path, "v1", "scripts");
    let commit = open(&repo.path, &first, "scripts");
    let branch_watch = branch.watch("").unwrap();
    let tag_watch = tag.watch("").unwrap();
    let commit_watch = commit.watch("").unwrap();

    repo.write(&[("scripts/main.lua", "return 'main v3'")]);
    repo.commit("third");
    wait_for(&branch_watch, &[updated("main.lua")]);
    // Some more polls of the tag than the branch needed.
    std::thread::sleep(POLL * 10);
    assert_eq!(tag_watch.try_recv(), None);
    assert_eq!(commit_watch.try_recv(), None);
    for src in [&tag, &commit] {
        assert_eq!(text(src, "main.lua"), "return 'main v1'");
        assert_eq!(src.commit_id(), first);
    }
    assert_eq!(text(&branch, "main.lua"), "return 'main v3'");
}

#[test]
fn a_bare_clone_and_a_dot_git_directory_work() {
    let (repo, first) = two_commits();
    let bare = repo.path.with_file_name("bare.git");
    git(
        repo.path.parent().expect("a parent"),
        &[
            "clone",
            "-q",
            "--bare",
            repo.path.to_str().expect("utf-8"),
            bare.to_str().expect("utf-8"),
        ],
    );
    let src = open(&bare, "main", "scripts");
    assert_eq!(text(&src, "main.lua"), "return 'main v2'");
    assert_eq!(
        src.list("").unwrap(),
        vec!["lib/old.lua", "lib/util.lua", "main.lua"]
    );
    assert_eq!(
        text(&open(&bare, "v1", "scripts"), "main.lua"),
        "return 'main v1'"
    );
    assert_eq!(
        text(&open(&bare, &first, "scripts"), "main.lua"),
        "return 'main v1'"
    );
    // After `git gc` the objects and references are packed.
    git(&bare, &["gc", "-q"]);
    assert_eq!(
        text(&open(&bare, "v1", "scripts"), "lib/util.lua"),
        "return 'util'"
    );

    // A push to the bare repository moves its branch.
    let watch = src.watch("").unwrap();
    repo.write(&[("scripts/pushed.lua", "return 'pushed'")]);
    repo.commit("third");
    repo.git(&["push", "-q", bare.to_str().expect("utf-8"), "main"]);
    wait_for(&watch, &[updated("pushed.lua")]);
    assert_eq!(text(&src, "pushed.lua"), "return 'pushed'");

    let dot_git = open(&repo.path.join(".git"), "main", "scripts");
    assert_eq!(text(&dot_git, "pushed.lua"), "return 'pushed'");
}

#[test]
fn symbolic_links_and_submodules_are_refused() {
    let (repo, _) = two_commits();
    // Entries put into the index directly, so this works wherever git
    // runs: a link to ../README.md and a submodule at some commit.
    let target = repo.git(&["rev-parse", "HEAD"]);
    let link_blob = {
        let file = repo.path.join("link-target");
        std::fs::write(&file, "../README.md").expect("writes");
        let id = repo.git(&["hash-object", "-w", "link-target"]);
        std::fs::remove_file(file).expect("rm");
        id
    };
    repo.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("120000,{link_blob},scripts/link.lua"),
    ]);
    repo.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{target},scripts/vendor"),
    ]);
    repo.git(&["commit", "-q", "-m", "a link and a submodule"]);

    let src = open(&repo.path, "main", "scripts");
    assert_eq!(
        src.list("").unwrap(),
        vec!["lib/old.lua", "lib/util.lua", "main.lua"],
        "neither is listed"
    );
    for (key, path, why) in [
        (
            "link.lua",
            "scripts/link.lua",
            "symbolic links are not allowed",
        ),
        ("vendor", "scripts/vendor", "submodules are not supported"),
    ] {
        match src.get(key) {
            Err(SourceError::BadContent { key: k, reason, .. }) => {
                assert_eq!(k, key);
                assert!(reason.contains(path) && reason.contains(why), "{reason}");
            }
            other => panic!("{key}: expected BadContent, got {other:?}"),
        }
    }
    // A path through the submodule is simply not there.
    assert!(matches!(
        src.get("vendor/main.lua"),
        Err(SourceError::NotFound { .. })
    ));
}

#[test]
fn a_script_over_the_size_limit_is_bad_content() {
    let repo = Repo::init();
    let big = "-".repeat(4096);
    // 17 MiB of one byte compresses to little in the repository.
    let huge = "x".repeat(17 << 20);
    repo.write(&[
        ("small.lua", "return 1"),
        ("big.lua", &big),
        ("huge.lua", &huge),
    ]);
    repo.commit("sizes");

    let src = open(&repo.path, "main", "").max_script_size(1024);
    assert_eq!(text(&src, "small.lua"), "return 1");
    let err = src.get("big.lua").unwrap_err();
    assert!(
        matches!(&err, SourceError::BadContent { key, reason, .. }
            if key == "big.lua" && reason.contains("larger than the 1024 bytes limit")),
        "{err}"
    );
    // The default: 16 MiB.
    let src = open(&repo.path, "main", "");
    assert_eq!(text(&src, "big.lua"), big);
    let err = src.get("huge.lua").unwrap_err();
    assert!(
        matches!(&err, SourceError::BadContent { key, reason, .. }
            if key == "huge.lua" && reason.contains("16 MiB")),
        "{err}"
    );
}

#[test]
fn a_deleted_branch_keeps_serving_its_last_commit_and_says_why() {
    let (repo, first) = two_commits();
    repo.git(&["branch", "feature", &first]);
    let src = open(&repo.path, "feature", "scripts");
    assert_eq!(src.reload_error(), None);
    repo.git(&["branch", "-q", "-D", "feature"]);
    assert_eq!(text(&src, "main.lua"), "return 'main v1'");
    let err = src.reload_error().expect("the branch is gone");
    assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
    assert!(
        err.to_string().contains("refs/heads/feature is gone"),
        "{err}"
    );
    // Made again elsewhere, it is followed again.
    repo.git(&["branch", "feature", "main"]);
    assert_eq!(text(&src, "main.lua"), "return 'main v2'");
    assert_eq!(src.reload_error(), None);
}
