//! The embedded database: first run creates it, later runs reuse it.

use tldw::server::db::{
    self, Db,
    embedded::{EmbeddedOptions, EmbeddedPostgres},
    roles,
};

#[tokio::test]
async fn a_restart_reuses_the_data_and_a_second_instance_shares_the_cluster() {
    let dir = tempdir();
    let options = EmbeddedOptions {
        data_dir: dir.clone(),
        bin_dir: None,
        durable: false,
        max_connections: 20,
    };

    let first = start(&options).await;
    roles::ensure_roles_and_database(&first, "tldw")
        .await
        .unwrap();
    db::migrate(&first.owner_options("tldw")).await.unwrap();
    let pool = Db::connect(first.app_options("tldw"), 1).await.unwrap();
    let mut tx = pool.shared().await.unwrap();
    sqlx::query("insert into videos (video_id, title) values ('dQw4w9WgXcQ', 'kept')")
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    pool.close().await;

    // A second process on the same folder joins the running cluster and
    // leaves it running when it stops.
    let second = start(&options).await;
    tokio::task::spawn_blocking(move || second.stop())
        .await
        .unwrap()
        .unwrap();
    assert!(
        first.pgdata().join("postmaster.pid").exists(),
        "the second instance stopped the first one's database"
    );

    tokio::task::spawn_blocking(move || first.stop())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !dir.join("pgdata/postmaster.pid").exists(),
        "PostgreSQL still running after stop"
    );

    // Restart: same data, migrations are a no-op.
    let again = start(&options).await;
    roles::ensure_roles_and_database(&again, "tldw")
        .await
        .unwrap();
    db::migrate(&again.owner_options("tldw")).await.unwrap();
    let pool = Db::connect(again.app_options("tldw"), 1).await.unwrap();
    let mut tx = pool.shared().await.unwrap();
    let title: String =
        sqlx::query_scalar("select title from videos where video_id = 'dQw4w9WgXcQ'")
            .fetch_one(tx.conn())
            .await
            .unwrap();
    assert_eq!(title, "kept");
    tx.commit().await.unwrap();
    pool.close().await;
    tokio::task::spawn_blocking(move || again.stop())
        .await
        .unwrap()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_binaries_explain_how_to_install_them() {
    let error = match EmbeddedPostgres::start(&EmbeddedOptions {
        data_dir: tempdir(),
        bin_dir: Some("/nonexistent/bin".into()),
        durable: false,
        max_connections: 20,
    }) {
        Ok(_) => panic!("started without binaries"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.contains("TLDW_PG_BIN_DIR=/nonexistent/bin"),
        "{error}"
    );
    assert!(error.contains("apt-get install postgresql"), "{error}");
}

async fn start(options: &EmbeddedOptions) -> EmbeddedPostgres {
    let options = options.clone();
    tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&options))
        .await
        .unwrap()
        .unwrap()
}

fn tempdir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tldw-embed-{}", uuid::Uuid::new_v4().simple()))
}
