//! The HTML shell and the route table.

use leptos::prelude::*;
use leptos_meta::{HashedStylesheet, MetaTags, Title, provide_meta_context};
use leptos_router::{
    SsrMode,
    components::{ParentRoute, Route, Router, Routes},
    path,
};

use crate::{
    components::layout::{SiteFooter, SiteHeader},
    pages::{
        account::AccountPage,
        account_links::{ForgotPasswordPage, ResetPasswordPage, VerifyEmailPage},
        api_docs::ApiDocsPage,
        app_home::AppHome,
        auth::{SignInPage, SignUpPage},
        billing::{BillingPage, CheckoutReturnPage},
        invitation::InvitationPage,
        landing::LandingPage,
        new_org::NewOrgPage,
        not_found::NotFound,
        org_home::OrgHome,
        org_settings::OrgSettings,
        org_shell::OrgShell,
        summary::SummaryPage,
    },
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
                // pkg/tldw.<hash>.css, the hashes from the site's hash.txt
                // (see server/http/assets.rs); so are the script and wasm.
                <HashedStylesheet options=options.clone() id="leptos" />
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
    // Effects run only in the browser, once the page is hydrated: the
    // marker tells end-to-end tests (and anyone curious) that forms now
    // submit through JavaScript rather than as plain HTML posts.
    Effect::new(|_| {
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Title formatter=|page: String| if page.is_empty() { "tldw".to_owned() } else { format!("{page} · tldw") } />
        <Router>
            <div class="flex min-h-screen flex-col">
                <SiteHeader />
                <main id="main" class="flex-1">
                    // Async: each page's HTML arrives complete, so every form
                    // and page works before (or without) the wasm.
                    <Routes fallback=NotFound>
                        <Route path=path!("/") view=LandingPage ssr=SsrMode::Async />
                        <Route path=path!("/sign-up") view=SignUpPage ssr=SsrMode::Async />
                        <Route path=path!("/sign-in") view=SignInPage ssr=SsrMode::Async />
                        <Route path=path!("/app") view=AppHome ssr=SsrMode::Async />
                        <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async />
                        <Route path=path!("/forgot-password") view=ForgotPasswordPage ssr=SsrMode::Async />
                        <Route path=path!("/reset-password") view=ResetPasswordPage ssr=SsrMode::Async />
                        <Route path=path!("/verify-email") view=VerifyEmailPage ssr=SsrMode::Async />
                        <Route path=path!("/orgs/new") view=NewOrgPage ssr=SsrMode::Async />
                        // Every org page inside one shell: live updates and the quota meter.
                        <ParentRoute path=path!("/o/:slug") view=OrgShell ssr=SsrMode::Async>
                            <Route path=path!("") view=OrgHome ssr=SsrMode::Async />
                            <Route path=path!("settings") view=OrgSettings ssr=SsrMode::Async />
                            <Route path=path!("billing") view=BillingPage ssr=SsrMode::Async />
                            <Route path=path!("billing/return") view=CheckoutReturnPage ssr=SsrMode::Async />
                            <Route path=path!("v/:video") view=SummaryPage ssr=SsrMode::Async />
                        </ParentRoute>
                        <Route path=path!("/invite/:token") view=InvitationPage ssr=SsrMode::Async />
                        <Route path=path!("/api/docs") view=ApiDocsPage ssr=SsrMode::Async />
                    </Routes>
                </main>
                <SiteFooter />
            </div>
        </Router>
    }
}
