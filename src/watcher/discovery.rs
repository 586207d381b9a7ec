//! Which files a `watch` glob matches now, what could not be looked at, and which folder
//! to ask for file events.
//!
//! The glob is expanded anew on every scan, so files that appear while the agent runs
//! are found; a glob that matches nothing yet is not an error (the instrument may not
//! have started a protocol today).
//!
//! The walk is our own rather than the `glob` crate's iterator (whose component matching
//! it still uses), for what that iterator cannot say or bound:
//! - **What could not be seen.** A folder that cannot be listed (gone, unreadable, a
//!   share away, out of file descriptors) is reported with its error, so the watcher can
//!   tell "the file is not there" from "nobody can tell": only the first is a deletion.
//! - **Bounds.** `**` does not descend into symlinked folders (a link to a parent would
//!   loop for ever), stops [`MAX_DEPTH`] folders down, and the walk stops at
//!   `watch[].max_files` matches and when the agent is stopping.
//! - **What was skipped.** FIFOs, devices, folders and dangling links that match are
//!   named, so the watcher can say once why they are not followed.

use std::ffi::OsString;
use std::fs::Metadata;
use std::io;
use std::path::{Component, Path, PathBuf};

/// How many folders below the fixed part of a pattern `**` descends.
pub const MAX_DEPTH: usize = 32;

/// `watch[].max_files` by default.
pub const DEFAULT_MAX_FILES: usize = 10_000;

/// One expansion of a glob.
#[derive(Debug, Default)]
pub struct Listing {
    /// Regular files (or links to them) that match, sorted, with what `stat` said.
    pub files: Vec<(PathBuf, Metadata)>,
    /// Folders (or files) that could not be looked at, with why. What lies under one of
    /// them is unknown, not gone.
    pub errors: Vec<(PathBuf, io::Error)>,
    /// Matches that are not regular files, with what they are.
    pub skipped: Vec<(PathBuf, Skipped)>,
    /// Symlinked folders that `**` did not descend into.
    pub links_not_followed: Vec<PathBuf>,
    /// The walk stopped at the file limit: files beyond it are unknown.
    pub truncated: bool,
    /// `**` reached [`MAX_DEPTH`] somewhere and went no deeper.
    pub too_deep: bool,
    /// The walk was cut short because the agent is stopping.
    pub interrupted: bool,
}

/// Why a match is not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    Folder,
    Fifo,
    Device,
    Socket,
    /// A symbolic link whose target does not exist.
    DanglingLink,
    Other,
}

impl Skipped {
    pub fn as_str(self) -> &'static str {
        match self {
            Skipped::Folder => "a folder",
            Skipped::Fifo => "a FIFO",
            Skipped::Device => "a device",
            Skipped::Socket => "a socket",
            Skipped::DanglingLink => "a dangling symbolic link",
            Skipped::Other => "not a regular file",
        }
    }
}

impl Listing {
    /// Whether an error says nothing about one folder but about the whole walk (out of
    /// file descriptors, an I/O error of a share): then nothing that was not listed can be
    /// taken as gone.
    fn is_blind(e: &io::Error) -> bool {
        !matches!(
            e.kind(),
            io::ErrorKind::NotFound
                | io::ErrorKind::PermissionDenied
                | io::ErrorKind::NotADirectory
        )
    }

    /// Whether the walk could not tell about `path`: it lies under a folder that could
    /// not be listed, or the walk was incomplete.
    pub fn is_unknown(&self, path: &Path) -> bool {
        self.truncated
            || self.interrupted
            || self
                .errors
                .iter()
                .any(|(at, e)| Self::is_blind(e) || path.starts_with(at))
    }

    /// Whether the whole expansion is in doubt (not just some folders).
    pub fn is_blind_everywhere(&self) -> bool {
        self.truncated || self.interrupted || self.errors.iter().any(|(_, e)| Self::is_blind(e))
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(p, _)| p.as_path())
    }
}

