//! The HTTP facilitator client against a small HTTP/1.1 server on loopback that records what it
//! receives: bodies and headers on the wire, connection reuse, redirects (followed through
//! reqwest from then on), and how each kind of failure is classified.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use x402_protocol::facilitator::FacilitatorRequest;
use x402_runtime::Facilitator as _;
use x402_runtime::FacilitatorError;
use x402_runtime::facilitator::HttpFacilitator;

const PAYER: &str = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";

fn request() -> FacilitatorRequest {
    let requirements = serde_json::json!({
        "scheme": "exact", "network": "eip155:84532", "amount": "10000",
        "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "maxTimeoutSeconds": 300,
        "extra": {"name": "USDC", "version": "2"},
    });
    serde_json::from_value(serde_json::json!({
        "x402Version": 2,
        "paymentPayload": {
            "x402Version": 2,
            "accepted": requirements,
            "payload": {"signature": "0x01", "authorization": {
                "from": PAYER,
                "to": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "value": "10000",
                "validAfter": "0", "validBefore": "1800000000",
                "nonce": "0x0101010101010101010101010101010101010101010101010101010101010101",
            }},
        },
        "paymentRequirements": requirements,
    }))
    .unwrap()
}

/// A request as the server read it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    /// Lower-case header names.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    connection: usize,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the server answers for a path: status, extra headers, body, and a delay first.
type Answer = (u16, Vec<(String, String)>, Vec<u8>, Duration);

#[derive(Default)]
struct Log {
    seen: Vec<Seen>,
    connections: usize,
}

struct Server {
    url: String,
    log: Arc<Mutex<Log>>,
}

impl Server {
    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().seen.clone()
    }
    fn connections(&self) -> usize {
        self.log.lock().unwrap().connections
    }
}

fn ok_json(body: &str) -> Answer {
    (200, Vec::new(), body.as_bytes().to_vec(), Duration::ZERO)
}

