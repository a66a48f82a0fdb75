//! The dashboard's numbers (issue 11): a seeded month with a Dodo renewal
//! part-way through a UTC day gives exactly the expected cards, chart series
//! and per-member table, through the dashboard's server function and real
//! sessions; a member sees only their own line; an empty org is all zeros
//! over the whole window; the page shows it all without JavaScript.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, SecondsFormat, Utc};
use serde_json::json;
use tldw::domain::{CumulativeDay, OrgId, UsageOverview, UsageTotals, UserId};
use uuid::Uuid;

use crate::{
    billing::{NO_DODO, billing_vars, deliver_signed},
    helpers::{TestApp, as_owner_in_org, member_id, spawn_app, spawn_app_with},
    usage::{set, zeros},
};

const PRO_LIMIT: i32 = 20;

async fn billing_app() -> TestApp {
    let vars = billing_vars(NO_DODO, &[("TLDW_PRO_MONTHLY_SUMMARIES", "20")]);
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    spawn_app_with(&refs).await
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Dodo says the org's Pro subscription is active for `start..end`, as a
/// signed `subscription.renewed` delivery that names our checkout.
async fn renew(app: &TestApp, org: OrgId, owner: UserId, start: DateTime<Utc>, end: DateTime<Utc>) {
    let checkout = Uuid::new_v4();
    as_owner_in_org(
        &app.db,
        org,
        &format!(
            "insert into checkout_sessions (org_id, id, plan, created_by) values ('{}', '{checkout}', 'pro', '{}')",
            org.as_uuid(),
            owner.as_uuid()
        ),
    )
    .await;
    let body = serde_json::to_vec(&json!({
        "business_id": "bus_test",
        "type": "subscription.renewed",
        "timestamp": rfc3339(Utc::now()),
        "data": {
            "payload_type": "Subscription",
            "subscription_id": "sub_dashboard_test_01",
            "status": "active",
            "product_id": "pdt_pro",
            "quantity": 1,
            "customer": { "customer_id": "cus_dashboard", "email": "buyer@example.com", "name": "Buyer" },
            "metadata": { "tldw_checkout": checkout.to_string(), "tldw_org": org.to_string() },
            "previous_billing_date": rfc3339(start),
            "next_billing_date": rfc3339(end),
            "cancel_at_next_billing_date": false,
            "cancelled_at": null,
            "created_at": rfc3339(start - Duration::days(30)),
            "currency": "USD",
            "recurring_pre_tax_amount": 900,
            "tax_inclusive": false,
            "payment_frequency_count": 1,
            "payment_frequency_interval": "Month",
            "addons": [],
            "meters": []
        }
    }))
    .unwrap();
    let reply = deliver_signed(app, body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.json::<serde_json::Value>()["outcome"],
        "applied",
        "{reply:?}"
    );
}

/// A ready summary in the shared cache that cost `cost` to make.
async fn video(app: &TestApp, org: OrgId, video: &str, cost: i64) {
    as_owner_in_org(
        &app.db,
        org,
        &format!(
            "insert into videos (video_id, variant, status, title, language, summary, model,
                 prompt_version, built_in, cost_micros, completed_at)
             values ('{video}', '', 'ready', 'Seeded {video}', 'en',
                 '{{\"tldr\": \"Seeded.\", \"key_points\": []}}', 'gpt-test', 'v1', false, {cost}, now())
             on conflict do nothing"
        ),
    )
    .await;
}

/// One unit of `org`'s quota for `user` on `video` at `at`, counted in the
/// period that starts at `period` (its counter moves as the quota's does),
/// with `status`; a spent one also gets its history row, fresh or cached,
/// as the engine writes them.
#[allow(clippy::too_many_arguments)]
async fn unit(
    app: &TestApp,
    org: OrgId,
    user: UserId,
    video: &str,
    cached: bool,
    at: DateTime<Utc>,
    period: DateTime<Utc>,
    status: &str,
) {
    let (org_uuid, user) = (org.as_uuid(), user.as_uuid());
    let (at, period) = (
        at.to_rfc3339_opts(SecondsFormat::Micros, true),
        period.to_rfc3339_opts(SecondsFormat::Micros, true),
    );
    let counted = i32::from(status != "refunded");
    as_owner_in_org(
        &app.db,
        org,
        &format!(
            "with counter as (
                 insert into usage_counters as c (org_id, period_start, period_end, used)
                 values ('{org_uuid}', '{period}', '{period}'::timestamptz + interval '30 days', {counted})
                 on conflict (org_id, period_start) do update set used = c.used + {counted}
                 returning period_start
             )
             insert into usage_records (org_id, id, user_id, video_id, period_start, status, created_at, settled_at)
             select '{org_uuid}', gen_random_uuid(), '{user}', '{video}', period_start, '{status}',
                    '{at}', case when '{status}' = 'reserved' then null else '{at}'::timestamptz + interval '20 seconds' end
             from counter"
        ),
    )
    .await;
    if status == "succeeded" {
        as_owner_in_org(
            &app.db,
            org,
            &format!(
                "insert into user_summaries (org_id, id, user_id, video_id, title, from_cache, created_at)
                 values ('{org_uuid}', gen_random_uuid(), '{user}', '{video}', 'Seeded', {cached}, '{at}')"
            ),
        )
        .await;
    }
}

