//! Pure parsers of the `/proc` files relwatch reads, one module per file (see proc(5)). They
//! take bytes and never touch the filesystem, so each is tested on real and hostile samples;
//! the readers in [`super::linux`] and [`super::cgroupfs`] do the IO and call them.
//!
//! The non-obvious fact they share: most of what these files hold is chosen by the process
//! they describe (its `comm`, its arguments, its environment, the names in its cgroup path),
//! so no field may be trusted to hold no space, parenthesis, newline or invalid UTF-8.

pub mod cgroup;
pub mod cmdline;
pub mod environ;
pub mod maps;
pub mod mountinfo;
pub mod stat;
pub mod status;
