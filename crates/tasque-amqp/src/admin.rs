//! Broker administration: declare, inspect and purge queues.
//!
//! [`Admin`] holds one connection. Checking a queue that may not exist is a passive declare,
//! which the broker answers for a missing queue by closing the channel; every such check
//! therefore uses a channel of its own, and the admin channel stays usable.

use lapin::options::{QueueDeclareOptions, QueuePurgeOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use tokio::sync::Mutex;

use crate::connect::connection_properties;
use crate::Error;

/// What the broker says about a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStatus {
    /// Messages ready for delivery (not counting delivered, unacknowledged ones).
    pub ready: u32,
    /// Consumers subscribed to the queue.
    pub consumers: u32,
}

/// A connection for administering queues.
///
/// ```no_run
/// # async fn example() -> Result<(), tasque_amqp::Error> {
/// let admin = tasque_amqp::Admin::connect("amqp://guest:guest@127.0.0.1:5672/%2f").await?;
/// admin.ensure_queue("jobs").await?; // declared durable unless it exists
/// let status = admin.queue_status("jobs").await?.expect("declared above");
/// println!("{} ready, {} consumers", status.ready, status.consumers);
/// admin.close().await;
/// # Ok(()) }
/// ```
pub struct Admin {
    connection: Connection,
    channel: Mutex<Channel>,
}

impl Admin {
    /// Connects to the broker at `url`.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let connection = Connection::connect(url, connection_properties("tasque admin")).await?;
        let channel = connection.create_channel().await?;
        Ok(Admin {
            connection,
            channel: Mutex::new(channel),
        })
    }

    /// The status of `queue`, or `None` when it does not exist.
    pub async fn queue_status(&self, queue: &str) -> Result<Option<QueueStatus>, Error> {
        let probe = self.connection.create_channel().await?;
        let declared = probe
            .queue_declare(queue, passive(), FieldTable::default())
            .await;
        match declared {
            Ok(declared) => {
                let _ = probe.close(200, "checked").await;
                Ok(Some(QueueStatus {
                    ready: declared.message_count(),
                    consumers: declared.consumer_count(),
                }))
            }
            // The broker closed the probe channel: the queue is missing (or not ours to
            // see). A closed connection is a real error.
            Err(_) if self.connection.status().connected() => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Declares `queue` durable (without arguments) unless it exists; an existing queue is
    /// used as it is, whatever its arguments. Returns whether it was declared now.
    pub async fn ensure_queue(&self, queue: &str) -> Result<bool, Error> {
        if self.queue_status(queue).await?.is_some() {
            return Ok(false);
        }
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        self.channel
            .lock()
            .await
            .queue_declare(queue, durable, FieldTable::default())
            .await?;
        tracing::info!(queue, "declared durable queue");
        Ok(true)
    }

    /// Messages ready in all of `queues` together (a missing queue counts as empty).
    pub async fn ready(&self, queues: &[String]) -> Result<u64, Error> {
        let mut ready = 0;
        for queue in queues {
            if let Some(status) = self.queue_status(queue).await? {
                ready += u64::from(status.ready);
            }
        }
        Ok(ready)
    }

    /// Deletes every ready message of `queue`; returns how many, or `None` when the queue
    /// does not exist.
    pub async fn purge(&self, queue: &str) -> Result<Option<u32>, Error> {
        if self.queue_status(queue).await?.is_none() {
            return Ok(None);
        }
        let purged = self
            .channel
            .lock()
            .await
            .queue_purge(queue, QueuePurgeOptions::default())
            .await?;
        Ok(Some(purged))
    }

    /// Closes the connection.
    pub async fn close(self) {
        let _ = self.channel.into_inner().close(200, "done").await;
        let _ = self.connection.close(200, "done").await;
    }
}

fn passive() -> QueueDeclareOptions {
    QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    }
}
