//! Running one command: wall time, peak memory, and a time limit.
//!
//! On Unix the child runs in its own process group so that a time-out kills everything
//! it started (a shell and its children too). The exit is awaited with `waitid(WNOWAIT)`,
//! which leaves the child unreaped: its pid cannot be reused until the watchdog thread
//! has been stopped, so the watchdog can never signal an unrelated process. `wait4` then
//! reaps it and returns its resource usage, whose `ru_maxrss` is the peak resident set
//! of the child and of every descendant it waited for.

use anyhow::{Context, Result};
use std::process::Command;
use std::time::{Duration, Instant};

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Exited(i32),
    Signaled(i32),
    TimedOut,
}

#[derive(Clone, Copy, Debug)]
pub struct Measured {
    pub wall: Duration,
    /// Peak resident memory in kB, where the platform reports it.
    pub peak_kb: Option<u64>,
    pub end: End,
}

/// Spawns `cmd`, retrying briefly on ETXTBSY: an executable that was just written can
/// still be open for writing in a child that another thread forked at that moment.
fn spawn(cmd: &mut Command) -> Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(26) && tries < 20 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(25));
            }
            r => {
                return r.with_context(|| format!("cannot start {:?}", cmd.get_program()));
            }
        }
    }
}

#[cfg(unix)]
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Measured> {
    use std::os::unix::process::CommandExt;
    use std::sync::mpsc;

    cmd.process_group(0);
    let start = Instant::now();
    let child = spawn(cmd)?;
    let pid = child.id() as libc::pid_t;
    // `child` is never waited on through std: it is reaped below with wait4.
    drop(child);

    let (stop, stopped) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(timeout) {
            // SAFETY: plain syscall; the group leader is not reaped yet, so `-pid` is
            // still the group this child leads.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            true
        } else {
            false
        }
    });

    // SAFETY: siginfo_t is plain data, zero is a valid bit pattern.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointer to a siginfo_t we own.
        let r = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r == 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("waitid");
        }
    }
    let wall = start.elapsed();
    drop(stop);
    let timed_out = watchdog.join().map_err(|_| anyhow::anyhow!("watchdog thread panicked"))?;

    let mut status = 0;
    // SAFETY: rusage is plain data.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4");
        }
    }
    // Linux reports kilobytes, macOS bytes.
    let maxrss = usage.ru_maxrss.max(0) as u64;
    let peak_kb = if cfg!(target_os = "macos") { maxrss / 1024 } else { maxrss };
    let end = if timed_out {
        End::TimedOut
    } else if libc::WIFEXITED(status) {
        End::Exited(libc::WEXITSTATUS(status))
    } else {
        End::Signaled(libc::WTERMSIG(status))
    };
    Ok(Measured { wall, peak_kb: Some(peak_kb), end })
}

/// Portable fallback: no memory figure, and the time limit is polled.
#[cfg(not(unix))]
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Measured> {
    let start = Instant::now();
    let mut child = spawn(cmd)?;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Measured {
                wall: start.elapsed(),
                peak_kb: None,
                end: End::Exited(status.code().unwrap_or(-1)),
            });
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Measured { wall: start.elapsed(), peak_kb: None, end: End::TimedOut });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
