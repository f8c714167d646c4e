//! The queue's machinery: one lock-protected state and its transitions.
//!
//! Every transition (enqueue, finish, timeout, cancel, shutdown, restart)
//! takes the state lock briefly and never runs user code under it. A task's
//! [`Phase`] only changes under this lock, so the counts of queued and
//! running tasks are exact; outcomes are delivered through the task's cell,
//! whose first delivery wins.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use slab::Slab;
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::cell::{Control, Phase};
use crate::entry::Entry;
use crate::names::NameRegistry;
use crate::stats::{bump, read, Counters};
use crate::waiting::Waiting;
use crate::{runner, Error, ExitReason, QueueStats, ShutdownReport, TaskRegistry};

/// Everything guarded by the state lock.
///
/// A waiting task's phase and the `queued` count change together, only through
/// [`State::unqueue`]: a task leaves the `Queued` phase exactly once (started,
/// timed out, cancelled, shut down or restarted), and that one transition is
/// the one decrement. Whatever races (a timer, a cancel, `close`, `restart`),
/// the loser finds the phase already changed and leaves the count alone.
struct State {
    accepting: bool,
    /// Slots taken (`active.len()`, kept separately for clarity).
    running: usize,
    /// Live waiting tasks (tombstones excluded).
    queued: usize,
    waiting: Waiting,
    /// The tasks holding a slot, keyed by the runner that runs them.
    active: Slab<Arc<dyn Control>>,
}

impl State {
    /// Takes a waiting task out of the `Queued` phase and the count; false if it
    /// had already left it (the caller lost a race and must do nothing).
    fn unqueue(&mut self, control: &dyn Control) -> bool {
        if control.phase() != Phase::Queued {
            return false;
        }
        control.set_phase(Phase::Done);
        self.queued -= 1;
        true
    }

    /// Empties the line, returning the live entries, each already out of the
    /// `Queued` phase and the count (tombstones are dropped).
    fn drain_live(&mut self) -> Vec<Entry> {
        let drained = self.waiting.drain();
        let live: Vec<Entry> = drained
            .into_iter()
            .filter(|entry| self.unqueue(&*entry.control))
            .collect();
        debug_assert_eq!(self.queued, 0, "every live waiting task was in the line");
        live
    }
}

/// The machinery shared by a queue's handles, runners and timers.
pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) name: Arc<str>,
    pub(crate) max_concurrency: usize,
    pub(crate) runtime: Handle,
    pub(crate) tasks: TaskRegistry,
    pub(crate) counters: Arc<Counters>,
    pub(crate) names: Option<Arc<dyn NameRegistry>>,
    state: Mutex<State>,
    idle: Notify,
    fault_injected: AtomicBool,
}

impl Shared {
    pub(crate) fn new(
        id: u64,
        name: Arc<str>,
        max_concurrency: usize,
        runtime: Handle,
        tasks: TaskRegistry,
        names: Option<Arc<dyn NameRegistry>>,
    ) -> Self {
        Self {
            id,
            name,
            max_concurrency,
            runtime,
            tasks,
            counters: Arc::default(),
            names,
            state: Mutex::new(State {
                accepting: true,
                running: 0,
                queued: 0,
                waiting: Waiting::default(),
                active: Slab::new(),
            }),
            idle: Notify::new(),
            fault_injected: AtomicBool::new(false),
        }
    }

    /// Whether enqueues are still accepted.
    pub(crate) fn is_accepting(&self) -> bool {
        self.state.lock().accepting
    }

