//! The message style: outcomes as a stream of `(ref, outcome)` deliveries.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::cell::Delivery;
use crate::{AwaitError, Outcome, TaskRef};

/// A mailbox that receives the outcomes of the tasks enqueued *to* it, in
/// completion order, as `(TaskRef, Outcome<T>)` deliveries.
///
/// It is the analogue of a process mailbox: [`recv`](Mailbox::recv) takes the
/// next delivery, and [`receive`](Mailbox::receive) selectively waits for one
/// ref while other deliveries stay buffered, in order, for later. Dropping the
/// mailbox discards outcomes that arrive afterwards; their tasks still run
/// and free their slots normally.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use tasque_core::{Mailbox, Outcome, Queue, TaskOptions};
///
/// let queue = Queue::builder("docs-mailbox").build()?;
/// let mut mailbox = Mailbox::new();
/// let first = queue.enqueue_to(&mailbox, TaskOptions::new(), async { "first" })?;
/// let second = queue.enqueue_to(&mailbox, TaskOptions::new(), async { "second" })?;
///
/// // Pick out the second one; the first stays buffered.
/// let limit = Duration::from_secs(1);
/// assert_eq!(mailbox.receive(&second, limit).await, Ok(Outcome::Ok("second")));
/// let (task_ref, outcome) = mailbox.recv_timeout(limit).await?;
/// assert_eq!((task_ref, outcome), (first, Outcome::Ok("first")));
/// # Ok(()) }
/// ```
pub struct Mailbox<T> {
    sender: mpsc::UnboundedSender<Delivery<T>>,
    receiver: mpsc::UnboundedReceiver<Delivery<T>>,
    buffered: VecDeque<Delivery<T>>,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Mailbox<T> {
    /// Creates an empty mailbox.
    pub fn new() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        Self {
            sender,
            receiver,
            buffered: VecDeque::new(),
        }
    }

    pub(crate) fn sender(&self) -> mpsc::UnboundedSender<Delivery<T>> {
        self.sender.clone()
    }

    /// Waits for the next delivery, in completion order. Waits forever if no
    /// task enqueued to this mailbox is still pending; prefer
    /// [`recv_timeout`](Mailbox::recv_timeout) when that can happen.
    pub async fn recv(&mut self) -> Delivery<T> {
        if let Some(delivery) = self.buffered.pop_front() {
            return delivery;
        }
        // The mailbox holds a sender itself, so the channel never closes.
        loop {
            if let Some(delivery) = self.receiver.recv().await {
                return delivery;
            }
        }
    }

    /// Waits up to `limit` for the next delivery.
    pub async fn recv_timeout(&mut self, limit: Duration) -> Result<Delivery<T>, AwaitError> {
        tokio::time::timeout(limit, self.recv())
            .await
            .map_err(|_| AwaitError::TimedOut(limit))
    }

    /// Takes the next delivery if one is already here, without waiting.
    pub fn try_recv(&mut self) -> Option<Delivery<T>> {
        self.buffered
            .pop_front()
            .or_else(|| self.receiver.try_recv().ok())
    }

    /// Selective receive: waits up to `limit` for the outcome of `task_ref`,
    /// buffering every other delivery that arrives meanwhile (in order).
    pub async fn receive(
        &mut self,
        task_ref: &TaskRef,
        limit: Duration,
    ) -> Result<Outcome<T>, AwaitError> {
        if let Some(position) = self.buffered.iter().position(|(r, _)| r == task_ref) {
            if let Some((_, outcome)) = self.buffered.remove(position) {
                return Ok(outcome);
            }
        }
        let wait = async {
            loop {
                let delivery = self.receiver.recv().await;
                match delivery {
                    Some((r, outcome)) if &r == task_ref => return outcome,
                    Some(other) => self.buffered.push_back(other),
                    None => std::future::pending::<()>().await,
                }
            }
        };
        tokio::time::timeout(limit, wait)
            .await
            .map_err(|_| AwaitError::TimedOut(limit))
    }

    /// How many deliveries are waiting to be taken.
    pub fn len(&self) -> usize {
        self.buffered.len() + self.receiver.len()
    }

    /// `true` when no delivery is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
