//! The web UI's server side: the page and its assets under a strict CSP, sign-in with a key pair
//! giving an HttpOnly SameSite=Strict session cookie that the query API accepts, revoked by
//! sign-out on every replica; and the full-text `q` filter of the traces list. Both engines.
//! (What a person sees in the browser is tested by tests/browser with Chromium.)

use antenna_e2e::{Capture, Engine, PUBLIC_KEY, SECRET_KEY, TestHost};
use serde_json::{Value, json};

#[tokio::test]
async fn the_page_and_its_assets_are_served_under_a_strict_policy() {
    let host = TestHost::start().await;
    let response = host.client.get(host.url("/")).send().await.expect("GET /");
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"].to_str().expect("text").to_owned();
    for part in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'none'"] {
        assert!(csp.contains(part), "{csp} has {part}");
    }
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let page = response.text().await.expect("text");
    assert!(page.contains("src=\"/ui/app.js\""));
    for asset in ["app.js", "lib.js", "pages.js", "charts.js", "app.css"] {
        let response = host.client.get(host.url(&format!("/ui/{asset}"))).send().await.expect("asset");
        assert_eq!(response.status(), 200, "{asset}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
    // The page holds no data: without keys or a session the API answers 401.
    let api = host.client.get(host.url("/api/public/traces")).send().await.expect("GET");
    assert_eq!(api.status(), 401);
}

/// The `antenna_session=...` pair of a `Set-Cookie` answer, and the whole header.
fn session_cookie(response: &reqwest::Response) -> (String, String) {
    let header = response.headers()["set-cookie"].to_str().expect("text").to_owned();
    let pair = header.split(';').next().expect("pair").trim().to_owned();
    (pair, header)
}

async fn status_with_cookie(host: &TestHost, cookie: &str, path: &str) -> (u16, Option<String>) {
    let response = host.client.get(host.url(path)).header("cookie", cookie).send().await.expect("GET");
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap_or("").to_owned());
    (response.status().as_u16(), challenge)
}

