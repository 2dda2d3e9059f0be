//! A periodic task owned by a handle (a publishing job, an update job): stopped and awaited by
//! `shutdown`, never left running.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Ticker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Ticker {
    /// Runs `tick` every `every` (first after one period) until shutdown.
    pub fn start<F, Fut>(every: Duration, tick: F) -> Ticker
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let (stop, mut rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.tick().await;
            loop {
                tokio::select! {
                    _ = interval.tick() => tick().await,
                    _ = rx.changed() => break,
                }
            }
        });
        Ticker { stop, task }
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
