//! A consumer started while the broker is unreachable keeps retrying with
//! backoff and starts consuming once the broker can be reached. The broker is
//! "unreachable" behind a local TCP relay that does not listen yet.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use tasque_amqp::lapin::uri::AMQPUri;
use tasque_amqp::{Consumer, ConsumerState, HandlerRegistry};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

#[derive(Deserialize)]
struct Job {
    id: u32,
}

/// Relays every connection accepted on `listener` to `upstream`.
async fn relay(listener: TcpListener, upstream: SocketAddr) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_started_before_the_broker_is_reachable_connects_when_it_is() {
    let mut broker = require_broker!("consumer_started_before_the_broker_is_reachable");
    let queue = broker.queue("late").await;
    let uri: AMQPUri = broker.url.parse().expect("test URL parses");
    let upstream: SocketAddr =
        tokio::net::lookup_host((uri.authority.host.as_str(), uri.authority.port))
            .await
            .expect("broker host resolves")
            .next()
            .expect("an address");
    // Reserve a free port, then close it so connecting is refused for now.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!(
        "amqp://{}:{}@127.0.0.1:{port}/{}",
        uri.authority.userinfo.username,
        uri.authority.userinfo.password,
        if uri.vhost == "/" {
            "%2f".to_owned()
        } else {
            uri.vhost.clone()
        }
    );

    let (done, mut ids) = mpsc::unbounded_channel();
    let handlers = HandlerRegistry::new().handler("work", move |job: Job| {
        let done = done.clone();
        async move { done.send(job.id).map_err(|error| error.to_string()) }
    });
    let consumer = Consumer::builder(url)
        .queue(&queue)
        .handlers(handlers)
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .build()
        .expect("valid config")
        .start()
        .expect("started");
    let refused = common::wait_state(&consumer, Duration::from_secs(10), |state| {
        matches!(state, ConsumerState::Connecting { attempt, last_error: Some(_) } if *attempt >= 3)
    })
    .await;
    assert!(matches!(refused, ConsumerState::Connecting { .. }));

    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("port still free");
    let relaying = tokio::spawn(relay(listener, upstream));
    common::wait_state(&consumer, Duration::from_secs(10), |state| {
        matches!(state, ConsumerState::Consuming { session: 1 })
    })
    .await;
    broker.publish_ids(&queue, "work", 0..20).await;
    let seen = common::collect_ids(&mut ids, 20, Duration::from_secs(30)).await;
    let stats = consumer
        .shutdown(Duration::from_secs(5))
        .await
        .expect("stopped");
    relaying.abort();

    assert!(seen.values().all(|&count| count == 1), "{seen:?}");
    assert_eq!((stats.acked, stats.reconnects), (20, 0), "{stats:?}");
    broker.cleanup().await;
}
