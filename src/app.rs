//! The HTML shell and the route table.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    StaticSegment,
    components::{Route, Router, Routes},
};

use crate::{
    components::layout::{SiteFooter, SiteHeader},
    pages::{landing::LandingPage, not_found::NotFound},
};

/// The document around the app; rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en" class="h-full">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="description" content="tldw turns long YouTube videos into short, timestamped summaries for your whole team." />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body class="min-h-full bg-slate-50 text-slate-900 antialiased">
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    view! {
        <Stylesheet id="leptos" href="/pkg/tldw.css" />
        <Title formatter=|page: String| if page.is_empty() { "tldw".to_owned() } else { format!("{page} · tldw") } />
        <Router>
            <div class="flex min-h-screen flex-col">
                <SiteHeader />
                <main id="main" class="flex-1">
                    <Routes fallback=NotFound>
                        <Route path=StaticSegment("") view=LandingPage />
                    </Routes>
                </main>
                <SiteFooter />
            </div>
        </Router>
    }
}