fn valid() -> Answer {
    ok_json(&format!(r#"{{"isValid":true,"payer":"{PAYER}"}}"#))
}

fn settled() -> Answer {
    ok_json(&format!(
        r#"{{"success":true,"payer":"{PAYER}","transaction":"0x{}","network":"eip155:84532"}}"#,
        "ab".repeat(32)
    ))
}

/// Serves keep-alive HTTP/1.1, answering each path with `answer(path)`.
async fn serve(answer: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Log::default()));
    let answer = Arc::new(answer);
    let shared = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let connection = {
                let mut log = shared.lock().unwrap();
                log.connections += 1;
                log.connections
            };
            let (log, answer) = (shared.clone(), answer.clone());
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let end = loop {
                        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            break end;
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                    let mut lines = head.lines();
                    let mut first = lines.next().unwrap_or("").split(' ');
                    let method = first.next().unwrap_or("").to_owned();
                    let path = first.next().unwrap_or("").to_owned();
                    let headers: Vec<(String, String)> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    let length = headers
                        .iter()
                        .find(|(n, _)| n == "content-length")
                        .and_then(|(_, v)| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    while buffer.len() < end + 4 + length {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = buffer[end + 4..end + 4 + length].to_vec();
                    buffer.drain(..end + 4 + length);
                    let (status, extra, reply, delay) = answer(&path);
                    log.lock().unwrap().seen.push(Seen {
                        method,
                        path,
                        headers,
                        body,
                        connection,
                    });
                    tokio::time::sleep(delay).await;
                    let mut response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                        reply.len()
                    );
                    for (name, value) in extra {
                        response.push_str(&format!("{name}: {value}\r\n"));
                    }
                    response.push_str("\r\n");
                    let mut bytes = response.into_bytes();
                    bytes.extend_from_slice(&reply);
                    if stream.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Server { url, log }
}

fn standard(path: &str) -> Answer {
    match path {
        "/verify" => valid(),
        "/settle" => settled(),
        "/supported" => {
            ok_json(r#"{"kinds":[{"x402Version":2,"scheme":"exact","network":"eip155:84532"}]}"#)
        }
        _ => (404, Vec::new(), b"{}".to_vec(), Duration::ZERO),
    }
}

#[tokio::test]
async fn posts_the_requests_json_with_its_headers_on_one_connection() {
    for via_reqwest in [false, true] {
        let server = serve(standard).await;
        let facilitator = HttpFacilitator::builder(format!("{}/", server.url))
            .header("authorization", "Bearer sesame")
            .unwrap()
            .via_reqwest(via_reqwest)
            .build()
            .unwrap();
        let request = request();
        for _ in 0..3 {
            let verified = facilitator.verify(&request).await.unwrap();
            assert!(verified.is_valid);
            assert_eq!(verified.payer.as_deref(), Some(PAYER));
            let settled = facilitator.settle(&request.clone()).await.unwrap();
            assert!(settled.success);
            assert_eq!(settled.network, "eip155:84532");
        }
        let supported = facilitator.supported().await.unwrap();
        assert_eq!(supported.kinds.len(), 1);

        let seen = server.seen();
        let paths: Vec<_> = seen.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/verify",
                "/settle",
                "/verify",
                "/settle",
                "/verify",
                "/settle",
                "/supported"
            ],
            "via reqwest: {via_reqwest}"
        );
        let expected = serde_json::to_vec(&request).unwrap();
        for post in seen.iter().filter(|s| s.method == "POST") {
            assert_eq!(post.body, expected, "via reqwest: {via_reqwest}");
            assert_eq!(post.header("content-type"), Some("application/json"));
            assert_eq!(post.header("accept"), Some("application/json"));
            assert_eq!(post.header("authorization"), Some("Bearer sesame"));
        }
        let get = seen.last().unwrap();
        assert_eq!(get.method, "GET");
        assert_eq!(get.header("authorization"), Some("Bearer sesame"));
        assert_eq!(get.header("content-type"), None);
        assert_eq!(server.connections(), 1, "via reqwest: {via_reqwest}");
        assert!(seen.iter().all(|s| s.connection == 1));
    }
}

#[tokio::test]
async fn a_redirecting_facilitator_is_followed_through_reqwest_from_then_on() {
    // `/verify` and `/settle` moved to `/v2/…` (308 keeps the method and the body).
    let server = serve(|path| match path {
        "/verify" | "/settle" => (
            308,
            vec![("location".to_owned(), format!("/v2{path}"))],
            Vec::new(),
            Duration::ZERO,
        ),
        "/v2/verify" => valid(),
        "/v2/settle" => settled(),
        other => standard(other),
    })
    .await;
    let facilitator = HttpFacilitator::new(server.url.clone()).unwrap();
    let request = request();
    assert!(facilitator.verify(&request).await.unwrap().is_valid);
    assert!(facilitator.settle(&request).await.unwrap().success);
    let seen = server.seen();
    let paths: Vec<_> = seen.iter().map(|s| s.path.as_str()).collect();
    // The first call met the redirect directly; reqwest then followed it, and made the next
    // call itself (which met the redirect again and followed it).
    assert_eq!(
        paths,
        ["/verify", "/verify", "/v2/verify", "/settle", "/v2/settle"]
    );
    let expected = serde_json::to_vec(&request).unwrap();
    assert!(
        seen.iter()
            .all(|s| s.method == "POST" && s.body == expected)
    );
}

#[tokio::test]
async fn failures_are_classified_by_what_the_facilitator_may_have_done() {
    // Nothing listens: never delivered.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    for via_reqwest in [false, true] {
        let facilitator = HttpFacilitator::builder(url.clone())
            .via_reqwest(via_reqwest)
            .build()
            .unwrap();
        let error = facilitator.settle(&request()).await.unwrap_err();
        assert!(
            matches!(error, FacilitatorError::Unreachable(_)),
            "via reqwest {via_reqwest}: {error:?}"
        );
    }

    // `https` is spoken as TLS: a server that answers the handshake with plain HTTP never sees
    // a request, and a failed handshake delivered nothing.
    let plain = serve(standard).await;
    let https = plain.url.replace("http://", "https://");
    for via_reqwest in [false, true] {
        let facilitator = HttpFacilitator::builder(https.clone())
            .connect_timeout(Duration::from_millis(300))
            .via_reqwest(via_reqwest)
            .build()
            .unwrap();
        let error = facilitator.settle(&request()).await.unwrap_err();
        assert!(
            matches!(error, FacilitatorError::Unreachable(_)),
            "via reqwest {via_reqwest}: {error:?}"
        );
    }
    assert!(plain.seen().is_empty());

    let server = serve(|path| match path {
        "/verify" => (500, Vec::new(), b"<html>oops</html>".to_vec(), Duration::ZERO),
        "/settle" => (
            402,
            Vec::new(),
            br#"{"success":false,"errorReason":"insufficient_funds","transaction":"","network":"eip155:84532"}"#.to_vec(),
            Duration::ZERO,
        ),
        "/supported" => ok_json(&format!("[\"{}\"]", "x".repeat(300 * 1024))),
        _ => ok_json("not json"),
    })
    .await;
    let facilitator = HttpFacilitator::builder(server.url.clone())
        .request_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    // An error status without an x402 body.
    let error = facilitator.verify(&request()).await.unwrap_err();
    assert!(
        matches!(&error, FacilitatorError::Status { status: 500, body } if body.contains("oops")),
        "{error:?}"
    );
    // A business failure sent with an error status is still an answer.
    let settled = facilitator.settle(&request()).await.unwrap();
    assert!(!settled.success);
    assert_eq!(settled.error_reason.as_deref(), Some("insufficient_funds"));
    // Too large to be an x402 answer.
    let error = facilitator.supported().await.unwrap_err();
    assert!(
        matches!(&error, FacilitatorError::InvalidResponse(m) if m.contains("larger")),
        "{error:?}"
    );

    // A 200 that is not the expected JSON.
    let server = serve(|_| ok_json("not json")).await;
    let facilitator = HttpFacilitator::new(server.url.clone()).unwrap();
    let error = facilitator.verify(&request()).await.unwrap_err();
    assert!(
        matches!(error, FacilitatorError::InvalidResponse(_)),
        "{error:?}"
    );

    // Slower than the request timeout.
    let server = serve(|_| {
        let (status, headers, body, _) = valid();
        (status, headers, body, Duration::from_secs(30))
    })
    .await;
    for via_reqwest in [false, true] {
        let facilitator = HttpFacilitator::builder(server.url.clone())
            .request_timeout(Duration::from_millis(200))
            .via_reqwest(via_reqwest)
            .build()
            .unwrap();
        let error = facilitator.verify(&request()).await.unwrap_err();
        assert!(
            matches!(error, FacilitatorError::Timeout(_)),
            "via reqwest {via_reqwest}: {error:?}"
        );
    }
}

#[test]
fn a_base_url_that_is_not_http_is_refused_when_built() {
    for bad in [
        "not a url",
        "ftp://facilitator.example",
        "facilitator.example/x402",
    ] {
        let error = HttpFacilitator::new(bad).unwrap_err();
        assert!(
            matches!(&error, FacilitatorError::Internal(m) if m.contains("URL")),
            "{bad}: {error:?}"
        );
    }
}
