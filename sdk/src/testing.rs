//! Run a parser natively, under plain `cargo test`, on real OTLP captures (feature `testing`).
//!
//! A capture is a folder of request bodies as an agent sent them: `NNNN-<signal>.json` or
//! `NNNN-<signal>.bin` (protobuf), each with an optional `NNNN-<signal>.meta.json` (the
//! request's `signal`, `content_type`, `content_encoding`). Readable renderings
//! (`*.decoded.json`) and `summary.json` are skipped. [`Capture::resource_batches`] decodes
//! the bodies and splits them per resource exactly as the host does, so the parser sees the
//! same [`ResourceBatch`]es natively as in the sandbox; [`normalize`] runs it on them and checks
//! its output against the host's limits. Nothing is merged: tests assert on the fragments.
//!
//! Enable it for tests only:
//!
//! ```toml
//! [dev-dependencies]
//! antenna-sdk = { version = "0.1", features = ["testing"] }
//! ```
//!
//! ```no_run
//! # use antenna_sdk::*;
//! # struct MyParser;
//! # impl Parser for MyParser {
//! #     fn describe() -> PluginInfo { unimplemented!() }
//! #     fn normalize(_: &ResourceBatch) -> Result<Vec<Fragment>, String> { Ok(Vec::new()) }
//! # }
//! use antenna_sdk::testing::{Capture, tool_calls};
//!
//! # fn main() -> Result<(), antenna_sdk::testing::Error> {
//! let capture = Capture::load(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/my-agent/run-1"))?;
//! let fragments = capture.normalize::<MyParser>()?;
//! let (fragment, bash) = tool_calls(&fragments)[0];
//! assert_eq!(fragment.id, "call_f3714c5b509f4157addc");
//! assert_eq!(bash.name.as_deref(), Some("bash"));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::Value;

use crate::{Event, Fragment, MAX_ID_LEN, ModelCall, Parser, Prompt, ResourceBatch, Signal, ToolCall};

/// Most fragments the host accepts from one call.
pub const MAX_FRAGMENTS: usize = 100_000;
/// Most also-known-as keys the host accepts on one fragment.
pub const MAX_ALSO_KNOWN_AS: usize = 16;

/// What went wrong: the file or record and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (the OTLP/JSON mapping).
    Json,
}

/// One captured request body.
#[derive(Debug, Clone)]
pub struct Request {
    /// The body's file.
    pub file: PathBuf,
    /// The signal it was posted as.
    pub signal: Signal,
    /// How it is encoded.
    pub encoding: Encoding,
    /// The bytes as the agent sent them (never compressed: a compressed capture is refused).
    pub body: Vec<u8>,
}

/// The request bodies of one capture, in file-name (= sending) order.
#[derive(Debug, Clone)]
pub struct Capture {
    requests: Vec<Request>,
}

impl Capture {
    /// Load a capture folder, or a single body file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let files = if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| Error(format!("reading {}: {e}", path.display())))?;
            let mut files: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_body(p)).collect();
            files.sort();
            files
        } else {
            vec![path.to_owned()]
        };
        let requests = files.into_iter().map(|file| request(&file)).collect::<Result<Vec<_>, _>>()?;
        Ok(Capture { requests })
    }

    /// The requests, in order.
    pub fn requests(&self) -> &[Request] {
        &self.requests
    }

    /// Only the requests of these signals, in order.
    pub fn only(&self, signals: &[Signal]) -> Self {
        Capture { requests: self.requests.iter().filter(|r| signals.contains(&r.signal)).cloned().collect() }
    }

    /// Every request decoded and split per resource, as the host hands them to a parser.
    pub fn resource_batches(&self) -> Result<Vec<ResourceBatch>, Error> {
        let mut batches = Vec::new();
        for r in &self.requests {
            let decoded =
                decode(r.signal, r.encoding, &r.body).map_err(|e| Error(format!("{}: {e}", r.file.display())))?;
            batches.extend(decoded);
        }
        Ok(batches)
    }

    /// Run parser `P` on every resource batch of the capture (see [`normalize`]).
    pub fn normalize<P: Parser>(&self) -> Result<Vec<Fragment>, Error> {
        normalize::<P>(&self.resource_batches()?)
    }
}