fn vid(n: u32) -> String {
    format!("dash{n:07}")
}

/// `day` at `h:m:s.ms` UTC.
fn at(day: NaiveDate, h: u32, m: u32, s: u32, ms: u32) -> DateTime<Utc> {
    day.and_time(NaiveTime::from_hms_milli_opt(h, m, s, ms).unwrap())
        .and_utc()
}

async fn overview(app: &TestApp, cookie: &str, slug: &str) -> UsageOverview {
    app.call(cookie, "usage/overview", &[("slug", slug)])
        .await
        .ok()
        .json()
}

fn period_start(overview: &UsageOverview) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&overview.now.period_start)
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test]
async fn a_seeded_month_across_a_dodo_renewal_gives_exact_cards_chart_and_members() {
    let app = billing_app().await;
    let owner = app.sign_up("owner@dash.test").await;
    let slug = app.create_org(&owner, "Dash").await;
    let admin = app.sign_up("admin@dash.test").await;
    let member = app.sign_up("member@dash.test").await;
    let idle = app.sign_up("idle@dash.test").await;
    let admin_id = app
        .add_member(&owner, &slug, &admin, "admin@dash.test", "admin")
        .await;
    let member_user = app
        .add_member(&owner, &slug, &member, "member@dash.test", "member")
        .await;
    app.add_member(&owner, &slug, &idle, "idle@dash.test", "member")
        .await;
    let page = app.org_page(&owner, &slug).await;
    let (org, owner_id) = (page.org.id, member_id(&page, "owner@dash.test"));
    // Another org on the same days: never in these numbers.
    let other_owner = app.sign_up("other@dash.test").await;
    let other_slug = app.create_org(&other_owner, "Other").await;
    let other_page = app.org_page(&other_owner, &other_slug).await;

    // Renewed three days ago at 14:00 UTC, for 30 days: the period starts
    // part-way through a UTC day (D-3).
    let today = Utc::now().date_naive();
    let d = |back: i64| today - Duration::days(back);
    let start = at(d(3), 14, 0, 0, 0);
    let end = start + Duration::days(30);
    renew(&app, org, owner_id, start, end).await;
    let previous = start - Duration::days(30);

    for (n, cost) in [
        (1, 1_000),
        (2, 400),
        (3, 2_500),
        (4, 300),
        (5, 50),
        (6, 7),
        (7, 11),
        (8, 13),
        (9, 17),
        (10, 19),
        (11, 23),
        (12, 29),
    ] {
        video(&app, org, &vid(n), cost).await;
    }
    let spent = "succeeded";
    // The previous period: the last instant of the day before the window,
    // the window's first instant, ten days ago, and D-3 an hour before the
    // renewal (the same UTC day as the new period's first units).
    unit(
        &app,
        org,
        owner_id,
        &vid(6),
        false,
        at(d(30), 23, 59, 59, 999),
        previous,
        spent,
    )
    .await;
    unit(
        &app,
        org,
        member_user,
        &vid(7),
        false,
        at(d(29), 0, 0, 0, 0),
        previous,
        spent,
    )
    .await;
    unit(
        &app,
        org,
        member_user,
        &vid(8),
        true,
        at(d(10), 9, 0, 0, 0),
        previous,
        spent,
    )
    .await;
    unit(
        &app,
        org,
        owner_id,
        &vid(9),
        false,
        at(d(3), 13, 0, 0, 0),
        previous,
        spent,
    )
    .await;
    // The current period: at its first instant, the last of that day, D-1
    // and today; plus a unit in flight and a refunded one (neither spent).
    unit(&app, org, admin_id, &vid(1), false, start, start, spent).await;
    unit(
        &app,
        org,
        member_user,
        &vid(2),
        true,
        at(d(3), 23, 59, 59, 999),
        start,
        spent,
    )
    .await;
    unit(
        &app,
        org,
        owner_id,
        &vid(3),
        false,
        at(d(1), 8, 0, 0, 0),
        start,
        spent,
    )
    .await;
    unit(
        &app,
        org,
        member_user,
        &vid(4),
        false,
        at(d(0), 0, 0, 0, 0),
        start,
        spent,
    )
    .await;
    unit(
        &app,
        org,
        member_user,
        &vid(5),
        true,
        at(d(0), 0, 0, 1, 0),
        start,
        spent,
    )
    .await;
    unit(
        &app,
        org,
        owner_id,
        &vid(10),
        false,
        at(d(0), 0, 0, 2, 0),
        start,
        "reserved",
    )
    .await;
    unit(
        &app,
        org,
        admin_id,
        &vid(11),
        false,
        at(d(0), 0, 0, 3, 0),
        start,
        "refunded",
    )
    .await;
    // The other org, same day and video.
    let other_user = member_id(&other_page, "other@dash.test");
    let other_period = period_start(&overview(&app, &other_owner, &other_slug).await);
    video(&app, other_page.org.id, &vid(12), 29).await;
    unit(
        &app,
        other_page.org.id,
        other_user,
        &vid(12),
        false,
        at(d(0), 0, 0, 0, 0),
        other_period,
        spent,
    )
    .await;

    let got = overview(&app, &owner, &slug).await;
    // Cards.
    assert_eq!(
        (
            got.now.used,
            got.now.limit,
            got.now.remaining,
            got.now.plan.as_str()
        ),
        (6, PRO_LIMIT, 14, "pro"),
        "{got:?}"
    );
    assert_eq!(
        got.now.period_start,
        start.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    );
    assert_eq!(
        got.now.period_end,
        end.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    );
    assert_eq!((got.quota.used, got.quota.limit), (6, PRO_LIMIT));
    assert_eq!(got.quota.resets_on, end.format("%B %-d").to_string());
    assert_eq!(
        got.period,
        UsageTotals {
            fresh: 3,
            cached: 2,
            cost_micros: 3_800,
            saved_micros: 450
        }
    );
    assert_eq!(got.period.cache_hit_percent(), Some(40));

    // The bars: the last 30 days, every day, the period boundary inside D-3.
    let mut days = zeros(today, 30);
    set(&mut days, 29, 1, 0, 11, 0);
    set(&mut days, 10, 0, 1, 0, 13);
    set(&mut days, 3, 2, 1, 17 + 1_000, 400);
    set(&mut days, 1, 1, 0, 2_500, 0);
    set(&mut days, 0, 1, 1, 300, 50);
    assert_eq!(got.daily.days, days);
    assert_eq!(got.daily.from, d(29).format("%Y-%m-%d").to_string());
    assert_eq!(got.daily.to, today.format("%Y-%m-%d").to_string());

    // The running total: from the renewal's day, counting only this period.
    let cumulative: Vec<CumulativeDay> = [(3, 2), (2, 2), (1, 3), (0, 5)]
        .into_iter()
        .map(|(back, total)| CumulativeDay {
            date: d(back).format("%Y-%m-%d").to_string(),
            total,
        })
        .collect();
    assert_eq!(got.cumulative, cumulative);
    // D-3 14:00 to D+27 14:00 touches 31 UTC days.
    assert_eq!(got.period_days, 31);

    // Per member, this period only: most first, ties by email, idle last.
    let lines = |o: &UsageOverview| -> Vec<(String, i32, i32, bool)> {
        o.members
            .members
            .iter()
            .map(|l| {
                (
                    l.email.clone().unwrap_or_default(),
                    l.fresh,
                    l.cached,
                    l.is_you,
                )
            })
            .collect()
    };
    assert!(got.members.everyone);
    assert_eq!(
        lines(&got),
        vec![
            ("member@dash.test".into(), 1, 2, false),
            ("admin@dash.test".into(), 1, 0, false),
            ("owner@dash.test".into(), 1, 0, true),
            ("idle@dash.test".into(), 0, 0, false),
        ]
    );
    // An admin sees everyone too; a member only their own line.
    let as_admin = overview(&app, &admin, &slug).await;
    assert!(as_admin.members.everyone);
    assert_eq!(as_admin.members.members.len(), 4);
    let as_member = overview(&app, &member, &slug).await;
    assert!(!as_member.members.everyone);
    assert_eq!(
        lines(&as_member),
        vec![("member@dash.test".into(), 1, 2, true)]
    );
    let as_idle = overview(&app, &idle, &slug).await;
    assert_eq!(lines(&as_idle), vec![("idle@dash.test".into(), 0, 0, true)]);
    // Everything else a member sees is the org's, the same as the owner's.
    assert_eq!(
        (as_member.period, as_member.daily, as_member.cumulative),
        (
            got.period.clone(),
            got.daily.clone(),
            got.cumulative.clone()
        )
    );

    // The other org sees only its own unit; outsiders get a 404.
    let theirs = overview(&app, &other_owner, &other_slug).await;
    assert_eq!(theirs.period.summaries(), 1);
    assert_eq!(theirs.daily.totals.fresh, 1);
    let outsider = app
        .call(&other_owner, "usage/overview", &[("slug", &slug)])
        .await;
    assert_eq!(outsider.status, 404, "{}", outsider.body);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_empty_free_org_is_zero_over_the_whole_window_and_its_calendar_month() {
    let app = spawn_app().await;
    let owner = app.sign_up("empty@dash.test").await;
    let slug = app.create_org(&owner, "Empty").await;
    let got = overview(&app, &owner, &slug).await;
    let today = Utc::now().date_naive();
    assert_eq!(got.daily.days, zeros(today, 30));
    assert_eq!(got.period, UsageTotals::default());
    assert_eq!(got.period.cache_hit_percent(), None);
    // Free: the calendar month, from its 1st to today, every day at 0.
    let first = today.with_day(1).unwrap();
    let month: Vec<CumulativeDay> = first
        .iter_days()
        .take_while(|day| *day <= today)
        .map(|day| CumulativeDay {
            date: day.format("%Y-%m-%d").to_string(),
            total: 0,
        })
        .collect();
    assert_eq!(got.cumulative, month);
    let next = first.checked_add_months(chrono::Months::new(1)).unwrap();
    assert_eq!(got.period_days as i64, (next - first).num_days());
    assert_eq!(
        got.now.period_start,
        format!("{}T00:00:00Z", first.format("%Y-%m-%d"))
    );
    let lines = &got.members.members;
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (lines[0].fresh, lines[0].cached, lines[0].is_you),
        (0, 0, true)
    );
    app.stop().await.unwrap();
}

