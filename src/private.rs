//! Files and folders only the agent (and the people allowed to use it) may read: the
//! state folder, its database and the API token.
//!
//! Instrument PCs are shared by students, visiting users and the beamline account, so
//! what the agent keeps must not be world-readable: the database holds queued messages
//! and their files, the token opens the API. The rule is the same on both systems, with
//! each system's means: the agent's own user, plus a group `protowatch` whose members
//! may use the agent (the Debian package makes it; an administrator adds people to it).
//! On Unix that is mode 0700/0600, or 0750/0640 owned by the group when it exists; on
//! Windows an ACL for SYSTEM, Administrators, the owner (the service's account) and the
//! local group `protowatch`, inheritance from the parent cut off.
//!
//! Failing to tighten permissions is logged, never fatal: the agent must still watch on
//! a file system without permissions (a FAT stick, a share), and the operator is told.

use std::path::Path;

/// The group whose members may read the token and use the agent.
pub const GROUP: &str = "protowatch";

/// Makes `dir` private to the agent (and the group `protowatch`, where it exists).
pub fn secure_dir(dir: &Path) {
    if let Err(e) = imp::restrict(dir, true) {
        tracing::warn!(path = %dir.display(), error = %e, "cannot restrict the permissions of the state folder");
    }
}

/// Whether an existing state folder can be trusted: it must belong to the agent's user
/// and must not be writable by every user. Someone else's folder, or one anyone could
/// write, may hold a token or a database that another user put there — the agent would
/// take their token as its own (and tell it to every command). Refused at start, not
/// warned about; the error says what to do.
pub fn check_trusted(dir: &Path) -> Result<(), String> {
    imp::check_trusted(dir)
}

/// Makes `file` readable by the agent (and the group `protowatch`, where it exists) only.
pub fn secure_file(file: &Path) -> std::io::Result<()> {
    imp::restrict(file, false)
}

/// Who besides a file's owner may read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readers {
    /// The members of this group (its name, or its number when it has none).
    Group(String),
    /// Every user of the PC.
    Everyone,
}

impl std::fmt::Display for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Readers::Group(name) => write!(f, "group {name}"),
            Readers::Everyone => f.write_str("every user"),
        }
    }
}

/// Who besides its owner may read `file`, the folders on its way included (a file in a
/// folder that only its owner may enter is the owner's alone, whatever its own mode).
/// `None`: the owner only, or it cannot be told — on Windows, where the ACLs that say it
/// are not examined here.
pub fn readable_by_others(file: &Path) -> Option<Readers> {
    imp::readable_by_others(file)
}

#[cfg(unix)]
mod imp {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    /// The id of the group `protowatch`, through NSS (so LDAP groups count too).
    pub fn group_id() -> Option<u32> {
        let name = std::ffi::CString::new(super::GROUP).ok()?;
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        // SAFETY: `grp` and `buf` outlive the call; getgrnam_r writes only within them
        // and sets `result` to `&grp` or null.
        unsafe {
            let mut grp: libc::group = std::mem::zeroed();
            let mut result: *mut libc::group = std::ptr::null_mut();
            let rc = libc::getgrnam_r(
                name.as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            );
            (rc == 0 && !result.is_null()).then_some(grp.gr_gid)
        }
    }

    /// The name of the group with id `gid`, through NSS.
    fn group_name(gid: u32) -> Option<String> {
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        // SAFETY: `grp` and `buf` outlive the call; getgrgid_r writes only within them and
        // sets `result` to `&grp` or null; `gr_name` then points into `buf`, NUL-ended.
        unsafe {
            let mut grp: libc::group = std::mem::zeroed();
            let mut result: *mut libc::group = std::ptr::null_mut();
            let rc = libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut result);
            if rc != 0 || result.is_null() || grp.gr_name.is_null() {
                return None;
            }
            Some(
                std::ffi::CStr::from_ptr(grp.gr_name)
                    .to_string_lossy()
                    .into_owned(),
            )
        }
    }

    pub fn readable_by_others(file: &Path) -> Option<super::Readers> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(file).ok()?;
        let mode = m.mode();
        // Whether the folders on the way let a group member (0o010) or anyone (0o001) in.
        let absolute = std::path::absolute(file).ok()?;
        let enter = |bit: u32| {
            absolute
                .ancestors()
                .skip(1)
                .all(|dir| std::fs::metadata(dir).is_ok_and(|d| d.mode() & (bit | 0o001) != 0))
        };
        if mode & 0o004 != 0 && enter(0o001) {
            return Some(super::Readers::Everyone);
        }
        if mode & 0o040 != 0 && enter(0o010) {
            let gid = m.gid();
            return Some(super::Readers::Group(
                group_name(gid).unwrap_or_else(|| gid.to_string()),
            ));
        }
        None
    }

    pub fn check_trusted(dir: &Path) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        let m = match std::fs::symlink_metadata(dir) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("cannot look at {}: {e}", dir.display())),
        };
        if m.file_type().is_symlink() {
            return Err(format!(
                "{} is a symbolic link; give state_dir the folder itself",
                dir.display()
            ));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if m.uid() != me {
            return Err(format!(
                "{} belongs to the user with id {}, not to this agent's user (id {me}): a token \
                 or database another user put there would be taken as the agent's own. Remove \
                 it, or give it to the agent's user (chown -R)",
                dir.display(),
                m.uid()
            ));
        }
        if m.mode() & 0o002 != 0 {
            return Err(format!(
                "{} can be written by every user (mode {:o}): a token or database another user \
                 put there would be taken as the agent's own. Remove it, or check what is in it \
                 and `chmod o-w` it",
                dir.display(),
                m.mode() & 0o7777
            ));
        }
        Ok(())
    }

    pub fn restrict(path: &Path, dir: bool) -> std::io::Result<()> {
        // The group is given only where the agent may give it (root, or a member):
        // otherwise chown fails and the path stays the user's alone.
        let grouped =
            group_id().is_some_and(|gid| std::os::unix::fs::chown(path, None, Some(gid)).is_ok());
        let mode = match (dir, grouped) {
            (true, true) => 0o750,
            (true, false) => 0o700,
            (false, true) => 0o640,
            (false, false) => 0o600,
        };
        let current = std::fs::metadata(path)?.permissions().mode() & 0o7777;
        if current != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
        Ok(())
    }
}