    /// Queues `entry`, starting it at once if a slot is free (row 1.4).
    pub(crate) fn submit(self: &Arc<Self>, entry: Entry, priority: i32) -> Result<(), Error> {
        let mut state = self.state.lock();
        if !state.accepting {
            drop(state);
            entry.control.discard();
            return Err(Error::ShutDown {
                queue: self.name.to_string(),
            });
        }
        if state.running < self.max_concurrency && state.waiting.is_empty() {
            let key = Self::occupy(&mut state, &entry);
            drop(state);
            self.spawn_runner(entry, key);
            return Ok(());
        }
        state.queued += 1;
        state.waiting.push(priority, entry);
        let mut started = Vec::new();
        while state.running < self.max_concurrency {
            match self.next_live(&mut state) {
                Some(started_entry) => started.push(started_entry),
                None => break,
            }
        }
        drop(state);
        for (entry, key) in started {
            self.spawn_runner(entry, key);
        }
        Ok(())
    }

    fn spawn_runner(self: &Arc<Self>, entry: Entry, key: usize) {
        self.runtime
            .spawn(runner::run(Arc::clone(self), entry, key));
    }

    /// Takes a slot for `entry`.
    fn occupy(state: &mut State, entry: &Entry) -> usize {
        state.running += 1;
        entry.control.set_phase(Phase::Running);
        state.active.insert(Arc::clone(&entry.control))
    }

    /// Pops the next live waiting task and gives it a slot, skipping
    /// tombstones and timing out tasks whose deadline has already passed
    /// (so a task that timed out while queued never starts, even if its timer
    /// has not run yet).
    fn next_live(&self, state: &mut State) -> Option<(Entry, usize)> {
        let mut now = None;
        while let Some(entry) = state.waiting.pop() {
            if !state.unqueue(&*entry.control) {
                continue;
            }
            if let Some(deadline) = entry.control.deadline() {
                if *now.get_or_insert_with(Instant::now) >= deadline {
                    self.exit(&*entry.control, ExitReason::Timeout);
                    continue;
                }
            }
            let key = Self::occupy(state, &entry);
            return Some((entry, key));
        }
        None
    }

    /// Frees the slot `key` and hands its runner the next waiting task, if
    /// any (the greedy dispatch of row 1.4).
    pub(crate) fn finish_and_next(&self, key: usize) -> Option<(Entry, usize)> {
        let mut state = self.state.lock();
        self.free(&mut state, key);
        if state.running < self.max_concurrency {
            if let Some(next) = self.next_live(&mut state) {
                return Some(next);
            }
        }
        if state.running == 0 {
            self.idle.notify_waiters();
        }
        None
    }

    fn free(&self, state: &mut State, key: usize) {
        if let Some(control) = state.active.try_remove(key) {
            control.set_phase(Phase::Done);
            state.running -= 1;
        }
    }

    /// Delivers an exit and counts it if this call won.
    pub(crate) fn exit(&self, control: &dyn Control, reason: ExitReason) -> bool {
        control.exit(reason, &self.counters)
    }

    /// Ends a task early with `reason` (timeout or cancel): a waiting task is
    /// tombstoned and never starts; a running one is delivered the exit and
    /// signalled to stop. Returns whether this call delivered the outcome.
    pub(crate) fn stop(&self, control: &dyn Control, reason: ExitReason) -> bool {
        let mut state = self.state.lock();
        match control.phase() {
            Phase::Queued => {
                // Delivered before the lock is released: once it is, the line may drop this
                // task's entry as a tombstone (`next_live`, `drain_live`), and an entry dropped
                // before any outcome delivers an uncounted `Exit(Shutdown)` instead of `reason`.
                state.unqueue(control);
                let delivered = self.exit(control, reason);
                drop(state);
                delivered
            }
            Phase::Running => {
                drop(state);
                let delivered = self.exit(control, reason);
                if delivered {
                    control.signal_cancel();
                }
                delivered
            }
            Phase::Done => false,
        }
    }

    /// Refuses new work, drops waiting tasks with `Exit(Shutdown)` and
    /// returns how many were dropped.
    pub(crate) fn close(&self) -> usize {
        let waiting = {
            let mut state = self.state.lock();
            state.accepting = false;
            state.drain_live()
        };
        self.end_waiting(waiting, ExitReason::Shutdown)
    }

