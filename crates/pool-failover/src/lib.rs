//! Failover decisions for a pool of ComfyUI servers: which (server, workflow-hash) pairs may
//! take work now, given what failed where and when.
//!
//! A workflow that fails on server A is routed around A for a cooldown while every other
//! workflow keeps using A, and A keeps taking this workflow's place for others. The crate is
//! pure decision logic: no I/O, no timers, and time is always passed in as a tokio
//! [`Instant`](tokio::time::Instant), so tests run on paused time.
//!
//! The main type is [`SmartStrategy`] (tuned by [`SmartConfig`]): consecutive-failure
//! threshold, failure window, escalating jittered cooldowns, a single probation probe after a
//! cooldown, class-aware blocking ([`FailureClass`]), expiry events without traffic
//! ([`FailoverStrategy::poll_events`], [`FailoverStrategy::next_deadline`]) and an explicit
//! [`AllBlockedPolicy`]. [`NoopStrategy`] never blocks. Both implement the object-safe
//! [`FailoverStrategy`] trait that the pool stores as `Arc<dyn FailoverStrategy>`.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use pool_failover::{
//!     FailoverEvent, FailoverStrategy, FailureClass, ServerId, SmartConfig, SmartStrategy,
//!     UnblockReason,
//! };
//! use tokio::time::Instant;
//! use workflow_hash::WorkflowHash;
//!
//! // The production preset without jitter, so the instants below are exact.
//! let strategy: Arc<dyn FailoverStrategy> =
//!     Arc::new(SmartStrategy::builder().config(SmartConfig::production()).jitter(0.0).build()?);
//! let (a, b) = (ServerId::from("gpu-a"), ServerId::from("gpu-b"));
//! let hash = WorkflowHash::from_bytes([42; 32]);
//! let t0 = Instant::now();
//!
//! // One execution failure blocks the pair (production preset: 60 s, after 1 failure).
//! let events = strategy.record_failure(&a, &hash, FailureClass::Execution, t0);
//! assert!(matches!(events[..], [FailoverEvent::Blocked { failures: 1, .. }]));
//! assert_eq!(strategy.first_allowed(&[a.clone(), b.clone()], &hash, t0), Some(1));
//!
//! // At expiry the pool polls (it can sleep until `next_deadline`) and publishes the unblock.
//! let t1 = t0 + Duration::from_secs(60);
//! assert_eq!(strategy.next_deadline(), Some(t1));
//! let events = strategy.poll_events(t1);
//! assert!(matches!(events[..], [FailoverEvent::Unblocked { reason: UnblockReason::Expired, .. }]));
//!
//! // Probation: the first claim is the probe, a second one waits for its outcome.
//! assert!(strategy.claim(&a, &hash, t1).is_probe());
//! assert!(!strategy.claim(&a, &hash, t1).is_granted());
//! let _ = strategy.record_success(&a, &hash, t1);
//! assert!(strategy.claim(&a, &hash, t1).is_granted());
//! # Ok::<(), pool_failover::Error>(())
//! ```

pub use self::all_blocked::{AllBlocked, AllBlockedDecision, AllBlockedPolicy, ServerBlock};
pub use self::class::FailureClass;
pub use self::config::SmartConfig;
pub use self::error::{Error, Result};
pub use self::event::{FailoverEvent, UnblockReason};
pub use self::noop::NoopStrategy;
pub use self::server_id::ServerId;
pub use self::smart::{SmartStats, SmartStrategy, SmartStrategyBuilder};
pub use self::status::{PairState, PairStatus};
pub use self::strategy::{Claim, ClaimKind, FailoverStrategy};

mod all_blocked;
mod class;
mod config;
mod error;
mod event;
mod noop;
mod server_id;
mod smart;
mod status;
mod strategy;