/// Run parser `P` on each batch, as the host would call it, and check each call's output
/// against the host's limits (see [`check`]). Returns the fragments of all calls, in order,
/// unmerged.
pub fn normalize<P: Parser>(batches: &[ResourceBatch]) -> Result<Vec<Fragment>, Error> {
    let mut all = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        let fragments = P::normalize(batch).map_err(|e| Error(format!("batch {i}: the parser refused it: {e}")))?;
        check(&fragments).map_err(|e| Error(format!("batch {i}: {e}")))?;
        all.extend(fragments);
    }
    Ok(all)
}

/// The limits the host holds one call's output to; breaking any fails the whole batch there:
/// at most [`MAX_FRAGMENTS`] fragments, every trace key, also-known-as key, id and report id
/// 1 to [`MAX_ID_LEN`] bytes long, at most [`MAX_ALSO_KNOWN_AS`] also-known-as keys.
pub fn check(fragments: &[Fragment]) -> Result<(), Error> {
    if fragments.len() > MAX_FRAGMENTS {
        return Err(Error(format!("{} fragments, more than the host's {MAX_FRAGMENTS}", fragments.len())));
    }
    for f in fragments {
        if f.also_known_as.len() > MAX_ALSO_KNOWN_AS {
            return Err(Error(format!("{} also-known-as keys on fragment {:?}", f.also_known_as.len(), f.id)));
        }
        let ids = [("trace key", &f.trace_key), ("id", &f.id), ("report id", &f.report_id)];
        for (what, value) in ids.into_iter().chain(f.also_known_as.iter().map(|k| ("also-known-as key", k))) {
            if value.is_empty() || value.len() > MAX_ID_LEN {
                return Err(Error(format!("{what} of {} bytes (1..={MAX_ID_LEN} allowed)", value.len())));
            }
        }
    }
    Ok(())
}

/// The prompt fragments, each with its body.
pub fn prompts(fragments: &[Fragment]) -> Vec<(&Fragment, &Prompt)> {
    fragments.iter().filter_map(|f| Some((f, f.prompt()?))).collect()
}

/// The model-call fragments, each with its body.
pub fn model_calls(fragments: &[Fragment]) -> Vec<(&Fragment, &ModelCall)> {
    fragments.iter().filter_map(|f| Some((f, f.model_call()?))).collect()
}

/// The tool-call fragments, each with its body.
pub fn tool_calls(fragments: &[Fragment]) -> Vec<(&Fragment, &ToolCall)> {
    fragments.iter().filter_map(|f| Some((f, f.tool_call()?))).collect()
}

/// The timeline-event fragments, each with its body.
pub fn events(fragments: &[Fragment]) -> Vec<(&Fragment, &Event)> {
    fragments.iter().filter_map(|f| Some((f, f.event()?))).collect()
}

/// Decode one request body and split it per resource, with the host's lowering
/// (`antenna_wit::lower_*`).
pub fn decode(signal: Signal, encoding: Encoding, body: &[u8]) -> Result<Vec<ResourceBatch>, Error> {
    fn parse<T: Message + Default + serde::de::DeserializeOwned>(encoding: Encoding, body: &[u8]) -> Result<T, Error> {
        match encoding {
            Encoding::Json => serde_json::from_slice(body).map_err(|e| Error(format!("malformed OTLP JSON: {e}"))),
            Encoding::Protobuf => T::decode(body).map_err(|e| Error(format!("malformed OTLP protobuf: {e}"))),
        }
    }
    let plain = match signal {
        Signal::Traces => antenna_wit::lower_traces(parse::<ExportTraceServiceRequest>(encoding, body)?),
        Signal::Logs => antenna_wit::lower_logs(parse::<ExportLogsServiceRequest>(encoding, body)?),
        Signal::Metrics => antenna_wit::lower_metrics(parse::<ExportMetricsServiceRequest>(encoding, body)?),
    };
    Ok(plain.into_iter().map(ResourceBatch::from).collect())
}

/// A request body: not its metadata or a readable rendering.
fn is_body(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    (name.ends_with(".bin") || name.ends_with(".json") || name.ends_with(".pb"))
        && !name.ends_with(".meta.json")
        && !name.ends_with(".decoded.json")
        && name != "summary.json"
}

