//! `antenna-cursor-hook`: run by Cursor for each agent hook (see the library docs).
//!
//! Whatever happens, it prints its answer for the hook (never a permission) and exits 0.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use antenna_cursor_hook::{Config, Invocation};

/// More than any hook payload (a read file's content is the largest).
const MAX_INPUT_BYTES: u64 = 64 << 20;

fn main() -> ExitCode {
    let mut input = Vec::new();
    // A read error leaves what was read; the answer does not depend on it.
    let _ = std::io::stdin().lock().take(MAX_INPUT_BYTES).read_to_end(&mut input);
    let invocation = Invocation::parse(&input, std::env::args().nth(1));

    // Answer first: whatever the network does next, Cursor has its answer.
    {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", invocation.answer());
        let _ = stdout.flush();
    }

    let time_unix_nano =
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let forwarded = std::panic::catch_unwind(move || invocation.forward(&Config::from_env(), time_unix_nano));
    match forwarded {
        Ok(delivery) => {
            if let Some(message) = delivery.message() {
                eprintln!("antenna-cursor-hook: {message}");
            }
        }
        Err(_) => eprintln!("antenna-cursor-hook: internal error; the event was not recorded"),
    }
    ExitCode::SUCCESS
}
