//! SVG charts drawn by us: throughput per minute, stacked counts per queue, percentiles.

use maud::{html, Markup};
use tasque_durable::{JobState, StateCounts};

use crate::stats::{Minute, Timing};
use crate::why::human_ms;

const WIDTH: f64 = 720.0;

/// Completed (and failed, cancelled) jobs per minute over the last hour, as stacked bars.
pub fn throughput(minutes: &[Minute]) -> Markup {
    let height = 140.0;
    let top = minutes
        .iter()
        .map(|m| m.completed + m.failed + m.cancelled)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = WIDTH / minutes.len().max(1) as f64;
    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (height + 20.0) } role="img"
            aria-label="Jobs finished per minute over the last hour" {
            line x1="0" y1=(height) x2=(WIDTH) y2=(height) class="axis" {}
            @for (i, m) in minutes.iter().enumerate() {
                @let x = i as f64 * slot + 1.0;
                @let done = m.completed as f64 / top * height;
                @let failed = (m.failed + m.cancelled) as f64 / top * height;
                rect.completed x=(x) y=(height - done) width=(slot - 2.0) height=(done) {
                    title { (m.minutes_ago) " min ago: " (m.completed) " completed" }
                }
                rect.failed x=(x) y=(height - done - failed) width=(slot - 2.0) height=(failed) {
                    title { (m.minutes_ago) " min ago: " (m.failed) " failed, " (m.cancelled) " cancelled" }
                }
            }
            text x="0" y=(height + 16.0) { "60 min ago" }
            text x=(WIDTH) y=(height + 16.0) text-anchor="end" { "now · peak " (top as u64) "/min" }
        }
    }
}

/// One queue's jobs by state as a stacked horizontal bar.
pub fn state_bar(counts: &StateCounts) -> Markup {
    let total = counts.total().max(1) as f64;
    let width = 240.0;
    let mut x = 0.0;
    let segments: Vec<(JobState, u64, f64, f64)> = JobState::ALL
        .into_iter()
        .filter(|state| counts.get(*state) > 0)
        .map(|state| {
            let n = counts.get(state);
            let w = n as f64 / total * width;
            x += w;
            (state, n, x - w, w)
        })
        .collect();
    html! {
        svg.bar viewBox={ "0 0 " (width) " 12" } role="img" aria-label="jobs by state" {
            @for (state, n, x, w) in segments {
                rect class=(state.as_str()) x=(x) y="0" width=(w) height="12" {
                    title { (state.as_str()) ": " (n) }
                }
            }
        }
    }
}

/// Queue wait and run time p50/p95 per queue, as paired horizontal bars on one scale.
pub fn timings(timings: &[Timing]) -> Markup {
    let row = 34.0;
    let label = 140.0;
    let height = row * timings.len().max(1) as f64 + 10.0;
    let top = timings
        .iter()
        .flat_map(|t| [t.wait_p95_ms, t.run_p95_ms])
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let scale = |ms: i64| ms.max(0) as f64 / top * (WIDTH - label - 90.0);
    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (height) } role="img"
            aria-label="Queue wait and run time percentiles per queue" {
            @for (i, t) in timings.iter().enumerate() {
                @let y = i as f64 * row + 4.0;
                text x="0" y=(y + 14.0) { (t.queue) }
                rect.wait95 x=(label) y=(y) width=(scale(t.wait_p95_ms)) height="12" {
                    title { "wait p95 " (human_ms(t.wait_p95_ms)) }
                }
                rect.wait50 x=(label) y=(y) width=(scale(t.wait_p50_ms)) height="12" {
                    title { "wait p50 " (human_ms(t.wait_p50_ms)) }
                }
                rect.run95 x=(label) y=(y + 14.0) width=(scale(t.run_p95_ms)) height="12" {
                    title { "run p95 " (human_ms(t.run_p95_ms)) }
                }
                rect.run50 x=(label) y=(y + 14.0) width=(scale(t.run_p50_ms)) height="12" {
                    title { "run p50 " (human_ms(t.run_p50_ms)) }
                }
                text x=(label + scale(t.wait_p95_ms) + 6.0) y=(y + 11.0) class="small" {
                    "wait " (human_ms(t.wait_p50_ms)) " / " (human_ms(t.wait_p95_ms))
                }
                text x=(label + scale(t.run_p95_ms) + 6.0) y=(y + 25.0) class="small" {
                    "run " (human_ms(t.run_p50_ms)) " / " (human_ms(t.run_p95_ms))
                }
            }
        }
    }
}
