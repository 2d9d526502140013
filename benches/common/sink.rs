//! Postfix's smtp-sink on a free loopback port (discarding what it receives, counting it), and
//! finding Postfix's tools, which install into sbin.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Looks `name` up on PATH, then in the sbin folders Postfix installs into.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Postfix's smtp-sink on a free loopback port, discarding what it receives and counting it.
pub struct Sink {
    child: std::process::Child,
    pub port: u16,
    counters: PathBuf,
}

impl Sink {
    pub fn start(bin: &Path, dir: &Path) -> Sink {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let counters = dir.join("smtp-sink.out");
        let out = std::fs::File::create(&counters).expect("counter file");
        let mut cmd = Command::new(bin);
        // -c: running counters on stdout; no -M/-n (it would quit before the last reply).
        cmd.arg("-c");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            // Required when run as root: the user it switches to after binding.
            cmd.args(["-u", "root"]);
        }
        let child = cmd
            .arg(format!("127.0.0.1:{port}"))
            .arg("256")
            .stdout(out)
            .spawn()
            .expect("start smtp-sink");
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < std::time::Duration::from_secs(10),
                "smtp-sink did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Sink {
            child,
            port,
            counters,
        }
    }

    /// Messages received so far (the last `mesg=` of its counter line).
    pub fn received(&self) -> usize {
        // The counters are written as each message ends; let the last one land.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let text = std::fs::read_to_string(&self.counters).unwrap_or_default();
        text.rsplit("mesg=")
            .next()
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Its CPU seconds so far (user + system), from /proc.
    pub fn cpu(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // After the command name: state is field 3, utime 14 and stime 15 (1-based).
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
            .sum();
        // SAFETY: sysconf has no preconditions.
        ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }
}

impl Drop for Sink {
    /// Stops it (SIGTERM, then reaped), also when the bench panics.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}
