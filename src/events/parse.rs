//! The pure parser of the kernel's process events (`linux/cn_proc.h`): one netlink datagram
//! in, the events it carries out. Nothing here reads the host.
//!
//! A datagram holds netlink messages (`nlmsghdr`, 16 bytes, each padded to 4), each holding a
//! connector message (`cn_msg`, 20 bytes, `id = {CN_IDX_PROC, CN_VAL_PROC}`) whose payload is
//! a `proc_event`: `what` (u32), `cpu` (u32), `timestamp_ns` (u64, `ktime_get_ns`: monotonic
//! since boot), then the event's own fields. All in the host's byte order. Events other than
//! fork, exec and exit (uid, gid, sid, comm, ptrace, coredump) are skipped; a message that is
//! short or not from the process connector is skipped too, never trusted.

/// `NLMSG_HDRLEN`.
const NLMSG_HDR: usize = 16;
/// `sizeof(struct cn_msg)`.
const CN_MSG: usize = 20;
/// `what`, `cpu`, `timestamp_ns`.
const EVENT_HDR: usize = 16;
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_OVERRUN: u16 = 4;

const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// One process event. Pids are as the kernel gives them: `pid` is the thread, `tgid` the
/// process; a thread's fork or exit has `pid != tgid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Fork {
        at_ns: u64,
        parent_tgid: i32,
        child_pid: i32,
        child_tgid: i32,
    },
    Exec {
        at_ns: u64,
        pid: i32,
        tgid: i32,
    },
    Exit {
        at_ns: u64,
        pid: i32,
        tgid: i32,
        /// The wait status: `(code << 8)` for an exit, the signal number for a kill.
        status: u32,
    },
    /// The kernel said its queue overflowed (`NLMSG_OVERRUN`): events were lost.
    Overrun,
}

impl Event {
    /// A process (not a thread) started, ran a program or ended.
    pub fn is_process(&self) -> bool {
        match *self {
            Event::Fork {
                child_pid,
                child_tgid,
                ..
            } => child_pid == child_tgid,
            Event::Exec { pid, tgid, .. } | Event::Exit { pid, tgid, .. } => pid == tgid,
            Event::Overrun => true,
        }
    }
}

/// How a process ended, from its wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ended {
    Code(u8),
    Signal(u8),
}

impl Ended {
    pub fn of(status: u32) -> Ended {
        let sig = (status & 0x7f) as u8;
        if sig == 0 {
            Ended::Code(((status >> 8) & 0xff) as u8)
        } else {
            Ended::Signal(sig)
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Every event in one datagram, in order, appended to `out`.
pub fn parse(datagram: &[u8], out: &mut Vec<Event>) {
    let mut rest = datagram;
    while let Some(len) = u32_at(rest, 0) {
        let len = len as usize;
        if len < NLMSG_HDR || len > rest.len() {
            return;
        }
        let msg = &rest[..len];
        match u16_at(msg, 4) {
            Some(NLMSG_OVERRUN) => out.push(Event::Overrun),
            Some(NLMSG_ERROR) => {}
            _ => {
                if let Some(e) = connector(&msg[NLMSG_HDR..]) {
                    out.push(e);
                }
            }
        }
        let padded = (len + 3) & !3;
        rest = rest.get(padded..).unwrap_or_default();
    }
}

/// The event in one connector message, if it is a fork, exec or exit of the process connector.
fn connector(cn: &[u8]) -> Option<Event> {
    if u32_at(cn, 0)? != CN_IDX_PROC || u32_at(cn, 4)? != CN_VAL_PROC {
        return None;
    }
    let payload = usize::from(u16_at(cn, 16)?);
    let ev = cn.get(CN_MSG..CN_MSG + payload)?;
    let what = u32_at(ev, 0)?;
    let at_ns = u64_at(ev, 8)?;
    let d = ev.get(EVENT_HDR..)?;
    match what {
        PROC_EVENT_FORK => Some(Event::Fork {
            at_ns,
            parent_tgid: i32_at(d, 4)?,
            child_pid: i32_at(d, 8)?,
            child_tgid: i32_at(d, 12)?,
        }),
        PROC_EVENT_EXEC => Some(Event::Exec {
            at_ns,
            pid: i32_at(d, 0)?,
            tgid: i32_at(d, 4)?,
        }),
        PROC_EVENT_EXIT => Some(Event::Exit {
            at_ns,
            pid: i32_at(d, 0)?,
            tgid: i32_at(d, 4)?,
            status: u32_at(d, 8)?,
        }),
        _ => None,
    }
}

/// The subscription message: `PROC_CN_MCAST_LISTEN` (or `_IGNORE`) to the process connector.
pub fn subscribe_message(listen: bool) -> [u8; NLMSG_HDR + CN_MSG + 4] {
    let mut m = [0u8; NLMSG_HDR + CN_MSG + 4];
    let total = m.len() as u32;
    m[0..4].copy_from_slice(&total.to_ne_bytes());
    m[4..6].copy_from_slice(&3u16.to_ne_bytes()); // NLMSG_DONE
    m[16..20].copy_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m[20..24].copy_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m[32..34].copy_from_slice(&4u16.to_ne_bytes());
    let op: u32 = if listen { 1 } else { 2 };
    m[36..40].copy_from_slice(&op.to_ne_bytes());
    m
}
