//! OTLP/HTTP (reqwest) and OTLP/gRPC (tonic, opentelemetry-proto's clients).

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::capture::{Encoding, Payload, Signal};
use crate::{Args, Protocol};

/// A request ready to go: the body for HTTP, the message for gRPC.
pub struct Prepared {
    pub signal: Signal,
    pub records: u64,
    /// Bytes on the wire (after gzip); for gRPC, the protobuf length before framing.
    pub bytes: u64,
    body: Body,
}

enum Body {
    Http { bytes: Vec<u8>, content_type: &'static str },
    Grpc(Payload),
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    /// `200`, `503`, `grpc Unavailable`, `transport: connect` ...
    pub label: String,
}

#[allow(clippy::large_enum_variant)] // one per run
pub enum Transport {
    Http {
        client: reqwest::Client,
        base: String,
        public_key: String,
        secret_key: String,
        gzip: bool,
    },
    Grpc {
        traces: TraceServiceClient<Channel>,
        logs: LogsServiceClient<Channel>,
        metrics: MetricsServiceClient<Channel>,
        authorization: MetadataValue<tonic::metadata::Ascii>,
    },
}

impl Transport {
    pub async fn connect(args: &Args, endpoint: &str) -> anyhow::Result<Transport> {
        Ok(match args.protocol {
            Protocol::Http => Transport::Http {
                client: reqwest::Client::builder()
                    .timeout(args.timeout)
                    .connect_timeout(Duration::from_secs(5))
                    .pool_max_idle_per_host(args.concurrency.max(1))
                    .build()?,
                base: endpoint.trim_end_matches('/').to_owned(),
                public_key: args.public_key.clone(),
                secret_key: args.secret_key.clone(),
                gzip: args.gzip,
            },
            Protocol::Grpc => {
                let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
                    .context("gRPC endpoint")?
                    .timeout(args.timeout)
                    .connect_timeout(Duration::from_secs(5))
                    .connect()
                    .await
                    .with_context(|| format!("connecting to {endpoint}"))?;
                let mut traces = TraceServiceClient::new(channel.clone());
                let mut logs = LogsServiceClient::new(channel.clone());
                let mut metrics = MetricsServiceClient::new(channel);
                if args.gzip {
                    traces = traces.send_compressed(CompressionEncoding::Gzip);
                    logs = logs.send_compressed(CompressionEncoding::Gzip);
                    metrics = metrics.send_compressed(CompressionEncoding::Gzip);
                }
                let credentials = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", args.public_key, args.secret_key));
                let authorization = format!("Basic {credentials}").parse().context("authorization metadata")?;
                Transport::Grpc { traces, logs, metrics, authorization }
            }
        })
    }

    /// Encode (and compress) a rewritten request.
    pub fn prepare(&self, payload: Payload, encoding: Encoding, records: u64) -> Prepared {
        let signal = payload.signal();
        match self {
            Transport::Http { gzip, .. } => {
                let mut bytes = payload.encode(encoding);
                if *gzip {
                    let mut encoder =
                        flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 4), flate2::Compression::fast());
                    encoder.write_all(&bytes).expect("gzip into memory");
                    bytes = encoder.finish().expect("gzip into memory");
                }
                Prepared {
                    signal,
                    records,
                    bytes: bytes.len() as u64,
                    body: Body::Http { bytes, content_type: encoding.content_type() },
                }
            }
            Transport::Grpc { .. } => {
                let bytes = payload.encode(Encoding::Protobuf).len() as u64;
                Prepared { signal, records, bytes, body: Body::Grpc(payload) }
            }
        }
    }

    pub async fn send(&self, prepared: Prepared) -> Outcome {
        match (self, prepared.body) {
            (Transport::Http { client, base, public_key, secret_key, gzip }, Body::Http { bytes, content_type }) => {
                let mut request = client
                    .post(format!("{base}/v1/{}", prepared.signal.as_str()))
                    .basic_auth(public_key, Some(secret_key))
                    .header("content-type", content_type)
                    .body(bytes);
                if *gzip {
                    request = request.header("content-encoding", "gzip");
                }
                match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        // Read the answer so the connection goes back to the pool.
                        let body = response.bytes().await;
                        match body {
                            Ok(_) => Outcome { ok: status.is_success(), label: status.as_u16().to_string() },
                            Err(e) => Outcome { ok: false, label: transport_label(&e) },
                        }
                    }
                    Err(e) => Outcome { ok: false, label: transport_label(&e) },
                }
            }
            (Transport::Grpc { traces, logs, metrics, authorization }, Body::Grpc(payload)) => {
                fn request<T>(message: T, authorization: &MetadataValue<tonic::metadata::Ascii>) -> tonic::Request<T> {
                    let mut request = tonic::Request::new(message);
                    request.metadata_mut().insert("authorization", authorization.clone());
                    request
                }
                let result = match payload {
                    Payload::Traces(m) => traces.clone().export(request(m, authorization)).await.map(|_| ()),
                    Payload::Logs(m) => logs.clone().export(request(m, authorization)).await.map(|_| ()),
                    Payload::Metrics(m) => metrics.clone().export(request(m, authorization)).await.map(|_| ()),
                };
                match result {
                    Ok(()) => Outcome { ok: true, label: "grpc Ok".into() },
                    Err(status) => Outcome { ok: false, label: format!("grpc {:?}", status.code()) },
                }
            }
            _ => unreachable!("a request is prepared for the transport that sends it"),
        }
    }
}

fn transport_label(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() {
        "body"
    } else if e.is_decode() {
        "decode"
    } else {
        "request"
    };
    format!("transport: {kind}")
}
