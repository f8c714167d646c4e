//! Row 1.10 at scale: callers that go away leak nothing.
//!
//! Memory is measured as live heap bytes, counted by a global allocator that
//! wraps the system one: unlike the resident set size, that figure does not
//! move with allocator arenas or fragmentation, so the test is exact on a busy
//! machine.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use support::*;
use tasque_core::{Mailbox, Queue, TaskOptions};

/// The system allocator, counting the bytes currently allocated through it.
struct Counting;

/// Bytes allocated and not yet freed.
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's own arguments, so
// `Counting` upholds exactly the contract `System` does; the only extra work is
// an atomic counter update, which neither allocates nor touches the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = System.realloc(ptr, layout, new_size);
        if !new.is_null() {
            LIVE_BYTES.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_bytes() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

async fn run_dropped_batch(queue: &Queue, count: usize) {
    for i in 0..count {
        let options = if i % 2 == 0 {
            TaskOptions::new().timeout(Duration::from_secs(60))
        } else {
            TaskOptions::new()
        };
        if i % 3 == 0 {
            let mailbox = Mailbox::new();
            queue
                .enqueue_to(&mailbox, options, async move { i })
                .unwrap();
        } else {
            drop(queue.enqueue_with(options, async move { i }).unwrap());
        }
    }
    settle(queue).await;
}

/// The live heap at a quiet moment. A timed task's timer is a tokio task that
/// is aborted when the task ends, and the runtime frees an aborted task's cell
/// only when it next gets to it, so first wait until no task is alive on the
/// runtime (bounded by [`PATIENCE`]), then take the least of a few readings.
async fn quiet_live_bytes() -> isize {
    let metrics = tokio::runtime::Handle::current().metrics();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while metrics.num_alive_tasks() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} tasks still alive on the runtime",
            metrics.num_alive_tasks()
        );
        tokio::task::yield_now().await;
    }
    let mut least = live_bytes();
    for _ in 0..20 {
        tokio::task::yield_now().await;
        least = least.min(live_bytes());
    }
    least
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_1_10_dropped_callers_leak_nothing_over_100k_tasks() {
    let queue = queue("leaks", 64);
    // Warm up: buffers, the slab and the timer wheel reach their working size.
    run_dropped_batch(&queue, 10_000).await;
    // 120k tasks in twelve batches; the quiet live heap after each one.
    let mut samples = Vec::new();
    for _ in 0..12 {
        run_dropped_batch(&queue, 10_000).await;
        samples.push(quiet_live_bytes().await);
    }
    let stats = queue.stats();
    assert_eq!((stats.queued, stats.running), (0, 0));
    assert_eq!(stats.completed, 130_000);
    // A leak only ever raises the floor; anything the runtime still holds at
    // a reading only raises that one reading. So compare the floors of the
    // first five readings and of the last five, 70k tasks apart: a leak of 16
    // bytes per task would show as 1.1 MB, while quiet floors agree to within
    // a few KB.
    let early = *samples[..5].iter().min().expect("five samples");
    let late = *samples[7..].iter().min().expect("five samples");
    let growth = late - early;
    assert!(
        growth < 1024 * 1024,
        "live heap grew by {growth} bytes over 70k tasks with gone callers: {samples:?}"
    );
}
