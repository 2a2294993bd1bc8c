//! The websocket's broadcast holds each event once, shared by its subscribers (a run copies
//! only the events of its own prompt): a slot of its ring (`event_capacity` of them,
//! allocated when the socket starts) is a pointer, not an event. Measured with a counting
//! global allocator (this binary holds a single test so nothing else allocates meanwhile).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::alloc::System;

use comfy_client::{Client, Event};
use comfy_sim::{SimConfig, SimServer};
use common::live_heap;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[tokio::test(flavor = "current_thread")]
async fn a_slot_of_the_event_broadcast_is_a_pointer_not_an_event() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    // The heap a client and its started websocket hold, with `capacity` slots. No await
    // between the two readings: on this one-threaded runtime nothing else runs meanwhile.
    let held = |capacity: usize| {
        let before = live_heap();
        let client = Client::builder(sim.url())
            .event_capacity(capacity)
            .build()
            .unwrap();
        let events = client.subscribe();
        let grown = live_heap() - before;
        (grown, client, events)
    };
    let (small, _a, _a_events) = held(16);
    let (large, _b, _b_events) = held(4096);
    let per_slot = (large - small) / (4096 - 16);
    let event = i64::try_from(std::mem::size_of::<Event>()).unwrap();
    assert!(
        per_slot <= 64,
        "{per_slot} bytes per slot of the broadcast (an event is {event} bytes)"
    );
    // What the measurement would see if each slot held an event: the assertion can fail.
    assert!(event > 64, "an event is {event} bytes");
}
