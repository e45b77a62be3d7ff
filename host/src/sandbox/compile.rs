//! Compiling an untrusted component (one from the plugins directory) in a child process, so
//! compiling is bounded like running is: the child (`antenna plugin compile-untrusted`, the
//! host's own binary) gets a memory limit (`ulimit -v`) and a deadline after which it is
//! killed, and a compiler crash is the child's, never the host's. The child writes wasmtime's
//! precompiled form of the component, which the host loads; built-in parsers, which ship in the
//! binary, are compiled in the host's process.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::Component;

use super::RuntimeError;

/// The hidden subcommand the child runs.
pub const SUBCOMMAND: [&str; 2] = ["plugin", "compile-untrusted"];

/// Most bytes of compiled code a child may hand back.
const MAX_OUTPUT_BYTES: u64 = 1 << 30;

/// How to compile untrusted components.
#[derive(Debug, Clone)]
pub struct Compiler {
    /// The host's binary (it has the [`SUBCOMMAND`]).
    pub program: PathBuf,
    pub timeout: Duration,
    /// Address space the child may use, in bytes.
    pub memory_bytes: u64,
}

impl Compiler {
    /// Compile `bytes` in a bounded child process and load the result into `engine`.
    pub fn compile(&self, engine: &Engine, bytes: &[u8]) -> Result<Component, RuntimeError> {
        let compiled = self.run_child(bytes)?;
        deserialize(engine, &compiled)
    }

    /// The child's command line: under `ulimit -v`, with an empty environment — the host's
    /// holds the admin token, the bootstrap secret and the database URL, and the compiler
    /// needs none of it.
    fn command(&self) -> Command {
        let kib = (self.memory_bytes / 1024).max(1);
        let mut command = Command::new("/bin/sh");
        command
            .env_clear()
            .arg("-c")
            .arg(format!("ulimit -v {kib} && exec \"$0\" {} {}", SUBCOMMAND[0], SUBCOMMAND[1]))
            .arg(&self.program);
        command
    }

    fn run_child(&self, bytes: &[u8]) -> Result<Vec<u8>, RuntimeError> {
        let fail = |why: String| RuntimeError::Compile(why);
        // `ulimit -v` (KiB) through the shell: no unsafe pre-exec hook in the host.
        let mut child = self
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("could not start the compiler process {}: {e}", self.program.display())))?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            return Err(fail("the compiler process has no pipes".into()));
        };
        let input = bytes.to_vec();
        // Feed and drain on threads so that neither side blocks on a full pipe.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = stdout.take(MAX_OUTPUT_BYTES).read_to_end(&mut out);
            out
        });
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.take(64 * 1024).read_to_string(&mut text);
            text
        });
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() >= self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!(
                        "compiling took longer than {} ms (ANTENNA_PLUGIN_COMPILE_TIMEOUT_MS); the compiler was stopped",
                        self.timeout.as_millis()
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(fail(format!("waiting for the compiler process: {e}"))),
            }
        };
        let _ = writer.join();
        let out = reader.join().unwrap_or_default();
        let errors = errors.join().unwrap_or_default();
        if !status.success() {
            let why = errors.trim();
            let why = if why.is_empty() {
                format!(
                    "the compiler process ended with {status} (over its {} MiB memory limit, ANTENNA_PLUGIN_COMPILE_MEMORY_MB?)",
                    self.memory_bytes >> 20
                )
            } else if why.contains("memory") || why.contains("alloc") {
                format!("{why} (memory limit {} MiB, ANTENNA_PLUGIN_COMPILE_MEMORY_MB)", self.memory_bytes >> 20)
            } else {
                why.to_owned()
            };
            return Err(fail(why));
        }
        Ok(out)
    }
}

/// What the child does: read a component on stdin, write its precompiled form on stdout.
pub fn compile_untrusted_child() -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    std::io::stdin().lock().take(super::MAX_COMPONENT_BYTES).read_to_end(&mut bytes)?;
    let engine = Engine::new(&super::engine_config())?;
    let compiled = engine.precompile_component(&bytes)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&compiled)?;
    stdout.flush()?;
    Ok(())
}

/// Load what the child compiled.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, compiled: &[u8]) -> Result<Component, RuntimeError> {
    // SAFETY: these bytes were made just now by `Engine::precompile_component` in a child
    // running this same binary with the same engine configuration (a mismatch is detected by
    // wasmtime and is an error), from the component we are loading; they went through a pipe
    // only this process reads. Trusting them is trusting our compiler, as compiling in-process
    // would.
    unsafe { Component::deserialize(engine, compiled) }
        .map_err(|e| RuntimeError::Compile(format!("the compiler process's output does not load: {e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiler_child_inherits_no_environment() {
        // A stand-in for the host's binary that prints its environment.
        let dir = tempfile::tempdir().expect("temporary directory");
        let program = dir.path().join("print-env");
        std::fs::write(&program, "#!/bin/sh\nenv\n").expect("script");
        std::process::Command::new("chmod").arg("700").arg(&program).status().expect("chmod");
        let compiler = Compiler { program, timeout: Duration::from_secs(5), memory_bytes: 1 << 30 };
        let out = compiler.command().output().expect("runs");
        let env = String::from_utf8_lossy(&out.stdout);
        // cargo sets CARGO_PKG_NAME for this test process; the child must not see it.
        assert!(std::env::var("CARGO_PKG_NAME").is_ok());
        assert!(!env.contains("CARGO_PKG_NAME"), "{env}");
    }
}
