//! `/metrics` (issue 16, part 2): Prometheus text on `METRICS_ADDR`, never
//! on the public port, and the counters move when summaries are asked for.
//!
//! The recorder is global to the process, and other tests run beside this
//! one in it, so counters are compared as "moved by at least": without the
//! instrumentation they would not move at all.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use crate::{
    helpers::TestDb,
    summaries::{Tube, instance, vars, video},
};

/// `name{a="b",…} value` lines, keyed by name and sorted labels.
struct Scrape(Vec<(String, BTreeMap<String, String>, f64)>);

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut series = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (key, value) = line.rsplit_once(' ').expect(line);
            let value: f64 = value.parse().expect(line);
            let (name, labels) = match key.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (key, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').expect(line);
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            series.push((name.to_owned(), labels, value));
        }
        Scrape(series)
    }

    /// The sum over every series of `name` that carries all of `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, value)| value)
            .sum()
    }

    fn routes(&self) -> Vec<String> {
        let mut routes: Vec<String> = self
            .0
            .iter()
            .filter_map(|(_, l, _)| l.get("route").cloned())
            .collect();
        routes.sort();
        routes.dedup();
        routes
    }
}

async fn scrape(client: &reqwest::Client, url: &str) -> (String, Scrape) {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    let parsed = Scrape::parse(&text);
    (text, parsed)
}

#[tokio::test]
async fn metrics_live_on_their_own_port_and_count_summaries() {
    let tube = Tube::start().await;
    let db = TestDb::new().await;
    let app = instance(
        &db,
        &vars(
            &tube,
            None,
            &[
                ("METRICS_ADDR", "127.0.0.1:0"),
                ("TLDW_SUMMARY_REQUESTS_PER_MINUTE", "2"),
            ],
        ),
    )
    .await;
    let metrics_url = app.metrics_url.clone().expect("METRICS_ADDR was set");
    assert_ne!(
        metrics_url.trim_end_matches("/metrics"),
        app.address,
        "metrics must not share the public listener"
    );
    // Never on the public port.
    assert_eq!(app.get("/metrics").await.status(), 404);

    let owner = app.sign_up("metrics-owner@example.com").await;
    let slug = app.create_org(&owner, "Metrics org").await;
    let (_, before) = scrape(&app.client, &metrics_url).await;

    let video = video("mtr", 1);
    let link = format!("https://www.youtube.com/watch?v={video}");
    let form = [("slug", slug.as_str()), ("link", link.as_str())];
    let ask = || app.call(&owner, "summaries/request", &form);
    // A miss: made in the background by the built-in summarizer.
    ask().await.ok();
    let started = Instant::now();
    let after_made = loop {
        let (_, now) = scrape(&app.client, &metrics_url).await;
        if now.sum("tldw_summaries_total", &[("outcome", "fresh")])
            > before.sum("tldw_summaries_total", &[("outcome", "fresh")])
        {
            break now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no fresh summary was counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        after_made.sum("tldw_summaries_made_total", &[("summarizer", "built_in")])
            > before.sum("tldw_summaries_made_total", &[("summarizer", "built_in")])
    );
    // Asked again: the one-statement cache hit (the org's history).
    ask().await.ok();
    // A third time within the minute: the throttle (2 a minute) says 429.
    let throttled = ask().await;
    assert_eq!(throttled.status, 429, "{}", throttled.body);

    // A webhook while billing is off: refused with 503, counted by its code.
    let webhook = app
        .client
        .post(app.url("/webhooks/dodo"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), 503);

    let (text, after) = scrape(&app.client, &metrics_url).await;
    let moved =
        |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);
    assert!(moved("tldw_summary_requests_total", &[]) >= 3.0, "{text}");
    assert!(
        moved("tldw_summaries_total", &[("outcome", "cached")]) >= 1.0,
        "{text}"
    );
    assert!(
        moved("tldw_rate_limited_total", &[("kind", "throttle")]) >= 1.0,
        "{text}"
    );
    assert!(
        moved("tldw_webhooks_total", &[("outcome", "unavailable")]) >= 1.0,
        "{text}"
    );
    // Latency by matched route: the server function's route, not "fallback".
    let server_fn_requests = after
        .routes()
        .into_iter()
        .filter(|route| route.starts_with("/api/") && route != "fallback")
        .map(|route| {
            after.sum(
                "tldw_http_request_duration_seconds_count",
                &[("route", &route), ("method", "POST")],
            ) - before.sum(
                "tldw_http_request_duration_seconds_count",
                &[("route", &route), ("method", "POST")],
            )
        })
        .sum::<f64>();
    assert!(server_fn_requests >= 3.0, "{text}");
    assert!(
        moved(
            "tldw_http_request_duration_seconds_count",
            &[("status", "4xx")]
        ) >= 1.0,
        "the 429: {text}"
    );
    assert!(
        text.contains("tldw_http_request_duration_seconds_bucket{"),
        "latency is a histogram (buckets), not a summary: {text}"
    );
    // The probe reached the database and the pool gauges are there.
    let started = Instant::now();
    loop {
        let (text, now) = scrape(&app.client, &metrics_url).await;
        if now.sum("tldw_db_up", &[]) >= 1.0 {
            assert!(
                now.sum("tldw_db_pool_max_connections", &[]) >= 1.0,
                "{text}"
            );
            assert!(
                text.contains("tldw_db_pool_connections{state=\"idle\"}"),
                "{text}"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn without_metrics_addr_there_is_no_metrics_listener() {
    let tube = Tube::start().await;
    let db = TestDb::new().await;
    let app = instance(&db, &vars(&tube, None, &[])).await;
    assert_eq!(app.metrics_url, None);
    assert_eq!(app.get("/metrics").await.status(), 404);
}
