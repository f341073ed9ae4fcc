//! The kernel's process events connector (`NETLINK_CONNECTOR`, `CN_IDX_PROC`): a datagram
//! socket on which the kernel announces every fork, exec and exit on the host, exits with
//! their wait status. The agent listens to it so it hears a worker die the moment it does
//! instead of inferring it from two scans. See `linux/cn_proc.h` and connector(4).
//!
//! It needs root (CAP_NET_ADMIN), a kernel built with `CONFIG_PROC_EVENTS` and the host's
//! pid and user namespaces (the kernel ignores subscriptions from a container's, and numbers
//! the pids in its events as the host does); where one is missing [`Connector::open`] says why and the agent falls back to its scans. Setting
//! `RELWATCH_NO_PROC_EVENTS=1` in the agent's environment also makes it fall back (for tests
//! and for hosts where the feed misbehaves). The socket is non-blocking: [`Connector::recv`]
//! drains what is queued and never waits. `ENOBUFS` on a read means the kernel dropped events
//! because we read too slowly; the caller rescans. Nothing here decides anything.

pub mod parse;

pub use parse::{Ended, Event};
use rustix::net::{netlink, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// The variable that turns the connector off (the agent then scans as it did before).
pub const DISABLE_VAR: &str = "RELWATCH_NO_PROC_EVENTS";

/// Room for the kernel's queue: a storm of a few thousand events between two reads.
const RCVBUF: usize = 4 << 20;

/// What a read found.
pub enum Recv {
    /// Events were queued (possibly none).
    Events,
    /// The kernel dropped events (`ENOBUFS`): what we know is incomplete.
    Lost,
}

pub struct Connector {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Connector {
    /// Open, bind to the process connector's group and subscribe. The error says why the
    /// feed is unavailable, in words for the log.
    pub fn open() -> Result<Connector, String> {
        if std::env::var_os(DISABLE_VAR).is_some_and(|v| !v.is_empty() && v != "0") {
            return Err(format!("{DISABLE_VAR} is set"));
        }
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            Some(netlink::CONNECTOR),
        )
        .map_err(|e| format!("cannot open a NETLINK_CONNECTOR socket: {e}"))?;
        // The group of CN_IDX_PROC is 1.
        rustix::net::bind(&fd, &netlink::SocketAddrNetlink::new(0, 1)).map_err(|e| {
            format!("cannot join the process events group: {e} (needs root or CAP_NET_ADMIN)")
        })?;
        // Best effort: a bigger queue drops fewer events in a storm. FORCE needs CAP_NET_ADMIN.
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(&fd, RCVBUF).is_err() {
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&fd, RCVBUF);
        }
        rustix::net::send(&fd, &parse::subscribe_message(true), SendFlags::empty()).map_err(
            |e| format!("cannot subscribe to process events: {e} (needs root and a kernel with CONFIG_PROC_EVENTS)"),
        )?;
        initial_namespaces()?;
        Ok(Connector {
            fd,
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// Read every queued datagram into `out`, without waiting.
    pub fn recv(&mut self, out: &mut Vec<Event>) -> std::io::Result<Recv> {
        let mut lost = false;
        loop {
            match rustix::net::recv(&self.fd, &mut self.buf[..], RecvFlags::empty()) {
                Ok((n, _)) => parse::parse(&self.buf[..n.min(self.buf.len())], out),
                Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::NOBUFS) => lost = true,
                Err(e) => return Err(e.into()),
            }
        }
        if out.iter().any(|e| matches!(e, Event::Overrun)) {
            lost = true;
        }
        Ok(if lost { Recv::Lost } else { Recv::Events })
    }
}

/// The kernel takes subscriptions only from its initial pid and user namespaces, and numbers
/// the processes in its events as the host does: in a container (its own pid namespace) the
/// socket opens and stays silent, or carries pids that mean other processes there. Checked
/// last, so that a missing capability is named first.
fn initial_namespaces() -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    // PROC_PID_INIT_INO and PROC_USER_INIT_INO of include/linux/proc_ns.h: fixed numbers.
    for (ns, initial) in [("pid", 0xEFFF_FFFC_u64), ("user", 0xEFFF_FFFD)] {
        let path = format!("/proc/self/ns/{ns}");
        let ino = std::fs::metadata(&path)
            .map_err(|e| format!("cannot tell the {ns} namespace ({path}: {e})"))?
            .ino();
        if ino != initial {
            return Err(format!(
                "in a {ns} namespace other than the host's (a container): the kernel sends process events only to its initial namespaces; run the agent on the host"
            ));
        }
    }
    Ok(())
}

impl AsFd for Connector {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests;
