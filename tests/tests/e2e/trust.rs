//! What the host trusts on disk: compiled code in the cache only when nobody but the host's user
//! could have written it; plugins only from a directory and files nobody else can write, within
//! a size cap, on an allowlist when there is one, and bytes refused once are not compiled again;
//! `/metrics` behind a token when one is set. Real hosts, real components, real files (the tests
//! run as root, so they can give files to another user).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use antenna_e2e::{ADMIN_TOKEN, TestHost, components};
use serde_json::Value;

/// A user that is neither the host's nor root.
const OTHER_UID: u32 = 65534;

fn active(plugins: &Value, name: &str) -> Option<String> {
    plugins["data"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name && p["active"] == true)
        .map(|p| format!("{} {}", p["version"].as_str().unwrap_or(""), p["source"]["kind"].as_str().unwrap_or("")))
}

fn refusal(plugins: &Value, file_suffix: &str) -> Option<String> {
    plugins["refused"].as_array()?.iter().find_map(|r| {
        r["file"].as_str().filter(|f| f.ends_with(file_suffix)).and(r["reason"].as_str().map(str::to_owned))
    })
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("metadata").mode() & 0o7777
}

/// The cache entry of `component` in `cache` (its name starts with the component's SHA-256).
fn cache_entry(cache: &Path, component: &str) -> Option<PathBuf> {
    let digest = antenna::ids::sha256_hex(&std::fs::read(component).expect("component"));
    std::fs::read_dir(cache)
        .expect("cache dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&digest)))
}

/// Put a file into the plugins directory atomically, with its owner and mode set first.
fn install_as(host: &TestHost, component: &str, name: &str, uid: u32, file_mode: u32) {
    let tmp = host.dir.path().join(format!("{name}.partial"));
    std::fs::copy(component, &tmp).expect("copy");
    std::os::unix::fs::chown(&tmp, Some(uid), None).expect("chown");
    chmod(&tmp, file_mode);
    std::fs::rename(&tmp, host.plugins_dir().join(name)).expect("rename");
}

#[tokio::test]
async fn compiled_code_others_could_have_written_is_never_loaded() {
    let host = TestHost::with_plugins_dir().await;
    let cache = host.dir.path().join("cache");
    // Hostile's compiled code lands in the cache.
    host.install_plugin(components::HOSTILE, "hostile.wasm");
    host.wait_for_plugins("hostile", |p| active(p, "hostile").is_some()).await;
    std::fs::remove_file(host.plugins_dir().join("hostile.wasm")).expect("remove");
    host.wait_for_plugins("hostile gone", |p| active(p, "hostile").is_none()).await;

    // The cache is the host's alone: directory 0700, entries 0600.
    assert_eq!(mode(&cache), 0o700);
    let hostile_entry = cache_entry(&cache, components::HOSTILE).expect("hostile's entry");
    for entry in std::fs::read_dir(&cache).expect("cache").flatten() {
        if entry.path().extension().is_some_and(|e| e == "cwasm") {
            assert_eq!(mode(&entry.path()), 0o600, "{}", entry.path().display());
        }
    }

    // Whoever writes an entry chooses the native code the host runs: hostile's code planted
    // under the key of claude-code v2.
    let name = hostile_entry.file_name().expect("name").to_string_lossy().into_owned();
    let engine_suffix = &name[64..];
    let next_digest = antenna::ids::sha256_hex(&std::fs::read(components::CLAUDE_CODE_NEXT).expect("component"));
    let planted = cache.join(format!("{next_digest}{engine_suffix}"));
    let plant = |uid: u32, file_mode: u32| {
        std::fs::copy(&hostile_entry, &planted).expect("plant");
        std::os::unix::fs::chown(&planted, Some(uid), None).expect("chown");
        chmod(&planted, file_mode);
    };
    let round = |what: &'static str, expected: &'static str| {
        let host = &host;
        async move {
            host.install_plugin(components::CLAUDE_CODE_NEXT, "claude-code.wasm");
            let plugins = host
                .wait_for_plugins(what, |p| {
                    active(p, "claude-code").as_deref() == Some("0.2.0 file") || active(p, "hostile").is_some()
                })
                .await;
            let loaded = if active(&plugins, "hostile").is_some() { "hostile" } else { "claude-code" };
            assert_eq!(loaded, expected, "{what}: {plugins:#}");
            std::fs::remove_file(host.plugins_dir().join("claude-code.wasm")).expect("remove");
            host.wait_for_plugins("back to built-ins", |p| {
                active(p, "hostile").is_none() && active(p, "claude-code").as_deref() == Some("0.1.0 built_in")
            })
            .await;
        }
    };

    // Control: an entry as the host writes them is trusted (so the plant works).
    plant(0, 0o600);
    round("a trusted entry", "hostile").await;

    // Owned by another user: refused, recompiled and rewritten as the host's own.
    plant(OTHER_UID, 0o600);
    round("an entry of another user", "claude-code").await;
    let rewritten = std::fs::metadata(&planted).expect("rewritten");
    assert_eq!((rewritten.uid(), rewritten.mode() & 0o777), (0, 0o600));

    // Writable by group or others: refused.
    plant(0, 0o666);
    round("a world-writable entry", "claude-code").await;
    assert_eq!(mode(&planted), 0o600);

    // A sound entry in a directory others can write: refused (and nothing written there).
    plant(0, 0o600);
    chmod(&cache, 0o777);
    round("an entry in a world-writable directory", "claude-code").await;
    chmod(&cache, 0o700);
}

#[tokio::test]
async fn plugins_load_only_from_a_directory_and_files_nobody_else_can_write() {
    let host = TestHost::with_plugins_dir().await;
    let dir = host.plugins_dir();

    // A directory group or others can write: nothing loads from it, and the admin API says why.
    chmod(&dir, 0o777);
    host.install_plugin(components::HOSTILE, "hostile.wasm");
    let plugins = host
        .wait_for_plugins("directory refused", |p| refusal(p, "/plugins").is_some_and(|r| r.contains("writable")))
        .await;
    assert!(active(&plugins, "hostile").is_none(), "{plugins:#}");
    // Owned by another user: the same.
    chmod(&dir, 0o755);
    std::os::unix::fs::chown(&dir, Some(OTHER_UID), None).expect("chown");
    host.install_plugin(components::HOSTILE, "hostile.wasm");
    host.wait_for_plugins("directory of another user refused", |p| {
        refusal(p, "/plugins").is_some_and(|r| r.contains(&format!("uid {OTHER_UID}")))
    })
    .await;
    assert!(active(&host.admin_plugins().await, "hostile").is_none());
    // Made the host's own again: the plugin loads.
    std::os::unix::fs::chown(&dir, Some(0), None).expect("chown");
    host.install_plugin(components::HOSTILE, "hostile.wasm");
    let plugins = host.wait_for_plugins("hostile", |p| active(p, "hostile").is_some()).await;
    assert!(refusal(&plugins, "/plugins").is_none(), "{plugins:#}");

    // Files of another user, or writable by others: refused, and the built-in keeps serving.
    install_as(&host, components::CLAUDE_CODE_NEXT, "claude-code.wasm", OTHER_UID, 0o644);
    install_as(&host, components::CLAUDE_CODE_NEXT, "claude-code-2.wasm", 0, 0o666);
    let plugins = host
        .wait_for_plugins("two files refused", |p| {
            refusal(p, "/claude-code.wasm").is_some() && refusal(p, "/claude-code-2.wasm").is_some()
        })
        .await;
    let reason = refusal(&plugins, "/claude-code.wasm").expect("refused");
    assert!(reason.contains(&format!("owned by uid {OTHER_UID}")), "{reason}");
    let reason = refusal(&plugins, "/claude-code-2.wasm").expect("refused");
    assert!(reason.contains("writable by group or others"), "{reason}");
    assert_eq!(active(&plugins, "claude-code").as_deref(), Some("0.1.0 built_in"));
}

#[tokio::test]
async fn oversized_files_are_refused_unread_and_refused_bytes_are_not_compiled_again() {
    let host = TestHost::with_plugins_dir().await;
    let cache = host.dir.path().join("cache");

    // Beyond 64 MiB: refused on its size (a sparse file: nothing to read but its length).
    let big = std::fs::File::create(host.dir.path().join("big.partial")).expect("create");
    big.set_len(antenna::plugins::MAX_PLUGIN_BYTES + 1).expect("set_len");
    drop(big);
    std::fs::rename(host.dir.path().join("big.partial"), host.plugins_dir().join("big.wasm")).expect("rename");
    let plugins = host.wait_for_plugins("big refused", |p| refusal(p, "/big.wasm").is_some()).await;
    let reason = refusal(&plugins, "/big.wasm").expect("refused");
    assert!(reason.contains("larger than the limit of 67108864 bytes"), "{reason}");

    // A component that compiles but fails to load: refused once...
    host.install_plugin(components::NO_NORMALIZE, "no-normalize.wasm");
    host.wait_for_plugins("no-normalize refused", |p| refusal(p, "/no-normalize.wasm").is_some()).await;
    let entry = cache_entry(&cache, components::NO_NORMALIZE).expect("compiled once, so cached");
    std::fs::remove_file(&entry).expect("remove the entry");
    // ...and on later events (the same bytes again, other files) not compiled again: had it
    // been, its cache entry would be back.
    host.install_plugin(components::NO_NORMALIZE, "no-normalize.wasm");
    for name in ["other-1.wasm", "other-2.wasm"] {
        std::fs::write(host.plugins_dir().join(name), b"\0asm not really").expect("write");
        host.wait_for_plugins(name, |p| refusal(p, name).is_some()).await;
    }
    let plugins = host.admin_plugins().await;
    assert!(refusal(&plugins, "/no-normalize.wasm").is_some_and(|r| r.contains("normalize")), "{plugins:#}");
    assert!(cache_entry(&cache, components::NO_NORMALIZE).is_none(), "refused bytes were compiled again");
}

#[tokio::test]
async fn with_an_allowlist_only_listed_components_load() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let next_digest = antenna::ids::sha256_hex(&std::fs::read(components::CLAUDE_CODE_NEXT).expect("component"));
    let allowlist = dir.path().join("allowlist");
    std::fs::write(&allowlist, format!("# trusted builds\n{next_digest}  claude-code.wasm\n")).expect("write");

    // A malformed allowlist stops the start.
    let broken = dir.path().join("broken-allowlist");
    std::fs::write(&broken, "claude-code.wasm\n").expect("write");
    let mut config = antenna::Config::local(format!("sqlite://{}", dir.path().join("refused.db").display()));
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.plugins_allowlist = Some(broken);
    let error = antenna::start(config).await.err().expect("refused to start");
    assert!(format!("{error:#}").contains("ANTENNA_PLUGINS_ALLOWLIST"), "{error:#}");

    let host = TestHost::start_in(dir, |config, dir| {
        let plugins = dir.join("plugins");
        std::fs::create_dir_all(&plugins).expect("plugins dir");
        config.plugins_dir = Some(plugins);
        config.cache_dir = Some(dir.join("cache"));
        config.admin_token = Some(ADMIN_TOKEN.into());
        config.plugins_allowlist = Some(allowlist.clone());
    })
    .await;
    host.install_plugin(components::HOSTILE, "hostile.wasm");
    host.install_plugin(components::CLAUDE_CODE_NEXT, "claude-code.wasm");
    let plugins = host
        .wait_for_plugins("next loaded, hostile refused", |p| {
            active(p, "claude-code").as_deref() == Some("0.2.0 file") && refusal(p, "/hostile.wasm").is_some()
        })
        .await;
    let reason = refusal(&plugins, "/hostile.wasm").expect("refused");
    assert!(reason.contains("not in the plugins allowlist"), "{reason}");
    assert!(active(&plugins, "hostile").is_none());

    // The allowlist is read again at every rescan: listing hostile lets it in.
    let hostile_digest = antenna::ids::sha256_hex(&std::fs::read(components::HOSTILE).expect("component"));
    std::fs::write(&allowlist, format!("{next_digest}\n{hostile_digest}\n")).expect("write");
    host.install_plugin(components::HOSTILE, "hostile.wasm");
    host.wait_for_plugins("hostile allowed", |p| active(p, "hostile").is_some()).await;
}

