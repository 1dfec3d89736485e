//! Development and test stand-ins for what a local control plane lacks; never part of the release.
//!
//! Compiled only with the `dev` cargo feature (on by default, so `make run-local`, the tests and the
//! benches have it; the release image is built with `--no-default-features` and has no
//! `host-runner`). Nothing in the controller or the attempt pod's steps uses this module.
//!
//! | module | stands in for |
//! |---|---|
//! | [`host_runner`] | `healer host-runner`: the kubelet, running attempt pods' steps as local processes |
//! | [`job_controller`] | the Job controller (a Job's pod and status), the scheduler (binding) and the kubelet's status reports |
//! | [`kubelet`] | the kubelet's Node object and its HTTPS log endpoint (`kubectl logs`, `pods/log`) |
//! | [`local`] | the container runtime: a pod's containers as processes, volumes as folders |

pub mod host_runner;
pub mod job_controller;
pub mod kubelet;
pub mod local;

pub use host_runner::{Args, run};
