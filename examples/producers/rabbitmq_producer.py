"""Publish Tasque work to RabbitMQ from Python, with pika.

A Tasque RabbitMQ worker (tasque_amqp::Consumer, or `tasque amqp work`)
consumes named queues. It takes the task name from the x-tasque-task header
(else the routing key) and decodes the body as JSON into the handler's params.
Publish with publisher confirms and mandatory so that a message is either
stored in a queue or reported back to you, never silently dropped.

Run as a program, this file plays the scenarios that
crates/tasque-cli/tests/producers_python.rs checks against a real broker and a
real worker: python rabbitmq_producer.py SCENARIO URL QUEUE [ARGS...].
"""

import json
import sys

import pika
from pika.exceptions import NackError, UnroutableError


def connect(url):
    """A blocking connection and a channel in confirm mode."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()  # basic_publish now waits for the broker's confirm
    return connection, channel


def declare_queue(channel, queue):
    """Declares the queue as the tasque worker does: durable, no arguments.

    Declaring is idempotent with the same arguments, so producers and workers
    may both do it; messages published before any queue exists are lost.
    """
    channel.queue_declare(queue=queue, durable=True)


def publish(channel, queue, task, params, message_id=None):
    """Publishes one job for `task` to `queue`; returns once the broker stored it.

    Raises UnroutableError when no queue took it (mandatory) and NackError when
    the broker refused it: nothing was enqueued, publish again or give up.
    """
    channel.basic_publish(
        exchange="",  # the default exchange: the routing key is the queue's name
        routing_key=queue,
        body=json.dumps(params).encode("utf-8"),
        properties=pika.BasicProperties(
            content_type="application/json",
            delivery_mode=pika.DeliveryMode.Persistent,  # survives a broker restart
            headers={"x-tasque-task": task},
            message_id=message_id,
        ),
        mandatory=True,
    )


def read_dead_letters(channel, dead_letter_queue):
    """Takes every message out of a dead-letter queue: (headers, params) pairs."""
    dead = []
    while True:
        method, properties, body = channel.basic_get(queue=dead_letter_queue, auto_ack=False)
        if method is None:
            return dead
        dead.append((properties.headers or {}, json.loads(body)))
        channel.basic_ack(method.delivery_tag)


# --- The scenarios the tests run -------------------------------------------------------


def scenario_publish(channel, queue, directory, count):
    """Before any worker exists: declare the queue, publish `count` exec jobs that each
    append their number to ran.txt, one that fails, one whose params do not decode."""
    declare_queue(channel, queue)
    for n in range(int(count)):
        publish(
            channel, queue, "exec",
            {"argv": ["sh", "-c", f"echo {n} >> ran.txt"], "cwd": directory, "timeout_secs": 30},
            message_id=f"job-{n}",
        )
    publish(
        channel, queue, "exec",
        {"argv": ["sh", "-c", "echo card declined >&2; exit 4"], "timeout_secs": 30},
        message_id="declined",
    )
    publish(channel, queue, "exec", {"argv": "not a list"}, message_id="garbled")
    return {"published": int(count) + 2}


def scenario_unroutable(channel, queue):
    """Publishes to a queue nobody declared: mandatory gets it back, without it is lost."""
    try:
        publish(channel, queue, "exec", {"argv": ["true"]})
        returned = False
    except UnroutableError:
        returned = True
    except NackError:
        returned = "nacked"
    # Without mandatory the broker confirms the message and then drops it.
    channel.basic_publish(exchange="", routing_key=queue, body=b"{}")
    return {"returned_with_mandatory": returned, "confirmed_without_mandatory": True}


def scenario_dead_letters(channel, dead_letter_queue):
    """The dead-lettered messages, headers and params."""
    dead = read_dead_letters(channel, dead_letter_queue)
    return [{"headers": headers, "params": params} for headers, params in dead]


SCENARIOS = {
    "publish": scenario_publish,
    "unroutable": scenario_unroutable,
    "dead_letters": scenario_dead_letters,
}


def main(argv):
    scenario, url, *rest = argv[1:]
    connection, channel = connect(url)
    try:
        result = SCENARIOS[scenario](channel, *rest)
    finally:
        connection.close()
    json.dump(result, sys.stdout, default=str)


if __name__ == "__main__":
    main(sys.argv)
