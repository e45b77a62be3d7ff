//! `antenna-loadgen`: replay captured agent sessions against an Antenna host (or any OTLP
//! receiver) with fresh ids per simulated session, and report throughput, latency, errors and
//! the host's memory. In the spirit of the OpenTelemetry Collector's `telemetrygen`.

mod capture;
mod rename;
mod report;
mod transport;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::sync::Mutex;

use crate::capture::{Capture, Encoding};
use crate::report::{RssSampler, Stats};
use crate::transport::Transport;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// OTLP/HTTP: POST {endpoint}/v1/{signal}
    Http,
    /// OTLP/gRPC: the trace, logs and metrics services at {endpoint}
    Grpc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EncodingArg {
    Protobuf,
    Json,
    /// Each request as it was captured
    Original,
}

/// Replay captured agent sessions against an OTLP receiver, with fresh ids per session.
#[derive(Parser, Debug)]
#[command(name = "antenna-loadgen", version)]
pub struct Args {
    /// Capture folders (NNNN-<signal>.bin|.json files), or parents of capture folders.
    #[arg(required = true)]
    pub captures: Vec<PathBuf>,
    /// OTLP/HTTP base URL (requests go to {endpoint}/v1/{signal}) or the gRPC address.
    /// Default: http://127.0.0.1:4318/api/public/otel (http), http://127.0.0.1:4317 (grpc).
    #[arg(long)]
    pub endpoint: Option<String>,
    #[arg(long, value_enum, default_value = "http")]
    pub protocol: Protocol,
    /// Body encoding for OTLP/HTTP (gRPC is always protobuf).
    #[arg(long, value_enum, default_value = "protobuf")]
    pub encoding: EncodingArg,
    #[arg(long, env = "ANTENNA_PUBLIC_KEY", default_value = "pk-local")]
    pub public_key: String,
    #[arg(long, env = "ANTENNA_SECRET_KEY", default_value = "sk-local", hide_env_values = true)]
    pub secret_key: String,
    /// Closed loop: this many workers, each replaying one session after another. With
    /// --rate: the most requests in flight at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Open loop: send this many requests per second whatever the latency (sessions are
    /// still replayed in order, one request per tick).
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long to send for (e.g. 500ms, 30s, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stop after this many sessions even if the duration has not run out.
    #[arg(long)]
    pub max_sessions: Option<u64>,
    /// Size of the simulated user pool.
    #[arg(long, default_value_t = 200)]
    pub users: u32,
    /// Gzip each body (Content-Encoding: gzip; gRPC compression).
    #[arg(long)]
    pub gzip: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Sample /proc/PID/status (VmRSS, VmHWM) of the host during the run.
    #[arg(long)]
    pub host_pid: Option<u32>,
    /// Per-request timeout.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Seed for the id generator (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the ids found in each capture (what will be renamed) and exit.
    #[arg(long)]
    pub show_ids: bool,
    /// Allow an endpoint that is not a loopback address.
    #[arg(long)]
    pub allow_non_loopback: bool,
}

/// `500ms`, `30s`, `2m`, `1h`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = number.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let seconds = match unit.trim() {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown unit {other:?} in {s:?} (ms, s, m, h)")),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("not a duration: {s:?}"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Refuse anything but a loopback host unless told otherwise.
fn check_loopback(endpoint: &str) -> anyhow::Result<()> {
    let rest = endpoint.split_once("://").map(|(_, r)| r).unwrap_or(endpoint);
    let authority = rest.split('/').next().unwrap_or("");
    let authority = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    let host = if let Some(stripped) = authority.strip_prefix('[') {
        stripped.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false);
    if !loopback {
        bail!("{endpoint}: not a loopback address; pass --allow-non-loopback to send there anyway");
    }
    Ok(())
}

pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// What every worker shares.
struct Shared {
    captures: Vec<Capture>,
    transport: Transport,
    encoding: EncodingArg,
    users: u32,
    deadline: Instant,
    next_capture: AtomicUsize,
    sessions_started: AtomicU64,
    max_sessions: Option<u64>,
    stop: AtomicBool,
    stats: Mutex<Stats>,
}

impl Shared {
    fn keep_going(&self) -> bool {
        !self.stop.load(Ordering::Relaxed) && Instant::now() < self.deadline
    }

    /// Claim the next session (capture index), or None when the session budget is spent.
    fn claim_session(&self) -> Option<usize> {
        let n = self.sessions_started.fetch_add(1, Ordering::Relaxed);
        if self.max_sessions.is_some_and(|max| n >= max) {
            self.stop.store(true, Ordering::Relaxed);
            return None;
        }
        Some(self.next_capture.fetch_add(1, Ordering::Relaxed) % self.captures.len())
    }

