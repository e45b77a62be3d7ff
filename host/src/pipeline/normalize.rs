//! The normalization core, pure of storage and transport: resources -> detect -> sandboxed
//! plugin call -> validated fragments. The server, `antenna normalize` and the fuzz targets
//! all run this one piece of code.

use std::sync::Arc;

use super::validate::validate;
use crate::config::Limits;
use crate::plugins::{Loaded, PUT_ASIDE, Signature, detect};
use crate::sandbox::wit::{AttrValue, ResourceBatch};
use crate::storage::{BatchStatus, UnclaimedResource};
use crate::trace::model::{Fragment, clip, repository_name};

/// What the plugins made of one request's resources.
#[derive(Debug, Default)]
pub struct Normalized {
    /// The agents whose plugins handled a resource, in order of first appearance.
    pub agents: Vec<String>,
    /// (agent, fragment), validated.
    pub fragments: Vec<(String, Fragment)>,
    pub unclaimed: Vec<UnclaimedResource>,
    /// One line per resource that failed (plugin error, put aside, invalid output). A resource
    /// turned away by an open circuit breaker has a line starting with [`PUT_ASIDE`].
    pub errors: Vec<String>,
    /// Each plugin call: (plugin, version, seconds, succeeded).
    pub calls: Vec<(String, String, f64, bool)>,
    /// The users the request carries (see [`carried_users`]), sorted: what erasure finds its
    /// stored body by, whether or not a plugin claimed it.
    pub users: Vec<String>,
}

impl Normalized {
    /// The batch's status and error: failed if any resource failed, unclaimed if no plugin
    /// claimed any, else done (noting resources nobody claimed). The error starts with
    /// [`PUT_ASIDE`] only when every failure was an open breaker's (other failures come first),
    /// so such batches, and only they, can be selected for an automatic retry.
    pub fn outcome(&self) -> (BatchStatus, Option<String>) {
        if !self.errors.is_empty() {
            let (put_aside, other): (Vec<&String>, Vec<&String>) =
                self.errors.iter().partition(|e| e.starts_with(PUT_ASIDE));
            let all: Vec<&str> = other.into_iter().chain(put_aside).map(String::as_str).collect();
            return (BatchStatus::Failed, Some(all.join("; ")));
        }
        if !self.unclaimed.is_empty() {
            let error = format!("{} resource(s) claimed by no plugin", self.unclaimed.len());
            let status = if self.agents.is_empty() { BatchStatus::Unclaimed } else { BatchStatus::Done };
            return (status, Some(error));
        }
        (BatchStatus::Done, None)
    }
}

/// One resource through one plugin: the sandboxed call, then the output's bounds.
pub fn run_plugin(loaded: &Loaded, resource: ResourceBatch, limits: &Limits) -> Result<Vec<Fragment>, String> {
    loaded.plugin.normalize(resource).map_err(|e| e.to_string()).and_then(|fragments| validate(fragments, limits))
}

/// Every resource of a request of `project_id` through the plugin that claims it. Blocking
/// (runs Wasm). The circuit breaker counts failures per (plugin, project): one project's poison
/// input never puts a plugin aside for another.
pub fn normalize(
    plugins: &[Arc<Loaded>],
    limits: &Limits,
    project_id: &str,
    resources: Vec<ResourceBatch>,
) -> Normalized {
    let mut out = Normalized::default();
    for resource in resources {
        if resource.scopes.iter().all(|s| s.spans.is_empty() && s.logs.is_empty() && s.metrics.is_empty()) {
            continue;
        }
        let signature = Signature::of(&resource);
        let Some(loaded) = detect(plugins, &signature) else {
            // Sender-chosen names: clipped, and only so many scopes, before they are logged,
            // counted or listed.
            let name = |text: &str| clip(text.to_owned(), MAX_UNCLAIMED_NAME_LEN);
            let resource = UnclaimedResource {
                service_name: name(signature.service_name.unwrap_or("")),
                scope_names: signature.scope_names.iter().take(MAX_UNCLAIMED_SCOPES).map(|s| name(s)).collect(),
            };
            tracing::info!(
                service = %resource.service_name,
                scopes = ?resource.scope_names,
                "no plugin claims this resource; kept for replay"
            );
            out.unclaimed.push(resource);
            continue;
        };
        let agent = loaded.plugin.info.agent.clone();
        if !out.agents.contains(&agent) {
            out.agents.push(agent.clone());
        }
        if loaded.turn_away(project_id) {
            out.errors.push(format!(
                "{PUT_ASIDE}plugin {} is put aside for this project after repeated failures; \
                 the batch is retried when the cool-down ends",
                loaded.label()
            ));
            continue;
        }
        let place = Workplace::of(&resource);
        let started = std::time::Instant::now();
        let result = run_plugin(&loaded, resource, limits);
        let info = &loaded.plugin.info;
        out.calls.push((info.name.clone(), info.version.clone(), started.elapsed().as_secs_f64(), result.is_ok()));
        match result {
            Ok(fragments) => {
                loaded.record_success(project_id);
                out.fragments.extend(fragments.into_iter().map(|f| (agent.clone(), place.stamp(f))));
            }
            Err(error) => {
                let error = format!("{}: {error}", loaded.label());
                loaded.record_failure(project_id, &error, limits.breaker_cool_down());
                out.errors.push(error);
            }
        }
    }
    out
}

