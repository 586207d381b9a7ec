//! Which files a `watch` glob matches now, and which folder to ask for file events.
//!
//! The glob is expanded anew on every scan, so files that appear while the agent runs
//! are found; a glob that matches nothing yet is not an error (the instrument may not
//! have started a protocol today).

use std::path::{Component, Path, PathBuf};

/// Regular files matching `pattern`, sorted so that files are taken up in a stable order.
pub fn matches(pattern: &str) -> Vec<PathBuf> {
    let Ok(paths) = glob::glob(pattern) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(matches(&format!("{}/none/*.log", dir.path().display())).is_empty());
    }
}
