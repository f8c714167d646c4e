//! One connection's life: open it, consume, dispatch deliveries to the
//! engine, and end it, either lost (abandon in-flight work to the broker) or
//! stopped (drain gracefully).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, FuturesUnordered, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueDeclareOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Connection, Event, ExchangeKind};
use tasque_core::{TaskHandle, TaskOptions, TaskRef};
use tokio::sync::watch;
use tracing::Instrument;

use crate::connect::connection_properties;
use crate::consumer::{stop_requested, Shared};
use crate::settle::{settle, Origin, Verdict};
use crate::stats::Counters;
use crate::{headers, ConsumerState, DeadLetter, MessageContext};

/// How long abandoning a lost connection waits for its settlements to be
/// dropped (they fail fast on a dead channel; this only bounds a stuck one).
const ABANDON_LIMIT: Duration = Duration::from_secs(5);

/// The connection's event stream (errors, blocking).
type Events = Pin<Box<dyn stream::Stream<Item = Event> + Send>>;

/// One delivery's settlement, resolving to its delivery tag.
type InFlight = Pin<Box<dyn Future<Output = u64> + Send>>;

/// How a session ended.
pub(crate) enum SessionEnd {
    /// Stopped on request; the consumer is done.
    Stopped,
    /// The connection or channel was lost; reconnect.
    Lost(String),
}

/// An open connection with its channels and broker consumers.
pub(crate) struct Session {
    connection: Connection,
    consume: Channel,
    publish: Channel,
    consumers: Vec<lapin::Consumer>,
    events: Events,
}

/// The per-session dispatch state.
struct Dispatch {
    inflight: FuturesUnordered<InFlight>,
    running: HashMap<u64, TaskRef>,
}

impl Session {
    /// Connects, checks the topology, sets prefetch and starts consuming.
    pub(crate) async fn open(shared: &Shared) -> Result<Session, lapin::Error> {
        let config = &shared.config;
        let properties = connection_properties(&config.connection_name);
        let connection = Connection::connect_uri(config.uri.clone(), properties).await?;
        let events = Box::pin(connection.events_listener());
        match Self::setup(shared, &connection).await {
            Ok((consume, publish, consumers)) => Ok(Session {
                connection,
                consume,
                publish,
                consumers,
                events,
            }),
            Err(error) => {
                let _ = connection.close(200, "tasque consumer setup failed").await;
                Err(error)
            }
        }
    }

    async fn setup(
        shared: &Shared,
        connection: &Connection,
    ) -> Result<(Channel, Channel, Vec<lapin::Consumer>), lapin::Error> {
        let config = &shared.config;
        check_topology(connection, &config.queues, config.dead_letter.as_ref()).await?;
        let consume = connection.create_channel().await?;
        let prefetch = config.max_concurrency;
        consume
            .basic_qos(prefetch, BasicQosOptions { global: false })
            .await?;
        if config.queues.len() > 1 {
            // Also bound the channel as a whole, so that several queues
            // together never exceed the budget (RabbitMQ enforces both).
            consume
                .basic_qos(prefetch, BasicQosOptions { global: true })
                .await?;
        }
        let publish = connection.create_channel().await?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let mut consumers = Vec::with_capacity(config.queues.len());
        for queue in &config.queues {
            let consumer = consume
                .basic_consume(
                    queue,
                    "",
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            consumers.push(consumer);
        }
        Ok((consume, publish, consumers))
    }

    /// Consumes until the connection is lost or a stop is requested.
    pub(crate) async fn run(
        self,
        shared: &Arc<Shared>,
        stop: &mut watch::Receiver<Option<Duration>>,
    ) -> SessionEnd {
        let Session {
            connection,
            consume,
            publish,
            consumers,
            mut events,
        } = self;
        let names: Vec<ShortString> = consumers.iter().map(lapin::Consumer::queue).collect();
        let tags: Vec<ShortString> = consumers.iter().map(lapin::Consumer::tag).collect();
        let mut deliveries = stream::select_all(
            consumers
                .into_iter()
                .enumerate()
                .map(|(index, consumer)| consumer.map(move |delivery| (index, delivery))),
        );
        let mut dispatch = Dispatch {
            inflight: FuturesUnordered::new(),
            running: HashMap::new(),
        };
        let default_grace = shared.config.shutdown_grace;
        let ending = loop {
            tokio::select! {
                biased;
                grace = stop_requested(stop, default_grace) => break Ok(grace),
                Some(tag) = dispatch.inflight.next(), if !dispatch.inflight.is_empty() => {
                    dispatch.running.remove(&tag);
                }
                next = deliveries.next() => match next {
                    Some((index, Ok(delivery))) => {
                        dispatch.start(shared, &publish, names[index].as_str(), delivery);
                    }
                    Some((_, Err(error))) => break Err(error.to_string()),
                    None => break Err("the broker cancelled the consumer".to_owned()),
                },
                event = events.next() => match event {
                    Some(Event::Error(error)) => break Err(error.to_string()),
                    Some(Event::ConnectionBlocked(reason)) => {
                        tracing::warn!(%reason, "the broker blocked the connection");
                    }
                    Some(_) => {}
                    None => break Err("connection closed".to_owned()),
                },
            }
        };
        match ending {
            Ok(grace) => {
                shared.set_state(ConsumerState::Draining);
                for tag in &tags {
                    let _ = consume
                        .basic_cancel(tag.as_str(), BasicCancelOptions::default())
                        .await;
                }
                dispatch
                    .drain(shared, &publish, &names, deliveries, grace)
                    .await;
                let _ = publish.close(200, "tasque consumer stopped").await;
                let _ = consume.close(200, "tasque consumer stopped").await;
                let _ = connection.close(200, "tasque consumer stopped").await;
                SessionEnd::Stopped
            }
            Err(error) => {
                dispatch.abandon(shared).await;
                let _ = connection.close(200, "tasque consumer reconnecting").await;
                SessionEnd::Lost(error)
            }
        }
    }
}

impl Dispatch {
    /// Starts one delivery: resolves its handler, enqueues it on the engine
    /// and queues its settlement.
    fn start(&mut self, shared: &Arc<Shared>, publish: &Channel, queue: &str, delivery: Delivery) {
        let counters = &shared.counters;
        Counters::bump(&counters.received);
        if delivery.redelivered {
            Counters::bump(&counters.redelivered);
        }
        let properties = &delivery.properties;
        let task = headers::string(properties, headers::TASK)
            .unwrap_or_else(|| delivery.routing_key.to_string());
        let attempt = headers::count(properties, headers::ATTEMPTS)
            .unwrap_or(0)
            .saturating_add(1);
        let message_id = properties.message_id().as_ref().map(ToString::to_string);
        let tag = delivery.delivery_tag;
        let span = tracing::info_span!(
            "tasque.amqp.delivery",
            queue,
            task = %task,
            delivery_tag = tag,
            message_id = message_id.as_deref(),
            attempt,
            redelivered = delivery.redelivered,
        );
        let origin = Origin {
            queue: queue.to_owned(),
            task: task.clone(),
            attempt,
        };
        let context = MessageContext {
            task,
            queue: queue.to_owned(),
            message_id,
            attempt,
            redelivered: delivery.redelivered,
        };
        let config = &shared.config;
        let pending = match config.handlers.prepare(&delivery.data, context) {
            Err(rejection) => Err(Verdict::DeadLetter(rejection.reason())),
            Ok(work) => {
                let options = TaskOptions::new().timeout(config.timeout);
                match shared
                    .engine
                    .enqueue_with(options, work.instrument(span.clone()))
                {
                    Ok(handle) => {
                        self.running.insert(tag, handle.task_ref().clone());
                        Ok(handle)
                    }
                    Err(error) => Err(Verdict::Requeue(error.to_string())),
                }
            }
        };
        let shared = Arc::clone(shared);
        let publish = publish.clone();
        self.inflight.push(Box::pin(
            settle_when_done(shared, publish, delivery, origin, pending).instrument(span),
        ));
    }

