//! Tracing: one span per call, with its policy, the endpoint chosen and the attempt; events for
//! discovery changes. Captured by a subscriber of the test's own.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Once};

use tower::{Service, ServiceExt};
use tower_lb::Policy;
use tower_lb::discover::fixed;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::common::*;

type Fields = BTreeMap<String, String>;

/// Every `call` span's fields, in creation order, and every event's message, as seen on the
/// thread that installed the capture.
#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<Vec<(Id, Fields)>>>,
    events: Arc<Mutex<Vec<Fields>>>,
}

struct FieldsOf<'a>(&'a mut Fields);

impl Visit for FieldsOf<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
}

thread_local! {
    static CAPTURE: RefCell<Option<Capture>> = const { RefCell::new(None) };
}

/// One process-wide subscriber that hands what happens on a thread to that thread's capture.
///
/// Why not a scoped `set_default` per test: tracing caches each callsite's interest process-wide,
/// and with one scoped dispatcher registered it asks the default of whichever thread reaches a
/// callsite first. A sibling test with no subscriber then caches "never" for the `call` span, and
/// this test captures nothing (seen in CI: 0 spans of 21). A global subscriber is every thread's
/// default, so the first thread always asks it.
struct PerThread;

impl PerThread {
    fn with(f: impl FnOnce(&Capture)) {
        CAPTURE.with(|c| {
            if let Some(capture) = c.borrow().as_ref() {
                f(capture)
            }
        })
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for PerThread {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        if attrs.metadata().name() == "call" {
            Self::with(|capture| {
                let mut fields = Fields::new();
                attrs.record(&mut FieldsOf(&mut fields));
                capture.spans.lock().unwrap().push((id.clone(), fields));
            })
        }
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        Self::with(|capture| {
            let mut spans = capture.spans.lock().unwrap();
            if let Some((_, fields)) = spans.iter_mut().find(|(i, _)| i == id) {
                values.record(&mut FieldsOf(fields));
            }
        })
    }
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        Self::with(|capture| {
            let mut fields = Fields::new();
            event.record(&mut FieldsOf(&mut fields));
            capture.events.lock().unwrap().push(fields);
        })
    }
}

/// Removes the thread's capture when the test ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        CAPTURE.with(|c| c.borrow_mut().take());
    }
}

impl Capture {
    fn install(&self) -> Installed {
        static GLOBAL: Once = Once::new();
        GLOBAL.call_once(|| {
            let subscriber = tracing_subscriber::registry().with(PerThread);
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in this test binary");
        });
        CAPTURE.with(|c| *c.borrow_mut() = Some(self.clone()));
        Installed
    }
    fn calls(&self) -> Vec<Fields> {
        let spans = self.spans.lock().unwrap();
        spans.iter().map(|(_, f)| f.clone()).collect()
    }
    fn messages(&self) -> Vec<String> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter_map(|f| f.get("message").cloned())
            .collect()
    }
}

// Current-thread runtimes: the calls, the control task and the subscriber share one thread.
#[tokio::test]
async fn every_call_has_a_span_with_its_policy_endpoint_and_attempt() {
    let capture = Capture::default();
    let _guard = capture.install();
    let servers = servers(3, "span");
    let balancer = builder()
        .policy(Policy::round_robin())
        .build(fixed(servers.iter().map(endpoint)))
        .unwrap();
    wait_ready(&balancer, 3).await;
    let mut client = Client::new(balancer.clone());
    assert_eq!(calls(&mut client, 6).await, 0);

    let spans = capture.calls();
    assert_eq!(spans.len(), 6, "{spans:?}");
    let addrs: Vec<String> = servers.iter().map(|s| s.addr().to_string()).collect();
    for span in &spans {
        assert_eq!(span["policy"], "round_robin");
        assert_eq!(span["attempt"], "1");
        assert!(addrs.contains(&span["endpoint"]), "{span:?}");
    }
    // Round robin: two calls on each.
    for addr in &addrs {
        assert_eq!(spans.iter().filter(|s| &s["endpoint"] == addr).count(), 2);
    }
    // Discovery changes are events.
    let added = capture.messages();
    assert_eq!(
        added.iter().filter(|m| *m == "endpoint added").count(),
        3,
        "{added:?}"
    );
}

#[tokio::test]
async fn a_call_that_waits_or_is_handed_back_records_where_it_went_in_the_end() {
    let capture = Capture::default();
    let _guard = capture.install();
    // Refused unsent by port 1, answered by port 2: the span ends on the second attempt.
    let mut b = crate::unsent::balancer_with(Policy::round_robin(), &[1], &[2]);
    // Called at once, before anything is ready: the call waits in its span.
    let response = crate::common::call(&mut b).await.unwrap();
    drop(response);
    wait_ready(&b, 2).await;
    for _ in 0..20 {
        let request = http::Request::new(String::new());
        drop(b.ready().await.unwrap().call(request).await.unwrap());
    }
    let spans = capture.calls();
    assert_eq!(spans.len(), 21);
    for span in &spans {
        assert_eq!(span["endpoint"], "127.0.0.1:2", "{span:?}");
        assert_eq!(span["policy"], "round_robin");
    }
    // Round robin offers the refusing endpoint every other call: those take two attempts.
    let second = spans[1..].iter().filter(|s| s["attempt"] == "2").count();
    assert_eq!(second, 10, "{spans:?}");
    assert!(
        spans
            .iter()
            .all(|s| s["attempt"] == "1" || s["attempt"] == "2")
    );
}