    fn encoding_of(&self, request: &capture::CapturedRequest) -> Encoding {
        match self.encoding {
            EncodingArg::Protobuf => Encoding::Protobuf,
            EncodingArg::Json => Encoding::Json,
            EncodingArg::Original => request.encoding,
        }
    }
}

/// The requests of one fresh session, ready to send, and its pool user.
fn prepare_session(shared: &Shared, capture: usize, rng: &mut SmallRng) -> (u32, Vec<transport::Prepared>) {
    let capture = &shared.captures[capture];
    let user = rng.random_range(0..shared.users.max(1));
    let session = rename::Session::new(&capture.ids, user, now_ns(), rng);
    let requests = capture
        .requests
        .iter()
        .map(|request| {
            let mut payload = request.payload.clone();
            session.apply(&mut payload);
            shared.transport.prepare(payload, shared.encoding_of(request), request.records)
        })
        .collect();
    (session.user, requests)
}

async fn closed_loop_worker(shared: Arc<Shared>, mut rng: SmallRng) {
    'sessions: while shared.keep_going() {
        let Some(capture) = shared.claim_session() else { break };
        let (user, requests) = prepare_session(&shared, capture, &mut rng);
        shared.stats.lock().await.session(user);
        for prepared in requests {
            if !shared.keep_going() {
                break 'sessions;
            }
            let (signal, records, bytes) = (prepared.signal, prepared.records, prepared.bytes);
            let started = Instant::now();
            let outcome = shared.transport.send(prepared).await;
            shared.stats.lock().await.record(signal, records, bytes, &outcome, started.elapsed());
            if outcome.label.starts_with("transport") {
                // Nobody listening: do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn open_loop(shared: Arc<Shared>, rate: f64, max_in_flight: usize, mut rng: SmallRng) {
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let slots = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let mut pending: std::collections::VecDeque<transport::Prepared> = Default::default();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let tick = ticker.tick().await;
        if !shared.keep_going() {
            break;
        }
        if pending.is_empty() {
            let Some(capture) = shared.claim_session() else { break };
            let (user, requests) = prepare_session(&shared, capture, &mut rng);
            pending.extend(requests);
            shared.stats.lock().await.session(user);
        }
        let Some(prepared) = pending.pop_front() else { continue };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // The receiver is behind: this tick's request is not sent (counted, not queued).
            shared.stats.lock().await.skipped += 1;
            continue;
        };
        let shared = shared.clone();
        // Latency from the tick it was due, so a slow receiver is not hidden.
        let due = tick.into_std();
        tasks.spawn(async move {
            let (signal, records, bytes) = (prepared.signal, prepared.records, prepared.bytes);
            let outcome = shared.transport.send(prepared).await;
            shared.stats.lock().await.record(signal, records, bytes, &outcome, due.elapsed());
            drop(slot);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

async fn run(args: Args) -> anyhow::Result<()> {
    let dirs = capture::find_capture_dirs(&args.captures)?;
    let mut captures = Vec::new();
    for dir in &dirs {
        captures.push(Capture::load(dir)?);
    }
    if args.show_ids {
        for c in &captures {
            println!("{} ({} requests, {} records)", c.name, c.requests.len(), c.records());
            println!("  trace ids: {}, span ids: {}", c.ids.trace_ids.len(), c.ids.span_ids.len());
            let files: Vec<&str> = c.requests.iter().map(|r| r.file.as_str()).collect();
            println!("  files: {}", files.join(", "));
            if !c.ids.has_user {
                println!("  no user attribute: each session gets a resource user.id from the pool");
            }
            for (value, scope) in &c.ids.strings {
                println!("  {scope:?}: {value}");
            }
        }
        return Ok(());
    }
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if let Some(rate) = args.rate
        && !(rate > 0.0 && rate.is_finite())
    {
        bail!("--rate must be a positive number");
    }
    let endpoint = args.endpoint.clone().unwrap_or_else(|| match args.protocol {
        Protocol::Http => "http://127.0.0.1:4318/api/public/otel".into(),
        Protocol::Grpc => "http://127.0.0.1:4317".into(),
    });
    if !args.allow_non_loopback {
        check_loopback(&endpoint)?;
    }
    let transport = Transport::connect(&args, &endpoint).await.context("connecting")?;

    let sampler = args.host_pid.map(RssSampler::start).transpose()?;
    let started = Instant::now();
    let shared = Arc::new(Shared {
        captures,
        transport,
        encoding: args.encoding,
        users: args.users,
        deadline: started + args.duration,
        next_capture: AtomicUsize::new(0),
        sessions_started: AtomicU64::new(0),
        max_sessions: args.max_sessions,
        stop: AtomicBool::new(false),
        stats: Mutex::new(Stats::new()),
    });
    let mut seeder = match args.seed {
        Some(seed) => SmallRng::seed_from_u64(seed),
        None => SmallRng::from_os_rng(),
    };
    let work = {
        let shared = shared.clone();
        let concurrency = args.concurrency;
        let rate = args.rate;
        let rng = SmallRng::seed_from_u64(seeder.random());
        let seeds: Vec<u64> = (0..concurrency).map(|_| seeder.random()).collect();
        async move {
            match rate {
                Some(rate) => open_loop(shared, rate, concurrency.max(1), rng).await,
                None => {
                    let mut workers = tokio::task::JoinSet::new();
                    for seed in seeds {
                        workers.spawn(closed_loop_worker(shared.clone(), SmallRng::seed_from_u64(seed)));
                    }
                    while workers.join_next().await.is_some() {}
                }
            }
        }
    };
    // The run stops by itself: requests in flight at the deadline get their timeout, no more.
    let bound = args.duration + args.timeout + Duration::from_secs(5);
    let timed_out = tokio::time::timeout(bound, work).await.is_err();
    let elapsed = started.elapsed();
    let rss = match sampler {
        Some(s) => Some(s.stop().await),
        None => None,
    };
    let stats = shared.stats.lock().await;
    let summary = report::Summary::new(&args, &endpoint, &dirs, &stats, elapsed, rss, timed_out);
    if args.json {
        println!("{}", serde_json::to_string(&summary.to_json()).expect("JSON"));
    } else {
        print!("{}", summary.table());
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(args))
}
