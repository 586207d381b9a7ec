//! Telling systemd how the agent is doing: the `sd_notify` readiness protocol.
//!
//! The unit (`packaging/systemd/protowatch.service`) is `Type=notify`, so systemd counts
//! the agent as started only once it says `READY=1` — after the state database is open
//! and the watchers run, not when the process merely exists — and knows when a reload
//! (`RELOADING=1` … `READY=1`) or a stop (`STOPPING=1`) is under way.
//!
//! The protocol is one datagram of `KEY=value` lines to the socket named by
//! `$NOTIFY_SOCKET`: a path, or on Linux an abstract name written with a leading `@`.
//! That is a dozen lines over the standard library, so it is written here rather than
//! taken from a crate: we need neither watchdog keep-alives nor descriptor passing, and
//! the code stays next to the one place that has to get the abstract names right.
//!
//! Notifying is best effort by design. Outside systemd (a terminal, Windows, a test)
//! there is no socket and [`notify`] does nothing; a socket that refuses the datagram
//! must not stop the agent, so the failure is only logged at debug level.

use std::ffi::OsStr;

/// Why a notification was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The address is neither an absolute path nor (on Linux) an `@` abstract name.
    #[error("unsupported notify socket address {0:?}")]
    Address(String),
    #[error("cannot send to the notify socket {address:?}: {source}")]
    Io {
        address: String,
        source: std::io::Error,
    },
}

/// Sends `state` (e.g. `"READY=1"`, `"RELOADING=1"`, `"STOPPING=1"`, or several such
/// lines) to the service manager, when there is one.
pub fn notify(state: &str) {
    let Some(address) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = notify_to(&address, state) {
        tracing::debug!(error = %e, state, "systemd notification not sent");
    }
}

/// Sends `state` to the notify socket at `address` (the value `$NOTIFY_SOCKET` holds).
#[cfg(unix)]
pub fn notify_to(address: &OsStr, state: &str) -> Result<(), NotifyError> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixDatagram;

    let bytes = address.as_bytes();
    let io = |source| NotifyError::Io {
        address: address.to_string_lossy().into_owned(),
        source,
    };
    let socket = UnixDatagram::unbound().map_err(io)?;
    let sent = match bytes.first() {
        Some(b'/') => socket.send_to(state.as_bytes(), address),
        #[cfg(target_os = "linux")]
        Some(b'@') if bytes.len() > 1 => {
            use std::os::linux::net::SocketAddrExt;
            let addr =
                std::os::unix::net::SocketAddr::from_abstract_name(&bytes[1..]).map_err(io)?;
            socket.send_to_addr(state.as_bytes(), &addr)
        }
        _ => return Err(NotifyError::Address(address.to_string_lossy().into_owned())),
    };
    match sent {
        Ok(n) if n == state.len() => Ok(()),
        Ok(_) => Err(io(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            "the datagram was cut short",
        ))),
        Err(e) => Err(io(e)),
    }
}

/// Windows has no service manager of this kind (its service control manager is spoken to
/// in `cli/service.rs`); any address is refused, so [`notify`] stays silent.
#[cfg(not(unix))]
pub fn notify_to(address: &OsStr, _state: &str) -> Result<(), NotifyError> {
    Err(NotifyError::Address(address.to_string_lossy().into_owned()))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;

    use super::*;

    fn receive(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).expect("a datagram within 5 s");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn a_path_socket_receives_the_state_as_one_datagram() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let manager = UnixDatagram::bind(&path).unwrap();

        notify_to(path.as_os_str(), "READY=1").unwrap();
        notify_to(path.as_os_str(), "RELOADING=1\nMONOTONIC_USEC=1").unwrap();

        assert_eq!(receive(&manager), "READY=1");
        assert_eq!(receive(&manager), "RELOADING=1\nMONOTONIC_USEC=1");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_abstract_name_with_at_reaches_the_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::SocketAddr;

        let name = format!(
            "protowatch-test-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        );
        let manager =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();

        notify_to(OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();

        assert_eq!(receive(&manager), "STOPPING=1");
    }

    #[test]
    fn a_missing_socket_or_a_relative_address_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nobody-listens");
        assert!(matches!(
            notify_to(missing.as_os_str(), "READY=1"),
            Err(NotifyError::Io { .. })
        ));
        assert!(matches!(
            notify_to(OsStr::new("relative/notify"), "READY=1"),
            Err(NotifyError::Address(_))
        ));
        assert!(matches!(
            notify_to(OsStr::new(""), "READY=1"),
            Err(NotifyError::Address(_))
        ));
        assert!(matches!(
            notify_to(OsStr::new("@"), "READY=1"),
            Err(NotifyError::Address(_))
        ));
    }
}
