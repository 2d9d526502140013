//! Runs a child process and measures it: wall time, CPU time (user + system) and its own peak
//! RSS.
//!
//! Why GNU time in between: a child spawned straight from the bench (posix_spawn shares the
//! parent's memory until exec) inherits the bench's peak RSS in its `ru_maxrss`, and the bench
//! holds every generated feed (400 MB at 10x). `/usr/bin/time` is a small process that forks and
//! execs the command, so what it reports is the command's own peak. Without it, wait4's figure
//! is used and flagged (`rss_own=false`).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// What a finished child used.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub wall: f64,
    pub cpu: f64,
    pub rss_kb: i64,
    /// Whether `rss_kb` is the child's own (through GNU time) or may include the bench's.
    pub rss_own: bool,
    pub stdout: String,
    pub status: i32,
}

impl Measured {
    pub fn rss_mb(&self) -> f64 {
        self.rss_kb as f64 / 1024.0
    }
}

const GNU_TIME: &str = "/usr/bin/time";

/// Runs `argv` in `dir` with `envs`, stdout captured, stderr inherited.
// The child is reaped with wait4 (not Child::wait) to read its resource usage.
#[allow(clippy::zombie_processes)]
pub fn run(argv: &[String], dir: &Path, envs: &[(&str, String)]) -> Measured {
    let report = tempfile::NamedTempFile::new().expect("time report file");
    let gnu_time = Path::new(GNU_TIME).is_file();
    let mut cmd = if gnu_time {
        let mut c = Command::new(GNU_TIME);
        c.arg("-f")
            .arg("%e %U %S %M %x")
            .arg("-o")
            .arg(report.path())
            .arg("--")
            .args(argv);
        c
    } else {
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    };
    cmd.current_dir(dir).stdout(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("start {argv:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout {
        // Read before reaping: the pipe must not fill up.
        let _ = out.read_to_string(&mut stdout);
    }
    let (status, usage) = reap(pid);
    let wall = started.elapsed().as_secs_f64();
    let mut measured = Measured {
        wall,
        cpu: cpu_secs(&usage),
        rss_kb: usage.ru_maxrss,
        rss_own: false,
        stdout,
        status,
    };
    if gnu_time {
        let text = std::fs::read_to_string(report.path()).unwrap_or_default();
        // "Command exited with non-zero status N" may come first; the format line is last.
        let fields: Vec<&str> = text
            .lines()
            .last()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        if let [_, user, sys, rss, code] = fields[..] {
            let f = |s: &str| s.parse::<f64>().unwrap_or(0.0);
            measured.cpu = f(user) + f(sys);
            measured.rss_kb = rss.parse().unwrap_or(0);
            measured.rss_own = true;
            measured.status = code.parse().unwrap_or(-1);
        }
    }
    measured
}

/// Reaps our own child with wait4 for its resource usage.
pub fn reap(pid: libc::pid_t) -> (i32, libc::rusage) {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child's pid with valid pointers.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 failed");
    (status, usage)
}

pub fn cpu_secs(usage: &libc::rusage) -> f64 {
    let t = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

/// A process's peak resident set (VmHWM, KiB) from /proc; `None` once it is gone.
pub fn vm_hwm_kb(pid: &str) -> Option<i64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resets this process's peak RSS to its current RSS (Linux: `5` into clear_refs), so the next
/// [`vm_hwm_kb`] is the peak of what runs in between. Returns false where that is refused.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// This process's CPU seconds so far.
pub fn self_cpu() -> f64 {
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage of this process into a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    cpu_secs(&usage)
}
