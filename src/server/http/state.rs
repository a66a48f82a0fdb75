use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::server::db::Db;

/// What every handler (and every server function, through context) can reach.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Db,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
