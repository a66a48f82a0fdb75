//! Leptos.toml (read by the server) must agree with Cargo.toml's
//! [package.metadata.leptos] (read by cargo-leptos and the build script).

#[test]
fn leptos_toml_matches_the_cargo_metadata() {
    let read = |path: &str| -> toml::Value {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_owned() + path)
                .unwrap();
        text.parse().unwrap()
    };
    let runtime = read("Leptos.toml");
    let cargo = read("Cargo.toml");
    let runtime = &runtime["package"]["metadata"]["leptos"];
    let build = &cargo["package"]["metadata"]["leptos"];
    let keys = runtime.as_table().unwrap();
    assert!(!keys.is_empty());
    for (key, value) in keys {
        assert_eq!(
            Some(value),
            build.get(key),
            "Leptos.toml's {key} differs from Cargo.toml's"
        );
    }
    // The wasm/js name is also baked in at compile time.
    assert_eq!(
        runtime["output-name"].as_str(),
        Some(env!("LEPTOS_OUTPUT_NAME"))
    );
}
