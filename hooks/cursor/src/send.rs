//! One bounded POST to the host's OTLP logs endpoint.

use std::io::Read as _;

use crate::config::Config;

/// Why a post did not deliver.
#[derive(Debug)]
pub enum Failure {
    /// Worth trying again later (host down, slow, overloaded, keys not accepted yet).
    Retry { reason: String, timed_out: bool },
    /// The host will never take this body: sending it again cannot help.
    Refused(String),
}

/// Post an OTLP/JSON logs request; within `config.timeout` whatever the host does.
pub fn post(config: &Config, body: &[u8]) -> Result<(), Failure> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(config.timeout))
        .http_status_as_error(false)
        .user_agent(concat!("antenna-cursor-hook/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut request = agent.post(&config.logs_url).header("Content-Type", "application/json");
    if let Some(authorization) = &config.authorization {
        request = request.header("Authorization", authorization);
    }
    match request.send(body) {
        Ok(mut response) => {
            let status = response.status().as_u16();
            if (200..300).contains(&status) {
                return Ok(());
            }
            // The host answers a 4xx with a one-line reason.
            let mut reason = String::new();
            let _ = response.body_mut().as_reader().take(300).read_to_string(&mut reason);
            let reason = format!("HTTP {status}: {}", reason.trim());
            match status {
                400 | 413 | 415 | 422 => Err(Failure::Refused(reason)),
                _ => Err(Failure::Retry { reason, timed_out: false }),
            }
        }
        Err(ureq::Error::Timeout(which)) => {
            Err(Failure::Retry { reason: format!("timed out ({which})"), timed_out: true })
        }
        Err(ureq::Error::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
            Err(Failure::Retry { reason: format!("timed out ({e})"), timed_out: true })
        }
        Err(e) => Err(Failure::Retry { reason: e.to_string(), timed_out: false }),
    }
}
