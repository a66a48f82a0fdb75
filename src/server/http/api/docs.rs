//! The OpenAPI document as the reference page shows it. Walked as JSON, so
//! the page shows exactly what `/api/v1/openapi.json` says.

use serde_json::Value;

use crate::domain::api_reference::{ApiAnswer, ApiField, ApiGroup, ApiOperation, ApiReference};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The reference page's content, grouped by tag in the document's order.
pub fn api_reference() -> ApiReference {
    let document = serde_json::to_value(super::openapi()).unwrap_or(Value::Null);
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let mut groups: Vec<ApiGroup> = document["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|tag| ApiGroup {
            name: text(&tag["name"]),
            description: text(&tag["description"]),
            operations: Vec::new(),
        })
        .collect();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let tag = operation["tags"][0].as_str().unwrap_or("other");
            let group = match groups.iter_mut().position(|g| g.name == tag) {
                Some(index) => &mut groups[index],
                None => {
                    groups.push(ApiGroup {
                        name: tag.to_owned(),
                        description: String::new(),
                        operations: Vec::new(),
                    });
                    groups.last_mut().expect("just pushed")
                }
            };
            group
                .operations
                .push(describe(&document, method, path, operation));
        }
    }
    groups.retain(|g| !g.operations.is_empty());
    ApiReference {
        title: text(&document["info"]["title"]),
        description: text(&document["info"]["description"]),
        groups,
    }
}

fn describe(document: &Value, method: &str, path: &str, operation: &Value) -> ApiOperation {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let parameters = operation["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| ApiField {
            name: text(&p["name"]),
            kind: text(&p["in"]),
            required: p["required"].as_bool().unwrap_or(false),
            description: text(&p["description"]),
        })
        .collect();
    let body_schema = &operation["requestBody"]["content"]["application/json"]["schema"];
    let body = fields(document, body_schema);
    let responses = operation["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(status, answer)| ApiAnswer {
            status: status.clone(),
            description: text(&answer["description"]),
        })
        .collect();
    ApiOperation {
        method: method.to_ascii_uppercase(),
        path: path.to_owned(),
        summary: text(&operation["summary"]),
        description: text(&operation["description"]),
        parameters,
        body,
        responses,
    }
}

/// The properties of an object schema (following one `$ref`).
fn fields(document: &Value, schema: &Value) -> Vec<ApiField> {
    let schema = match schema["$ref"].as_str() {
        Some(reference) => document
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or(&Value::Null),
        None => schema,
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, property)| ApiField {
            name: name.clone(),
            kind: type_name(property),
            required: required.contains(&name.as_str()),
            description: property["description"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        })
        .collect()
}

fn type_name(property: &Value) -> String {
    match &property["type"] {
        Value::String(name) => name.clone(),
        // OpenAPI 3.1 spells "nullable string" as ["string", "null"].
        Value::Array(names) => names
            .iter()
            .filter_map(Value::as_str)
            .filter(|n| *n != "null")
            .collect::<Vec<_>>()
            .join(" | "),
        _ => property["$ref"]
            .as_str()
            .and_then(|r| r.rsplit('/').next())
            .unwrap_or("value")
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_route_is_on_the_page() {
        let reference = api_reference();
        let shown: Vec<(String, String)> = reference
            .groups
            .iter()
            .flat_map(|g| g.operations.iter())
            .map(|o| (o.method.clone(), o.path.clone()))
            .collect();
        let document = serde_json::to_value(super::super::openapi()).unwrap();
        let documented: usize = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| METHODS.iter().filter(|m| item.get(**m).is_some()).count())
            .sum();
        assert_eq!(shown.len(), documented, "{shown:?}");
        assert!(shown.contains(&("POST".into(), "/api/v1/orgs/{slug}/summaries".into())));
        let post = reference
            .groups
            .iter()
            .flat_map(|g| g.operations.iter())
            .find(|o| o.method == "POST" && o.path.ends_with("/summaries"))
            .unwrap();
        assert!(
            post.body.iter().any(|f| f.name == "url" && f.required),
            "{post:?}"
        );
    }
}