/// Read one body, with its signal and encoding from the `.meta.json` beside it, else from
/// the file name.
fn request(file: &Path) -> Result<Request, Error> {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let meta_path = file.with_file_name(format!("{stem}.meta.json"));
    let meta: Option<Value> = match std::fs::read(&meta_path) {
        Ok(bytes) => {
            Some(serde_json::from_slice(&bytes).map_err(|e| Error(format!("{}: not JSON: {e}", meta_path.display())))?)
        }
        Err(_) => None,
    };
    let text = |key: &str| meta.as_ref().and_then(|m| m.get(key)).and_then(Value::as_str);
    if let Some(coding) = text("content_encoding").filter(|c| *c != "identity") {
        return Err(Error(format!("{}: {coding}-compressed bodies are not supported: decompress it", file.display())));
    }
    let signal_name = text("signal").or_else(|| ["traces", "logs", "metrics"].into_iter().find(|s| name.contains(s)));
    let signal = match signal_name {
        Some("traces") => Signal::Traces,
        Some("logs") => Signal::Logs,
        Some("metrics") => Signal::Metrics,
        _ => return Err(Error(format!("{}: the file name must say traces, logs or metrics", file.display()))),
    };
    let json = match text("content_type") {
        Some(content_type) => content_type.contains("json"),
        None => name.ends_with(".json"),
    };
    let body = std::fs::read(file).map_err(|e| Error(format!("reading {}: {e}", file.display())))?;
    Ok(Request {
        file: file.to_owned(),
        signal,
        encoding: if json { Encoding::Json } else { Encoding::Protobuf },
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AttrValue, Span};

    fn fixture(relative: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(relative)
    }

    #[test]
    fn loads_json_and_protobuf_captures_like_the_host() {
        let copilot = Capture::load(fixture("copilot-cli/json-content-on")).expect("loads");
        let signals: Vec<Signal> = copilot.requests().iter().map(|r| r.signal).collect();
        assert!(matches!(signals[..], [Signal::Traces, Signal::Metrics]));
        let batches = copilot.only(&[Signal::Traces]).resource_batches().expect("decodes");
        let spans: Vec<&Span> = batches.iter().flat_map(|b| &b.scopes).flat_map(|s| &s.spans).collect();
        assert!(spans.iter().any(|s| s.name == "invoke_agent" && s.trace_id == "6b064063a932d08f630c1f649aabcbc2"));
        let chat = spans.iter().find(|s| s.name == "chat gpt-4.1").expect("a chat span");
        let reasons = chat.attributes.iter().find(|kv| kv.key == "gen_ai.response.finish_reasons");
        assert!(matches!(reasons.map(|kv| &kv.value), Some(AttrValue::Json(j)) if j == r#"["tool_calls"]"#));

        let claude = Capture::load(fixture("claude-code/protobuf-content-on")).expect("loads");
        assert_eq!(claude.requests().len(), 3, "the .decoded.json renderings are skipped");
        assert!(claude.requests().iter().all(|r| r.encoding == Encoding::Protobuf));
        let logs = claude.only(&[Signal::Logs]).resource_batches().expect("decodes");
        assert!(logs.iter().flat_map(|b| &b.scopes).any(|s| s.scope.name == "com.anthropic.claude_code.events"));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(decode(Signal::Traces, Encoding::Json, b"{").is_err());
        assert!(decode(Signal::Logs, Encoding::Protobuf, b"\xff\xff\xff").is_err());
        assert!(Capture::load(fixture("no-such-capture")).is_err());
        let long = Fragment {
            trace_key: "t".into(),
            also_known_as: Vec::new(),
            id: "x".repeat(MAX_ID_LEN + 1),
            report_id: "r".into(),
            attribution: crate::Attribution { session_id: None, user_id: None, device_id: None },
            body: crate::FragmentBody::Event(crate::Event {
                name: "e".into(),
                time_unix_nano: 0,
                attributes_json: "{}".into(),
                error: None,
            }),
        };
        assert!(check(&[long]).is_err_and(|e| e.0 == "id of 513 bytes (1..=512 allowed)"));
    }
}
