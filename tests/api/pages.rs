//! Server-rendered pages, as a browser without JavaScript receives them.

use crate::helpers::spawn_app;

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
