//! Real backends for tests, and what to do when one is missing.
//!
//! A test that needs a backend asks for it here. When the backend is not available the test
//! prints `skipped: …` and passes, unless `X402_REQUIRE_BACKENDS=1` (set by `scripts/test` and
//! CI), in which case it fails.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Whether missing backends fail tests instead of skipping them.
pub(crate) fn backends_required() -> bool {
    std::env::var("X402_REQUIRE_BACKENDS").is_ok_and(|v| v == "1")
}

/// Reports a test that cannot run here: fails under `X402_REQUIRE_BACKENDS=1`, otherwise
/// prints why it was skipped.
///
/// The message goes straight to the process' stderr, past the test harness' output capture,
/// so it shows in a plain `cargo test` run.
pub(crate) fn skip(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    assert!(
        !backends_required(),
        "{test}: X402_REQUIRE_BACKENDS=1 but {why}"
    );
    let _ = writeln!(std::io::stderr(), "skipped: {test}: {why}");
}

/// The shared Redis from `X402_REDIS_URL`, or `None` (after [`skip`]) when it is not set.
pub(crate) fn redis_url() -> Option<String> {
    match std::env::var("X402_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            skip("X402_REDIS_URL not set (scripts/test starts Redis)");
            None
        }
    }
}

/// A key prefix no other test, test binary or concurrent run uses.
pub(crate) fn unique_prefix(what: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("x402-test:{what}:{}-{nanos}-{n}:", std::process::id())
}

/// A loopback port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// A `redis-server` process owned by one test, on its own loopback port, without
/// persistence. It is killed when dropped, whatever the test's outcome.
#[derive(Debug)]
pub(crate) struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts a server on a free port, or returns `None` (after [`skip`]) when `redis-server`
    /// cannot be run here.
    pub(crate) fn start() -> Option<Self> {
        let mut last_error = String::new();
        // Another process may take the free port before redis-server binds it: try a few.
        for _ in 0..5 {
            match Self::start_on(free_port()) {
                Ok(server) => return Some(server),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    skip("redis-server is not installed (scripts/test installs it)");
                    return None;
                }
                Err(error) => last_error = error.to_string(),
            }
        }
        panic!("could not start redis-server: {last_error}");
    }

    /// Starts a server on `port` and waits until it answers `PING`.
    pub(crate) fn start_on(port: u16) -> std::io::Result<Self> {
        let dir = std::env::temp_dir();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(PathBuf::from(&dir))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut server = RedisServer {
            child: Some(child),
            port,
        };
        server.wait_until_ready()?;
        Ok(server)
    }

    fn wait_until_ready(&mut self) -> std::io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                return Err(std::io::Error::other(format!(
                    "redis-server on port {} exited with {status}",
                    self.port
                )));
            }
            if ping(self.port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "redis-server on port {} did not answer PING",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:<port>/`
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (as a crash would) and waits until it is gone.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(!ping(self.port), "redis-server still answers after kill");
    }

    /// Starts a new server on the same port after [`kill`](Self::kill).
    pub(crate) fn restart(&mut self) {
        assert!(self.child.is_none(), "restart() needs kill() first");
        let fresh = Self::start_on(self.port).expect("restart redis-server on its port");
        *self = fresh;
    }

    /// Freezes the process (SIGSTOP): connections stay open but nothing is answered, like a
    /// hung server.
    pub(crate) fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused process run again (SIGCONT).
    pub(crate) fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("server is running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} failed: {status}");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL also ends a stopped process.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether a Redis on `port` answers `PING` within a short time.
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let timeout = Some(Duration::from_millis(500));
    if stream.set_read_timeout(timeout).is_err() || stream.set_write_timeout(timeout).is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}
