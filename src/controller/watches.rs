//! The controllers' watches: one kube-runtime watcher per resource, each behind its own backoff, and
//! a watch whose resourceVersion expired (HTTP 410 Gone) relisted at once instead of backed off.
//!
//! kube-runtime's `Controller::new`/`owns`/`watches` merge every watch of a controller into one
//! stream behind **one** backoff (`Controller::trigger_backoff`: 0.8 s doubling to 30 s, reset only
//! by an event, and by its timer after 120 s without an error). After the API server restarts, every
//! watch's resourceVersion is older than the new watch cache, so each watch in turn gets 410
//! Expired, and each 410 paused *all* of the controller's watches for the full backoff the outage had
//! built up: in chaos scenario R2 the run controller heard nothing for about 80 s after the API
//! server was back, and under CI load for more than the scenario's 140 s.
//!
//! Here each watch is its own `watcher → 410 filter → backoff → reflector` stream (client-go's
//! reflectors likewise each own a backoff manager), and the controller-level backoff adds no wait
//! of its own ([`NoExtraWait`]). A 410 is the API server's instruction to relist, not a failure:
//! the watcher has already reset to relist when it yields the error, so the first 410 after an event
//! is dropped (logged at debug) and the relist runs at once; a second 410 in a row passes to the
//! backoff like any other error, so a server that keeps answering 410 is not hammered.

use std::fmt::Debug;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, DefaultBackoff};

/// Drop the first `410 Gone` (resourceVersion expired) after an event from a watcher's stream;
/// every other item, and a second 410 in a row, passes unchanged. `what` names the watch in the
/// debug log line (its Rust type name).
///
/// Source: the Kubernetes API concepts, "Efficient detection of changes": a client whose
/// resourceVersion is no longer available gets 410 Gone and must relist.
pub fn relist_on_expiry<S, K>(stream: S, what: &'static str) -> impl Stream<Item = watcher::Result<watcher::Event<K>>>
where
    S: Stream<Item = watcher::Result<watcher::Event<K>>>,
{
    let mut expired_in_a_row = false;
    stream.filter_map(move |item| {
        let keep = match &item {
            Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                let first = !expired_in_a_row;
                expired_in_a_row = true;
                if first {
                    tracing::debug!(watch = what, message = %status.message, "resourceVersion expired (410); relisting at once");
                }
                !first
            }
            Err(_) => true,
            Ok(_) => {
                expired_in_a_row = false;
                true
            }
        };
        std::future::ready(keep.then_some(item))
    })
}

/// `watcher(api, config)` with [`relist_on_expiry`] and its own client-go-like backoff
/// ([`DefaultBackoff`]: 0.8 s doubling to 30 s with jitter, reset by an event or after 120 s).
/// An `Api<PartialObjectMeta<K>>` watches metadata only, as `Controller::owns` does.
pub fn watch<K>(
    api: kube::Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + Debug + Send + 'static,
{
    kube::runtime::WatchStreamExt::backoff(
        relist_on_expiry(watcher::watcher(api, config), std::any::type_name::<K>()),
        DefaultBackoff::default(),
    )
}

/// The controller-level trigger backoff: no wait of its own, since every watch already backs off
/// alone ([`watch`]). kube-runtime's `Controller::trigger_backoff` takes any [`Backoff`].
#[derive(Debug, Default, Clone, Copy)]
pub struct NoExtraWait;

impl Iterator for NoExtraWait {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
}

impl Backoff for NoExtraWait {
    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn gone() -> watcher::Result<watcher::Event<String>> {
        let mut s = Status::failure("too old resource version: 1 (2)", "Expired");
        s.code = 410;
        Err(watcher::Error::WatchError(Box::new(s)))
    }

    fn other() -> watcher::Result<watcher::Event<String>> {
        let mut s = Status::failure("internal", "InternalError");
        s.code = 500;
        Err(watcher::Error::WatchError(Box::new(s)))
    }

    fn ok(v: &str) -> watcher::Result<watcher::Event<String>> {
        Ok(watcher::Event::Apply(v.to_string()))
    }

    fn label(item: &watcher::Result<watcher::Event<String>>) -> String {
        match item {
            Ok(watcher::Event::Apply(v)) => v.clone(),
            Ok(_) => "event".into(),
            Err(watcher::Error::WatchError(s)) => s.code.to_string(),
            Err(_) => "error".into(),
        }
    }

    async fn run(items: Vec<watcher::Result<watcher::Event<String>>>) -> Vec<String> {
        relist_on_expiry(futures::stream::iter(items), "test").map(|i| label(&i)).collect().await
    }

    #[tokio::test]
    async fn the_first_expiry_after_an_event_is_dropped_and_a_second_in_a_row_passes() {
        assert_eq!(run(vec![ok("a"), gone(), ok("b")]).await, ["a", "b"]);
        assert_eq!(run(vec![gone(), gone(), gone()]).await, ["410", "410"]);
        assert_eq!(run(vec![gone(), ok("a"), gone(), ok("b")]).await, ["a", "b"]);
    }

    #[tokio::test]
    async fn other_errors_always_pass_to_the_backoff() {
        assert_eq!(run(vec![other(), other(), ok("a")]).await, ["500", "500", "a"]);
        // An error other than 410 does not count as the event that re-arms the filter.
        assert_eq!(run(vec![gone(), other(), gone()]).await, ["500", "410"]);
    }

    #[test]
    fn the_controller_level_backoff_adds_no_wait() {
        let mut b = NoExtraWait;
        assert_eq!(b.next(), Some(Duration::ZERO));
        b.reset();
        assert_eq!(b.next(), Some(Duration::ZERO));
    }
}