    /// The connection is gone: the broker has taken every unacked delivery
    /// back and will redeliver it. Cancel their tasks (their results could
    /// not be reported anyway) and let their settlements be dropped.
    async fn abandon(mut self, shared: &Shared) {
        for task_ref in self.running.values() {
            shared.engine.cancel(task_ref);
        }
        let settled = async { while self.inflight.next().await.is_some() {} };
        let _ = tokio::time::timeout(ABANDON_LIMIT, settled).await;
    }

    /// Graceful stop, after the broker consumers were cancelled: running
    /// handlers get `grace` to finish; then the engine cancels them and their
    /// messages are requeued. Deliveries still arriving are requeued at once.
    async fn drain<S>(
        mut self,
        shared: &Arc<Shared>,
        publish: &Channel,
        names: &[ShortString],
        mut deliveries: S,
        grace: Duration,
    ) where
        S: stream::Stream<Item = (usize, lapin::Result<Delivery>)> + Unpin,
    {
        let engine = shared.engine.clone();
        let shutdown = engine.shutdown(grace);
        tokio::pin!(shutdown);
        let mut engine_done = false;
        let mut open = true;
        while !(engine_done && self.inflight.is_empty()) {
            tokio::select! {
                _ = &mut shutdown, if !engine_done => engine_done = true,
                Some(_) = self.inflight.next(), if !self.inflight.is_empty() => {}
                next = deliveries.next(), if open => match next {
                    // The engine refuses new work now, so this requeues it.
                    Some((index, Ok(delivery))) => {
                        self.start(shared, publish, names[index].as_str(), delivery);
                    }
                    _ => open = false,
                },
            }
        }
    }
}

/// Waits for the task's outcome (if it was started) and settles it.
async fn settle_when_done(
    shared: Arc<Shared>,
    publish: Channel,
    delivery: Delivery,
    origin: Origin,
    pending: Result<TaskHandle<Result<(), String>>, Verdict>,
) -> u64 {
    let verdict = match pending {
        Ok(handle) => Verdict::from_outcome(handle.await, shared.config.timeout),
        Err(verdict) => verdict,
    };
    settle(&shared, &publish, &delivery, &origin, verdict).await;
    delivery.delivery_tag
}

/// Checks passively that the consumed queues and the dead-letter target
/// exist, on a throwaway channel (a failed passive declare closes it).
async fn check_topology(
    connection: &Connection,
    queues: &[String],
    dead_letter: Option<&DeadLetter>,
) -> Result<(), lapin::Error> {
    let channel = connection.create_channel().await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let dead_letter_queue = match dead_letter {
        Some(DeadLetter::Queue(queue)) => Some(queue),
        _ => None,
    };
    for queue in queues.iter().chain(dead_letter_queue) {
        channel
            .queue_declare(queue, passive, FieldTable::default())
            .await?;
    }
    if let Some(DeadLetter::Exchange { exchange, .. }) = dead_letter {
        let options = ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                exchange,
                ExchangeKind::Direct,
                options,
                FieldTable::default(),
            )
            .await?;
    }
    let _ = channel.close(200, "topology checked").await;
    Ok(())
}
