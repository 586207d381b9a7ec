//! A value that must never be printed — SMTP passwords, Bot API tokens, webhook URLs —
//! and the one way a secret is read from a file (`mail.password_file`,
//! `telegram.bot-id_file`, `{"file": "…"}`, …).
//!
//! `Debug` and `Display` both mask it, so a secret cannot leak through a `{:?}` in a log
//! line or an error; the only way to the text is [`Secret::expose`], which is easy to grep.
//!
//! Every `*_file` key reads through [`Secret::from_file`] so that they all agree on what
//! a secret file is: one line, a trailing newline dropped, never empty. A secret kept in
//! its own file can be readable by the agent's user alone while the config stays
//! readable by the group `protowatch` — permission to use the agent, not its credentials.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// The most a secret file may hold: a password, a token or a webhook URL is far less,
/// and a file named by mistake (a log, a disk image) is refused instead of read whole.
const MAX_FILE_BYTES: u64 = 64 * 1024;

impl Secret {
    pub const MASK: &'static str = "********";

    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret held in `file`, named in the config at `key` (its JSON path, e.g.
    /// `mail.password_file`, which every error names with the file). The file holds the
    /// secret on one line; one trailing `\n` or `\r\n` (what `echo` and editors add) and
    /// a leading BOM (old Windows editors) are not part of it, other spaces are. A blank
    /// file is refused: an empty password or token is never what was meant, and taking
    /// it would only fail later, at the first delivery.
    pub fn from_file(file: &Path, key: &str) -> Result<Secret, SecretFileError> {
        let fail = |problem| SecretFileError {
            key: key.to_string(),
            file: file.to_path_buf(),
            problem,
        };
        // A FIFO would block the open, a device never end: regular files only.
        let meta = std::fs::metadata(file).map_err(|e| fail(SecretFileProblem::Unreadable(e)))?;
        if !meta.is_file() {
            return Err(fail(SecretFileProblem::NotAFile));
        }
        let mut bytes = Vec::new();
        std::fs::File::open(file)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| fail(SecretFileProblem::Unreadable(e)))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(fail(SecretFileProblem::TooLarge));
        }
        let text = String::from_utf8(bytes).map_err(|_| fail(SecretFileProblem::NotText))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let value = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(text);
        if value.trim().is_empty() {
            return Err(fail(SecretFileProblem::Empty));
        }
        // A second line would become part of the password and fail at the server, far
        // from here; said now, with the file's name.
        if value.contains(['\n', '\r']) {
            return Err(fail(SecretFileProblem::Lines));
        }
        // The package writes a placeholder here so that the file exists with its owner
        // and mode; sending with it would only be refused by the server, far from here.
        if super::placeholder::is_placeholder(value) {
            return Err(fail(SecretFileProblem::Placeholder));
        }
        Ok(Secret(value.to_string()))
    }

    /// The stand-in for a secret in a file this user may not read (see
    /// [`SecretSource::Unreadable`]): empty, which no secret read or written ever is.
    pub fn unread() -> Self {
        Secret(String::new())
    }

    /// Whether this is the stand-in of [`Secret::unread`].
    pub fn is_unread(&self) -> bool {
        self.0.is_empty()
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of the secret in `text`: for error messages of libraries
    /// that put the secret into what they print (an HTTP client quoting a URL with a token).
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, Self::MASK)
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::MASK)
    }
}

/// A secret file that cannot be used. Names the key and the file, never the content.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {}", describe(file, problem))]
pub struct SecretFileError {
    /// The JSON path of the key that names the file (`telegram.bot-id_file`).
    pub key: String,
    pub file: PathBuf,
    pub problem: SecretFileProblem,
}

/// What is wrong with a secret file.
#[derive(Debug)]
pub enum SecretFileProblem {
    Unreadable(std::io::Error),
    NotAFile,
    TooLarge,
    NotText,
    Empty,
    Lines,
    /// Still the placeholder a package wrote (`REPLACE-…`).
    Placeholder,
}

