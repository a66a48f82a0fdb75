//! Usage numbers (issues 9 and 11): the current period, and a month of
//! history per UTC day, fresh vs cached, with AI spend and savings. Today's
//! cache hit goes through the real one-statement path; older days are
//! written as the owner, exactly as the summary engine writes them (a spent
//! ledger row and its history row), back-dated.

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use sqlx::Connection;
use tldw::{
    domain::{
        AccountId, DailyUsage, OrgId, OrgRole, OrgSummary, PlanCatalog, PlanId, UsageDay,
        UsageTotals, UserId, VideoId,
    },
    server::{
        auth::identity::{CurrentAccount, CurrentMember, SessionHandle},
        clients::youtube::YouTubeClient,
        config::Settings,
        db::{Db, TenantScope},
        services::{
            quota,
            summaries::{Requested, SummaryEngine},
            usage,
            waiter::VideoWaiter,
        },
        summarizer,
    },
};

use crate::helpers::{TestDb, as_owner_in_org, seed_org};

fn member(org: OrgId, user: UserId, role: OrgRole) -> CurrentMember {
    CurrentMember {
        account: CurrentAccount {
            id: AccountId::random(),
            email: None,
            session: SessionHandle::Clerk {
                org: None,
                member: None,
            },
        },
        org: OrgSummary {
            id: org,
            user_id: user,
            slug: "x".into(),
            name: "x".into(),
            role,
            personal: false,
        },
    }
}

/// The engine as the app builds it (no YouTube is reached: cache hits only).
async fn engine(db: &Db) -> SummaryEngine {
    let settings = Settings::from_lookup(|_| None).unwrap();
    SummaryEngine::new(
        db.clone(),
        YouTubeClient::new(settings.summaries.youtube.clone()).unwrap(),
        summarizer::from_settings(None).unwrap(),
        VideoWaiter::start(db).await.unwrap(),
        settings.summaries,
        settings.billing.plans,
    )
}

fn vid(n: u32) -> String {
    format!("usage{n:06}")
}

/// Today by the database clock, in UTC.
async fn today(test_db: &TestDb) -> NaiveDate {
    let mut conn = test_db.app_conn().await;
    let today = sqlx::query_scalar("select (now() at time zone 'UTC')::date")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    today
}

/// A ready summary in the shared cache that cost `cost` to make.
async fn cached_video(test_db: &TestDb, org: OrgId, video: &str, variant: &str, cost: i64) {
    as_owner_in_org(
        test_db,
        org,
        &format!(
            "insert into videos (video_id, variant, status, title, language, summary, model,
                 prompt_version, built_in, cost_micros, completed_at)
             values ('{video}', '{variant}', 'ready', 'Seeded {video}', 'en',
                 '{{\"tldr\": \"Seeded.\", \"key_points\": []}}', 'gpt-test', 'v1', false, {cost}, now())"
        ),
    )
    .await;
}

/// A second member of `org`, with role `member`.
async fn add_member(test_db: &TestDb, org: OrgId) -> UserId {
    let (account, user) = (uuid::Uuid::new_v4(), UserId::random());
    as_owner_in_org(
        test_db,
        org,
        &format!("insert into accounts (id, email) values ('{account}', '{account}@seed.test')"),
    )
    .await;
    as_owner_in_org(
        test_db,
        org,
        &format!(
            "insert into users (org_id, id, account_id, role)
             values ('{}', '{}', '{account}', 'member')",
            org.as_uuid(),
            user.as_uuid()
        ),
    )
    .await;
    user
}