/// Limits of one walk.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_files: usize,
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_files: DEFAULT_MAX_FILES,
            max_depth: MAX_DEPTH,
        }
    }
}

/// Regular files matching `pattern`, sorted (with the default limits; errors dropped):
/// for `check-config`'s note and for tests.
pub fn matches(pattern: &str) -> Vec<PathBuf> {
    walk(pattern, Limits::default(), &|| false)
        .files
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

enum Part {
    Literal(OsString),
    Pattern(glob::Pattern),
    /// `**`: zero or more folders.
    AnyDepth,
}

/// The fixed start of `pattern` and the parts after it.
fn parse(pattern: &str) -> (PathBuf, Vec<Part>) {
    let mut base = PathBuf::new();
    let mut parts = Vec::new();
    for c in Path::new(pattern).components() {
        let text = c.as_os_str().to_string_lossy();
        let part = match c {
            Component::Prefix(_) | Component::RootDir | Component::CurDir if parts.is_empty() => {
                base.push(c.as_os_str());
                continue;
            }
            Component::Normal(_) if text == "**" => Part::AnyDepth,
            Component::Normal(_) if text.contains(['*', '?', '[']) => {
                match glob::Pattern::new(&text) {
                    Ok(p) => Part::Pattern(p),
                    // Validated as a whole at load; a part that does not compile alone
                    // is taken literally.
                    Err(_) => Part::Literal(c.as_os_str().to_os_string()),
                }
            }
            _ => Part::Literal(c.as_os_str().to_os_string()),
        };
        parts.push(part);
    }
    // Leading literal folders belong to the base; the last part is the file's name.
    let mut fixed = 0;
    while fixed + 1 < parts.len() && matches!(parts[fixed], Part::Literal(_)) {
        if let Part::Literal(name) = &parts[fixed] {
            base.push(name);
        }
        fixed += 1;
    }
    parts.drain(..fixed);
    (base, parts)
}

/// Expands `pattern`. `stopping` is asked between folders.
pub fn walk(pattern: &str, limits: Limits, stopping: &dyn Fn() -> bool) -> Listing {
    let (base, parts) = parse(pattern);
    let mut w = Walk {
        out: Listing::default(),
        limits,
        stopping,
    };
    if parts.is_empty() {
        w.candidate(&base);
    } else {
        w.walk(&base, &parts, 0, None);
    }
    let mut out = w.out;
    out.files.sort_by(|a, b| a.0.cmp(&b.0));
    out.files.dedup_by(|a, b| a.0 == b.0);
    out
}

struct Walk<'a> {
    out: Listing,
    limits: Limits,
    stopping: &'a dyn Fn() -> bool,
}

/// One entry of a folder: its name, path, and whether it is a folder that is not a link.
struct Entry {
    name: OsString,
    path: PathBuf,
    real_dir: bool,
    link: bool,
}

fn options() -> glob::MatchOptions {
    glob::MatchOptions::new()
}

