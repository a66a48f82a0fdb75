//! Server-rendered pages, as a browser without JavaScript receives them.

use crate::helpers::{TestDb, spawn_app, spawn_instance};
use std::time::Duration;

#[tokio::test]
async fn the_landing_page_shows_the_product_and_every_plan() {
    let app = spawn_app().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("Get the point of any YouTube video"));
    for plan in tldw::domain::Plan::defaults() {
        assert!(
            html.contains(&format!("data-plan=\"{}\"", plan.id.as_str())),
            "{}",
            plan.name
        );
        assert!(html.contains(&plan.display_price()));
    }
    // The page asks for the hydration bundle and the stylesheet (by hashed
    // names when a built site is there: tests/api/assets.rs checks those).
    let asks_for = |ext: &str| {
        html.split("href=\"/pkg/tldw")
            .skip(1)
            .any(|rest| rest.split('"').next().is_some_and(|n| n.ends_with(ext)))
    };
    assert!(asks_for(".js") && asks_for(".wasm") && asks_for(".css"));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_link_form_works_without_javascript() {
    let app = spawn_app().await;
    let html = app
        .get("/?link=https%3A%2F%2Fyoutu.be%2FdQw4w9WgXcQ%3Fsi%3Dabc")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("data-testid=\"verdict-ok\""), "{html}");
    // The submitted link stays in the box.
    assert!(
        html.contains("value=\"https://youtu.be/dQw4w9WgXcQ?si=abc\""),
        "{html}"
    );

    let html = app
        .get("/?link=https%3A%2F%2Fyoutube.com.evil.com%2Fwatch%3Fv%3DdQw4w9WgXcQ")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("data-testid=\"verdict-error\""));
    assert!(html.contains("is not on YouTube"));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn submitted_text_is_escaped() {
    let app = spawn_app().await;
    let html = app
        .get("/?link=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<script>alert(1)</script>"));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_pages_are_a_friendly_404() {
    let app = spawn_app().await;
    let response = app.get("/no/such/page").await;
    assert_eq!(response.status(), 404);
    let html = response.text().await.unwrap();
    assert!(html.contains("We couldn't find that page."));
    app.stop().await.unwrap();
}

/// Pages keep rendering while other instances start in the same process (as
/// in these tests): Leptos suppresses resource loads process-wide while it
/// generates a route list (leptos-rs/leptos#4773), and a page whose resource
/// first ran in that window used to hang until the request timed out. The
/// list is now generated once per process.
#[tokio::test]
async fn pages_render_while_other_instances_start_in_the_same_process() {
    let app = spawn_app().await;
    let name = app.db.name.clone();
    let starting = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let db = TestDb::named(&name);
            for _ in 0..20 {
                spawn_instance(&db).await.stop().await.unwrap();
            }
        });
    });
    let mut renders = 0;
    while !starting.is_finished() {
        let page = tokio::time::timeout(Duration::from_secs(10), async {
            let page = app.get("/").await;
            (page.status(), page.text().await.unwrap())
        })
        .await
        .expect("the landing page stalled while another instance started");
        assert_eq!(page.0, 200);
        assert!(page.1.contains("data-plan="), "the plans did not render");
        renders += 1;
    }
    starting.join().unwrap();
    println!("{renders} renders while 20 instances started");
    assert!(
        renders >= 20,
        "only {renders} renders overlapped the starts"
    );
    app.stop().await.unwrap();
}
