//! Counters, the latency histogram, the host's memory, and the summary (table or JSON).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::capture::Signal;
use crate::transport::Outcome;
use crate::{Args, Protocol};

pub struct Stats {
    pub sessions: u64,
    /// Distinct pool users that had a session.
    pub users: std::collections::HashSet<u32>,
    pub sent: u64,
    pub ok: u64,
    pub records_sent: u64,
    pub records_ok: u64,
    pub bytes_sent: u64,
    /// Open loop: ticks whose request was not sent because every in-flight slot was taken.
    pub skipped: u64,
    pub by_signal: BTreeMap<Signal, u64>,
    /// Every outcome, successes included: `200` → n, `503` → n, `transport: connect` → n.
    pub outcomes: BTreeMap<String, u64>,
    /// Microseconds.
    pub latency: Histogram<u64>,
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            sessions: 0,
            users: Default::default(),
            sent: 0,
            ok: 0,
            records_sent: 0,
            records_ok: 0,
            bytes_sent: 0,
            skipped: 0,
            by_signal: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            latency: Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds"),
        }
    }

    pub fn session(&mut self, user: u32) {
        self.sessions += 1;
        self.users.insert(user);
    }

    pub fn record(&mut self, signal: Signal, records: u64, bytes: u64, outcome: &Outcome, latency: Duration) {
        self.sent += 1;
        self.records_sent += records;
        self.bytes_sent += bytes;
        *self.by_signal.entry(signal).or_default() += 1;
        *self.outcomes.entry(outcome.label.clone()).or_default() += 1;
        if outcome.ok {
            self.ok += 1;
            self.records_ok += records;
        }
        self.latency.saturating_record((latency.as_micros() as u64).max(1));
    }
}

/// The host's resident memory over the run, from /proc/PID/status (kB).
#[derive(Clone, Copy, Debug, Default)]
pub struct Rss {
    pub start_kb: u64,
    pub peak_kb: u64,
    pub end_kb: u64,
    /// VmHWM at the end: the kernel's own peak since the process started.
    pub hwm_kb: u64,
    pub samples: u64,
    /// Host CPU time (user + system) spent during the run, in seconds.
    pub cpu_s: f64,
}

/// utime + stime of a process, in clock ticks (USER_HZ, 100 on Linux).
pub fn read_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

pub fn read_status(pid: u32) -> std::io::Result<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

pub struct RssSampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Rss>,
}

