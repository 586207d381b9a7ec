//! Which file a path is right now, and how to open a protocol file politely.
//!
//! A path is not a file: after a rotation the same name is a new file, and the old file
//! lives on under another name. Following by identity is what lets the watcher read a
//! rotated file to its end and start the new one from its beginning. On Unix the identity
//! is (device, inode, birth time where the file system keeps one); on Windows (volume
//! serial number, file index) from `GetFileInformationByHandle`.

use std::fs::File;
use std::io;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub device: u64,
    pub index: u64,
    /// Unix: the birth time in nanoseconds since the epoch where the file system keeps
    /// one (else 0), so a reused inode is a new file. Windows: always 0 (see `file_id`).
    pub created: u64,
}

#[cfg(unix)]
fn created_ns(m: &std::fs::Metadata) -> u64 {
    m.created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Opens a protocol file for reading such that its writer can keep writing, renaming and
/// deleting it (on Windows that needs all three share flags), and only if it is a
/// regular file.
///
/// The type is checked on the opened handle (`fstat`), not on the name: a name can be
/// a regular file when it is looked at and a FIFO or a device when it is opened (a
/// link flipped in between). On Unix the open itself must not wait either: opening a
/// FIFO for reading waits for a writer, for ever if none comes, which held the watch
/// thread and every alarm behind it. `O_NONBLOCK` makes that open return at once (it
/// changes nothing for reads of regular files), and `O_NOCTTY` keeps a terminal from
/// becoming the agent's. Anything but a regular file is refused with a
/// [`NotRegular`](super::guard::NotRegular) inside the error.
pub fn open_shared(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        const FILE_SHARE_READ: u32 = 0x1;
        const FILE_SHARE_WRITE: u32 = 0x2;
        const FILE_SHARE_DELETE: u32 = 0x4;
        options.share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(super::guard::NotRegular(super::discovery::kind(&meta)).into_io());
    }
    Ok(file)
}

#[cfg(unix)]
pub fn file_id(file: &File) -> io::Result<FileId> {
    use std::os::unix::fs::MetadataExt;
    let m = file.metadata()?;
    Ok(FileId {
        device: m.dev(),
        index: m.ino(),
        created: created_ns(&m),
    })
}

#[cfg(windows)]
pub fn file_id(file: &File) -> io::Result<FileId> {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Storage::FileSystem::{
        BY_HANDLE_FILE_INFORMATION, GetFileInformationByHandle,
    };
    // SAFETY: the handle is valid for the lifetime of `file`, and the struct is plain
    // data that the call fills in.
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    let ok = unsafe { GetFileInformationByHandle(file.as_raw_handle() as _, &mut info) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(FileId {
        device: u64::from(info.dwVolumeSerialNumber),
        index: (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow),
        // NTFS puts a sequence number in the index's high bits, bumped when a file
        // record is reused, so the index alone tells a reused record. The creation time
        // is not used here: file systems that do not keep one (and Wine over them)
        // report a time that moves when the file is written.
        created: 0,
    })
}

/// The identity of whatever is at `path` now.
#[cfg(unix)]
pub fn path_id(path: &Path) -> io::Result<FileId> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok(FileId {
        device: m.dev(),
        index: m.ino(),
        created: created_ns(&m),
    })
}

/// The identity of whatever is at `path` now (Windows has it only through a handle).
#[cfg(windows)]
pub fn path_id(path: &Path) -> io::Result<FileId> {
    file_id(&open_shared(path)?)
}

/// The identity of the file at `path`, whose metadata (from `stat`, following links) is
/// `meta`: on Unix that is all it takes, so a scan of thousands of files opens none.
#[cfg(unix)]
pub fn id_of(_path: &Path, meta: &std::fs::Metadata) -> io::Result<FileId> {
    use std::os::unix::fs::MetadataExt;
    Ok(FileId {
        device: meta.dev(),
        index: meta.ino(),
        created: created_ns(meta),
    })
}

/// The identity of the file at `path` (on Windows it takes a handle).
#[cfg(windows)]
pub fn id_of(path: &Path, _meta: &std::fs::Metadata) -> io::Result<FileId> {
    path_id(path)
}

/// Which folder is at `path` now, if one is: a folder that went and came back (a share
/// mounted again) is another one.
#[cfg(unix)]
pub fn folder_id(path: &Path) -> Option<FileId> {
    let m = std::fs::metadata(path).ok().filter(|m| m.is_dir())?;
    id_of(path, &m).ok()
}

/// Which folder is at `path` now, if one is (a folder cannot be opened as a file here,
/// so its creation time tells one from the next).
#[cfg(windows)]
pub fn folder_id(path: &Path) -> Option<FileId> {
    use std::os::windows::fs::MetadataExt;
    let m = std::fs::metadata(path).ok().filter(|m| m.is_dir())?;
    Some(FileId {
        device: 0,
        index: 0,
        created: m.creation_time(),
    })
}