#[tokio::test]
async fn a_session_cookie_opens_the_api_until_sign_out_on_every_replica() {
    for engine in Engine::ALL {
        let host = TestHost::on_engine(engine, |_| {}).await;
        // A second replica on the same PostgreSQL database: sessions are shared.
        let replica = match &host.database {
            Some(database) => Some(TestHost::start_on(&database.url, |_| {}).await),
            None => None,
        };
        let sign_in = |keys: Value| host.client.post(host.url("/api/ui/session")).json(&keys).send();

        let wrong = sign_in(json!({"public_key": PUBLIC_KEY, "secret_key": "nope"})).await.expect("POST");
        assert_eq!(wrong.status(), 401, "{engine:?}");
        assert!(wrong.headers().get("www-authenticate").is_none(), "no browser dialog");
        assert!(wrong.headers().get("set-cookie").is_none());
        let form = host
            .client
            .post(host.url("/api/ui/session"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("public_key=pk-local&secret_key=sk-local")
            .send()
            .await
            .expect("POST");
        assert_eq!(form.status(), 400, "a cross-site form cannot sign in");

        let ok = sign_in(json!({"public_key": PUBLIC_KEY, "secret_key": SECRET_KEY})).await.expect("POST");
        assert_eq!(ok.status(), 204);
        let (cookie, header) = session_cookie(&ok);
        for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
            assert!(header.contains(part), "{header} has {part}");
        }
        assert!(cookie.starts_with("antenna_session=") && cookie.len() == "antenna_session=".len() + 64);

        let me = host.client.get(host.url("/api/ui/session")).header("cookie", &cookie).send().await.expect("GET");
        assert_eq!(me.status(), 200);
        assert!(me.json::<Value>().await.expect("JSON")["project_id"].as_str().is_some_and(|p| p.starts_with("proj-")));
        assert_eq!(status_with_cookie(&host, &cookie, "/api/public/traces").await.0, 200);
        assert_eq!(status_with_cookie(&host, &cookie, "/api/public/users").await.0, 200);
        if let Some(replica) = &replica {
            assert_eq!(status_with_cookie(replica, &cookie, "/api/public/traces").await.0, 200, "the replica agrees");
        }
        // A made-up token: 401 without a Basic challenge. No credentials at all: the challenge.
        let forged = format!("antenna_session={}", "ab".repeat(32));
        assert_eq!(status_with_cookie(&host, &forged, "/api/public/traces").await, (401, None));
        let bare = host.client.get(host.url("/api/public/traces")).send().await.expect("GET");
        assert!(bare.headers()["www-authenticate"].to_str().expect("text").starts_with("Basic"));
        // The cookie is no admin credential.
        assert_eq!(status_with_cookie(&host, &cookie, "/api/admin/plugins").await.0, 403);

        let out =
            host.client.delete(host.url("/api/ui/session")).header("cookie", &cookie).send().await.expect("DELETE");
        assert_eq!(out.status(), 204);
        assert!(session_cookie(&out).1.contains("Max-Age=0"), "the browser forgets it");
        assert_eq!(status_with_cookie(&host, &cookie, "/api/public/traces").await, (401, None), "revoked");
        if let Some(replica) = &replica {
            assert_eq!(status_with_cookie(replica, &cookie, "/api/public/traces").await.0, 401, "revoked there too");
        }
        let me = host.client.get(host.url("/api/ui/session")).header("cookie", &cookie).send().await.expect("GET");
        assert_eq!(me.status(), 401);
        // Basic keys still work as before.
        assert!(host.get_json("/api/public/traces").await["data"].is_array());
    }
}

/// The ids of `GET /api/public/traces` with `query`.
async fn ids(host: &TestHost, query: &str) -> Vec<String> {
    let page = host.get_json(&format!("/api/public/traces?limit=500&{query}")).await;
    page["data"].as_array().expect("data").iter().map(|t| t["id"].as_str().expect("id").to_owned()).collect()
}

#[tokio::test]
async fn q_searches_prompt_text_on_both_engines() {
    for engine in Engine::ALL {
        let host = TestHost::on_engine(engine, |_| {}).await;
        for capture in ["claude-code/protobuf-content-on", "copilot-cli/json-content-on", "gemini-cli/json-content-on"]
        {
            host.replay(&Capture::load(capture)).await;
        }
        let traces = host.traces().await;
        let all = ids(&host, "").await;
        assert!(all.len() >= 3, "{engine:?}: {} traces", all.len());
        // A word of one prompt that not every prompt has.
        let words = |t: &Value| -> Vec<String> {
            t["prompt"]
                .as_str()
                .unwrap_or("")
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.len() >= 5)
                .map(str::to_lowercase)
                .collect()
        };
        let has = |t: &Value, word: &str| words(t).iter().any(|w| w == word);
        let word = traces
            .iter()
            .flat_map(&words)
            .find(|w| {
                !w.chars().any(|c| c.is_ascii_digit()) && traces.iter().filter(|t| has(t, w)).count() < traces.len()
            })
            .expect("a distinguishing word");
        let expected: Vec<String> =
            traces.iter().filter(|t| has(t, &word)).map(|t| t["id"].as_str().expect("id").to_owned()).collect();

        assert_eq!(ids(&host, &format!("q={word}")).await, expected, "{engine:?}: q={word}");
        assert_eq!(ids(&host, &format!("q={}", word.to_uppercase())).await, expected, "case-insensitive");
        // The last word is a prefix.
        let prefix: String = word.chars().take(word.chars().count() - 1).collect();
        let by_prefix = ids(&host, &format!("q={prefix}")).await;
        assert!(expected.iter().all(|id| by_prefix.contains(id)), "{engine:?}: prefix {prefix}");
        // Every word must occur; a word nobody wrote matches nothing.
        assert!(ids(&host, &format!("q={word}%20zzqqxxnothing")).await.is_empty());
        assert!(ids(&host, "q=zzqqxxnothing").await.is_empty());
        // Query syntax of either engine is only text here.
        for hostile in ["%22", "a%22%20OR%20%22b", "%27%3B--", "NEAR(", "%21%26%7C%3A*", "*"] {
            let response = host
                .client
                .get(host.url(&format!("/api/public/traces?q={hostile}")))
                .header("authorization", antenna_e2e::basic(PUBLIC_KEY, SECRET_KEY))
                .send()
                .await
                .expect("GET");
            assert_eq!(response.status(), 200, "{engine:?}: q={hostile}");
        }
        // Combined with other filters.
        let agent = traces.iter().find(|t| has(t, &word)).expect("one")["agent"].as_str().expect("agent").to_owned();
        let narrowed = ids(&host, &format!("q={word}&agent={agent}")).await;
        assert!(!narrowed.is_empty() && narrowed.iter().all(|id| expected.contains(id)));
    }
}
