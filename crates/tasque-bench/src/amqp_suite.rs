//! The `amqp` suite: no-op messages through the Tasque RabbitMQ consumer
//! versus a raw `lapin` consume-ack loop, against the same broker in the same
//! run, at prefetch 10 and 100.
//!
//! Each round fills a fresh queue with N non-persistent messages (not timed),
//! then times from connecting to the last ack. The raw side is the plainest
//! correct consumer: `basic_qos(prefetch)`, `basic_consume`, and for each
//! delivery an awaited ack (the textbook loop); a second, stronger baseline
//! keeps acks in flight while reading on (`raw_lapin_pipelined`). Ours runs
//! every delivery as a task of the in-process queue, then acks. Rounds alternate sides and the best round of each side
//! is kept. The broker is `TASQUE_TEST_AMQP_URL` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`).
//!
//! Headline figures: `amqp_work_msgs_per_s` is the prefetch-100 rate, and
//! `amqp_vs_raw_lapin` the lower of the two prefetch ratios against the
//! textbook loop.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tasque_amqp::lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use tasque_amqp::lapin::types::FieldTable;
use tasque_amqp::lapin::Connection;
use tasque_amqp::{connection_properties, Consumer, HandlerRegistry, Message, Publisher};

use crate::report::{figure, ratio};

/// Runs the suite.
pub fn run(quick: bool) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(quick))
}

async fn run_async(quick: bool) -> Result<()> {
    let url = std::env::var("TASQUE_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let publisher = Publisher::connect(&url).await.with_context(|| {
        format!("RabbitMQ is unreachable at {url} (start it with scripts/services)")
    })?;
    let (messages, rounds) = if quick { (5_000, 1) } else { (20_000, 3) };
    let mut worst_ratio = f64::INFINITY;
    let mut headline = 0.0;
    for prefetch in [10u16, 100] {
        let mut ours = Duration::MAX;
        let mut raw = Duration::MAX;
        let mut pipelined = Duration::MAX;
        for round in 0..rounds {
            let queue = format!("tasque-bench-{prefetch}-{round}-{}", std::process::id());
            declare(&publisher, &queue).await?;
            fill(&publisher, &queue, messages).await?;
            raw = raw.min(raw_round(&url, &queue, prefetch, messages, false).await?);
            fill(&publisher, &queue, messages).await?;
            let pipelined_round = raw_round(&url, &queue, prefetch, messages, true).await?;
            pipelined = pipelined.min(pipelined_round);
            fill(&publisher, &queue, messages).await?;
            ours = ours.min(tasque_round(&url, &queue, prefetch, messages).await?);
            publisher
                .channel()
                .queue_delete(&queue, QueueDeleteOptions::default())
                .await?;
        }
        let per_s = |elapsed: Duration| messages as f64 / elapsed.as_secs_f64();
        let (ours, raw) = (per_s(ours), per_s(raw));
        report(prefetch, ours, raw, per_s(pipelined));
        worst_ratio = worst_ratio.min(ours / raw);
        headline = ours;
    }
    figure("amqp_work_msgs_per_s", headline, "msgs/s");
    println!("bench: amqp_vs_raw_lapin {worst_ratio:.3} x");
    publisher.close().await?;
    Ok(())
}

/// Prints one prefetch's figures.
fn report(prefetch: u16, ours: f64, raw: f64, pipelined: f64) {
    let name = |what: &str| format!("amqp_p{prefetch}_{what}");
    figure(&name("work_msgs_per_s"), ours, "msgs/s");
    figure(&name("raw_lapin_msgs_per_s"), raw, "msgs/s");
    ratio(&name("vs_raw_lapin"), ours, raw);
    figure(&name("raw_lapin_pipelined_msgs_per_s"), pipelined, "msgs/s");
    ratio(&name("vs_raw_lapin_pipelined"), ours, pipelined);
}

async fn declare(publisher: &Publisher, queue: &str) -> Result<()> {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-expires".into(),
        tasque_amqp::lapin::types::AMQPValue::LongInt(600_000),
    );
    publisher
        .channel()
        .queue_declare(queue, QueueDeclareOptions::default(), arguments)
        .await?;
    Ok(())
}

/// Publishes `count` (a multiple of 1,000) non-persistent no-op messages,
/// confirmed, in batches.
async fn fill(publisher: &Publisher, queue: &str, count: usize) -> Result<()> {
    let batch = vec![Message::json("noop", &())?.persistent(false); 1_000];
    for _ in 0..count / batch.len() {
        publisher.publish_batch("", queue, &batch).await?;
    }
    Ok(())
}

/// The baselines: a plain lapin consume-ack loop that awaits each ack before
/// taking the next delivery (`pipelined == false`, the textbook loop), or one
/// that keeps acks in flight while it reads on (`pipelined == true`).
async fn raw_round(
    url: &str,
    queue: &str,
    prefetch: u16,
    count: usize,
    pipelined: bool,
) -> Result<Duration> {
    let started = Instant::now();
    let connection = Connection::connect(url, connection_properties("bench raw lapin")).await?;
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue,
            "",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut acks = FuturesUnordered::new();
    let (mut received, mut acked) = (0, 0);
    while acked < count {
        tokio::select! {
            Some(result) = acks.next(), if !acks.is_empty() => {
                result?;
                acked += 1;
            }
            next = consumer.next(), if received < count => {
                let Some(delivery) = next else {
                    bail!("the raw consumer ended after {received} messages");
                };
                let delivery = delivery?;
                received += 1;
                if pipelined {
                    acks.push(async move { delivery.ack(BasicAckOptions::default()).await });
                } else {
                    delivery.ack(BasicAckOptions::default()).await?;
                    acked += 1;
                }
            }
        }
    }
    let elapsed = started.elapsed();
    connection.close(200, "bench done").await?;
    Ok(elapsed)
}

/// Ours: the Tasque consumer with a no-op handler, timed until the last ack.
async fn tasque_round(url: &str, queue: &str, prefetch: u16, count: usize) -> Result<Duration> {
    let handlers = HandlerRegistry::new().handler("noop", |_: ()| async { Ok::<(), String>(()) });
    let started = Instant::now();
    let consumer = Consumer::builder(url)
        .queue(queue)
        .max_concurrency(prefetch.into())
        .handlers(handlers)
        .connection_name("bench tasque consumer")
        .build()?
        .start()?;
    let deadline = started + Duration::from_secs(120);
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    while consumer.stats().acked < count as u64 {
        if Instant::now() > deadline {
            bail!("only {:?} acked within 120 s", consumer.stats());
        }
        ticker.tick().await;
    }
    let elapsed = started.elapsed();
    let stats = consumer.shutdown(Duration::from_secs(5)).await?;
    if stats.acked != count as u64 || stats.retried + stats.dead_lettered + stats.nacked != 0 {
        bail!("unexpected settlements in the bench: {stats:?}");
    }
    Ok(elapsed)
}