/// One unit spent by `user` of `org` on `video`, `days_ago` UTC days ago
/// at `time` (UTC): the ledger row, its counter (the calendar month) and
/// the history row saying whether it came from the cache and which
/// language copy it was, as the engine writes them in one transaction.
#[allow(clippy::too_many_arguments)]
async fn spent(
    test_db: &TestDb,
    org: OrgId,
    user: UserId,
    video: &str,
    variant: &str,
    cached: bool,
    days_ago: i32,
    time: &str,
) {
    record(
        test_db,
        org,
        user,
        video,
        variant,
        days_ago,
        time,
        "succeeded",
    )
    .await;
    let (org_uuid, user) = (org.as_uuid(), user.as_uuid());
    as_owner_in_org(
        test_db,
        org,
        &format!(
            "insert into user_summaries (org_id, id, user_id, video_id, variant, title, from_cache, created_at)
             values ('{org_uuid}', gen_random_uuid(), '{user}', '{video}', '{variant}', 'Seeded', {cached},
                     (((now() at time zone 'UTC')::date - {days_ago}) + time '{time}') at time zone 'UTC')"
        ),
    )
    .await;
}

/// A ledger row with `status`, and its counter.
#[allow(clippy::too_many_arguments)]
async fn record(
    test_db: &TestDb,
    org: OrgId,
    user: UserId,
    video: &str,
    variant: &str,
    days_ago: i32,
    time: &str,
    status: &str,
) {
    let (org_uuid, user) = (org.as_uuid(), user.as_uuid());
    as_owner_in_org(
        test_db,
        org,
        &format!(
            "with t as (
                 select (((now() at time zone 'UTC')::date - {days_ago}) + time '{time}') at time zone 'UTC' as at
             ),
             counter as (
                 insert into usage_counters as c (org_id, period_start, period_end, used)
                 select '{org_uuid}', date_trunc('month', t.at at time zone 'UTC') at time zone 'UTC',
                        (date_trunc('month', t.at at time zone 'UTC') + interval '1 month') at time zone 'UTC', 1
                 from t
                 on conflict (org_id, period_start) do update set used = c.used + 1
                 returning period_start
             )
             insert into usage_records (org_id, id, user_id, video_id, variant, period_start, status, created_at, settled_at)
             select '{org_uuid}', gen_random_uuid(), '{user}', '{video}', '{variant}', counter.period_start, '{status}',
                    t.at, case when '{status}' = 'reserved' then null else t.at + interval '20 seconds' end
             from t, counter"
        ),
    )
    .await;
}

/// `days` zero days ending `to`, oldest first.
pub(crate) fn zeros(to: NaiveDate, days: i64) -> Vec<UsageDay> {
    (0..days)
        .rev()
        .map(|back| UsageDay {
            date: (to - Duration::days(back)).format("%Y-%m-%d").to_string(),
            fresh: 0,
            cached: 0,
            cost_micros: 0,
            saved_micros: 0,
        })
        .collect()
}

/// Sets the day `days_ago` in `days` (which ends today).
pub(crate) fn set(
    days: &mut [UsageDay],
    days_ago: usize,
    fresh: i32,
    cached: i32,
    cost: i64,
    saved: i64,
) {
    let last = days.len() - 1;
    let day = &mut days[last - days_ago];
    (day.fresh, day.cached, day.cost_micros, day.saved_micros) = (fresh, cached, cost, saved);
}

fn expected(to: NaiveDate, days: Vec<UsageDay>) -> DailyUsage {
    DailyUsage {
        from: days.first().unwrap().date.clone(),
        to: to.format("%Y-%m-%d").to_string(),
        totals: UsageTotals::of(&days),
        days,
    }
}

