//! Pre-signed payments: distinct EIP-3009 authorizations for one requirement, signed before
//! the clock starts and kept in a file that the load generator's script rotates through.
//!
//! Each payment has its own random nonce, so replay protection stays on and every request is
//! a new payment. Files are cached under `target/x402-bench/headers/`, keyed by the
//! requirement, and reused while they have more than [`MIN_REMAINING_SECONDS`] of validity
//! left: a server restarts with an empty replay store, so the same payments are new to it.

use std::fs::File;
use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use x402_protocol::client::prepare_payment;
use x402_protocol::eip3009::LocalSigner;
use x402_protocol::facilitator::{PaymentPayload, PaymentRequirements};
use x402_protocol::{NetworkRegistry, codec, v2};

use crate::Error;

/// The payer's key: anvil's fourth well-known development key (public, holds nothing real),
/// whose address (0x90F7…b906) differs from the recipient's.
pub(crate) const PAYER_KEY: &str =
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";

/// How long the signed authorizations stay valid (under the servers' 24 h limit).
const LIFETIME_SECONDS: u64 = 20 * 60 * 60;

/// A cached file is reused only while it stays valid at least this long.
const MIN_REMAINING_SECONDS: u64 = 60 * 60;

/// The resource every payment names: fixed, so one file serves every server and port (the
/// servers under test take the resource from the request, not from the payment).
fn resource() -> v2::ResourceInfo {
    v2::ResourceInfo {
        url: "http://127.0.0.1/weather".to_owned(),
        description: "Current weather".to_owned(),
        mime_type: "application/json".to_owned(),
        ..Default::default()
    }
}

/// First line of a header file.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    requirement: v2::PaymentRequirements,
    count: usize,
    valid_before: u64,
}

/// A file of `count` distinct payment headers, one per line after a JSON meta line.
#[derive(Debug, Clone)]
pub(crate) struct HeaderFile {
    /// Where it is.
    pub(crate) path: PathBuf,
    /// How many headers it holds.
    pub(crate) count: usize,
}

fn now() -> Result<u64, Error> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())
}

/// FNV-1a, enough to name a cache file after a requirement.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn read_meta(path: &Path) -> Option<Meta> {
    let mut line = String::new();
    BufReader::new(File::open(path).ok()?)
        .read_line(&mut line)
        .ok()?;
    serde_json::from_str(&line).ok()
}

/// Headers paying `requirement`, from the cache when it holds enough that stay valid long
/// enough, else signed now on `threads` threads and cached.
pub(crate) fn ensure(
    dir: &Path,
    requirement: &v2::PaymentRequirements,
    count: usize,
    threads: usize,
) -> Result<HeaderFile, Error> {
    let signer = LocalSigner::from_hex(PAYER_KEY)?;
    let key = serde_json::to_vec(&(requirement, signer.address()))?;
    let path = dir.join(format!("{:016x}.txt", fnv1a(&key)));
    let now = now()?;
    if let Some(meta) = read_meta(&path)
        && meta.count >= count
        && meta.valid_before >= now + MIN_REMAINING_SECONDS
        && &meta.requirement == requirement
    {
        return Ok(HeaderFile {
            path,
            count: meta.count,
        });
    }
    std::fs::create_dir_all(dir)?;
    let started = Instant::now();
    eprintln!("signing {count} payments on {threads} thread(s)…");
    let headers = sign(requirement, &signer, now, count, threads)?;
    eprintln!(
        "signed {count} payments in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let temporary = path.with_extension("tmp");
    let mut out = BufWriter::new(File::create(&temporary)?);
    let meta = Meta {
        requirement: requirement.clone(),
        count,
        valid_before: now + LIFETIME_SECONDS,
    };
    writeln!(out, "{}", serde_json::to_string(&meta)?)?;
    for header in &headers {
        writeln!(out, "{header}")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&temporary, &path)?;
    Ok(HeaderFile { path, count })
}

/// Signs one payment of `requirement`, valid for [`LIFETIME_SECONDS`] from `now`.
pub(crate) fn sign_one(
    requirement: &v2::PaymentRequirements,
    signer: &LocalSigner,
    registry: &NetworkRegistry,
    now: u64,
) -> Result<String, Error> {
    // `prepare_payment` makes authorizations valid for the requirement's maxTimeoutSeconds;
    // ask for a longer one, then echo the requirement exactly as the server offered it.
    let mut long = requirement.clone();
    long.max_timeout_seconds = LIFETIME_SECONDS;
    let prepared = prepare_payment(
        &PaymentRequirements::V2(long),
        Some(&resource()),
        signer.address(),
        registry,
        now,
    )?;
    let signature = signer.sign_hash(&prepared.digest());
    let mut payment = prepared.finish(signature.to_vec());
    if let PaymentPayload::V2(payment) = &mut payment {
        payment.accepted = requirement.clone();
    }
    Ok(codec::encode(&payment))
}

fn sign(
    requirement: &v2::PaymentRequirements,
    signer: &LocalSigner,
    now: u64,
    count: usize,
    threads: usize,
) -> Result<Vec<String>, Error> {
    let registry = NetworkRegistry::builtin();
    let threads = threads.max(1);
    let per_thread = count.div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|i| {
                let registry = &registry;
                let share = per_thread.min(count.saturating_sub(i * per_thread));
                scope.spawn(move || {
                    (0..share)
                        .map(|_| sign_one(requirement, signer, registry, now))
                        .collect::<Result<Vec<_>, Error>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(count);
        for worker in workers {
            all.extend(worker.join().map_err(|_| "a signing thread panicked")??);
        }
        Ok(all)
    })
}