    /// Delivers `reason` to tasks already taken out of the line (by
    /// [`State::drain_live`]); returns how many outcomes this delivered.
    fn end_waiting(&self, waiting: Vec<Entry>, reason: ExitReason) -> usize {
        waiting
            .into_iter()
            .map(|entry| usize::from(self.exit(&*entry.control, reason.clone())))
            .sum()
    }

    /// Waits until no slot is taken or `deadline` passes; true if idle.
    pub(crate) async fn wait_idle(&self, deadline: Instant) -> bool {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.state.lock().running == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.state.lock().running == 0;
            }
        }
    }

    /// Ends every running task with `reason` and signals it to stop;
    /// returns how many outcomes this delivered.
    pub(crate) fn stop_running(&self, reason: ExitReason) -> usize {
        let active: Vec<Arc<dyn Control>> = {
            let state = self.state.lock();
            state.active.iter().map(|(_, c)| Arc::clone(c)).collect()
        };
        let mut stopped = 0;
        for control in active {
            if self.exit(&*control, reason.clone()) {
                stopped += 1;
            }
            control.signal_cancel();
        }
        stopped
    }

    /// Shuts the queue down (row 1.13); see [`Queue::shutdown`](crate::Queue::shutdown).
    pub(crate) async fn shutdown(&self, deadline: Instant) -> ShutdownReport {
        let dropped_waiting = self.close();
        if let Some(names) = &self.names {
            names.unregister(&self.name);
        }
        let cancelled_running = if self.wait_idle(deadline).await {
            0
        } else {
            self.stop_running(ExitReason::Shutdown)
        };
        ShutdownReport {
            dropped_waiting,
            cancelled_running,
        }
    }

    /// Restarts the machinery after a fault (row 1.12): the faulty runner's
    /// slot is freed, and every task in flight gets `Exit(QueueRestarted)`
    /// instead of silence. The queue keeps accepting work.
    pub(crate) fn restart(&self, faulty_key: Option<usize>) {
        let waiting = {
            let mut state = self.state.lock();
            if let Some(key) = faulty_key {
                if let Some(control) = state.active.get(key).map(Arc::clone) {
                    self.exit(&*control, ExitReason::QueueRestarted);
                }
                self.free(&mut state, key);
            }
            state.drain_live()
        };
        bump(&self.counters.restarts);
        tracing::error!(queue = %self.name, "tasque queue machinery failed; restarting clean");
        self.end_waiting(waiting, ExitReason::QueueRestarted);
        self.stop_running(ExitReason::QueueRestarted);
        if self.state.lock().running == 0 {
            self.idle.notify_waiters();
        }
    }

    /// Arms a one-shot fault in the machinery (for supervision tests).
    pub(crate) fn inject_fault(&self) {
        self.fault_injected.store(true, Ordering::SeqCst);
    }

    /// Takes an armed fault, if any.
    pub(crate) fn take_fault(&self) -> bool {
        self.fault_injected.load(Ordering::Relaxed)
            && self.fault_injected.swap(false, Ordering::SeqCst)
    }

    /// Frees a runner's slot when the runner itself was dropped (the runtime
    /// is shutting down); the task's cell delivers `Exit(Shutdown)` on drop.
    pub(crate) fn abandon(&self, key: usize) {
        let mut state = self.state.lock();
        self.free(&mut state, key);
        if state.running == 0 {
            self.idle.notify_waiters();
        }
    }

    pub(crate) fn stats(&self) -> QueueStats {
        let (queued, running, accepting) = {
            let state = self.state.lock();
            (state.queued, state.running, state.accepting)
        };
        let c = &self.counters;
        QueueStats {
            name: self.name.to_string(),
            max_concurrency: self.max_concurrency,
            queued,
            running,
            completed: read(&c.completed),
            failed: read(&c.failed),
            timed_out: read(&c.timed_out),
            cancelled: read(&c.cancelled),
            shut_down: read(&c.shut_down),
            restarted: read(&c.restarted),
            restarts: read(&c.restarts),
            accepting,
        }
    }
}
