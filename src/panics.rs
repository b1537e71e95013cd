//! Panics in a run's tasks, caught and named. A task that panics takes its
//! share of the work with it (events left unpublished, deliveries never
//! handled), so the run fails with the task's own reason in the report
//! instead of passing on what the others did.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures::FutureExt;

/// The panics of one run; cloned into every task that can panic.
#[derive(Debug, Clone, Default)]
pub struct Panics(Arc<Mutex<Vec<String>>>);

impl Panics {
    /// Runs `task`, catching a panic: `None` if it panicked.
    pub async fn guard<T>(&self, name: &str, task: impl Future<Output = T>) -> Option<T> {
        match AssertUnwindSafe(task).catch_unwind().await {
            Ok(value) => Some(value),
            Err(payload) => {
                self.record(name, payload.as_ref());
                None
            }
        }
    }

    /// [`Panics::guard`] as a `'static` future, to spawn.
    pub async fn guard_owned<T>(
        self,
        name: &'static str,
        task: impl Future<Output = T>,
    ) -> Option<T> {
        self.guard(name, task).await
    }

    /// A task whose join handle reports a panic (a blocking thread's).
    pub fn joined<T>(&self, name: &str, joined: Result<T, tokio::task::JoinError>) -> Option<T> {
        match joined {
            Ok(value) => Some(value),
            Err(e) if e.is_panic() => {
                self.record(name, e.into_panic().as_ref());
                None
            }
            Err(_) => None,
        }
    }

    pub fn record(&self, name: &str, payload: &(dyn Any + Send)) {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        tracing::error!(task = name, %message, "a task of the harness panicked; the run fails");
        if let Ok(mut list) = self.0.lock() {
            // One line per task is enough to find it; a thousand publish
            // tasks panicking alike would bury the report.
            let line = format!("the {name} task panicked: {message}");
            if list.len() < 20 && !list.contains(&line) {
                list.push(line);
            }
        }
    }

    pub fn list(&self) -> Vec<String> {
        self.0.lock().map(|list| list.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_caught_and_named() {
        let panics = Panics::default();
        let fine = panics.guard("publish", async { 7 }).await;
        assert_eq!(fine, Some(7));
        let divisor = std::hint::black_box(0u64);
        let caught = panics.guard("garbage", async move { 1 / divisor }).await;
        assert_eq!(caught, None);
        let joined = tokio::task::spawn_blocking(|| panic!("schedule broke")).await;
        assert_eq!(panics.joined::<()>("schedule", joined), None);
        let list = panics.list();
        assert_eq!(list.len(), 2, "{list:?}");
        assert!(
            list[0].starts_with("the garbage task panicked: attempt to divide by zero"),
            "{list:?}"
        );
        assert_eq!(list[1], "the schedule task panicked: schedule broke");
    }
}
