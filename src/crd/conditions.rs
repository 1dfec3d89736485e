//! `metav1.Condition` handling per the Kubernetes API conventions: conditions are a list keyed by
//! `type`; `lastTransitionTime` moves only when `status` changes; `observedGeneration` records the
//! spec generation the condition was computed from.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// `status` of a condition that holds.
pub const TRUE: &str = "True";
/// `status` of a condition that does not hold.
pub const FALSE: &str = "False";

/// Build a condition; `reason` must be CamelCase, `message` is for people.
pub fn new(
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: if status { TRUE } else { FALSE }.to_string(),
        reason: reason.to_string(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: now,
    }
}

/// Insert or update `cond` in `conds` by type, keeping the old `lastTransitionTime` when the status
/// did not change. Returns true when anything other than the timestamp changed.
pub fn set(conds: &mut Vec<Condition>, cond: Condition) -> bool {
    match conds.iter_mut().find(|c| c.type_ == cond.type_) {
        Some(existing) => {
            let changed = existing.status != cond.status
                || existing.reason != cond.reason
                || existing.message != cond.message
                || existing.observed_generation != cond.observed_generation;
            if !changed {
                return false;
            }
            let ltt = if existing.status == cond.status {
                existing.last_transition_time.clone()
            } else {
                cond.last_transition_time.clone()
            };
            *existing = Condition { last_transition_time: ltt, ..cond };
            true
        }
        None => {
            conds.push(cond);
            true
        }
    }
}

/// The condition of `type_`, if present.
pub fn get<'a>(conds: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conds.iter().find(|c| c.type_ == type_)
}

/// True when the condition of `type_` is present with status `True`.
pub fn is_true(conds: &[Condition], type_: &str) -> bool {
    get(conds, type_).is_some_and(|c| c.status == TRUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(s).unwrap())
    }

    #[test]
    fn transition_time_moves_only_with_status() {
        let mut conds = vec![];
        assert!(set(&mut conds, new("Fixed", false, "AttemptRunning", "a", Some(1), t(10))));
        assert!(set(&mut conds, new("Fixed", false, "AttemptRunning", "b", Some(1), t(20))));
        assert_eq!(conds[0].last_transition_time, t(10), "same status keeps the time");
        assert_eq!(conds[0].message, "b");
        assert!(!set(&mut conds, new("Fixed", false, "AttemptRunning", "b", Some(1), t(30))), "no-op");
        assert!(set(&mut conds, new("Fixed", true, "ValidationPassed", "c", Some(1), t(40))));
        assert_eq!(conds[0].last_transition_time, t(40));
        assert_eq!(conds.len(), 1);
        assert!(is_true(&conds, "Fixed"));
    }
}