/// The text of the element with `data-testid="{testid}"` (a leaf).
fn text_of(body: &str, testid: &str) -> String {
    let at = body
        .find(&format!("data-testid=\"{testid}\""))
        .unwrap_or_else(|| panic!("no {testid} in {body}"));
    let rest = &body[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest[start..].find('<').unwrap();
    rest[start..start + end].to_owned()
}

/// The page's HTML as a browser without JavaScript gets it.
async fn html(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let response = app
        .client
        .get(app.url(path))
        .header("cookie", cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn the_dashboard_shows_cards_chart_and_table_without_javascript_and_the_shell_meter_on_every_org_page()
 {
    let app = spawn_app().await;
    let owner = app.sign_up("page@dash.test").await;
    let slug = app.create_org(&owner, "Page").await;
    let page = app.org_page(&owner, &slug).await;
    let (org, me) = (page.org.id, member_id(&page, "page@dash.test"));
    video(&app, org, &vid(1), 1_500).await;
    video(&app, org, &vid(2), 2_000).await;
    let month = Utc::now() - Duration::seconds(1);
    let month_start = period_start(&overview(&app, &owner, &slug).await);
    unit(
        &app,
        org,
        me,
        &vid(1),
        false,
        month,
        month_start,
        "succeeded",
    )
    .await;
    unit(
        &app,
        org,
        me,
        &vid(2),
        true,
        month,
        month_start,
        "succeeded",
    )
    .await;

    let (status, body) = html(&app, &owner, &format!("/o/{slug}")).await;
    assert_eq!(status, 200, "{body}");
    for needle in [
        "data-testid=\"shell-quota\"",
        "2 of 10 summaries used",
        "<title id=\"daily-chart-title\">",
        "<desc id=\"daily-chart-desc\">",
        "1 made fresh and 1 served from the shared cache",
        "<title id=\"period-chart-title\">",
        "data-testid=\"limit-line\"",
        "<table class=\"sr-only\">",
        "data-testid=\"member-usage-table\"",
    ] {
        assert!(
            body.contains(needle),
            "{needle} missing from the dashboard:\n{body}"
        );
    }
    for (testid, want) in [
        ("card-remaining-value", "8"),
        ("card-plan-value", "Free"),
        ("card-spend-value", "$0.0015"),
        ("card-saved-value", "$0.0020"),
        ("card-hit-rate-value", "50%"),
    ] {
        assert_eq!(text_of(&body, testid), want, "{testid}");
    }
    // The meter frames every org page.
    for path in ["settings", "billing", &format!("v/{}", vid(1))] {
        let (status, body) = html(&app, &owner, &format!("/o/{slug}/{path}")).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.contains("2 of 10 summaries used"), "{path}: {body}");
    }
    // Not a member: a 404 page with no meter; signed out: to sign-in.
    let stranger = app.sign_up("stranger@dash.test").await;
    let (status, body) = html(&app, &stranger, &format!("/o/{slug}")).await;
    assert_eq!(status, 404, "{body}");
    assert!(!body.contains("shell-quota"), "{body}");
    let (status, _) = html(&app, "", &format!("/o/{slug}")).await;
    assert_eq!(status, 302, "signed out");
    app.stop().await.unwrap();
}
