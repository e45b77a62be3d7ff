//! Capture folders: `NNNN-<signal>.bin|.json`, one OTLP request body each, decoded once.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message as _;

use crate::rename::IdCatalog;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    Traces,
    Logs,
    Metrics,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }

    fn parse(s: &str) -> Option<Signal> {
        match s {
            "traces" => Some(Signal::Traces),
            "logs" => Some(Signal::Logs),
            "metrics" => Some(Signal::Metrics),
            _ => None,
        }
    }
}

/// How a body is put on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// One decoded export request.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    Traces(ExportTraceServiceRequest),
    Logs(ExportLogsServiceRequest),
    Metrics(ExportMetricsServiceRequest),
}

impl Payload {
    pub fn signal(&self) -> Signal {
        match self {
            Payload::Traces(_) => Signal::Traces,
            Payload::Logs(_) => Signal::Logs,
            Payload::Metrics(_) => Signal::Metrics,
        }
    }

    pub fn decode(signal: Signal, encoding: Encoding, body: &[u8]) -> anyhow::Result<Payload> {
        Ok(match (signal, encoding) {
            (Signal::Traces, Encoding::Protobuf) => Payload::Traces(ExportTraceServiceRequest::decode(body)?),
            (Signal::Logs, Encoding::Protobuf) => Payload::Logs(ExportLogsServiceRequest::decode(body)?),
            (Signal::Metrics, Encoding::Protobuf) => Payload::Metrics(ExportMetricsServiceRequest::decode(body)?),
            (Signal::Traces, Encoding::Json) => Payload::Traces(serde_json::from_slice(body)?),
            (Signal::Logs, Encoding::Json) => Payload::Logs(serde_json::from_slice(body)?),
            (Signal::Metrics, Encoding::Json) => Payload::Metrics(serde_json::from_slice(body)?),
        })
    }

    pub fn encode(&self, encoding: Encoding) -> Vec<u8> {
        match encoding {
            Encoding::Protobuf => match self {
                Payload::Traces(m) => m.encode_to_vec(),
                Payload::Logs(m) => m.encode_to_vec(),
                Payload::Metrics(m) => m.encode_to_vec(),
            },
            Encoding::Json => match self {
                Payload::Traces(m) => serde_json::to_vec(m),
                Payload::Logs(m) => serde_json::to_vec(m),
                Payload::Metrics(m) => serde_json::to_vec(m),
            }
            .expect("OTLP messages always serialize"),
        }
    }

    /// Spans + log records + metric data points.
    pub fn records(&self) -> u64 {
        match self {
            Payload::Traces(m) => {
                m.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len() as u64).sum()
            }
            Payload::Logs(m) => {
                m.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len() as u64).sum()
            }
            Payload::Metrics(m) => m
                .resource_metrics
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .map(|metric| match &metric.data {
                    Some(Data::Gauge(g)) => g.data_points.len() as u64,
                    Some(Data::Sum(s)) => s.data_points.len() as u64,
                    Some(Data::Histogram(h)) => h.data_points.len() as u64,
                    Some(Data::ExponentialHistogram(h)) => h.data_points.len() as u64,
                    Some(Data::Summary(s)) => s.data_points.len() as u64,
                    None => 0,
                })
                .sum(),
        }
    }
}

/// One request of a capture.
#[derive(Clone, Debug)]
pub struct CapturedRequest {
    pub file: String,
    /// The encoding it was captured in.
    pub encoding: Encoding,
    pub payload: Payload,
    pub records: u64,
}

/// A capture folder: one simulated session's requests, in order.
#[derive(Debug)]
pub struct Capture {
    pub name: String,
    pub requests: Vec<CapturedRequest>,
    pub ids: IdCatalog,
}

impl Capture {
    pub fn records(&self) -> u64 {
        self.requests.iter().map(|r| r.records).sum()
    }

    /// Decode every `NNNN-<signal>.bin|.json` of `dir`, in file-name order.
    pub fn load(dir: &Path) -> anyhow::Result<Capture> {
        let files = capture_files(dir)?;
        if files.is_empty() {
            bail!("{}: no NNNN-<traces|logs|metrics>.bin|.json files", dir.display());
        }
        let mut requests = Vec::new();
        for (path, signal, encoding) in files {
            let mut body = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            if body.starts_with(&[0x1f, 0x8b]) {
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut plain)
                    .with_context(|| format!("gunzip {}", path.display()))?;
                body = plain;
            }
            let payload = Payload::decode(signal, encoding, &body)
                .with_context(|| format!("decoding {} as OTLP {}", path.display(), signal.as_str()))?;
            let records = payload.records();
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            requests.push(CapturedRequest { file, encoding, payload, records });
        }
        let ids = IdCatalog::discover(requests.iter().map(|r| &r.payload));
        Ok(Capture { name: dir.display().to_string(), requests, ids })
    }
}

/// The request files of a capture folder: `NNNN-<signal>.bin` or `NNNN-<signal>.json`
/// (not `.meta.json`, `.decoded.json`), sorted.
fn capture_files(dir: &Path) -> anyhow::Result<Vec<(PathBuf, Signal, Encoding)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if !path.is_file() {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if let Some((signal, encoding)) = parse_file_name(name) {
            files.push((path, signal, encoding));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// `0002-logs.bin` -> (logs, protobuf); `0001-traces.json` -> (traces, JSON).
pub fn parse_file_name(name: &str) -> Option<(Signal, Encoding)> {
    let (stem, encoding) = if let Some(stem) = name.strip_suffix(".bin") {
        (stem, Encoding::Protobuf)
    } else if let Some(stem) = name.strip_suffix(".json") {
        (stem, Encoding::Json)
    } else {
        return None;
    };
    let (seq, signal) = stem.split_once('-')?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((Signal::parse(signal)?, encoding))
}

/// The capture folders under each path: the path itself if it holds request files, else every
/// folder below it that does (recursively), sorted.
pub fn find_capture_dirs(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        if !capture_files(dir)?.is_empty() {
            out.push(dir.to_path_buf());
            return Ok(());
        }
        let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        subdirs.sort();
        for sub in subdirs {
            walk(&sub, out)?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    for path in paths {
        if !path.is_dir() {
            bail!("{}: not a folder", path.display());
        }
        let before = out.len();
        walk(path, &mut out)?;
        if out.len() == before {
            bail!("{}: no capture folder (NNNN-<signal>.bin|.json files) in it", path.display());
        }
    }
    out.dedup();
    Ok(out)
}