/// Attributes that name a user, on a resource or a record (the attribution keys of the
/// contract, and the agents' own logins).
const USER_KEYS: &[&str] =
    &["user.id", "enduser.id", "user.account_id", "user.email", "user.account_uuid", "enduser.pseudo.id"];

/// Most distinct users recorded per request.
const MAX_CARRIED_USERS: usize = 64;

/// Every user a request names, read by the host itself (so a body no plugin claims, or whose
/// plugin failed, is still found when a user is erased), clipped as validation clips
/// attribution.
pub fn carried_users(resources: &[ResourceBatch], limits: &Limits) -> std::collections::BTreeSet<String> {
    let mut users = std::collections::BTreeSet::new();
    let mut take = |attributes: &[crate::sandbox::wit::KeyValue]| {
        for kv in attributes {
            if users.len() >= MAX_CARRIED_USERS {
                return;
            }
            if let AttrValue::Text(value) = &kv.value
                && USER_KEYS.contains(&kv.key.as_str())
                && !value.trim().is_empty()
            {
                users.insert(clip(value.clone(), limits.max_text_len));
            }
        }
    };
    for resource in resources {
        take(&resource.resource_attributes);
        for scope in &resource.scopes {
            scope.spans.iter().for_each(|s| take(&s.attributes));
            scope.logs.iter().for_each(|l| take(&l.attributes));
            scope.metrics.iter().for_each(|m| take(&m.attributes));
        }
    }
    users
}

/// Where a resource's work happened, from its attributes: `vcs.repository.url.full` and
/// `vcs.ref.head.name` (OpenTelemetry's VCS conventions) and `team`. The host reads them, not
/// the plugins, so every agent that can set resource attributes gets them the same way.
#[derive(Debug, Default, Clone, PartialEq)]
struct Workplace {
    repository: Option<String>,
    branch: Option<String>,
    team: Option<String>,
}

/// Longest service or scope name of an unclaimed resource kept (bytes).
const MAX_UNCLAIMED_NAME_LEN: usize = 256;
/// Most scopes of one unclaimed resource counted.
const MAX_UNCLAIMED_SCOPES: usize = 16;

/// Longest repository, branch or team name kept (bytes).
const MAX_PLACE_LEN: usize = 512;

impl Workplace {
    fn of(resource: &ResourceBatch) -> Self {
        let text = |key: &str| {
            resource.resource_attributes.iter().find(|kv| kv.key == key).and_then(|kv| match &kv.value {
                AttrValue::Text(t) if !t.trim().is_empty() => Some(clip(t.trim().to_owned(), MAX_PLACE_LEN)),
                _ => None,
            })
        };
        Workplace {
            // One spelling per repository, credentials and query dropped.
            repository: text("vcs.repository.url.full")
                .map(|url| repository_name(&url))
                .filter(|name| !name.is_empty()),
            branch: text("vcs.ref.head.name"),
            team: text("team"),
        }
    }

    fn stamp(&self, mut fragment: Fragment) -> Fragment {
        let who = &mut fragment.attribution;
        who.repository.clone_from(&self.repository);
        who.branch.clone_from(&self.branch);
        who.team.clone_from(&self.team);
        fragment
    }
}