impl Walk<'_> {
    fn done(&mut self) -> bool {
        if self.out.truncated || self.out.interrupted {
            return true;
        }
        if (self.stopping)() {
            self.out.interrupted = true;
            return true;
        }
        false
    }

    fn list(&mut self, dir: &Path) -> Option<Vec<Entry>> {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) => {
                self.out.errors.push((dir.to_path_buf(), e));
                return None;
            }
        };
        let mut entries = Vec::new();
        for entry in rd {
            match entry {
                Ok(e) => {
                    // The entry's own type: a link is not followed here.
                    let ft = e.file_type().ok();
                    entries.push(Entry {
                        name: e.file_name(),
                        path: e.path(),
                        real_dir: ft.is_some_and(|t| t.is_dir()),
                        link: ft.is_some_and(|t| t.is_symlink()),
                    });
                }
                Err(e) => {
                    // A listing cut short: what was not listed is unknown.
                    self.out.errors.push((dir.to_path_buf(), e));
                    break;
                }
            }
        }
        Some(entries)
    }

    /// Walks `parts` below `dir`; `listing` is `dir`'s entries if they were read already.
    fn walk(&mut self, dir: &Path, parts: &[Part], depth: usize, listing: Option<&[Entry]>) {
        if self.done() {
            return;
        }
        let Some((part, rest)) = parts.split_first() else {
            return;
        };
        match part {
            Part::Literal(name) => {
                let path = dir.join(name);
                if rest.is_empty() {
                    self.candidate(&path);
                } else {
                    self.walk(&path, rest, depth, None);
                }
            }
            Part::Pattern(pattern) => {
                let owned;
                let entries = match listing {
                    Some(l) => l,
                    None => match self.list(dir) {
                        Some(l) => {
                            owned = l;
                            &owned[..]
                        }
                        None => return,
                    },
                };
                for e in entries {
                    if self.done() {
                        return;
                    }
                    if !pattern.matches_with(&e.name.to_string_lossy(), options()) {
                        continue;
                    }
                    if rest.is_empty() {
                        self.candidate(&e.path);
                    } else if e.real_dir || (e.link && e.path.is_dir()) {
                        // A single-level wildcard follows a link to a folder: the
                        // pattern's length bounds it.
                        self.walk(&e.path, rest, depth, None);
                    }
                }
            }
            Part::AnyDepth => {
                let Some(entries) = self.list(dir) else {
                    return;
                };
                // Zero folders: the rest of the pattern right here.
                self.walk(dir, rest, depth, Some(&entries));
                for e in &entries {
                    if self.done() {
                        return;
                    }
                    if e.link {
                        if e.path.is_dir() {
                            self.out.links_not_followed.push(e.path.clone());
                        }
                        continue;
                    }
                    if !e.real_dir {
                        continue;
                    }
                    if depth + 1 >= self.limits.max_depth {
                        self.out.too_deep = true;
                        continue;
                    }
                    self.walk(&e.path, parts, depth + 1, None);
                }
            }
        }
    }

    /// A path the whole pattern matched: a file to follow, something to skip, or nothing.
    fn candidate(&mut self, path: &Path) {
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => {
                if self.out.files.len() >= self.limits.max_files {
                    self.out.truncated = true;
                } else {
                    self.out.files.push((path.to_path_buf(), m));
                }
            }
            Ok(m) => self.out.skipped.push((path.to_path_buf(), kind(&m))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if std::fs::symlink_metadata(path).is_ok() {
                    self.out
                        .skipped
                        .push((path.to_path_buf(), Skipped::DanglingLink));
                } else if let Some(parent) = path.parent()
                    && let Err(e) = std::fs::metadata(parent)
                {
                    // A name in the pattern, not listed: only its folder tells whether
                    // it is gone or cannot be seen.
                    self.out.errors.push((parent.to_path_buf(), e));
                }
            }
            Err(e) => self.out.errors.push((path.to_path_buf(), e)),
        }
    }
}

/// What a match that is not a regular file is, by its metadata.
pub fn kind(m: &Metadata) -> Skipped {
    let t = m.file_type();
    if t.is_dir() {
        return Skipped::Folder;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Skipped::Fifo;
        }
        if t.is_block_device() || t.is_char_device() {
            return Skipped::Device;
        }
        if t.is_socket() {
            return Skipped::Socket;
        }
    }
    Skipped::Other
}

/// The deepest folder of `pattern` without glob characters, and whether the pattern
/// reaches below it (so the folder must be watched recursively).
pub fn base_dir(pattern: &str) -> (PathBuf, bool) {
    let mut base = PathBuf::new();
    let mut components = Path::new(pattern).components().peekable();
    while let Some(c) = components.next() {
        let is_last = components.peek().is_none();
        let text = c.as_os_str().to_string_lossy();
        if is_last || text.contains(['*', '?', '[']) {
            let below = !is_last;
            return (base, below);
        }
        match c {
            Component::Prefix(_)
            | Component::RootDir
            | Component::Normal(_)
            | Component::CurDir => base.push(c.as_os_str()),
            Component::ParentDir => base.push(".."),
        }
    }
    (base, false)
}

