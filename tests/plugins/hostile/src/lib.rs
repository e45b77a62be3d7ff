//! A hostile parser for the test suite. It claims scope `antenna.test.hostile`, and what it
//! does is chosen by the resource attribute `hostile.behavior`:
//!
//! - `ok`: one prompt fragment (trace key from `hostile.trace`), as a well-behaved plugin;
//! - `loop`: spins forever (the host's epoch deadline must stop it);
//! - `sleep`: sleeps for an hour (`std::thread::sleep`: a WASI clock subscription and a wait in
//!   `wasi:io/poll`, where the epoch deadline does not reach: the host must end the wait);
//! - `memory`: allocates without end (the host's memory cap must stop it);
//! - `trap`: panics (a trap);
//! - `huge`: returns more fragments than the host accepts;
//! - `long-id`: returns an id longer than the host accepts;
//! - `bad-utf8`: returns a string that is not UTF-8;
//! - `reject`: returns an error;
//! - `count`: returns how many times this instance's `normalize` ran (always 1 with a fresh
//!   instance per call: no state leaks from one batch to the next);
//! - `network`: tries TCP to 127.0.0.1 on the port in `hostile.port`, UDP to the same, and a
//!   DNS lookup of `localhost`; returns an error listing each outcome, with `REACHED` for any
//!   that worked (the host must deny them all);
//! - `files`: tries to list `/`, read `/etc/passwd` and create a file; returns an error listing
//!   each outcome, with `REACHED` for any that worked (the host preopens nothing).

use std::sync::atomic::{AtomicU32, Ordering};

use antenna_sdk::{
    Attribution, Attrs, Claims, Fragment, FragmentBody, Fragments, Parser, PluginInfo, Prompt, ResourceBatch,
};

pub struct Hostile;

static CALLS: AtomicU32 = AtomicU32::new(0);

fn prompt(text: String) -> FragmentBody {
    FragmentBody::Prompt(Prompt { text: Some(text), response: None, start_unix_nano: Some(1), end_unix_nano: None })
}

/// `what: REACHED` for each attempt that worked, `what: <error>` for the others.
fn outcomes(attempts: &[(&str, std::io::Result<()>)]) -> String {
    let each = attempts.iter().map(|(what, outcome)| match outcome {
        Ok(()) => format!("{what}: REACHED"),
        Err(error) => format!("{what}: {error}"),
    });
    each.collect::<Vec<_>>().join("; ")
}

impl Parser for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile".into(),
            version: "1.0.0".into(),
            agent: "hostile".into(),
            claims: Claims {
                scope_names: vec!["antenna.test.hostile".into()],
                event_names: vec![],
                service_names: vec!["hostile".into()],
            },
        }
    }

    fn normalize(batch: &ResourceBatch) -> Result<Vec<Fragment>, String> {
        let calls = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        let resource = Attrs::new(&batch.resource_attributes);
        let trace = resource.str("hostile.trace").unwrap_or("t").to_owned();
        let who = Attribution { session_id: Some("s".into()), user_id: resource.string("user.id"), device_id: None };
        let mut out = Fragments::default();
        match resource.str("hostile.behavior").unwrap_or("ok") {
            "loop" => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 16 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                out.push(trace, "prompt", "r", who, prompt("slept an hour".into()));
            }
            "network" => {
                let port: u16 = resource.str("hostile.port").and_then(|p| p.parse().ok()).unwrap_or(9);
                let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).map(drop);
                let udp = std::net::UdpSocket::bind(("127.0.0.1", 0))
                    .and_then(|socket| socket.send_to(b"hostile", ("127.0.0.1", port)))
                    .map(drop);
                let dns = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", port)).map(drop);
                return Err(format!("network: {}", outcomes(&[("tcp", tcp), ("udp", udp), ("dns", dns)])));
            }
            "files" => {
                let list = std::fs::read_dir("/").map(drop);
                let read = std::fs::read("/etc/passwd").map(drop);
                let create = std::fs::write("antenna-hostile.txt", b"hostile").map(drop);
                return Err(format!("files: {}", outcomes(&[("list", list), ("read", read), ("create", create)])));
            }
            "trap" => panic!("hostile plugin trapped on purpose"),
            "huge" => {
                for i in 0..200_000u32 {
                    out.push(trace.clone(), format!("e{i}"), "r", who.clone(), prompt(String::new()));
                }
            }
            "long-id" => {
                // Built by hand: the SDK's builder would bound the id; the host must too.
                return Ok(vec![Fragment {
                    trace_key: trace,
                    also_known_as: Vec::new(),
                    id: "x".repeat(100_000),
                    report_id: "r".into(),
                    attribution: who,
                    body: prompt("long".into()),
                }]);
            }
            "bad-utf8" => {
                // SAFETY: deliberately not UTF-8; the host must refuse it when lifting the string.
                let text = unsafe { String::from_utf8_unchecked(vec![0xff, 0xfe, 0x41]) };
                out.push(trace, "p", "r", who, prompt(text));
            }
            "reject" => return Err("hostile plugin rejects this batch".into()),
            "count" => {
                out.push(trace, "prompt", "r", who, prompt(calls.to_string()));
            }
            _ => {
                out.push(trace, "prompt", "r", who, prompt("hello from a well-behaved batch".into()));
            }
        }
        Ok(out.into_vec())
    }
}

antenna_sdk::export_parser!(Hostile);
