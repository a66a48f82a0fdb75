use sqlx::{Connection, Executor, PgConnection};

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_answers_while_the_process_lives() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn readyz_reports_ready_when_migrated() {
    let app = spawn_app().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn readyz_says_why_when_migrations_are_missing() {
    let app = spawn_app().await;
    app.db
        .owner_conn()
        .await
        .execute("delete from _sqlx_migrations")
        .await
        .unwrap();
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("migrations are not applied (0 of"),
        "{message}"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn readyz_is_503_without_database_details_when_the_database_is_down() {
    let app = spawn_app().await;
    let mut admin =
        PgConnection::connect_with(&crate::helpers::cluster().pg.superuser_options("postgres"))
            .await
            .unwrap();
    // Cut the app off: refuse new connections and end the existing ones.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "alter database \"{}\" allow_connections false",
        app.db.name
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()")
        .bind(&app.db.name)
        .execute(&mut admin)
        .await
        .unwrap();

    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let text = response.text().await.unwrap();
    assert!(text.contains("the database cannot be reached"), "{text}");
    assert!(
        !text.contains("terminat") && !text.contains(&app.db.name),
        "{text}"
    );
    // The process itself is still alive.
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let first = app.get("/healthz").await;
    let second = app.get("/healthz").await;
    let id = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(id(&first).len(), 36);
    assert_ne!(id(&first), id(&second));

    // A caller's own id is replaced (security review 18b): a client must
    // not be able to forge or collide correlation ids in our logs.
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "from-the-client")
        .send()
        .await
        .unwrap();
    assert_ne!(id(&response), "from-the-client");
    assert_eq!(id(&response).len(), 36);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_anyone_reads_them() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/anything"))
        .body(vec![b'x'; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_the_server_finish_and_stop_cleanly() {
    let app = spawn_app().await;
    let url = app.url("/healthz");
    let client = app.client.clone();
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    let started = std::time::Instant::now();
    app.stop().await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        client.get(&url).send().await.is_err(),
        "still serving after shutdown"
    );
}

#[tokio::test]
async fn several_instances_start_together_on_one_database() {
    // An empty database: both instances race to apply every migration.
    let db = crate::helpers::TestDb::empty().await;
    let (first, second) = tokio::join!(
        crate::helpers::spawn_instance(&db),
        crate::helpers::spawn_instance(&db)
    );
    assert_ne!(first.address, second.address);
    for app in [&first, &second] {
        assert_eq!(app.get("/readyz").await.status(), 200, "{}", app.address);
    }
    first.stop().await.unwrap();
    // The other keeps serving when one stops.
    assert_eq!(second.get("/readyz").await.status(), 200);
    second.stop().await.unwrap();
}
