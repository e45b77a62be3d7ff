//! Budgets and their webhook alerts, with a real local HTTP receiver: each threshold alerts once
//! per period, across a failed delivery (retried with backoff), two replicas and a restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use antenna_e2e::{ADMIN_TOKEN, Capture, Engine, TestCa, TestHost};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A webhook receiver on an ephemeral port: answers 500 to the first `failures` posts, then 200;
/// keeps every body it got.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    async fn start(failures: usize) -> Self {
        Self::serve(failures, None).await
    }

    /// The same over https, with a certificate for `localhost` that `ca` signed.
    async fn start_tls(ca: &TestCa) -> Self {
        Self::serve(0, Some(acceptor(ca))).await
    }

    async fn serve(failures: usize, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let url = match tls {
            Some(_) => format!("https://localhost:{port}/hook"),
            None => format!("http://127.0.0.1:{port}/hook"),
        };
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        tokio::spawn(async move {
            let mut served = 0usize;
            while let Ok((stream, _)) = listener.accept().await {
                let status = |served: usize| if served <= failures { "500 Internal Server Error" } else { "200 OK" };
                match &tls {
                    Some(acceptor) => {
                        // A client that refuses the certificate ends the handshake: nothing posted.
                        let Ok(stream) = acceptor.accept(stream).await else { continue };
                        answer(stream, &seen, &mut served, status).await;
                    }
                    None => answer(stream, &seen, &mut served, status).await,
                }
            }
        });
        Receiver { url, bodies }
    }

    fn posts(&self) -> Vec<Value> {
        self.bodies.lock().expect("lock").clone()
    }

    /// The distinct alerts delivered (answered 200).
    fn delivered(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .posts()
            .iter()
            .filter(|p| p["status"] == "200 OK")
            .filter_map(|p| p["body"]["alert_id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    }
}

/// Read one post (headers, then as many body bytes as Content-Length says), keep its body and
/// answer `status(served)`.
async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    seen: &Mutex<Vec<Value>>,
    served: &mut usize,
    status: impl Fn(usize) -> &'static str,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let body = loop {
        let Ok(n) = stream.read(&mut chunk).await else { break None };
        if n == 0 {
            break None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        let Some(end) = text.find("\r\n\r\n") else { continue };
        let length = text[..end]
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        if buf.len() >= end + 4 + length {
            break Some(buf[end + 4..end + 4 + length].to_vec());
        }
    };
    let Some(body) = body else { return };
    *served += 1;
    let status = status(*served);
    if let Ok(value) = serde_json::from_slice::<Value>(&body) {
        seen.lock().expect("lock").push(json!({"status": status, "body": value}));
    }
    let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The receiver's side of TLS: the certificate `ca` signed for localhost.
fn acceptor(ca: &TestCa) -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![ca.leaf_der.clone().into()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(ca.leaf_key_der.clone().into()),
        )
        .expect("server config");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// A JSON capture moved in time so that it happened a minute ago (budgets count this period).
fn recent(capture: &str) -> Capture {
    let capture = Capture::load(capture);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as i64;
    capture.map_json(move |body| {
        let mut latest = 0i64;
        visit_times(body, &mut |t| latest = latest.max(*t));
        let shift = now - 60_000_000_000 - latest;
        visit_times(body, &mut |t| *t += shift);
    })
}

fn visit_times(value: &mut Value, f: &mut dyn FnMut(&mut i64)) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key.ends_with("UnixNano")
                    && let Some(mut t) = v.as_str().and_then(|s| s.parse::<i64>().ok()).filter(|t| *t > 0)
                {
                    f(&mut t);
                    *v = Value::String(t.to_string());
                } else {
                    visit_times(v, f);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| visit_times(v, f)),
        _ => {}
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn each_threshold_alerts_once_per_period_across_retries_replicas_and_restarts_on_both_engines() {
    for engine in Engine::ALL {
        let receiver = Receiver::start(1).await;
        let fast = |c: &mut antenna::Config| {
            c.admin_token = Some(ADMIN_TOKEN.into());
            c.budget_interval = Duration::from_millis(100);
        };
        let first = TestHost::on_engine(engine, fast).await;
        // A second replica on the same PostgreSQL database, checking budgets at the same time.
        let second = match &first.database {
            Some(database) => Some(TestHost::start_on(&database.url, fast).await),
            None => None,
        };
        let claude = recent("claude-code/json-content-off");
        first.replay(&claude).await;
        let spent_one = first.traces().await.iter().map(|t| t["cost_usd"].as_f64().unwrap_or(0.0)).sum::<f64>();
        assert!(spent_one > 0.0);
        // A limit the first prompt takes past 80 % but not to 100 %.
        let limit = spent_one / 0.9;
        let (status, budget) = first.admin(reqwest::Method::POST,
            "/api/admin/budgets",
            Some(json!({"scope": "user", "subject": "dev@example.com", "period": "month", "limit_usd": limit, "webhook_url": receiver.url})),
        )
        .await;
        assert_eq!(status, 201, "{budget}");
        assert_eq!(budget["thresholds"], json!([0.8, 1.0]));
        // Without a project_id a user's spend counts over every project, and the budget says so.
        assert_eq!((budget["all_projects"].clone(), budget["project_id"].clone()), (json!(true), Value::Null));
        let project = first.traces().await[0]["project_id"].clone();
        let (status, scoped) = first
            .admin(
                reqwest::Method::POST,
                "/api/admin/budgets",
                Some(json!({"scope": "team", "subject": "t", "period": "day", "limit_usd": 1, "webhook_url": receiver.url, "project_id": project})),
            )
            .await;
        assert_eq!(status, 201, "{scoped}");
        assert_eq!((scoped["all_projects"].clone(), scoped["project_id"].clone()), (json!(false), project));
        let (status, _) = first
            .admin(
                reqwest::Method::DELETE,
                &format!("/api/admin/budgets/{}", scoped["id"].as_str().unwrap_or("")),
                None,
            )
            .await;
        assert_eq!(status, 204);
        let id = budget["id"].as_str().expect("id").to_owned();

        // 80 %: the first post fails (500), the retry delivers it.
        wait_for("the 80 % alert", || receiver.delivered().len() == 1).await;
        let posts = receiver.posts();
        assert_eq!(posts[0]["status"], "500 Internal Server Error");
        let alert = &posts.last().expect("a post")["body"];
        assert_eq!(alert["threshold"], 0.8, "{alert}");
        assert_eq!(alert["subject"], "dev@example.com");
        assert_eq!(alert["period"]["kind"], "month");
        assert!((alert["spent_usd"].as_f64().unwrap_or(0.0) - spent_one).abs() < 1e-6, "{alert}");

        // Past the limit: the 100 % alert, once.
        first.replay(&recent("copilot-cli/json-content-on")).await;
        wait_for("the 100 % alert", || receiver.delivered().len() == 2).await;
        // The receiver answered; the host marks the alert delivered just after.
        let mut listed = Value::Null;
        for _ in 0..100 {
            let (_, all) = first.admin(reqwest::Method::GET, "/api/admin/budgets", None).await;
            listed = all["data"].as_array().and_then(|d| d.iter().find(|b| b["id"] == id)).cloned().expect("listed");
            if listed["alerts"].as_array().is_some_and(|a| a.len() == 2 && a.iter().all(|a| a["delivered_at"].is_i64()))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(listed["state"], "exceeded", "{listed}");
        let spent_all = first.traces().await.iter().map(|t| t["cost_usd"].as_f64().unwrap_or(0.0)).sum::<f64>();
        assert!((listed["spent_usd"].as_f64().unwrap_or(0.0) - spent_all).abs() < 1e-6, "{listed}");
        let alerts = listed["alerts"].as_array().cloned().unwrap_or_default();
        assert_eq!(alerts.len(), 2);
        assert!(alerts.iter().all(|a| a["delivered_at"].is_i64()), "{alerts:?}");

        // Several more checks, by both replicas, and a host restarted on the same database send
        // nothing again.
        let url = match &first.database {
            Some(database) => database.url.clone(),
            None => format!("sqlite://{}", first.dir.path().join("antenna.db").display()),
        };
        drop(second);
        let restarted = TestHost::start_on(&url, fast).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        drop(restarted);
        assert_eq!(receiver.delivered().len(), 2, "{engine:?}: {:?}", receiver.posts());
        assert_eq!(receiver.posts().len(), 3, "one failed post and two deliveries");

        // Bad budgets are refused with the reason.
        for (bad, says) in [
            (
                json!({"scope": "planet", "subject": "x", "period": "day", "limit_usd": 1, "webhook_url": receiver.url}),
                "scope",
            ),
            (
                json!({"scope": "team", "subject": "x", "period": "week", "limit_usd": 1, "webhook_url": receiver.url}),
                "period",
            ),
            (
                json!({"scope": "team", "subject": "x", "period": "day", "limit_usd": -1, "webhook_url": receiver.url}),
                "limit_usd",
            ),
            (
                json!({"scope": "team", "subject": "x", "period": "day", "limit_usd": 1, "webhook_url": "file:///etc/passwd"}),
                "webhook_url",
            ),
            (
                json!({"scope": "team", "subject": "x", "period": "day", "limit_usd": 1, "webhook_url": receiver.url, "thresholds": []}),
                "thresholds",
            ),
        ] {
            let (status, body) = first.admin(reqwest::Method::POST, "/api/admin/budgets", Some(bad)).await;
            assert_eq!(status, 400, "{body}");
            assert!(body["error"].as_str().unwrap_or("").contains(says), "{says}: {body}");
        }
        let (status, _) = first.admin(reqwest::Method::DELETE, &format!("/api/admin/budgets/{id}"), None).await;
        assert_eq!(status, 204);
        let (status, _) = first.admin(reqwest::Method::DELETE, &format!("/api/admin/budgets/{id}"), None).await;
        assert_eq!(status, 404);
    }
}

/// A receiver that answers every post with a 307 to `location`.
async fn redirecting(location: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut chunk = [0u8; 4096];
            let _ = stream.read(&mut chunk).await;
            let reply = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = stream.write_all(reply.as_bytes()).await;
        }
    });
    url
}