impl RssSampler {
    /// Sample every 100 ms until [`RssSampler::stop`].
    pub fn start(pid: u32) -> anyhow::Result<RssSampler> {
        let (rss, hwm) = read_status(pid).map_err(|e| anyhow::anyhow!("/proc/{pid}/status: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let cpu_start = read_cpu_ticks(pid).unwrap_or(0);
        let task = tokio::spawn(async move {
            let mut r = Rss { start_kb: rss, peak_kb: rss, end_kb: rss, hwm_kb: hwm, samples: 1, cpu_s: 0.0 };
            let mut ticker = tokio::time::interval(Duration::from_millis(100));
            loop {
                ticker.tick().await;
                let Ok((rss, hwm)) = read_status(pid) else { break };
                r.peak_kb = r.peak_kb.max(rss);
                r.end_kb = rss;
                r.hwm_kb = hwm;
                r.samples += 1;
                if let Some(ticks) = read_cpu_ticks(pid) {
                    r.cpu_s = ticks.saturating_sub(cpu_start) as f64 / 100.0;
                }
                if flag.load(Ordering::Relaxed) {
                    break;
                }
            }
            r
        });
        Ok(RssSampler { stop, task })
    }

    pub async fn stop(self) -> Rss {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

pub struct Summary {
    json: Value,
}

impl Summary {
    pub fn new(
        args: &Args,
        endpoint: &str,
        captures: &[PathBuf],
        stats: &Stats,
        elapsed: Duration,
        rss: Option<Rss>,
        timed_out: bool,
    ) -> Summary {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let ms = |q: f64| stats.latency.value_at_quantile(q) as f64 / 1000.0;
        let errors: BTreeMap<&String, &u64> = stats
            .outcomes
            .iter()
            .filter(|(label, _)| !(label.starts_with('2') || label.as_str() == "grpc Ok"))
            .collect();
        let json = json!({
            "endpoint": endpoint,
            "protocol": match args.protocol { Protocol::Http => "http", Protocol::Grpc => "grpc" },
            "encoding": format!("{:?}", args.encoding).to_lowercase(),
            "gzip": args.gzip,
            "captures": captures.iter().map(|c| c.display().to_string()).collect::<Vec<_>>(),
            "mode": if args.rate.is_some() { "open" } else { "closed" },
            "concurrency": args.concurrency,
            "rate": args.rate,
            "users": args.users,
            "duration_s": round(secs, 3),
            "sessions": stats.sessions,
            "distinct_users": stats.users.len(),
            "requests": stats.sent,
            "requests_ok": stats.ok,
            "requests_per_s": round(stats.sent as f64 / secs, 1),
            "records": stats.records_sent,
            "records_ok": stats.records_ok,
            "records_per_s": round(stats.records_ok as f64 / secs, 1),
            "bytes": stats.bytes_sent,
            "mb_per_s": round(stats.bytes_sent as f64 / secs / 1e6, 2),
            "by_signal": stats.by_signal.iter().map(|(s, n)| (s.as_str().to_owned(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "latency_ms": {
                "p50": ms(0.50), "p90": ms(0.90), "p99": ms(0.99),
                "max": stats.latency.max() as f64 / 1000.0,
                "mean": round(stats.latency.mean() / 1000.0, 3),
            },
            "outcomes": stats.outcomes,
            "errors": errors,
            "skipped": stats.skipped,
            "host_rss_kb": rss.map(|r| json!({
                "start": r.start_kb, "peak": r.peak_kb, "end": r.end_kb, "vm_hwm": r.hwm_kb, "samples": r.samples,
            })),
            "host_cpu_s": rss.map(|r| round(r.cpu_s, 2)),
            "host_cpu_cores": rss.map(|r| round(r.cpu_s / secs, 2)),
            "stopped_by_bound": timed_out,
        });
        Summary { json }
    }

    pub fn to_json(&self) -> &Value {
        &self.json
    }

    pub fn table(&self) -> String {
        let j = &self.json;
        let mut out = String::new();
        let mut row = |k: &str, v: String| out.push_str(&format!("{k:<18} {v}\n"));
        row(
            "endpoint",
            format!(
                "{} ({}, {}{})",
                s(&j["endpoint"]),
                s(&j["protocol"]),
                s(&j["encoding"]),
                if j["gzip"] == true { ", gzip" } else { "" }
            ),
        );
        row(
            "captures",
            j["captures"].as_array().map(|a| a.iter().map(s).collect::<Vec<_>>().join(", ")).unwrap_or_default(),
        );
        let mode = if j["mode"] == "open" {
            format!("open loop, {} req/s, at most {} in flight", j["rate"], j["concurrency"])
        } else {
            format!("closed loop, {} workers", j["concurrency"])
        };
        row("mode", format!("{mode}, {} users", j["users"]));
        row("duration", format!("{} s", j["duration_s"]));
        row("sessions", format!("{} ({} distinct users)", j["sessions"], j["distinct_users"]));
        row("requests", format!("{} ({} ok)", j["requests"], j["requests_ok"]));
        row("requests/s", j["requests_per_s"].to_string());
        row("records", format!("{} ({} ok)", j["records"], j["records_ok"]));
        row("records/s", format!("{} (accepted)", j["records_per_s"]));
        row("sent", format!("{} bytes ({} MB/s)", j["bytes"], j["mb_per_s"]));
        let l = &j["latency_ms"];
        row(
            "latency ms",
            format!("p50 {}  p90 {}  p99 {}  max {}  mean {}", l["p50"], l["p90"], l["p99"], l["max"], l["mean"]),
        );
        let outcomes = j["outcomes"]
            .as_object()
            .map(|o| o.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        row("outcomes", outcomes);
        let errors = j["errors"]
            .as_object()
            .filter(|o| !o.is_empty())
            .map(|o| o.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "))
            .unwrap_or_else(|| "none".into());
        row("errors", errors);
        if j["skipped"] != 0 {
            row("skipped ticks", j["skipped"].to_string());
        }
        if let Some(r) = j["host_rss_kb"].as_object() {
            let mb = |k: &str| format!("{:.1} MB", r[k].as_u64().unwrap_or(0) as f64 / 1024.0);
            row(
                "host RSS",
                format!("start {}  peak {}  end {}  VmHWM {}", mb("start"), mb("peak"), mb("end"), mb("vm_hwm")),
            );
            row("host CPU", format!("{} s ({} cores on average)", j["host_cpu_s"], j["host_cpu_cores"]));
        }
        if j["stopped_by_bound"] == true {
            row("note", "requests were still in flight at duration + timeout: cut off".into());
        }
        out
    }
}

fn s(v: &Value) -> String {
    v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}
