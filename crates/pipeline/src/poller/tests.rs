//! The poller's semantics in virtual time: an in-memory stream, an invoker that fails by
//! script, and `tokio::time::pause`, so backoffs are exact and the tests take milliseconds.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use storefirst_domain::{ChangeEvent, ChangeRecord, RequestId, StreamSettings, now_millis};
use tokio::{sync::watch, time::Instant};

use super::*;
use crate::ports::{ChangeStream, DeadLetter, Invoker, StreamBatch, StreamRow, Wakeup};

/// A stream of rows with cursors 1, 2, ...; what the poller checkpoints and dead-letters.
#[derive(Clone, Default)]
struct MemoryStream {
    rows: Arc<Vec<StreamRow<u64>>>,
    state: Arc<Mutex<Advanced>>,
}

#[derive(Default)]
struct Advanced {
    checkpoint: u64,
    /// Every checkpoint written, in order.
    checkpoints: Vec<u64>,
    dead_letters: Vec<DeadLetter<u64>>,
}

impl MemoryStream {
    /// Rows of these events, created `age` ago.
    fn of(events: &[(ChangeEvent, Duration)]) -> Self {
        let rows = events
            .iter()
            .enumerate()
            .map(|(i, (event, age))| {
                let cursor = i as u64 + 1;
                StreamRow {
                    cursor,
                    created_at: now_millis() - millis(*age),
                    record: ChangeRecord {
                        sequence_number: cursor.to_string(),
                        event: *event,
                        id: RequestId::parse(&format!("r{cursor}")).expect("an id"),
                        body: Some("{}".to_owned()),
                        correlation: Default::default(),
                    },
                    source: (),
                }
            })
            .collect();
        Self {
            rows: Arc::new(rows),
            state: Arc::default(),
        }
    }

    fn inserts(count: usize) -> Self {
        Self::of(&vec![(ChangeEvent::Insert, Duration::ZERO); count])
    }

    fn end(&self) -> u64 {
        self.rows.len() as u64
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Advanced> {
        self.state.lock().expect("no panics while holding the lock")
    }
}

impl ChangeStream for MemoryStream {
    type Cursor = u64;
    type Source = ();

    async fn checkpoint(&self) -> Result<u64, StoreFault> {
        Ok(self.state().checkpoint)
    }

    async fn read(
        &self,
        after: &u64,
        limit: u32,
        events: &'static [ChangeEvent],
    ) -> Result<StreamBatch<u64>, StoreFault> {
        let rows: Vec<StreamRow<u64>> = self
            .rows
            .iter()
            .filter(|row| row.cursor > *after && events.contains(&row.record.event))
            .take(limit as usize)
            .cloned()
            .collect();
        let horizon = if rows.len() == limit as usize {
            rows.last().map_or(*after, |row| row.cursor)
        } else {
            self.end()
        };
        Ok(StreamBatch { rows, horizon })
    }

    async fn advance(
        &self,
        to: u64,
        dead_letter: Option<DeadLetter<u64>>,
    ) -> Result<(), StoreFault> {
        let mut state = self.state();
        state.checkpoint = to;
        state.checkpoints.push(to);
        state.dead_letters.extend(dead_letter);
        Ok(())
    }

    fn wakeup(&self) -> Wakeup {
        Wakeup::Every(Duration::from_millis(250))
    }
}

/// Each batch handed over: when (since the start) and its cursors.
type Batches = Arc<Mutex<Vec<(Duration, Vec<u64>)>>>;

/// Fails each named sequence number the given number of times (`u32::MAX`: always), and
/// records every batch it is handed with the (virtual) time it came.
#[derive(Clone, Default)]
struct Scripted {
    failing: Arc<Mutex<HashMap<String, u32>>>,
    batches: Batches,
    start: Arc<Mutex<Option<Instant>>>,
}

impl Scripted {
    fn failing(script: &[(u64, u32)]) -> Self {
        let invoker = Self::default();
        *invoker.failing.lock().unwrap() = script
            .iter()
            .map(|(seq, times)| (seq.to_string(), *times))
            .collect();
        *invoker.start.lock().unwrap() = Some(Instant::now());
        invoker
    }

    fn batches(&self) -> Vec<Vec<u64>> {
        let batches = self.batches.lock().unwrap();
        batches.iter().map(|(_, batch)| batch.clone()).collect()
    }

