//! The tracker between resolutions: outcomes in, changes, errors and the next time out.

use super::*;
use crate::discover::dns::candidates::Candidate;

fn tracker(on_empty: OnEmpty) -> Tracker {
    Tracker::new(
        "_grpc._tcp.x.".into(),
        Schedule {
            min_ttl: Duration::from_secs(1),
            max_ttl: Duration::from_secs(30),
            backoff: Schedule::default_backoff(),
        },
        on_empty,
        100,
    )
}

fn found(addrs: &[&str], ttl: u64) -> Outcome {
    Outcome::Found {
        candidates: addrs
            .iter()
            .map(|a| Candidate {
                addr: a.parse().unwrap(),
                priority: 0,
                weight: 100,
                server_name: None,
            })
            .collect(),
        ttl: Some(Duration::from_secs(ttl)),
    }
}

fn empty() -> Outcome {
    Outcome::Empty {
        detail: "NXDOMAIN".into(),
    }
}

fn failed() -> Outcome {
    Outcome::Failed {
        kind: DnsErrorKind::ServerFailure,
        detail: "SERVFAIL".into(),
    }
}

#[test]
fn answers_become_diffs_on_the_ttl_schedule() {
    let mut t = tracker(OnEmpty::default());
    let now = Instant::now();
    let next = t.on_round(found(&["10.0.0.1:80", "10.0.0.2:80"], 5), now, 0.0);
    assert_eq!(next.items.len(), 2);
    assert_eq!(next.wait, Duration::from_secs(5));
    assert!(!next.backing_off);
    let next = t.on_round(found(&["10.0.0.1:80", "10.0.0.2:80"], 5), now, 0.0);
    assert!(next.items.is_empty(), "an unchanged answer sends nothing");
    let next = t.on_round(found(&["10.0.0.2:80", "10.0.0.3:80"], 5), now, 0.0);
    assert!(matches!(
        &next.items[..],
        [Ok(Change::Insert(..)), Ok(Change::Remove(k))] if k.as_str() == "10.0.0.1:80"
    ));
}

#[test]
fn failures_keep_the_set_and_back_off_then_recover() {
    let mut t = tracker(OnEmpty::default());
    let now = Instant::now();
    t.on_round(found(&["10.0.0.1:80"], 5), now, 0.0);
    let mut last = Duration::ZERO;
    for _ in 0..20 {
        let next = t.on_round(failed(), now, 0.5);
        let [Err(e)] = &next.items[..] else {
            panic!("one error item: {:?}", next.items)
        };
        assert_eq!(e.kind(), DnsErrorKind::ServerFailure);
        assert_eq!(e.kept(), 1);
        assert!(next.backing_off);
        assert!(next.wait >= last && next.wait <= Duration::from_secs(30));
        last = next.wait;
    }
    assert_eq!(last, Duration::from_secs(30));
    let next = t.on_round(found(&["10.0.0.1:80"], 5), now, 0.0);
    assert!(
        next.items.is_empty(),
        "recovery with the same answer changes nothing"
    );
    assert_eq!(t.on_round(failed(), now, 0.5).wait, Duration::from_secs(1));
}