#[cfg(windows)]
mod imp {
    use std::os::windows::ffi::OsStrExt;
    use std::path::Path;

    use windows_sys::Win32::Foundation::{GetLastError, LocalFree};
    use windows_sys::Win32::Security::Authorization::{
        ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW,
        SDDL_REVISION_1,
    };
    use windows_sys::Win32::Security::{
        DACL_SECURITY_INFORMATION, LookupAccountNameW, PROTECTED_DACL_SECURITY_INFORMATION,
        PSECURITY_DESCRIPTOR, SID_NAME_USE, SetFileSecurityW,
    };

    fn wide(s: &str) -> Vec<u16> {
        s.encode_utf16().chain(std::iter::once(0)).collect()
    }

    /// The SID, as a string, of a local account or group; `None` if there is none.
    pub fn sid_of(name: &str) -> Option<String> {
        let name = wide(name);
        let mut sid = vec![0u8; 256];
        let mut sid_len = sid.len() as u32;
        let mut domain = vec![0u16; 256];
        let mut domain_len = domain.len() as u32;
        let mut kind: SID_NAME_USE = 0;
        // SAFETY: every buffer is given with its length; the SID string that
        // ConvertSidToStringSidW allocates is read up to its NUL and freed.
        unsafe {
            if LookupAccountNameW(
                std::ptr::null(),
                name.as_ptr(),
                sid.as_mut_ptr().cast(),
                &mut sid_len,
                domain.as_mut_ptr(),
                &mut domain_len,
                &mut kind,
            ) == 0
            {
                return None;
            }
            let mut text: *mut u16 = std::ptr::null_mut();
            if ConvertSidToStringSidW(sid.as_mut_ptr().cast(), &mut text) == 0 {
                return None;
            }
            let mut len = 0;
            while *text.add(len) != 0 {
                len += 1;
            }
            let s = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
            LocalFree(text.cast());
            Some(s)
        }
    }

    /// Windows: who may read a file is its ACL's to say, which is not examined here; the
    /// book's Security chapter (docs/src/security.md) says how to restrict a secret file with `icacls`.
    pub fn readable_by_others(_file: &Path) -> Option<super::Readers> {
        None
    }

    /// Windows: the folder's ACL is set anew at every start (`restrict`), and its owner
    /// is not compared here; the service's account owns the folders it makes.
    pub fn check_trusted(_dir: &Path) -> Result<(), String> {
        Ok(())
    }

    pub fn restrict(path: &Path, dir: bool) -> std::io::Result<()> {
        // SYSTEM, Administrators and the owner (the service's account, which creates
        // these files) in full; the group protowatch may read. Protected: nothing
        // inherited from a folder that Users may read.
        let inherit = if dir { "OICI" } else { "" };
        let mut sddl =
            format!("D:P(A;{inherit};FA;;;SY)(A;{inherit};FA;;;BA)(A;{inherit};FA;;;OW)");
        for account in [
            format!("NT SERVICE\\{}", super::GROUP),
            super::GROUP.to_string(),
        ] {
            if let Some(sid) = sid_of(&account) {
                let rights = if account.starts_with("NT SERVICE") {
                    "FA"
                } else {
                    "FR"
                };
                sddl.push_str(&format!("(A;{inherit};{rights};;;{sid})"));
            }
        }
        let sddl = wide(&sddl);
        let target: Vec<u16> = path
            .as_os_str()
            .encode_wide()
            .chain(std::iter::once(0))
            .collect();
        // SAFETY: the descriptor that the conversion allocates is used for one call and
        // freed; both strings are NUL-terminated.
        unsafe {
            let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
            if ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            ) == 0
            {
                return Err(std::io::Error::from_raw_os_error(GetLastError() as i32));
            }
            let ok = SetFileSecurityW(
                target.as_ptr(),
                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                sd,
            );
            let err = GetLastError();
            LocalFree(sd.cast());
            if ok == 0 {
                return Err(std::io::Error::from_raw_os_error(err as i32));
            }
        }
        Ok(())
    }
}

#[cfg(windows)]
pub use imp::sid_of;