    fn times(&self) -> Vec<Duration> {
        let batches = self.batches.lock().unwrap();
        batches.iter().map(|(at, _)| *at).collect()
    }
}

impl Invoker<u64, ()> for Scripted {
    async fn invoke(&self, rows: &[StreamRow<u64>], _: &StreamSettings) -> Vec<String> {
        let start = self.start.lock().unwrap().expect("started");
        self.batches
            .lock()
            .unwrap()
            .push((start.elapsed(), rows.iter().map(|row| row.cursor).collect()));
        let mut failing = self.failing.lock().unwrap();
        let mut failures = Vec::new();
        for row in rows {
            let seq = &row.record.sequence_number;
            if let Some(left) = failing.get_mut(seq).filter(|left| **left > 0) {
                *left = left.saturating_sub(u32::from(*left != u32::MAX));
                failures.push(seq.clone());
            }
        }
        failures
    }
}

fn settings(retries: u32, bisect: bool) -> StreamSettings {
    StreamSettings {
        batch_size: 10,
        maximum_retry_attempts: retries,
        bisect_batch_on_function_error: bisect,
        maximum_record_age: Duration::from_secs(60),
        ..StreamSettings::DEFAULT
    }
}

/// Runs the poller until the stream's end is checkpointed (or a virtual minute passes).
async fn run(stream: &MemoryStream, invoker: &Scripted, settings: StreamSettings) {
    let (stop, shutdown) = watch::channel(false);
    let poller = Poller {
        stream: stream.clone(),
        invoker: invoker.clone(),
        settings,
        retry_backoff: Duration::from_millis(100),
        shutdown,
    };
    let task = tokio::spawn(poller.run());
    let deadline = Instant::now() + Duration::from_secs(60);
    while stream.state().checkpoint < stream.end() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).expect("the poller listens");
    task.await.expect("the poller stops");
    assert_eq!(
        stream.state().checkpoint,
        stream.end(),
        "the stream's end was not checkpointed"
    );
}

#[tokio::test(start_paused = true)]
async fn records_before_the_first_failure_are_checkpointed_and_the_rest_retried() {
    let stream = MemoryStream::inserts(5);
    let invoker = Scripted::failing(&[(3, 1)]);

    run(&stream, &invoker, settings(3, false)).await;

    assert_eq!(invoker.batches(), [vec![1, 2, 3, 4, 5], vec![3, 4, 5]]);
    assert_eq!(stream.state().checkpoints, [2, 5]);
    assert!(stream.state().dead_letters.is_empty());
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially() {
    let stream = MemoryStream::inserts(1);
    let invoker = Scripted::failing(&[(1, 3)]);

    run(&stream, &invoker, settings(3, false)).await;

    let times = invoker.times();
    let gaps: Vec<Duration> = times.windows(2).map(|pair| pair[1] - pair[0]).collect();
    assert_eq!(
        gaps,
        [100, 200, 400].map(Duration::from_millis),
        "{times:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_poison_record_is_bisected_out_and_dead_lettered_alone() {
    let stream = MemoryStream::inserts(4);
    let invoker = Scripted::failing(&[(3, u32::MAX)]);

    run(&stream, &invoker, settings(2, true)).await;

    assert_eq!(
        invoker.batches(),
        [vec![1, 2, 3, 4], vec![3], vec![3], vec![4]],
        "the failing rest [3, 4] is halved, and [3] retried until the retries run out"
    );
    let letters = stream.state().dead_letters.clone();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(
        (letters[0].first_seq, letters[0].last_seq),
        (3, 3),
        "{letters:?}"
    );
    assert_eq!(letters[0].request_ids, ["r3"]);
    assert!(
        letters[0].reason.contains("retries exhausted"),
        "{letters:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_bisect_the_whole_failing_rest_is_dead_lettered() {
    let stream = MemoryStream::inserts(4);
    let invoker = Scripted::failing(&[(2, u32::MAX)]);

    run(&stream, &invoker, settings(1, false)).await;

    assert_eq!(invoker.batches(), [vec![1, 2, 3, 4], vec![2, 3, 4]]);
    let letters = stream.state().dead_letters.clone();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].request_ids, ["r2", "r3", "r4"]);
}

#[tokio::test(start_paused = true)]
async fn records_past_the_maximum_age_are_dead_lettered_unprocessed() {
    let old = Duration::from_secs(120);
    let stream = MemoryStream::of(&[
        (ChangeEvent::Insert, old),
        (ChangeEvent::Insert, old),
        (ChangeEvent::Insert, Duration::ZERO),
    ]);
    let invoker = Scripted::failing(&[]);

    run(&stream, &invoker, settings(3, true)).await;

    assert_eq!(invoker.batches(), [vec![3]]);
    let letters = stream.state().dead_letters.clone();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].request_ids, ["r1", "r2"]);
    assert!(
        letters[0].reason.contains("maximum record age"),
        "{letters:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn records_the_filter_drops_are_passed_without_an_invocation() {
    let stream = MemoryStream::of(&[
        (ChangeEvent::Modify, Duration::ZERO),
        (ChangeEvent::Remove, Duration::ZERO),
    ]);
    let invoker = Scripted::failing(&[]);

    run(&stream, &invoker, settings(3, true)).await;

    assert!(invoker.batches().is_empty());
    assert_eq!(stream.state().checkpoints, [2]);
}