fn describe(file: &Path, problem: &SecretFileProblem) -> String {
    let f = file.display();
    match problem {
        SecretFileProblem::Unreadable(e) => format!("cannot read {f}: {e}"),
        SecretFileProblem::NotAFile => format!("{f} is not a regular file"),
        SecretFileProblem::TooLarge => {
            format!("{f} is larger than 64 KiB: a secret file holds the secret alone")
        }
        SecretFileProblem::NotText => format!("{f} is not UTF-8 text"),
        SecretFileProblem::Empty => format!("{f} is empty"),
        SecretFileProblem::Placeholder => format!(
            "{f} still holds a placeholder (it starts with {}): write the real secret over it",
            super::placeholder::MARKER
        ),
        SecretFileProblem::Lines => format!(
            "{f} holds more than one line: a secret file holds the secret alone, on one line"
        ),
    }
}

impl SecretFileError {
    /// What is wrong, with the file but without the key: for a list of problems that
    /// names the key in front of each line already.
    pub fn detail(&self) -> String {
        describe(&self.file, &self.problem)
    }

    /// Whether the file is there but not for this user: a command run by a member of the
    /// group `protowatch` may load the config without the agent's secrets.
    pub fn is_permission_denied(&self) -> bool {
        matches!(&self.problem, SecretFileProblem::Unreadable(e)
            if e.kind() == std::io::ErrorKind::PermissionDenied)
    }
}

/// Where one secret of the config came from; `check-config` warns about whoever else
/// can read it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// Written in the config file itself; `instead` says where it could live apart
    /// (`telegram.bot-id_file`).
    Inline { instead: String },
    /// Read from this file.
    File(PathBuf),
    /// In this file, which the user running the command may not read (a member of the
    /// group `protowatch`): the config loads without the secret, for commands that ask
    /// the running agent and need none.
    Unreadable(PathBuf),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shown() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "******** ********");
        assert_eq!(
            s.scrub("GET /bothunter2/sendMessage"),
            "GET /bot********/sendMessage"
        );
    }

    fn read(content: &[u8]) -> (tempfile::TempDir, Result<Secret, SecretFileError>) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bot-token");
        std::fs::write(&file, content).unwrap();
        let r = Secret::from_file(&file, "telegram.bot-id_file");
        (dir, r)
    }

    #[test]
    fn one_trailing_newline_is_dropped() {
        for (content, expected) in [
            (&b"123:abc\n"[..], "123:abc"),
            (b"123:abc\r\n", "123:abc"),
            (b"123:abc", "123:abc"),
            (b"\xef\xbb\xbfpw with spaces \n", "pw with spaces "),
        ] {
            let (_dir, r) = read(content);
            assert_eq!(r.unwrap().expose(), expected);
        }
    }

    #[test]
    fn an_empty_file_is_refused_naming_file_and_key() {
        for content in [&b""[..], b"\n", b"\r\n", b"  \n"] {
            let (dir, r) = read(content);
            let e = r.unwrap_err();
            let text = e.to_string();
            assert!(text.starts_with("telegram.bot-id_file: "), "{text}");
            assert!(
                text.contains(&dir.path().join("bot-token").display().to_string()),
                "{text}"
            );
            assert!(text.ends_with("is empty"), "{text}");
        }
    }

    #[test]
    fn the_content_is_never_in_the_error() {
        for content in [
            &b"s3cret-line-one\ns3cret-line-two\n"[..],
            b"s3cret\xff\xfe",
        ] {
            let (_dir, r) = read(content);
            let text = r.unwrap_err().to_string();
            assert!(!text.contains("s3cret"), "{text}");
            assert!(text.starts_with("telegram.bot-id_file: "), "{text}");
        }
        let (_dir, r) = read(&[b'x'; 70 * 1024]);
        let text = r.unwrap_err().to_string();
        assert!(
            text.contains("larger than 64 KiB") && !text.contains("xxx"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_file_or_a_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = Secret::from_file(&dir.path().join("nope"), "mail.password_file").unwrap_err();
        assert!(e.to_string().starts_with("mail.password_file: "), "{e}");
        assert!(e.to_string().contains(": cannot read "), "{e}");
        assert!(!e.is_permission_denied());
        let e = Secret::from_file(dir.path(), "mail.password_file").unwrap_err();
        assert!(e.to_string().ends_with("is not a regular file"), "{e}");
    }
}
