//! `/app`: sends a signed-in person to their active organization.

use leptos::prelude::*;
use leptos_router::components::Redirect;

use crate::{components::load_error::LoadError, error::AppError, server_fns::auth::whoami};

#[component]
pub fn AppHome() -> impl IntoView {
    let viewer = Resource::new(|| (), |_| whoami());
    view! {
        <Suspense fallback=|| view! { <p class="p-8 text-slate-500">"Opening your organization…"</p> }>
            {move || Suspend::new(async move {
                match viewer.await {
                    Ok(Some(viewer)) => {
                        let path = viewer
                            .active_slug
                            .map(|slug| format!("/o/{slug}"))
                            .unwrap_or_else(|| "/orgs/new".into());
                        view! { <Redirect path /> }.into_any()
                    }
                    Ok(None) => view! { <LoadError error=AppError::Unauthorized /> }.into_any(),
                    Err(error) => view! { <LoadError error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}
