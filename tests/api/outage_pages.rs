//! Pages while the database is down (issue 16): a friendly 503 in words,
//! with `Retry-After`, never a 500, a blank page, or the database's own text.

use sqlx::{Connection, PgConnection};

use crate::helpers::{TestApp, spawn_app};

/// How the database is taken away from the app.
#[derive(Clone, Copy, Debug)]
enum Away {
    /// `connection limit 0`: "too many connections" (53300), as a
    /// saturated server answers.
    ConnectionLimit,
    /// `allow_connections false`: "not currently accepting connections"
    /// (55000), as during maintenance.
    NotAccepting,
}

impl Away {
    fn setting(self, on: bool) -> &'static str {
        match (self, on) {
            (Away::ConnectionLimit, true) => "connection limit 0",
            (Away::ConnectionLimit, false) => "connection limit -1",
            (Away::NotAccepting, true) => "allow_connections false",
            (Away::NotAccepting, false) => "allow_connections true",
        }
    }
}

/// Refuses new connections to the app's database and ends the open ones
/// (its pooled connections are terminated, as a shutdown does).
async fn take_the_database_away(app: &TestApp, how: Away) -> PgConnection {
    let mut admin =
        PgConnection::connect_with(&crate::helpers::cluster().pg.superuser_options("postgres"))
            .await
            .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "alter database \"{}\" {}",
        app.db.name,
        how.setting(true)
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()")
        .bind(&app.db.name)
        .execute(&mut admin)
        .await
        .unwrap();
    admin
}

async fn give_it_back(app: &TestApp, admin: &mut PgConnection, how: Away) {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "alter database \"{}\" {}",
        app.db.name,
        how.setting(false)
    )))
    .execute(admin)
    .await
    .unwrap();
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> (u16, Option<String>, String) {
    let response = app
        .client
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, response.text().await.unwrap())
}

#[tokio::test]
async fn pages_answer_a_friendly_503_with_retry_after_while_the_database_is_down() {
    pages_while_away(Away::ConnectionLimit).await;
}

#[tokio::test]
async fn pages_answer_a_friendly_503_while_the_database_refuses_connections() {
    pages_while_away(Away::NotAccepting).await;
}

async fn pages_while_away(how: Away) {
    if std::env::var_os("TEST_LOG").is_some() {
        tldw::server::telemetry::init(tldw::server::config::LogFormat::Text);
    }
    let app = spawn_app().await;
    let cookie = app.sign_up("outage-page@example.com").await;
    let slug = app.create_org(&cookie, "Outage Page").await;
    let paths = ["/app".to_owned(), format!("/o/{slug}")];
    for path in &paths {
        let (status, _, _) = page(&app, &cookie, path).await;
        assert!(matches!(status, 200 | 303), "{path} before: {status}");
    }

    let mut admin = take_the_database_away(&app, how).await;
    for path in &paths {
        let (status, retry_after, html) = page(&app, &cookie, path).await;
        println!("{how:?} {path}: {status} retry-after {retry_after:?}\n{html}");
        assert_eq!(status, 503, "{how:?} {path}: {html}");
        assert!(retry_after.is_some(), "{path}: no Retry-After");
        assert!(html.contains("database is not answering"), "{path}: {html}");
        assert!(html.contains("Nothing was done"), "{path}: {html}");
        assert!(html.contains("retries in"), "{path}: {html}");
        assert!(html.contains("http-equiv=\"refresh\""), "{path}: {html}");
        for leak in [
            "terminat",
            "sqlx",
            "PostgreSQL",
            "pool",
            app.db.name.as_str(),
        ] {
            assert!(!html.contains(leak), "{path} shows {leak:?}: {html}");
        }
    }

    give_it_back(&app, &mut admin, how).await;
    admin.close().await.unwrap();
    let (status, _, _) = page(&app, &cookie, &paths[1]).await;
    assert_eq!(status, 200, "the page did not come back");
    app.stop().await.unwrap();
}