#[tokio::test]
async fn webhooks_follow_no_redirect_show_only_their_origin_and_can_be_limited_to_hosts() {
    let target = Receiver::start(0).await;
    let redirect = redirecting(target.url.clone()).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let host = TestHost::start_with(|c| {
        c.admin_token = Some(ADMIN_TOKEN.into());
        c.budget_interval = Duration::from_millis(100);
    })
    .await;
    host.replay(&recent("claude-code/json-content-off")).await;
    // A Slack-style URL: its path is the credential.
    let secret_urls =
        [format!("{redirect}/services/T000/B000/SECRETPATH"), format!("http://127.0.0.1:{closed}/hook/SECRETPATH")];
    let mut ids = Vec::new();
    for url in &secret_urls {
        let budget = json!({"scope": "user", "subject": "dev@example.com", "period": "month", "limit_usd": 0.000001, "webhook_url": url});
        let (status, created) = host.admin(reqwest::Method::POST, "/api/admin/budgets", Some(budget)).await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_str().expect("id").to_owned());
    }
    let mut errors = Vec::new();
    for _ in 0..200 {
        let (_, all) = host.admin(reqwest::Method::GET, "/api/admin/budgets", None).await;
        errors = ids
            .iter()
            .filter_map(|id| {
                let budget = all["data"].as_array()?.iter().find(|b| b["id"] == *id)?;
                budget["alerts"][0]["last_error"].as_str().map(str::to_owned)
            })
            .collect();
        if errors.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(
        errors[0],
        format!("{} answered 307 Temporary Redirect: redirects are not followed", "http://127.0.0.1")
    );
    assert_eq!(errors[1], "could not deliver to http://127.0.0.1");
    assert!(target.posts().is_empty(), "the redirect was not followed: {:?}", target.posts());

    // With ANTENNA_WEBHOOK_HOSTS, a webhook elsewhere is refused when the budget is made.
    let strict = TestHost::start_with(|c| {
        c.admin_token = Some(ADMIN_TOKEN.into());
        c.webhook_hosts = vec!["hooks.example.com".into()];
    })
    .await;
    let budget = json!({"scope": "user", "subject": "u", "period": "day", "limit_usd": 1, "webhook_url": target.url});
    let (status, refused) = strict.admin(reqwest::Method::POST, "/api/admin/budgets", Some(budget)).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"].as_str().is_some_and(|e| e.contains("ANTENNA_WEBHOOK_HOSTS")), "{refused}");
    let allowed = json!({"scope": "user", "subject": "u", "period": "day", "limit_usd": 1, "webhook_url": "https://hooks.example.com/x"});
    assert_eq!(strict.admin(reqwest::Method::POST, "/api/admin/budgets", Some(allowed)).await.0, 201);
}

