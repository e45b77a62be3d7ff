//! The circuit breaker: a plugin that keeps failing on one project's batches is put aside for
//! that project for a while, so a broken parser (or one project's poison input) does not burn
//! CPU on every batch, and never stops the plugin for the other projects. The batches turned
//! away meanwhile are stored as failed with an error starting with [`PUT_ASIDE`], and retried
//! automatically once the cool-down is over (the server's background loop asks
//! [`Breaker::retries_due`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Consecutive failures (of one project's batches) after which a plugin is put aside for that
/// project for the cool-down (`Limits::breaker_cool_down_ms`, by default [`BREAKER_COOL_DOWN`]).
pub const BREAKER_THRESHOLD: u32 = 5;
pub const BREAKER_COOL_DOWN: Duration = Duration::from_secs(30);
/// How the error of a batch turned away by an open breaker begins: such a batch failed only
/// because of the breaker, and is retried when it closes.
pub const PUT_ASIDE: &str = "put aside: ";

/// One project's state.
#[derive(Default)]
struct State {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    /// Batches were turned away while open: retry them when the cool-down ends.
    turned_away: bool,
}

/// One breaker per project, for one plugin.
#[derive(Default)]
pub(crate) struct Breaker {
    projects: Mutex<HashMap<String, State>>,
}

impl Breaker {
    pub(crate) fn success(&self, project: &str) {
        if let Ok(mut projects) = self.projects.lock()
            && let Some(state) = projects.get_mut(project)
        {
            state.consecutive_failures = 0;
            if !state.turned_away {
                projects.remove(project);
            }
        }
    }

    /// Count a failure of `project`'s batch; returns true when this failure opened the breaker.
    pub(crate) fn failure(&self, project: &str, cool_down: Duration) -> bool {
        let Ok(mut projects) = self.projects.lock() else { return false };
        let state = projects.entry(project.to_owned()).or_default();
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        if state.consecutive_failures < BREAKER_THRESHOLD {
            return false;
        }
        let now = Instant::now();
        let opened = state.open_until.is_none_or(|until| until <= now);
        state.open_until = Some(now + cool_down);
        opened
    }

    /// Whether the breaker is open for `project` right now; if so, the batch asking is turned
    /// away and will be retried when it closes.
    pub(crate) fn turn_away(&self, project: &str) -> bool {
        let Ok(mut projects) = self.projects.lock() else { return false };
        match projects.get_mut(project) {
            Some(state) if state.open_until.is_some_and(|until| Instant::now() < until) => {
                state.turned_away = true;
                true
            }
            _ => false,
        }
    }

    /// Whether the breaker is open for any project right now.
    pub(crate) fn is_open(&self) -> bool {
        let now = Instant::now();
        self.projects.lock().map(|p| p.values().any(|s| s.open_until.is_some_and(|until| now < until))).unwrap_or(false)
    }

    /// The projects whose breaker has closed again after turning batches away: their
    /// [`PUT_ASIDE`] batches are due for a retry. Each is reported once per opening.
    pub(crate) fn retries_due(&self) -> Vec<String> {
        let now = Instant::now();
        let Ok(mut projects) = self.projects.lock() else { return Vec::new() };
        let mut due = Vec::new();
        for (project, state) in projects.iter_mut() {
            if state.turned_away && state.open_until.is_none_or(|until| until <= now) {
                state.turned_away = false;
                due.push(project.clone());
            }
        }
        due.sort();
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL_DOWN: Duration = Duration::from_secs(30);

    #[test]
    fn opens_after_the_threshold_and_a_success_resets_the_count() {
        let breaker = Breaker::default();
        for _ in 0..BREAKER_THRESHOLD - 1 {
            assert!(!breaker.failure("a", COOL_DOWN));
        }
        breaker.success("a");
        for _ in 0..BREAKER_THRESHOLD - 1 {
            assert!(!breaker.failure("a", COOL_DOWN));
        }
        assert!(!breaker.is_open());
        assert!(breaker.failure("a", COOL_DOWN), "the threshold-th failure in a row opens it");
        assert!(breaker.is_open());
        assert!(!breaker.failure("a", COOL_DOWN), "already open: not reported again");
    }

    #[test]
    fn one_projects_failures_do_not_open_it_for_another() {
        let breaker = Breaker::default();
        for _ in 0..BREAKER_THRESHOLD {
            breaker.failure("a", COOL_DOWN);
        }
        assert!(breaker.turn_away("a"));
        assert!(!breaker.turn_away("b"), "project b is not put aside");
        breaker.failure("b", COOL_DOWN);
        assert!(!breaker.turn_away("b"));
    }

    #[test]
    fn batches_turned_away_are_due_once_the_cool_down_ends() {
        let breaker = Breaker::default();
        let cool_down = Duration::from_millis(50);
        for _ in 0..BREAKER_THRESHOLD {
            breaker.failure("a", cool_down);
        }
        assert!(breaker.retries_due().is_empty(), "nothing turned away yet");
        assert!(breaker.turn_away("a"));
        assert!(breaker.retries_due().is_empty(), "still open");
        std::thread::sleep(cool_down * 2);
        assert!(!breaker.turn_away("a"), "closed again");
        assert_eq!(breaker.retries_due(), vec!["a".to_owned()]);
        assert!(breaker.retries_due().is_empty(), "reported once");
        // Half-open: the next failure opens it again at once.
        assert!(breaker.failure("a", cool_down));
    }
}
