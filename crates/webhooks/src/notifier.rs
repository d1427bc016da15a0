//! The delivery loop: claims due deliveries, runs each in its own bounded task, settles it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use rand::Rng;
use storefirst_domain::{Answer, RetryPolicy, now_millis};
use storefirst_pipeline::StoreFault;
use tokio::sync::{Semaphore, watch};

use crate::{Due, Outbox, Sender, Settled, TIMEOUT};

/// How long a claimed attempt is leased: past its timeout, with room for settling it.
const LEASE: Duration = Duration::from_secs(3 * TIMEOUT.as_secs());
/// The longest the loop sleeps without looking: another process (redrive) may have made
/// a delivery due without a commit of this one.
const POLL: Duration = Duration::from_secs(1);

pub struct Notifier<O> {
    pub outbox: O,
    pub sender: Sender,
    pub policy: RetryPolicy,
    /// Attempts under way at once, at most.
    pub concurrency: usize,
    /// Attempts under way to one receiver at once, at most: a receiver that hangs holds
    /// this many slots, never all of them.
    pub per_receiver: usize,
}

/// Attempts under way, by receiver.
type InFlight = Arc<Mutex<HashMap<String, usize>>>;

impl<O: Outbox> Notifier<O> {
    /// Delivers until `stopping`; attempts under way then are left to their lease.
    pub async fn run(self, mut stopping: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let in_flight = InFlight::default();
        let mut commits = self.outbox.commits();
        while !*stopping.borrow() {
            commits.borrow_and_update();
            let wait = match self.round(&slots, &in_flight).await {
                Ok(wait) => wait,
                Err(fault) => {
                    tracing::warn!(%fault, "reading the webhook deliveries failed; retrying");
                    POLL
                }
            };
            tokio::select! {
                _ = stopping.changed() => {}
                _ = commits.changed() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Starts what is due and free slots allow; answers how long until it looks again.
    async fn round(
        &self,
        slots: &Arc<Semaphore>,
        in_flight: &InFlight,
    ) -> Result<Duration, StoreFault> {
        let now = now_millis();
        let free = slots.available_permits();
        match self.outbox.next_due().await? {
            // Every slot busy: a settle's commit wakes the loop.
            Some(at) if at <= now && free == 0 => Ok(POLL),
            Some(at) if at <= now => {
                let lease_until = now + i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
                let running = lock(in_flight).clone();
                let claimed = self
                    .outbox
                    .claim(now, lease_until, free, self.per_receiver, &running)
                    .await?;
                if claimed.is_empty() {
                    // What is due waits for its receiver's attempts under way to end.
                    return Ok(POLL);
                }
                for due in claimed {
                    let slot = slots.clone().acquire_owned().await.expect("never closed");
                    *lock(in_flight).entry(due.receiver.clone()).or_default() += 1;
                    let (outbox, sender, policy, in_flight) = (
                        self.outbox.clone(),
                        self.sender.clone(),
                        self.policy,
                        in_flight.clone(),
                    );
                    tokio::spawn(async move {
                        attempt(&outbox, &sender, &policy, &due).await;
                        let mut running = lock(&in_flight);
                        if let Some(count) = running.get_mut(&due.receiver) {
                            *count -= 1;
                            if *count == 0 {
                                running.remove(&due.receiver);
                            }
                        }
                        drop(slot);
                    });
                }
                // More may be due than there were slots: look again at once.
                Ok(Duration::ZERO)
            }
            Some(at) => Ok(Duration::from_millis(u64::try_from(at - now).unwrap_or(0)).min(POLL)),
            None => Ok(POLL),
        }
    }
}

fn lock(in_flight: &InFlight) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
    in_flight
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One attempt, settled. A settle that fails leaves the lease to bring it back.
async fn attempt<O: Outbox>(outbox: &O, sender: &Sender, policy: &RetryPolicy, due: &Due) {
    let answer = sender.send(due).await;
    let settled = settle(policy, due, answer, now_millis());
    match &settled {
        Settled::Delivered => tracing::debug!(id = %due.id, "webhook delivered"),
        Settled::Retry { error, at } => {
            tracing::info!(id = %due.id, %error, retry_at = at, attempts = due.attempts, "webhook retried later");
        }
        Settled::GaveUp { error } => {
            tracing::warn!(id = %due.id, url = due.url, %error, attempts = due.attempts, "webhook given up on");
        }
    }
    if let Err(fault) = outbox.settle(due, settled).await {
        tracing::warn!(id = %due.id, %fault, "recording a webhook attempt failed; it is tried again when its lease ends");
    }
}

/// How the attempt `due` that got `answer` at `now` (epoch ms) ends under `policy`; the
/// AWS notifier settles its attempts with it too.
pub fn settle(policy: &RetryPolicy, due: &Due, answer: Answer, now: i64) -> Settled {
    match answer {
        Answer::Delivered => Settled::Delivered,
        Answer::Permanent(error) => Settled::GaveUp { error },
        Answer::Retry { error, after } => {
            let age = Duration::from_millis(u64::try_from(now - due.first_due_at).unwrap_or(0));
            let jitter = rand::rng().random::<f64>();
            match policy.next(due.attempts, after, age, jitter) {
                Some(wait) => Settled::Retry {
                    at: now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX),
                    error,
                },
                None => Settled::GaveUp {
                    error: format!("{error}; gave up after {} attempts", due.attempts),
                },
            }
        }
    }
}