#[tokio::test]
async fn a_month_of_history_gives_exact_days_spend_and_savings() {
    let test_db = TestDb::new().await;
    let db = test_db.db(4).await;
    let engine = engine(&db).await;
    let (a, a_owner) = seed_org(&db, "usage-a").await;
    let a_member = add_member(&test_db, a).await;
    let (b, b_owner) = seed_org(&db, "usage-b").await;

    // The shared cache: what each summary cost whoever made it.
    for (n, variant, cost) in [
        (1, "", 1_000),
        (2, "", 2_500),
        (3, "", 400),
        (4, "", 300),
        (4, "fr", 7_000),
        (6, "", 50),
        (7, "", 100_000),
        (8, "", 11),
        (9, "", 123_456),
        (10, "", 5),
        (11, "", 600),
        (12, "", 700),
    ] {
        cached_video(&test_db, a, &vid(n), variant, cost).await;
    }
    // A transcript org A pasted: its own summary and cost; the shared row
    // only names the video.
    as_owner_in_org(
        &test_db,
        a,
        &format!(
            "insert into videos (video_id, status) values ('{}', 'failed')",
            vid(5)
        ),
    )
    .await;
    as_owner_in_org(
        &test_db,
        a,
        &format!(
            "insert into own_transcript_summaries (org_id, id, user_id, video_id, summary, model,
                 prompt_version, built_in, cost_micros)
             values ('{}', gen_random_uuid(), '{}', '{}', '{{}}', 'gpt-test', 'v1', false, 900)",
            a.as_uuid(),
            a_member.as_uuid(),
            vid(5)
        ),
    )
    .await;

    // Org A's month. Today: a real cache hit (below), a unit in flight and
    // a refunded one (neither is a summary used).
    record(
        &test_db,
        a,
        a_owner,
        &vid(10),
        "",
        0,
        "00:00:01",
        "reserved",
    )
    .await;
    record(
        &test_db,
        a,
        a_member,
        &vid(11),
        "",
        0,
        "00:00:02",
        "refunded",
    )
    .await;
    // Yesterday: nothing (org B used some; none of it is A's).
    // Two days ago: one made for A by its member, one from the cache.
    spent(&test_db, a, a_member, &vid(2), "", false, 2, "00:00:00").await;
    spent(&test_db, a, a_owner, &vid(3), "", true, 2, "23:59:59.999").await;
    // Five days ago: made in French (A's language; the history points at
    // the French copy), and a pasted transcript.
    spent(&test_db, a, a_owner, &vid(4), "fr", false, 5, "12:00").await;
    spent(&test_db, a, a_member, &vid(5), "", false, 5, "13:00").await;
    // The oldest day of a 30-day window, at its first instant, and the day
    // before it, at its last.
    spent(&test_db, a, a_owner, &vid(6), "", true, 29, "00:00:00").await;
    spent(
        &test_db,
        a,
        a_member,
        &vid(7),
        "",
        false,
        30,
        "23:59:59.999",
    )
    .await;
    // Inside 90 days, and just outside.
    spent(&test_db, a, a_owner, &vid(8), "", false, 40, "08:00").await;
    spent(&test_db, a, a_owner, &vid(9), "", false, 90, "23:59:59.999").await;

    // Org B: yesterday and today, on the same videos; never A's numbers.
    spent(&test_db, b, b_owner, &vid(2), "", false, 1, "12:00").await;
    spent(&test_db, b, b_owner, &vid(12), "", true, 0, "00:00:00").await;

    // Today's hit through the real path: the cached summary of video 1.
    let owner = member(a, a_owner, OrgRole::Owner);
    let hit = engine
        .request(&owner, &VideoId::parse(&vid(1)).unwrap())
        .await
        .unwrap();
    let Requested::Ready(hit) = hit else {
        panic!("video 1 is in the cache");
    };
    assert!(hit.from_cache);

    // And a transcript A's member pasted today, through the real path
    // (the built-in summarizer: made fresh, at no cost).
    engine
        .summarize_own_transcript(
            &member(a, a_member, OrgRole::Member),
            &VideoId::parse(&vid(13)).unwrap(),
            "1\n00:00:01,000 --> 00:00:04,000\nWelcome to the usage review.\n\n2\n00:01:05,000 --> 00:01:09,000\nSpend went down because the cache served most requests.\n",
        )
        .await
        .unwrap();

    let to = today(&test_db).await;
    // Any member may read the numbers.
    let reader = member(a, a_member, OrgRole::Member);

    let mut month = zeros(to, 30);
    set(&mut month, 0, 1, 1, 0, 1_000);
    set(&mut month, 2, 1, 1, 2_500, 400);
    set(&mut month, 5, 2, 0, 7_900, 0);
    set(&mut month, 29, 0, 1, 0, 50);
    let month = expected(to, month);
    assert_eq!(
        month.totals,
        UsageTotals {
            fresh: 4,
            cached: 3,
            cost_micros: 10_400,
            saved_micros: 1_450
        }
    );
    assert_eq!(usage::daily(&db, &reader, None).await.unwrap(), month);
    assert_eq!(usage::daily(&db, &reader, Some("30")).await.unwrap(), month);

    // Today only.
    let mut one = zeros(to, 1);
    set(&mut one, 0, 1, 1, 0, 1_000);
    let got = usage::daily(&db, &reader, Some("1")).await.unwrap();
    assert_eq!(got.from, got.to);
    assert_eq!(got, expected(to, one));

    // One more day reaches the summary made 30 days ago at 23:59:59.999.
    let mut longer = zeros(to, 31);
    set(&mut longer, 0, 1, 1, 0, 1_000);
    set(&mut longer, 2, 1, 1, 2_500, 400);
    set(&mut longer, 5, 2, 0, 7_900, 0);
    set(&mut longer, 29, 0, 1, 0, 50);
    set(&mut longer, 30, 1, 0, 100_000, 0);
    assert_eq!(
        usage::daily(&db, &reader, Some("31")).await.unwrap(),
        expected(to, longer)
    );

    // The longest window: 90 days, 40 days ago in, 90 days ago out.
    let got = usage::daily(&db, &reader, Some("90")).await.unwrap();
    assert_eq!(got.days.len(), 90);
    assert_eq!(
        got.from,
        (to - Duration::days(89)).format("%Y-%m-%d").to_string()
    );
    let mut quarter = zeros(to, 90);
    set(&mut quarter, 0, 1, 1, 0, 1_000);
    set(&mut quarter, 2, 1, 1, 2_500, 400);
    set(&mut quarter, 5, 2, 0, 7_900, 0);
    set(&mut quarter, 29, 0, 1, 0, 50);
    set(&mut quarter, 30, 1, 0, 100_000, 0);
    set(&mut quarter, 40, 1, 0, 11, 0);
    assert_eq!(got, expected(to, quarter));
    assert!(
        got.days.windows(2).all(|pair| pair[0].date < pair[1].date),
        "oldest first"
    );

    // Org B sees only its own two.
    let mut theirs = zeros(to, 30);
    set(&mut theirs, 0, 0, 1, 0, 700);
    set(&mut theirs, 1, 1, 0, 2_500, 0);
    assert_eq!(
        usage::daily(&db, &member(b, b_owner, OrgRole::Owner), None)
            .await
            .unwrap(),
        expected(to, theirs)
    );
}