/// M2: an https webhook is delivered (rustls, the public roots plus ANTENNA_WEBHOOK_CA_FILE's),
/// and one whose certificate is not trusted is never posted, which the budget's status and
/// /metrics say.
#[tokio::test]
async fn https_webhooks_are_delivered_and_an_untrusted_one_shows_as_undelivered() {
    let tls = TestCa::new();
    let receiver = Receiver::start_tls(&tls).await;
    let budget = json!({"scope": "user", "subject": "dev@example.com", "period": "month", "limit_usd": 0.000001,
        "webhook_url": receiver.url});

    // Trusting the receiver's CA: delivered, over TLS.
    let ca = reqwest::Certificate::from_pem(tls.ca_pem.as_bytes()).expect("CA certificate");
    let trusting = TestHost::start_with(|c| {
        c.admin_token = Some(ADMIN_TOKEN.into());
        c.budget_interval = Duration::from_millis(100);
        c.webhook_roots = vec![ca];
    })
    .await;
    trusting.replay(&recent("claude-code/json-content-off")).await;
    let (status, created) = trusting.admin(reqwest::Method::POST, "/api/admin/budgets", Some(budget.clone())).await;
    assert_eq!(status, 201, "{created}");
    wait_for("both alerts over https", || receiver.delivered().len() == 2).await;
    assert_eq!(receiver.posts()[0]["body"]["subject"], "dev@example.com");

    // Without the CA: the handshake fails, nothing is posted, and it shows.
    let untrusting = TestHost::start_with(|c| {
        c.admin_token = Some(ADMIN_TOKEN.into());
        c.budget_interval = Duration::from_millis(100);
    })
    .await;
    untrusting.replay(&recent("claude-code/json-content-off")).await;
    let (status, created) = untrusting.admin(reqwest::Method::POST, "/api/admin/budgets", Some(budget)).await;
    assert_eq!(status, 201, "{created}");
    let mut listed = Value::Null;
    for _ in 0..200 {
        let (_, all) = untrusting.admin(reqwest::Method::GET, "/api/admin/budgets", None).await;
        listed = all["data"][0].clone();
        if listed["last_delivery_error"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listed["state"], "exceeded", "{listed}");
    assert_eq!(listed["undelivered_alerts"], 2, "{listed}");
    let error = listed["last_delivery_error"].as_str().unwrap_or_default();
    assert!(error.contains("TLS certificate is not trusted") && error.contains("https://localhost"), "{listed}");
    assert!(!error.contains("/hook"), "the URL's path is not shown: {error}");
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = untrusting
            .client
            .get(untrusting.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if metrics.lines().any(|l| l == "antenna_budget_alerts_undelivered 2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metrics.lines().any(|l| l == "antenna_budget_alerts_undelivered 2"), "{metrics}");
    let failures = metrics
        .lines()
        .find_map(|l| l.strip_prefix("antenna_budget_alert_failures_total "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(failures >= 2, "{metrics}");
    assert_eq!(receiver.delivered().len(), 2, "the untrusting host posted nothing");
}
