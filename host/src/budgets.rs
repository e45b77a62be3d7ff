//! Budgets: what a project, user, team or repository spent this UTC day or month against a
//! limit, and one webhook alert per threshold crossed per period. Alerts go through an outbox
//! in the database, so each is sent once whatever the number of replicas and restarts: a
//! replica records an alert with an insert that only the first one wins, claims it for a
//! while before posting, and marks it delivered on a 2xx; a failed post is retried with
//! exponential backoff (1 s doubling to an hour). The message carries an `alert_id`, so a
//! receiver can tell a retry after a crash mid-post from a new alert.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::Serialize;
use serde_json::json;

use crate::metrics::Metrics;
use crate::storage::{Alert, Budget, Result, Storage};

/// How long a claimed alert is left to its replica before another may post it.
const CLAIM: Duration = Duration::from_secs(30);
/// How long a webhook may take to answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between two attempts.
const MAX_BACKOFF_SECS: i64 = 3600;

fn ns(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// The current period of `period` (`day` or `month`, UTC) at `now`: its label (`2026-11-30`,
/// `2026-11`) and its start.
pub fn period_start(period: &str, now: DateTime<Utc>) -> Option<(String, DateTime<Utc>)> {
    match period {
        "day" => {
            let start = Utc.with_ymd_and_hms(now.year(), now.month(), now.day(), 0, 0, 0).single()?;
            Some((start.format("%Y-%m-%d").to_string(), start))
        }
        "month" => {
            let start = Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0).single()?;
            Some((start.format("%Y-%m").to_string(), start))
        }
        _ => None,
    }
}

/// A budget as `GET /api/admin/budgets` shows it.
#[derive(Debug, Serialize)]
pub struct BudgetStatus {
    #[serde(flatten)]
    pub budget: Budget,
    pub period_start: Option<String>,
    pub spent_usd: f64,
    /// `ok`, `warning` (a threshold below the limit crossed) or `exceeded`.
    pub state: &'static str,
    /// Alerts recorded this or an earlier period that no webhook has taken yet.
    pub undelivered_alerts: usize,
    /// Why the latest failed attempt failed (`None` while nothing is failing).
    pub last_delivery_error: Option<String>,
    pub alerts: Vec<Alert>,
}

/// Where `spent` stands against the budget.
fn state(budget: &Budget, spent: f64) -> &'static str {
    if spent >= budget.limit_usd {
        "exceeded"
    } else if budget.thresholds.iter().any(|t| spent >= t * budget.limit_usd) {
        "warning"
    } else {
        "ok"
    }
}

/// Every budget with this period's spend, state and alerts.
pub async fn statuses(storage: &dyn Storage, now: DateTime<Utc>) -> Result<Vec<BudgetStatus>> {
    let mut out = Vec::new();
    for budget in storage.budgets().await? {
        let period = period_start(&budget.period, now);
        let spent = match &period {
            Some((_, start)) => storage.spend(&budget, ns(*start)).await?,
            None => 0.0,
        };
        let alerts = storage.alerts_of(&budget.id).await?;
        let undelivered: Vec<&Alert> = alerts.iter().filter(|a| a.delivered_at.is_none()).collect();
        out.push(BudgetStatus {
            state: state(&budget, spent),
            undelivered_alerts: undelivered.len(),
            last_delivery_error: undelivered.iter().rev().find_map(|a| a.last_error.clone()),
            period_start: period.map(|(label, _)| label),
            spent_usd: (spent * 1e9).round() / 1e9,
            alerts,
            budget,
        });
    }
    Ok(out)
}

/// Record an alert for every threshold each budget's spend crossed this period.
pub async fn check(storage: &dyn Storage, now: DateTime<Utc>) -> Result<()> {
    for budget in storage.budgets().await? {
        let Some((label, start)) = period_start(&budget.period, now) else { continue };
        let spent = storage.spend(&budget, ns(start)).await?;
        for threshold in budget.thresholds.iter().copied().filter(|t| spent >= t * budget.limit_usd) {
            let payload = json!({
                "alert_id": format!("{}/{label}/{threshold}", budget.id),
                "budget": {
                    "id": budget.id, "scope": budget.scope, "subject": budget.subject,
                    "period": budget.period, "limit_usd": budget.limit_usd, "project_id": budget.project_id,
                },
                "subject": budget.subject,
                "period": { "kind": budget.period, "start": label },
                "spent_usd": (spent * 1e9).round() / 1e9,
                "limit_usd": budget.limit_usd,
                "threshold": threshold,
            });
            let alert = Alert {
                budget_id: budget.id.clone(),
                period_start: label.clone(),
                threshold,
                payload: payload.to_string(),
                attempts: 0,
                delivered_at: None,
                last_error: None,
            };
            if storage.record_alert(&alert, ns(now)).await? {
                tracing::info!(budget = %budget.id, period = %label, threshold, spent, "budget threshold crossed");
            }
        }
    }
    Ok(())
}

/// How alerts are posted: the hosts they may go to, the roots their TLS certificates may chain
/// to beyond the webpki ones, and where failures are counted.
#[derive(Clone, Default)]
pub struct Webhooks {
    /// `ANTENNA_WEBHOOK_HOSTS` (empty: any host).
    pub hosts: Vec<String>,
    /// `ANTENNA_WEBHOOK_CA_FILE`: a private CA's certificates, trusted besides the public roots.
    pub roots: Vec<reqwest::Certificate>,
    pub metrics: Arc<Metrics>,
}