#[tokio::test]
async fn an_empty_org_gets_every_day_at_zero() {
    let test_db = TestDb::new().await;
    let db = test_db.db(2).await;
    let (org, owner) = seed_org(&db, "usage-empty").await;
    let to = today(&test_db).await;
    let got = usage::daily(&db, &member(org, owner, OrgRole::Owner), Some("7"))
        .await
        .unwrap();
    assert_eq!(got, expected(to, zeros(to, 7)));
    assert_eq!(got.totals, UsageTotals::default());
}

#[tokio::test]
async fn a_window_outside_one_to_ninety_days_is_a_422_on_days() {
    let test_db = TestDb::new().await;
    let db = test_db.db(2).await;
    let (org, owner) = seed_org(&db, "usage-bad").await;
    let owner = member(org, owner, OrgRole::Owner);
    for raw in ["0", "91", "abc", "", "-3", "7.5"] {
        let error = usage::daily(&db, &owner, Some(raw)).await.unwrap_err();
        assert_eq!(error.status_code(), 422, "{raw}: {error:?}");
        let message = error.field_message("days").unwrap_or_default();
        assert!(message.contains("1 to 90"), "{raw}: {message}");
    }
}

/// The catalog with Free limited to `limit`.
fn free_limit(limit: u32) -> PlanCatalog {
    PlanCatalog::default().with(PlanId::Free, limit, 0)
}

