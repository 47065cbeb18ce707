//! The soak run's workload, shared by the custom handler that runs it (`soak-handler`) and the driver that checks
//! it (`soak`): orchestrations whose outputs follow from their inputs, and an entity that records every operation
//! it applies, so that a lost or doubled operation shows.
//!
//! Run it with `scripts/soak.sh MINUTES` (see the README's "Soak" section).

#![warn(missing_docs)]

pub mod workload;
