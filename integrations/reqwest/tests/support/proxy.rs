//! A loopback HTTP/1.1 proxy that loses answers: it forwards a paid request, reads the
//! server's whole answer (so the server has settled), then closes the client's connection
//! without writing anything. It records every payment header it forwards, so it can stand in
//! front of any server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An HTTP/1.1 proxy, one request per connection, that swallows the first `drops` answers to
/// paid requests: it forwards them, reads the server's whole answer, then closes the client's
/// connection without writing anything.
pub struct DropProxy {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Answers swallowed so far.
    pub dropped: Arc<AtomicUsize>,
    /// Payment headers forwarded: (lower-case name, value).
    pub forwarded: Arc<Mutex<Vec<(String, String)>>>,
    _task: tokio::task::JoinHandle<()>,
}

async fn read_request(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buffer.len() < head_end + length {
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    // One request per upstream connection: ask the server to close when done.
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut rewritten: String = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    rewritten.push_str("connection: close\r\n\r\n");
    let mut out = rewritten.into_bytes();
    out.extend_from_slice(&buffer[head_end..]);
    Some(out)
}

pub async fn spawn_drop_proxy(upstream: SocketAddr, drops: usize) -> DropProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dropped = Arc::new(AtomicUsize::new(0));
    let forwarded = Arc::new(Mutex::new(Vec::new()));
    let remaining = Arc::new(AtomicUsize::new(drops));
    let task = tokio::spawn({
        let (dropped, forwarded) = (dropped.clone(), forwarded.clone());
        async move {
            loop {
                let (mut client, _) = listener.accept().await.unwrap();
                let (dropped, remaining, forwarded) =
                    (dropped.clone(), remaining.clone(), forwarded.clone());
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut client).await else {
                        return;
                    };
                    let head = String::from_utf8_lossy(&request).into_owned();
                    let payment = head.lines().find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        let name = name.trim().to_ascii_lowercase();
                        (name == "payment-signature" || name == "x-payment")
                            .then(|| (name, value.trim().to_owned()))
                    });
                    let paid = payment.is_some();
                    if let Some(payment) = payment {
                        forwarded.lock().unwrap().push(payment);
                    }
                    let mut server = TcpStream::connect(upstream).await.unwrap();
                    server.write_all(&request).await.unwrap();
                    let mut answer = Vec::new();
                    server.read_to_end(&mut answer).await.unwrap();
                    let drop_this = paid
                        && remaining
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                            .is_ok();
                    if drop_this {
                        dropped.fetch_add(1, Ordering::SeqCst);
                        return; // the server answered; the client never hears it
                    }
                    let _ = client.write_all(&answer).await;
                    let _ = client.shutdown().await;
                });
            }
        }
    });
    DropProxy {
        url,
        dropped,
        forwarded,
        _task: task,
    }
}