fn rfc3339(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[tokio::test]
async fn the_current_period_is_the_calendar_month_on_free_and_counts_units_in_flight() {
    let test_db = TestDb::new().await;
    let db = test_db.db(2).await;
    let (org, owner) = seed_org(&db, "usage-now").await;
    let (other, other_owner) = seed_org(&db, "usage-other").await;
    let plans = free_limit(5);

    let reader = member(org, owner, OrgRole::Member);
    let now = usage::current(&db, &plans, &reader).await.unwrap();
    let month = today(&test_db).await.with_day(1).unwrap();
    let start = Utc.from_utc_datetime(&month.and_hms_opt(0, 0, 0).unwrap());
    let end = Utc.from_utc_datetime(
        &month
            .checked_add_months(chrono::Months::new(1))
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap(),
    );
    assert_eq!(
        now,
        tldw::domain::UsageNow {
            used: 0,
            limit: 5,
            remaining: 5,
            period_start: rfc3339(start),
            period_end: rfc3339(end),
            plan: "free".into(),
            plan_name: "Free".into(),
        }
    );
    assert!(now.period_start.ends_with("-01T00:00:00Z"), "{now:?}");

    // Two units reserved (one still in flight, one spent) count; another
    // org's never do.
    for (n, who, scope_org) in [(1, owner, org), (2, owner, org), (3, other_owner, other)] {
        let mut tx = db
            .tenant(TenantScope::member(scope_org, who))
            .await
            .unwrap();
        let reservation = quota::reserve(&mut tx, who, &VideoId::parse(&vid(n)).unwrap(), &plans)
            .await
            .unwrap()
            .reserved()
            .unwrap();
        if n == 2 {
            assert!(quota::succeed(&mut tx, reservation).await.unwrap());
        }
        tx.commit().await.unwrap();
    }
    let now = usage::current(&db, &plans, &reader).await.unwrap();
    assert_eq!((now.used, now.limit, now.remaining), (2, 5, 3));

    // After a downgrade `used` may pass the limit; nothing is negative.
    let now = usage::current(&db, &free_limit(1), &reader).await.unwrap();
    assert_eq!((now.used, now.limit, now.remaining), (2, 1, 0));
}

#[tokio::test]
async fn a_dodo_subscription_gives_its_plan_and_billing_period() {
    let test_db = TestDb::new().await;
    let db = test_db.db(2).await;
    let (org, owner) = seed_org(&db, "usage-pro").await;
    // Renewed 3 days ago for a 30-day period: not calendar months.
    as_owner_in_org(
        &test_db,
        org,
        &format!(
            "insert into subscriptions (org_id, plan, source, status, dodo_subscription_id,
                 period_start, period_end)
             values ('{}', 'pro', 'dodo', 'active', 'sub_usage',
                 date_trunc('second', now()) - interval '3 days',
                 date_trunc('second', now()) + interval '27 days')",
            org.as_uuid()
        ),
    )
    .await;
    let (start, end): (chrono::DateTime<Utc>, chrono::DateTime<Utc>) = {
        let mut tx = db.tenant(TenantScope::org(org)).await.unwrap();
        let row = sqlx::query_as("select period_start, period_end from subscriptions")
            .fetch_one(tx.conn())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        row
    };
    let plans = PlanCatalog::default().with(PlanId::Pro, 250, 1200);
    let now = usage::current(&db, &plans, &member(org, owner, OrgRole::Admin))
        .await
        .unwrap();
    assert_eq!(
        now,
        tldw::domain::UsageNow {
            used: 0,
            limit: 250,
            remaining: 250,
            period_start: rfc3339(start),
            period_end: rfc3339(end),
            plan: "pro".into(),
            plan_name: "Pro".into(),
        }
    );
    assert_eq!(end - start, Duration::days(30));
}