impl Webhooks {
    /// The client alerts are posted with: rustls, public roots plus `roots`, no redirects (a 307
    /// would re-post the alert wherever the receiver points).
    pub fn client(&self) -> reqwest::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(WEBHOOK_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none());
        for root in &self.roots {
            builder = builder.add_root_certificate(root.clone());
        }
        builder.build()
    }
}

/// Post every due alert this replica can claim.
pub async fn deliver(
    storage: &dyn Storage,
    client: &reqwest::Client,
    webhooks: &Webhooks,
    now: DateTime<Utc>,
) -> Result<()> {
    let budgets = storage.budgets().await?;
    let claim_until = ns(now) + i64::try_from(CLAIM.as_nanos()).unwrap_or(i64::MAX);
    for alert in storage.due_alerts(ns(now)).await? {
        if !storage.claim_alert(&alert, ns(now), claim_until).await? {
            continue;
        }
        let Some(url) = budgets.iter().find(|b| b.id == alert.budget_id).map(|b| b.webhook_url.clone()) else {
            continue;
        };
        let outcome = post(client, &url, &alert.payload, &webhooks.hosts).await;
        let backoff = 1i64.checked_shl(u32::try_from(alert.attempts).unwrap_or(31).min(31)).unwrap_or(MAX_BACKOFF_SECS);
        let retry = ns(now) + backoff.min(MAX_BACKOFF_SECS) * 1_000_000_000;
        match &outcome {
            Ok(()) => tracing::info!(budget = %alert.budget_id, threshold = alert.threshold, "budget alert delivered"),
            Err(error) => {
                webhooks.metrics.budget_alert_failures.inc();
                tracing::warn!(budget = %alert.budget_id, %error, attempts = alert.attempts + 1, "budget alert not delivered; retried later")
            }
        }
        storage.finish_alert(&alert, outcome, ns(Utc::now()), retry).await?;
    }
    Ok(())
}

/// A webhook URL as logs and errors may show it: scheme and host (a Slack or Teams URL's path is
/// itself the credential).
pub fn webhook_origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(url) => format!("{}://{}", url.scheme(), url.host_str().unwrap_or("?")),
        Err(_) => "the webhook".into(),
    }
}

/// Whether `url`'s host is one the operator allows (`ANTENNA_WEBHOOK_HOSTS`; empty: any).
pub fn webhook_host_allowed(url: &str, hosts: &[String]) -> bool {
    hosts.is_empty()
        || reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .is_some_and(|host| hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)))
}

/// Post one alert. Errors name only the URL's origin, and say no more of a failed connection
/// than that it failed (which port is closed and which filtered is nobody's business).
async fn post(client: &reqwest::Client, url: &str, payload: &str, hosts: &[String]) -> std::result::Result<(), String> {
    let origin = webhook_origin(url);
    if !webhook_host_allowed(url, hosts) {
        return Err(format!("{origin} is not in ANTENNA_WEBHOOK_HOSTS: not posted"));
    }
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(payload.to_owned())
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                format!("{origin} did not answer within {} s", WEBHOOK_TIMEOUT.as_secs())
            } else if is_tls_failure(&e) {
                format!(
                    "could not deliver to {origin}: its TLS certificate is not trusted (see ANTENNA_WEBHOOK_CA_FILE)"
                )
            } else {
                format!("could not deliver to {origin}")
            }
        })?;
    let status = response.status();
    if status.is_redirection() {
        return Err(format!("{origin} answered {status}: redirects are not followed"));
    }
    if status.is_success() { Ok(()) } else { Err(format!("{origin} answered {status}")) }
}

/// Whether a failed post failed on the receiver's certificate (said apart from other connect
/// failures: an operator can fix it with a CA file).
fn is_tls_failure(error: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        let text = e.to_string();
        if text.contains("certificate") || text.contains("UnknownIssuer") {
            return true;
        }
        source = e.source();
    }
    false
}

/// Alerts of every budget not yet delivered.
async fn undelivered(storage: &dyn Storage) -> Result<i64> {
    let mut count = 0;
    for budget in storage.budgets().await? {
        count += storage.alerts_of(&budget.id).await?.iter().filter(|a| a.delivered_at.is_none()).count();
    }
    Ok(i64::try_from(count).unwrap_or(i64::MAX))
}

/// Check budgets and deliver alerts every `every`, for as long as the host runs.
pub async fn run(storage: Arc<dyn Storage>, every: Duration, webhooks: Webhooks) {
    let client = match webhooks.client() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client for budget webhooks; budgets are not checked");
            return;
        }
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = Utc::now();
        if let Err(e) = check(&*storage, now).await {
            tracing::error!(error = %e, "budget check failed");
        }
        if let Err(e) = deliver(&*storage, &client, &webhooks, now).await {
            tracing::error!(error = %e, "budget alert delivery failed");
        }
        match undelivered(&*storage).await {
            Ok(count) => {
                webhooks.metrics.budget_alerts_undelivered.set(count);
            }
            Err(e) => tracing::error!(error = %e, "could not count undelivered budget alerts"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_start_at_utc_midnight_and_the_first_of_the_month() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 17, 5, 0).single().expect("time");
        let (label, start) = period_start("day", now).expect("day");
        assert_eq!((label.as_str(), start.to_rfc3339()), ("2026-11-30", "2026-11-30T00:00:00+00:00".to_owned()));
        let (label, start) = period_start("month", now).expect("month");
        assert_eq!((label.as_str(), start.to_rfc3339()), ("2026-11", "2026-11-01T00:00:00+00:00".to_owned()));
        assert!(period_start("week", now).is_none());
    }
}