/// Entries of the nearest existing folder named in [`never_there_nearby`]: enough to spot a
/// typo, short enough for a log line.
const NEAREST_SHOWN: usize = 8;

/// At most this many of its entries are read to choose them: a folder anyone may fill
/// must not make the agent hold millions of names.
const NEAREST_READ: usize = 10_000;

/// The headline for `folder` of a `watch` entry that does not exist (and never did, as
/// far as the agent knows): "not watching anything under /srv/sonix/protcol: it does not
/// exist". It names only what the config already names, so `/healthz`, which anyone on
/// this PC may read, can carry it.
pub fn never_there(folder: &Path) -> String {
    format!(
        "not watching anything under {}: it does not exist",
        folder.display()
    )
}

/// [`never_there`] with the nearest existing folder and what it holds: "…; the nearest
/// existing folder /srv/sonix holds: protocol/, scripts/". A typo in a path is the usual
/// cause, and the neighbours' names make it plain. Those names are read with the agent's
/// rights, so this goes only where its reader already has them or the API token: the
/// operator's own `check-config`, the agent's log and the console.
pub fn never_there_nearby(folder: &Path) -> String {
    let mut text = never_there(folder);
    let Some(nearest) = folder.ancestors().skip(1).find(|a| a.is_dir()) else {
        return text;
    };
    let mut entries = std::fs::read_dir(nearest).into_iter().flatten();
    let mut names: Vec<String> = entries
        .by_ref()
        .take(NEAREST_READ)
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let dir = e.path().is_dir();
            (!name.starts_with('.')).then(|| if dir { format!("{name}/") } else { name })
        })
        .collect();
    names.sort();
    let shown = nearest.display();
    if names.is_empty() {
        text.push_str(&format!("; the nearest existing folder {shown} is empty"));
        return text;
    }
    let more = names.len().saturating_sub(NEAREST_SHOWN);
    names.truncate(NEAREST_SHOWN);
    text.push_str(&format!(
        "; the nearest existing folder {shown} holds: {}",
        names.join(", ")
    ));
    if entries.next().is_some() {
        text.push_str(" and many more");
    } else if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_never_there_names_its_nearest_existing_parent() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["protocol", "scripts"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        std::fs::write(dir.path().join("README"), "").unwrap();
        std::fs::write(dir.path().join(".hidden"), "").unwrap();
        let typo = dir.path().join("protcol").join("deeper");
        assert_eq!(
            never_there(&typo),
            format!(
                "not watching anything under {}: it does not exist",
                typo.display()
            )
        );
        assert_eq!(
            never_there_nearby(&typo),
            format!(
                "not watching anything under {}: it does not exist; the nearest existing folder {} holds: README, protocol/, scripts/",
                typo.display(),
                dir.path().display()
            )
        );
        for i in 0..10 {
            std::fs::write(dir.path().join(format!("z{i}")), "").unwrap();
        }
        assert!(
            never_there_nearby(&typo).ends_with("z4 and 5 more"),
            "{}",
            never_there_nearby(&typo)
        );
    }

    fn names(l: &Listing, root: &Path) -> Vec<String> {
        l.paths()
            .map(|p| {
                p.strip_prefix(root)
                    .unwrap_or(p)
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .collect()
    }

    #[test]
    fn base_of_patterns() {
        assert_eq!(
            base_dir("/data/protocol/*.log"),
            (PathBuf::from("/data/protocol"), false)
        );
        assert_eq!(base_dir("/data/*/x.log"), (PathBuf::from("/data"), true));
        assert_eq!(base_dir("/data/p.log"), (PathBuf::from("/data"), false));
    }

    #[test]
    fn finds_only_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.log"), "").unwrap();
        std::fs::write(dir.path().join("a.log"), "").unwrap();
        std::fs::create_dir(dir.path().join("d.log")).unwrap();
        let pattern = format!("{}/*.log", dir.path().display());
        let found = matches(&pattern);
        assert_eq!(
            found,
            vec![dir.path().join("a.log"), dir.path().join("b.log")]
        );
        let l = walk(&pattern, Limits::default(), &|| false);
        assert_eq!(l.skipped, vec![(dir.path().join("d.log"), Skipped::Folder)]);
        assert!(matches(&format!("{}/none/*.log", dir.path().display())).is_empty());
    }

    #[test]
    fn a_missing_folder_is_an_error_not_an_empty_folder() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        for pattern in [
            format!("{}/*.log", gone.display()),
            format!("{}/a.log", gone.display()),
            format!("{}/**/*.log", gone.display()),
        ] {
            let l = walk(&pattern, Limits::default(), &|| false);
            assert!(l.files.is_empty(), "{pattern}");
            assert_eq!(l.errors.len(), 1, "{pattern}: {:?}", l.errors);
            assert!(l.is_unknown(&gone.join("a.log")), "{pattern}");
            assert!(
                !l.is_unknown(&dir.path().join("elsewhere.log")),
                "{pattern}"
            );
        }
        // A file that is not there in a folder that is: simply not there.
        let l = walk(
            &format!("{}/a.log", dir.path().display()),
            Limits::default(),
            &|| false,
        );
        assert!(l.errors.is_empty() && l.files.is_empty());
    }

    #[test]
    fn recursive_patterns_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for p in ["a.log", "x/b.log", "x/y/c.log", "x/y/z/d.txt", "w/e.log"] {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let all = format!("{}/**/*.log", root.display());
        let l = walk(&all, Limits::default(), &|| false);
        assert_eq!(
            names(&l, root),
            ["a.log", "w/e.log", "x/b.log", "x/y/c.log"]
        );
        let l = walk(
            &format!("{}/x/*/*.log", root.display()),
            Limits::default(),
            &|| false,
        );
        assert_eq!(names(&l, root), ["x/y/c.log"]);
        // Depth: the base counts as level 0.
        let l = walk(
            &all,
            Limits {
                max_depth: 2,
                ..Limits::default()
            },
            &|| false,
        );
        assert_eq!(names(&l, root), ["a.log", "w/e.log", "x/b.log"]);
        assert!(l.too_deep);
        let l = walk(
            &all,
            Limits {
                max_files: 2,
                ..Limits::default()
            },
            &|| false,
        );
        assert_eq!(l.files.len(), 2);
        assert!(l.truncated && l.is_unknown(&root.join("x/y/c.log")));
        let l = walk(&all, Limits::default(), &|| true);
        assert!(l.interrupted && l.files.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_are_not_followed_and_odd_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/p.log"), "").unwrap();
        std::os::unix::fs::symlink(root, root.join("a/b/up")).unwrap();
        std::os::unix::fs::symlink(root.join("a"), root.join("a/again")).unwrap();
        std::os::unix::fs::symlink(root.join("nowhere"), root.join("a/dangling.log")).unwrap();
        std::os::unix::fs::symlink(root.join("a/b/p.log"), root.join("a/link.log")).unwrap();
        let fifo = root.join("a/fifo.log");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status();
        let l = walk(
            &format!("{}/**/*", root.display()),
            Limits::default(),
            &|| false,
        );
        assert_eq!(names(&l, root), ["a/b/p.log", "a/link.log"]);
        assert_eq!(l.links_not_followed.len(), 2, "{:?}", l.links_not_followed);
        assert!(
            l.skipped
                .contains(&(root.join("a/dangling.log"), Skipped::DanglingLink))
        );
        assert!(l.skipped.contains(&(root.join("a/b"), Skipped::Folder)));
        if status.is_ok_and(|s| s.success()) {
            assert!(l.skipped.contains(&(fifo, Skipped::Fifo)));
        }
        assert!(l.errors.is_empty(), "{:?}", l.errors);
    }
}
