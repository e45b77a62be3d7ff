//! M7: TLS to PostgreSQL. A second server of the machine's own PostgreSQL binaries, in a
//! temporary directory, that takes TCP connections over TLS only, with a certificate of a
//! private CA: the host connects with `sslmode=verify-full`, its sessions are encrypted, and a
//! server it cannot verify stops the start with the reason.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use antenna_e2e::{Capture, TestCa, TestHost};

/// A PostgreSQL server on its own port that accepts TCP over TLS only (pg_hba `hostssl`).
struct TlsServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    ca_file: PathBuf,
}

/// The directory of the machine's PostgreSQL binaries (`pg_config --bindir`, else the newest of
/// Debian's `/usr/lib/postgresql/*/bin`).
fn pg_bin() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).filter(|p| p.join("initdb").exists()).collect())
        .unwrap_or_default();
    found.sort();
    found.pop().expect("PostgreSQL's server binaries (initdb, pg_ctl): install the postgresql package")
}

/// PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user.
fn as_server_user(bin: &Path, program: &str) -> Command {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(bin.join(program));
        command
    } else {
        Command::new(bin.join(program))
    }
}

fn run(mut command: Command, what: &str) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl TlsServer {
    fn start(ca: &TestCa) -> Self {
        let bin = pg_bin();
        let dir = tempfile::tempdir().expect("temporary directory");
        let data = dir.path().join("data");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca.ca_pem).expect("CA file");
        let _ = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status();
        let mut initdb = as_server_user(&bin, "initdb");
        initdb.args(["-U", "postgres", "--auth=trust", "-N", "-D"]).arg(&data);
        run(initdb, "initdb");
        std::fs::write(data.join("server.crt"), &ca.leaf_pem).expect("certificate");
        std::fs::write(data.join("server.key"), &ca.leaf_key_pem).expect("key");
        // TCP only over TLS: a plaintext connection is refused, so a session that works is encrypted.
        std::fs::write(data.join("pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
            .expect("pg_hba.conf");
        let _ = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status();
        let _ = Command::new("chmod").arg("600").arg(data.join("server.key")).status();
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let options =
            format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c ssl=on -c fsync=off", dir.path().display());
        let mut pg_ctl = as_server_user(&bin, "pg_ctl");
        pg_ctl
            .args(["-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("log"))
            .args(["-o", &options, "start"]);
        run(pg_ctl, "pg_ctl start");
        TlsServer { dir, bin, port, ca_file }
    }

    fn url(&self, database: &str, params: &str) -> String {
        format!("postgres://postgres@localhost:{}/{database}?{params}", self.port)
    }

    /// One value from SQL run over the server's Unix socket (no TLS needed there).
    fn psql(&self, database: &str, sql: &str) -> String {
        let mut psql = as_server_user(&self.bin, "psql");
        psql.args(["-h"]).arg(self.dir.path()).args(["-p", &self.port.to_string(), "-U", "postgres", "-d", database]);
        psql.args(["-At", "-c", sql]);
        run(psql, sql).trim().to_owned()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let mut pg_ctl = as_server_user(&self.bin, "pg_ctl");
        pg_ctl.args(["-m", "immediate", "-D"]).arg(self.dir.path().join("data")).arg("stop");
        let _ = pg_ctl.output();
    }
}

async fn connect(url: &str) -> Result<(), String> {
    let assembly = Arc::new(antenna::trace::Assembly::default());
    antenna::storage::connect(url, assembly, antenna::metrics::StorageMetrics::default())
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_host_reaches_postgresql_over_verified_tls_and_refuses_a_server_it_cannot_verify() {
    let ca = TestCa::new();
    let server = TlsServer::start(&ca);
    server.psql("postgres", "CREATE DATABASE antenna_tls");
    let verified = format!("sslmode=verify-full&sslrootcert={}", server.ca_file.display());

    let host = TestHost::start_on(&server.url("antenna_tls", &verified), |_| {}).await;
    host.replay(&Capture::load("claude-code/json-content-off")).await;
    assert!(!host.traces().await.is_empty());
    let encrypted = server.psql(
        "postgres",
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = 'antenna_tls' AND s.ssl",
    );
    let plain = server.psql(
        "postgres",
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = 'antenna_tls' AND NOT s.ssl",
    );
    assert!(encrypted.parse::<u32>().unwrap_or(0) >= 1, "the host's sessions are encrypted: {encrypted}");
    assert_eq!(plain, "0", "no plaintext session");
    drop(host);

    // `require` encrypts (without verifying); `disable` is refused by this server.
    connect(&server.url("antenna_tls", "sslmode=require")).await.expect("sslmode=require");
    let refused = connect(&server.url("antenna_tls", "sslmode=disable")).await.expect_err("plaintext is refused");
    assert!(refused.contains("no encryption") || refused.contains("pg_hba.conf"), "{refused}");

    // Verified against the public roots only, or against another CA: the start stops, saying why.
    let unknown = connect(&server.url("antenna_tls", "sslmode=verify-full")).await.expect_err("unverifiable");
    let other = TestCa::new();
    let other_file = server.dir.path().join("other-ca.pem");
    std::fs::write(&other_file, &other.ca_pem).expect("other CA");
    let wrong_ca = format!("sslmode=verify-full&sslrootcert={}", other_file.display());
    let wrong = connect(&server.url("antenna_tls", &wrong_ca)).await.expect_err("another CA");
    for error in [&unknown, &wrong] {
        assert!(error.to_lowercase().contains("certificate") || error.contains("UnknownIssuer"), "{error}");
    }
}
