//! Real backends for the workspace's tests, and what to do when one is missing.
//!
//! A test that needs a backend asks for it here: Redis ([`redis_url`], [`RedisServer`]) or
//! Postgres ([`postgres_url`]). When the backend is not available the test
//! prints `skipped: …` and passes, unless `X402_REQUIRE_BACKENDS=1` (set by `scripts/test` and
//! CI), in which case it fails.

pub mod anvil;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Whether missing backends fail tests instead of skipping them.
pub fn backends_required() -> bool {
    std::env::var("X402_REQUIRE_BACKENDS").is_ok_and(|v| v == "1")
}

/// Reports a test that cannot run here: fails under `X402_REQUIRE_BACKENDS=1`, otherwise
/// prints why it was skipped.
///
/// The message goes straight to the process' stderr, past the test harness' output capture,
/// so it shows in a plain `cargo test` run.
pub fn skip(why: &str) {
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
pub fn redis_url() -> Option<String> {
    match std::env::var("X402_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            skip("X402_REDIS_URL not set (scripts/test starts Redis)");
            None
        }
    }
}

/// The shared Postgres database from `X402_POSTGRES_URL` (`scripts/test` starts a throwaway
/// cluster), or `None` (after [`skip`]) when it is not set. Tests sharing it keep apart by
/// each working in a schema of its own ([`unique_identifier`]).
pub fn postgres_url() -> Option<String> {
    match std::env::var("X402_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            skip("X402_POSTGRES_URL not set (scripts/test starts Postgres)");
            None
        }
    }
}

/// A lower-case SQL identifier (`x402_<what>_<pid>_<nanos>_<n>`) no other test, test binary
/// or concurrent run uses: a schema or database name. `what` should be lower-case letters,
/// digits and `_`; anything else becomes `_`.
pub fn unique_identifier(what: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let what: String = what
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    // Postgres keeps the first 63 bytes of an identifier; keep the unique part within them.
    let what = &what[..what.len().min(20)];
    format!(
        "x402_{what}_{}_{}_{n}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// A key prefix no other test, test binary or concurrent run uses.
pub fn unique_prefix(what: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("x402-test:{what}:{}-{nanos}-{n}:", std::process::id())
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// A `redis-server` process owned by one test, on its own loopback port. Without persistence
/// unless started with [`start_persistent`](Self::start_persistent). It is killed when
/// dropped, whatever the test's outcome.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    /// Where a persistent server keeps its append-only file.
    data: Option<PathBuf>,
}

impl RedisServer {
    /// Starts a server on a free port, or returns `None` (after [`skip`]) when `redis-server`
    /// cannot be run here.
    pub fn start() -> Option<Self> {
        Self::start_in(None)
    }

    /// Like [`start`](Self::start), but the server writes every change to an append-only file
    /// in a directory of its own, so its data survives [`kill`](Self::kill) and
    /// [`restart`](Self::restart), as a production Redis configured for durability does.
    pub fn start_persistent() -> Option<Self> {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "x402-redis-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the redis data directory");
        Self::start_in(Some(dir))
    }

    fn start_in(data: Option<PathBuf>) -> Option<Self> {
        let mut last_error = String::new();
        // Another process may take the free port before redis-server binds it: try a few.
        for _ in 0..5 {
            match Self::launch(free_port(), data.clone()) {
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

    /// Starts a server without persistence on `port` and waits until it answers `PING`.
    pub fn start_on(port: u16) -> std::io::Result<Self> {
        Self::launch(port, None)
    }

    fn launch(port: u16, data: Option<PathBuf>) -> std::io::Result<Self> {
        let appendonly = if data.is_some() { "yes" } else { "no" };
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                appendonly,
                "--appendfsync",
                "always",
            ])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(data.clone().unwrap_or_else(std::env::temp_dir))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut server = RedisServer {
            child: Some(child),
            port,
            data,
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
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (as a crash would) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(!ping(self.port), "redis-server still answers after kill");
    }

    /// Starts a new server on the same port after [`kill`](Self::kill).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart() needs kill() first");
        let fresh =
            Self::launch(self.port, self.data.take()).expect("restart redis-server on its port");
        *self = fresh;
    }

    /// Freezes the process (SIGSTOP): connections stay open but nothing is answered, like a
    /// hung server.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
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
        if let Some(dir) = self.data.take() {
            let _ = std::fs::remove_dir_all(dir);
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
