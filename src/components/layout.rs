use leptos::prelude::*;

#[component]
pub fn SiteHeader() -> impl IntoView {
    view! {
        <a href="#main" class="sr-only focus:not-sr-only focus:absolute focus:left-4 focus:top-4 focus:rounded focus:bg-white focus:px-3 focus:py-2 focus:shadow">
            "Skip to content"
        </a>
        <header class="border-b border-slate-200 bg-white/80 backdrop-blur">
            <div class="mx-auto flex max-w-6xl flex-wrap items-center justify-between gap-4 px-4 py-4 sm:px-6">
                <a href="/" class="flex items-center gap-2 text-xl font-bold tracking-tight text-slate-900">
                    <span aria-hidden="true" class="grid h-8 w-8 place-items-center rounded-lg bg-indigo-600 text-sm font-black text-white">
                        "t"
                    </span>
                    "tldw"
                </a>
                <nav aria-label="Main" class="flex items-center gap-1 text-sm font-medium text-slate-600 sm:gap-4">
                    <a href="/#how-it-works" class="rounded px-2 py-1 hover:bg-slate-100 hover:text-slate-900">
                        "How it works"
                    </a>
                    <a href="/#pricing" class="rounded px-2 py-1 hover:bg-slate-100 hover:text-slate-900">
                        "Pricing"
                    </a>
                </nav>
            </div>
        </header>
    }
}

#[component]
pub fn SiteFooter() -> impl IntoView {
    view! {
        <footer class="border-t border-slate-200 bg-white">
            <div class="mx-auto flex max-w-6xl flex-col gap-2 px-4 py-6 text-sm text-slate-500 sm:flex-row sm:justify-between sm:px-6">
                <p>"tldw: too long; didn't watch."</p>
                <p>"Summaries are made once per video and shared, so nobody pays twice."</p>
            </div>
        </footer>
    }
}