#[test]
fn empty_answers_keep_the_set_for_the_grace_period_then_clear_it() {
    let mut t = tracker(OnEmpty::KeepFor(Duration::from_secs(10)));
    let start = Instant::now();
    t.on_round(found(&["10.0.0.1:80", "10.0.0.2:80"], 5), start, 0.0);
    let next = t.on_round(empty(), start, 0.5);
    assert!(
        matches!(&next.items[..], [Err(e)] if e.kind() == DnsErrorKind::NotFound && e.kept() == 2)
    );
    // Still within the grace period: kept, and the next look is no later than its end.
    let next = t.on_round(empty(), start + Duration::from_secs(9), 0.5);
    assert!(matches!(&next.items[..], [Err(_)]));
    assert!(next.wait <= Duration::from_secs(1));
    // A good answer ends the grace period.
    t.on_round(
        found(&["10.0.0.1:80", "10.0.0.2:80"], 5),
        start + Duration::from_secs(9),
        0.0,
    );
    let later = start + Duration::from_secs(30);
    assert!(matches!(
        &t.on_round(empty(), later, 0.5).items[..],
        [Err(_)]
    ));
    let next = t.on_round(empty(), later + Duration::from_secs(10), 0.5);
    assert_eq!(next.items.len(), 2);
    assert!(
        next.items
            .iter()
            .all(|i| matches!(i, Ok(Change::Remove(_))))
    );
    // Nothing left: further empty answers are errors with nothing kept.
    let next = t.on_round(empty(), later + Duration::from_secs(11), 0.5);
    assert!(matches!(&next.items[..], [Err(e)] if e.kept() == 0));
}

#[test]
fn clear_and_keep() {
    let now = Instant::now();
    let mut t = tracker(OnEmpty::Clear);
    t.on_round(found(&["10.0.0.1:80"], 5), now, 0.0);
    assert!(matches!(
        &t.on_round(empty(), now, 0.5).items[..],
        [Ok(Change::Remove(_))]
    ));
    let mut t = tracker(OnEmpty::Keep);
    t.on_round(found(&["10.0.0.1:80"], 5), now, 0.0);
    let much_later = now + Duration::from_secs(86_400 * 365);
    assert!(matches!(
        &t.on_round(empty(), much_later, 0.5).items[..],
        [Err(_)]
    ));
    // Grace periods too long to add to an instant keep the set instead of panicking.
    let mut t = tracker(OnEmpty::KeepFor(Duration::MAX));
    t.on_round(found(&["10.0.0.1:80"], 5), now, 0.0);
    assert!(matches!(&t.on_round(empty(), now, 0.5).items[..], [Err(_)]));
}

#[test]
fn an_answer_with_nothing_usable_counts_as_empty() {
    let mut t = tracker(OnEmpty::Clear);
    let now = Instant::now();
    t.on_round(found(&["10.0.0.1:80"], 5), now, 0.0);
    let next = t.on_round(found(&["0.0.0.0:80", "10.0.0.9:0"], 5), now, 0.5);
    assert!(matches!(&next.items[..], [Ok(Change::Remove(_))]));
}

#[test]
fn once_emptied_the_wait_returns_to_the_ttl_not_the_growing_backoff() {
    let now = Instant::now();
    let mut t = tracker(OnEmpty::Clear);
    t.on_round(found(&["10.0.0.1:80"], 5), now, 0.0);
    let cleared = t.on_round(empty(), now, 0.5);
    assert!(matches!(&cleared.items[..], [Ok(Change::Remove(_))]));
    assert!(cleared.wait <= Duration::from_secs(5), "{:?}", cleared.wait);
    // Many empty answers later the backoff alone would be at its 30 s bound; the wait stays
    // within the last good answer's TTL.
    for _ in 0..20 {
        let next = t.on_round(empty(), now, 0.999);
        assert!(next.wait <= Duration::from_secs(5), "{:?}", next.wait);
        assert!(next.wait >= Duration::from_secs(1), "{:?}", next.wait);
    }
    // Failures (the server in trouble, not an answer) still back off in full.
    let mut wait = Duration::ZERO;
    for _ in 0..20 {
        wait = t.on_round(failed(), now, 0.999).wait;
    }
    assert_eq!(wait, Duration::from_secs(30));
    // A set that is kept (not emptied) backs off as before.
    let mut t = tracker(OnEmpty::Keep);
    t.on_round(found(&["10.0.0.1:80"], 5), now, 0.0);
    for _ in 0..20 {
        wait = t.on_round(empty(), now, 0.999).wait;
    }
    assert_eq!(wait, Duration::from_secs(30));
}
