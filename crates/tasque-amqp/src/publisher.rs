//! Publishing with publisher confirms.

use futures_util::future::try_join_all;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Connection};
use serde::Serialize;

use crate::connect::connection_properties;
use crate::settle::publish_confirmed;
use crate::{headers, Error};

/// A message to publish: a payload plus the task name and a few properties.
///
/// ```
/// use tasque_amqp::Message;
///
/// let message = Message::json("resize", &serde_json::json!({ "image": "a.png" }))?
///     .message_id("resize-a.png")
///     .header("x-origin", "upload");
/// assert_eq!(message.task_name(), Some("resize"));
/// # Ok::<(), tasque_amqp::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    payload: Vec<u8>,
    task: Option<String>,
    message_id: Option<String>,
    headers: Vec<(String, String)>,
    persistent: bool,
    content_type: Option<String>,
}

impl Message {
    /// A message for `task` whose payload is `payload` encoded as JSON.
    pub fn json<T: Serialize + ?Sized>(
        task: impl Into<String>,
        payload: &T,
    ) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(payload).map_err(Error::Encode)?;
        let mut message = Self::raw(bytes).task(task);
        message.content_type = Some("application/json".to_owned());
        Ok(message)
    }

    /// A message with these payload bytes as they are, and no task name
    /// (the consumer then uses the routing key); set one with [`task`](Message::task).
    pub fn raw(payload: impl Into<Vec<u8>>) -> Self {
        Self {
            payload: payload.into(),
            task: None,
            message_id: None,
            headers: Vec::new(),
            persistent: true,
            content_type: None,
        }
    }

    /// Names the task in the [`x-tasque-task`](headers::TASK) header.
    pub fn task(mut self, task: impl Into<String>) -> Self {
        self.task = Some(task.into());
        self
    }

    /// Sets the `message_id` property (handlers see it in their context).
    pub fn message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }

    /// Adds a string header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Whether the broker should write the message to disk (delivery mode
    /// 2). Default `true`.
    pub fn persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// The task name, if set.
    pub fn task_name(&self) -> Option<&str> {
        self.task.as_deref()
    }

    /// The payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    fn properties(&self) -> BasicProperties {
        let task = self
            .task
            .iter()
            .map(|task| (headers::TASK.to_owned(), task.clone()));
        let table = headers::table(task.chain(self.headers.iter().cloned()));
        let mut properties = BasicProperties::default()
            .with_headers(table)
            .with_delivery_mode(if self.persistent { 2 } else { 1 });
        if let Some(id) = &self.message_id {
            properties = properties.with_message_id(ShortString::from(id.as_str()));
        }
        if let Some(content_type) = &self.content_type {
            properties = properties.with_content_type(ShortString::from(content_type.as_str()));
        }
        properties
    }
}

/// Publishes messages and returns only once the broker has confirmed them.
///
/// The channel is in confirm mode and every message is published
/// `mandatory`, so a call succeeds only when the broker has taken
/// responsibility for the message *and* routed it to at least one queue;
/// otherwise it fails with [`Error::NotConfirmed`] (or [`Error::Amqp`]). A
/// publisher does not reconnect by itself: on error, reconnect and publish
/// again (at-least-once).
pub struct Publisher {
    connection: Connection,
    channel: Channel,
}

impl Publisher {
    /// Connects to the broker at `url` and opens a confirm-mode channel.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let properties = connection_properties("tasque-amqp publisher");
        let connection = Connection::connect(url, properties).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            connection,
            channel,
        })
    }

    /// Publishes one message to `exchange` with `routing_key` and waits for
    /// the broker's confirm.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        message: &Message,
    ) -> Result<(), Error> {
        publish_confirmed(
            &self.channel,
            exchange,
            routing_key,
            &message.payload,
            message.properties(),
        )
        .await
    }

    /// Publishes one message straight to `queue` (through the default
    /// exchange) and waits for the confirm.
    pub async fn publish_to_queue(&self, queue: &str, message: &Message) -> Result<(), Error> {
        self.publish("", queue, message).await
    }

    /// Publishes many messages without waiting between them, then waits for
    /// all their confirms; fails if any was not confirmed. Much faster than
    /// one [`publish`](Publisher::publish) at a time.
    pub async fn publish_batch<'a>(
        &self,
        exchange: &str,
        routing_key: &str,
        messages: impl IntoIterator<Item = &'a Message>,
    ) -> Result<usize, Error> {
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let mut confirms = Vec::new();
        for message in messages {
            let confirm = self
                .channel
                .basic_publish(
                    exchange,
                    routing_key,
                    options,
                    &message.payload,
                    message.properties(),
                )
                .await?;
            confirms.push(confirm);
        }
        let count = confirms.len();
        for confirmation in try_join_all(confirms).await? {
            match confirmation {
                Confirmation::Ack(None) | Confirmation::NotRequested => {}
                Confirmation::Ack(Some(_)) | Confirmation::Nack(Some(_)) => {
                    return Err(Error::NotConfirmed(format!(
                        "a message to {exchange:?}/{routing_key:?} was returned as unroutable"
                    )))
                }
                Confirmation::Nack(None) => {
                    return Err(Error::NotConfirmed(format!(
                        "a message to {exchange:?}/{routing_key:?} was negatively confirmed"
                    )))
                }
            }
        }
        Ok(count)
    }

    /// The confirm-mode channel, for declaring topology and the like.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Closes the channel and the connection.
    pub async fn close(self) -> Result<(), Error> {
        self.channel.close(200, "publisher closed").await?;
        self.connection.close(200, "publisher closed").await?;
        Ok(())
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("channel", &self.channel.id())
            .finish()
    }
}
