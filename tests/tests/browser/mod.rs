//! Headless Chromium driven over the Chrome DevTools Protocol: just the handful of commands
//! the paywall test needs, on one blocking WebSocket (flattened target sessions).

pub(crate) mod wallet;

use std::collections::VecDeque;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use self::wallet::TestWallet;

/// Where `scripts/test` (and Debian's `chromium` package) put the browser.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// The paywall's status line when it reports an error, else `false`.
pub(crate) const PAYWALL_ERROR: &str = "(() => { const s = document.getElementById('x402-status'); \
                                        return Boolean(s) && s.className === 'x402-error' && s.textContent; })()";

/// A headless Chromium process with a fresh profile, and a DevTools connection to it. Killed
/// (and its profile removed) when dropped.
pub(crate) struct Chromium {
    child: Child,
    profile: PathBuf,
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Events read while waiting for a command's answer, oldest first.
    events: VecDeque<Value>,
}

impl Chromium {
    /// Starts Chromium (`X402_CHROMIUM`, else `/usr/bin/chromium`), or returns `None` after
    /// [`x402_test_support::skip`] when it is not installed.
    pub(crate) fn launch() -> Option<Self> {
        let binary = std::env::var("X402_CHROMIUM").unwrap_or_else(|_| DEFAULT_CHROMIUM.into());
        if !Path::new(&binary).exists() {
            x402_test_support::skip(&format!(
                "{binary} is not installed (scripts/test installs Debian's chromium)"
            ));
            return None;
        }
        static N: AtomicU64 = AtomicU64::new(0);
        let profile = std::env::temp_dir().join(format!(
            "x402-chromium-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("create the browser profile folder");
        let log = std::fs::File::create(profile.join("chromium.log")).expect("browser log file");
        // The flags this machine needs (no sandbox as root; nothing that phones home, since
        // only loopback is reachable), a fresh profile, and DevTools on a free loopback port.
        let child = Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-default-apps",
                "--mute-audio",
                "--hide-scrollbars",
                "--window-size=820,940",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {binary}: {e}"));
        let mut browser_guard = KillOnDrop(Some(child), profile.clone());
        // Chromium writes its DevTools port and browser path here once it listens.
        let active = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let (port, path) = loop {
            if let Ok(text) = std::fs::read_to_string(&active)
                && let Some((port, path)) = text.split_once('\n')
                && !path.trim().is_empty()
            {
                break (port.trim().to_owned(), path.trim().to_owned());
            }
            if let Some(child) = browser_guard.0.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(profile.join("chromium.log")).unwrap_or_default();
                panic!("chromium exited with {status} before listening:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "chromium did not open its DevTools port within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let url = format!("ws://127.0.0.1:{port}{path}");
        let (socket, _) = tungstenite::connect(url.as_str())
            .unwrap_or_else(|e| panic!("connect to DevTools at {url}: {e}"));
        let child = browser_guard.0.take().expect("the browser process");
        Some(Chromium {
            child,
            profile,
            socket,
            next_id: 0,
            events: VecDeque::new(),
        })
    }

    /// The Chromium version string, e.g. `Chrome/156.0.8078.114`.
    pub(crate) fn version(&mut self) -> String {
        let version = self.call(None, "Browser.getVersion", json!({}));
        version["product"].as_str().unwrap_or_default().to_owned()
    }

    fn set_read_timeout(&mut self, timeout: Duration) {
        if let MaybeTlsStream::Plain(stream) = self.socket.get_mut() {
            let _ = stream.set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
        }
    }

    /// Reads one message, or `None` when nothing arrives within `timeout`.
    fn read(&mut self, timeout: Duration) -> Option<Value> {
        self.set_read_timeout(timeout);
        loop {
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    return Some(serde_json::from_str(&text).expect("DevTools sends JSON"));
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None;
                }
                Err(e) => panic!("the DevTools connection failed: {e}"),
            }
        }
    }

    /// Sends a command (to a page's `session`, or to the browser) and waits for its answer;
    /// events that arrive meanwhile are kept for [`next_event`](Self::next_event).
    pub(crate) fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.try_call(session, method, params)
            .unwrap_or_else(|error| panic!("{method} failed: {error}"))
    }

    /// Like [`call`](Self::call), returning DevTools' error instead of panicking.
    pub(crate) fn try_call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .expect("send a DevTools command");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{method}: no answer from DevTools in 30 s");
            let Some(message) = self.read(left) else {
                continue;
            };
            if message["id"].as_u64() == Some(id) {
                return match message.get("error") {
                    Some(error) => Err(error.clone()),
                    None => Ok(message["result"].clone()),
                };
            }
            if message.get("method").is_some() {
                self.events.push_back(message);
            }
        }
    }

    /// The next event, waiting up to `timeout`.
    pub(crate) fn next_event(&mut self, timeout: Duration) -> Option<Value> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let message = self.read(left)?;
            if message.get("method").is_some() {
                return Some(message);
            }
        }
    }

    /// Opens a new tab with `wallet` injected before any page script (or no wallet at all),
    /// and loads `url` in it.
    pub(crate) fn open(&mut self, url: &str, wallet: Option<&TestWallet>) -> Page {
        let target = self.call(None, "Target.createTarget", json!({ "url": "about:blank" }));
        let target = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
        );
        let session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned();
        let s = Some(session.as_str());
        self.call(s, "Page.enable", json!({}));
        self.call(s, "Runtime.enable", json!({}));
        if let Some(wallet) = wallet {
            self.call(
                s,
                "Runtime.addBinding",
                json!({ "name": wallet::SIGN_BINDING }),
            );
            self.call(
                s,
                "Page.addScriptToEvaluateOnNewDocument",
                json!({ "source": wallet.script() }),
            );
        }
        let page = Page { session, target };
        self.navigate(&page, url);
        page
    }

    /// Loads `url` in the page and waits for its `load` event.
    pub(crate) fn navigate(&mut self, page: &Page, url: &str) {
        let s = Some(page.session.as_str());
        let navigated = self.call(s, "Page.navigate", json!({ "url": url }));
        assert!(
            navigated.get("errorText").is_none(),
            "navigating to {url}: {navigated}"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{url} did not finish loading in 30 s");
            if let Some(event) = self.next_event(left)
                && event["sessionId"] == page.session
                && event["method"] == "Page.loadEventFired"
            {
                return;
            }
        }
    }

    /// Evaluates an expression in the page (awaiting a promise) and returns its JSON value.
    pub(crate) fn eval(&mut self, page: &Page, expression: &str) -> Value {
        let result = self.call(
            Some(&page.session),
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("evaluating {expression:?} threw: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Clicks the centre of the element with this id, as a mouse would.
    pub(crate) fn click(&mut self, page: &Page, id: &str) {
        let rect = self.eval(
            page,
            &format!(
                "(() => {{ const r = document.getElementById({}).getBoundingClientRect(); \
                 return {{ x: r.x + r.width / 2, y: r.y + r.height / 2 }}; }})()",
                json!(id)
            ),
        );
        let (x, y) = (rect["x"].clone(), rect["y"].clone());
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                Some(&page.session),
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            );
        }
    }

    /// Answers the wallet's signing requests and watches the page until `condition` (a JS
    /// expression) is truthy; fails on a page error, an alert, after `timeout`, or, when
    /// `expect_error` is false, as soon as the paywall reports an error.
    pub(crate) fn drive_until(
        &mut self,
        page: &Page,
        wallet: Option<&TestWallet>,
        condition: &str,
        expect_error: bool,
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(event) = self.next_event(Duration::from_millis(50)) {
                if event["sessionId"] != page.session {
                    continue;
                }
                let params = &event["params"];
                match event["method"].as_str().unwrap_or_default() {
                    "Runtime.bindingCalled" if params["name"] == wallet::SIGN_BINDING => {
                        let wallet = wallet.expect("a wallet was injected");
                        let payload = params["payload"].as_str().unwrap_or_default();
                        let answer = wallet.answer(payload);
                        self.eval(page, &answer);
                    }
                    "Runtime.exceptionThrown" => {
                        panic!("the page threw: {}", params["exceptionDetails"]);
                    }
                    "Page.javascriptDialogOpening" => {
                        panic!("the page opened a dialog: {params}");
                    }
                    "Runtime.consoleAPICalled" => {
                        let args: Vec<String> = params["args"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|a| a["value"].to_string())
                            .collect();
                        eprintln!("[page console.{}] {}", params["type"], args.join(" "));
                    }
                    _ => {}
                }
            }
            let value = self.eval(page, condition);
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!("")
                && value != json!(0);
            if truthy {
                return value;
            }
            if !expect_error {
                let error = self.eval(page, PAYWALL_ERROR);
                assert!(
                    error.is_null() || error == json!(false),
                    "the paywall reported an error while waiting for {condition}: {error}"
                );
            }
            if Instant::now() > deadline {
                let status = self.eval(
                    page,
                    "(document.getElementById('x402-status') || {}).textContent || document.body.innerText",
                );
                panic!("waited {timeout:?} for {condition}; the page says: {status}");
            }
        }
    }

    /// Saves a PNG of what the page shows.
    pub(crate) fn screenshot(&mut self, page: &Page, path: &Path) {
        let shot = self.call(
            Some(&page.session),
            "Page.captureScreenshot",
            json!({ "format": "png" }),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create the screenshot folder");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// Closes a tab.
    pub(crate) fn close(&mut self, page: Page) {
        let _ = self.try_call(
            None,
            "Target.closeTarget",
            json!({ "targetId": page.target }),
        );
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.socket.close(None);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Kills a browser that failed to start properly.
struct KillOnDrop(Option<Child>, PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
}

/// A tab, addressed by its DevTools session.
#[derive(Debug)]
pub(crate) struct Page {
    session: String,
    target: String,
}

impl Page {
    /// The session to send this tab's commands to.
    pub(crate) fn session(&self) -> Option<&str> {
        Some(&self.session)
    }
}
