//! Child objects, built by pure functions that need no client: the attempt Job and ConfigMaps.

pub mod attempt;
pub mod configmap;
pub mod job;
pub mod labels;