#[tokio::test]
async fn metrics_need_the_metrics_token_when_one_is_set() {
    const TOKEN: &str = "metrics-token-0123456789abcdef";
    let host = TestHost::start_with(|c| c.metrics_token = Some(TOKEN.into())).await;
    let get = |auth: Option<String>| {
        let mut request = host.client.get(host.url("/metrics"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        async move { request.send().await.expect("GET /metrics") }
    };
    assert_eq!(get(None).await.status(), 401);
    assert_eq!(get(Some("Bearer wrong".into())).await.status(), 401);
    assert_eq!(get(Some(format!("Bearer {TOKEN}x"))).await.status(), 401);
    assert_eq!(get(Some(format!("bearer{TOKEN}"))).await.status(), 401);
    let keys = antenna_e2e::basic(antenna_e2e::PUBLIC_KEY, antenna_e2e::SECRET_KEY);
    assert_eq!(get(Some(keys)).await.status(), 401, "project keys are not the metrics token");
    let ok = get(Some(format!("Bearer {TOKEN}"))).await;
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.expect("text").contains("antenna_"));

    // Without a token, /metrics stays open (scrapers inside the network).
    let open = TestHost::start().await;
    let response = open.client.get(open.url("/metrics")).send().await.expect("GET /metrics");
    assert_eq!(response.status(), 200);
}
