//! Configuration is validated at build time, before anything connects.

use std::time::Duration;

use tasque_amqp::{Consumer, ConsumerBuilder, DeadLetter, Error, HandlerRegistry, Timeout};

fn handlers() -> HandlerRegistry {
    HandlerRegistry::new().handler("noop", |_: serde_json::Value| async {
        Ok::<(), String>(())
    })
}

fn valid() -> ConsumerBuilder {
    Consumer::builder("amqp://guest:guest@127.0.0.1:5672/%2f")
        .queue("work")
        .handlers(handlers())
}

fn refused_option(builder: ConsumerBuilder) -> &'static str {
    match builder.build() {
        Err(Error::InvalidConfig { option, .. }) => option,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn a_valid_configuration_builds_with_documented_defaults() {
    let consumer = valid().build().expect("valid");
    assert_eq!(consumer.queues(), ["work".to_owned()]);
    assert_eq!(
        consumer.max_concurrency(),
        tasque_core::DEFAULT_MAX_CONCURRENCY
    );
}

#[test]
fn invalid_values_are_refused_with_the_setting_named() {
    assert_eq!(
        refused_option(valid().max_concurrency(0)),
        "max_concurrency"
    );
    assert_eq!(
        refused_option(valid().max_concurrency(70_000)),
        "max_concurrency"
    );
    assert_eq!(refused_option(valid().timeout(Duration::ZERO)), "timeout");
    assert_eq!(refused_option(valid().max_attempts(0)), "max_attempts");
    assert_eq!(refused_option(valid().queue("")), "queues");
    assert_eq!(refused_option(valid().queue("work")), "queues");
    assert_eq!(
        refused_option(valid().dead_letter(DeadLetter::queue("work"))),
        "dead_letter"
    );
    assert_eq!(
        refused_option(valid().reconnect_backoff(Duration::from_secs(2), Duration::from_secs(1))),
        "reconnect_backoff"
    );
    let no_queue = Consumer::builder("amqp://127.0.0.1").handlers(handlers());
    assert_eq!(refused_option(no_queue), "queues");
    let no_handler = Consumer::builder("amqp://127.0.0.1").queue("work");
    assert_eq!(refused_option(no_handler), "handlers");
    assert!(valid().timeout(Timeout::Infinity).build().is_ok());
}

#[test]
fn bad_urls_and_duplicate_handlers_are_refused() {
    let bad = Consumer::builder("http://nowhere")
        .queue("work")
        .handlers(handlers());
    assert!(matches!(bad.build(), Err(Error::InvalidUrl(_))));
    let tls = Consumer::builder("amqps://127.0.0.1")
        .queue("work")
        .handlers(handlers());
    assert!(matches!(tls.build(), Err(Error::InvalidUrl(_))));
    let twice = valid().handlers(handlers().handler("noop", |_: serde_json::Value| async {
        Ok::<(), String>(())
    }));
    assert!(matches!(twice.build(), Err(Error::DuplicateHandler { task }) if task == "noop"));
}

#[test]
fn starting_needs_a_tokio_runtime() {
    let outside = valid().build().expect("valid").start();
    assert!(matches!(outside, Err(Error::Engine(_))));
}
