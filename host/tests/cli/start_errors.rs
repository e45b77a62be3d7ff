//! What a failed start prints (hardening L5): the reason, never the database password.

use std::process::Command;

#[test]
fn a_failed_start_does_not_print_the_database_password() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // Nothing listens on port 1: the start fails while opening the database.
    let output = Command::new(env!("CARGO_BIN_EXE_antenna"))
        .arg("serve")
        .env("ANTENNA_DATABASE_URL", "postgres://antenna:hunter2-db-password@127.0.0.1:1/antenna")
        .env("ANTENNA_LISTEN", "127.0.0.1:0")
        .env("ANTENNA_GRPC_LISTEN", "off")
        .env("ANTENNA_CACHE_DIR", dir.path().join("cache"))
        .output()
        .expect("run antenna");
    assert!(!output.status.success(), "the start fails");
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(printed.contains("postgres://antenna:[redacted]@127.0.0.1:1/antenna"), "{printed}");
    assert!(!printed.contains("hunter2"), "{printed}");
}
