//! The public REST API (issue 9). The contract test calls every route with
//! successes and errors and checks each answer against the OpenAPI
//! document with a JSON-schema validator; the rest prove the envelope on
//! malformed input, CORS, and the reference page.

use std::{collections::BTreeSet, sync::Mutex, time::Duration};

use reqwest::Method;
use serde_json::{Value, json};

use super::{
    billing::{FakeDodo, billing_vars},
    helpers::{
        Reply, TestApp, TestDb, spawn_app, spawn_app_with, spawn_instance_with, superuser_conn,
    },
    summaries::{Tube, vars, video},
};

/// How a call authenticates.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    /// A browser session, from our own origin.
    Cookie(&'a str),
    /// `Authorization: Bearer tldw_…`.
    Key(&'a str),
    Nobody,
}

/// One `/api/v1` call with a JSON body (or none).
pub(crate) async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    body: Option<Value>,
) -> Reply {
    let mut request = app.client.request(method, app.url(path));
    request = match auth {
        Auth::Cookie(cookie) => request
            .header("cookie", cookie)
            .header("origin", &app.address),
        Auth::Key(key) => request.bearer_auth(key),
        Auth::Nobody => request,
    };
    if let Some(body) = body {
        request = request.json(&body);
    }
    Reply::read(request.send().await.unwrap()).await
}

/// The OpenAPI document and the operations a test has exercised.
pub(crate) struct Contract {
    document: Value,
    called: Mutex<BTreeSet<(String, String)>>,
}

impl Contract {
    pub(crate) async fn fetch(app: &TestApp) -> Contract {
        let reply = Reply::read(app.get("/api/v1/openapi.json").await).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let document: Value = reply.json();
        assert!(
            document["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1")),
            "{}",
            document["openapi"]
        );
        Contract {
            document,
            called: Mutex::default(),
        }
    }

    /// Checks one answer of `method template` against the document: the
    /// status must be listed, and a JSON body must match its schema.
    #[track_caller]
    pub(crate) fn check(&self, method: &Method, template: &str, reply: &Reply) {
        let verb = method.as_str().to_ascii_lowercase();
        let operation = &self.document["paths"][template][&verb];
        assert!(
            operation.is_object(),
            "{method} {template} is not in the OpenAPI document"
        );
        let answer = &operation["responses"][reply.status.to_string()];
        assert!(
            answer.is_object(),
            "{method} {template} answered {}, which its document does not list: {}",
            reply.status,
            reply.body
        );
        match answer["content"]["application/json"]["schema"].as_object() {
            Some(schema) => {
                assert!(
                    reply
                        .header("content-type")
                        .is_some_and(|t| t.starts_with("application/json")),
                    "{method} {template} {}: {:?}",
                    reply.status,
                    reply.headers
                );
                let body: Value = reply.json();
                self.validate(
                    &Value::Object(schema.clone()),
                    &body,
                    method,
                    template,
                    reply.status,
                );
            }
            None => assert!(
                reply.body.is_empty(),
                "{method} {template} {} documents no body but sent {}",
                reply.status,
                reply.body
            ),
        }
        self.called
            .lock()
            .unwrap()
            .insert((verb, template.to_owned()));
    }

    #[track_caller]
    fn validate(&self, schema: &Value, body: &Value, method: &Method, template: &str, status: u16) {
        // The response schema refers to `#/components/schemas/…`: give it
        // the document's components so the references resolve.
        let mut root = schema.clone();
        root["components"] = self.document["components"].clone();
        root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        let validator = jsonschema::validator_for(&root)
            .unwrap_or_else(|e| panic!("the schema of {method} {template} {status}: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{e} (at {})", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {template} {status} does not match its schema: {errors:?}\n{body:#}"
        );
    }

    /// Every operation in the document was called at least once.
    #[track_caller]
    pub(crate) fn assert_everything_called(&self) {
        let called = self.called.lock().unwrap();
        let mut missing = Vec::new();
        for (path, item) in self.document["paths"].as_object().unwrap() {
            for verb in item.as_object().unwrap().keys() {
                if !called.contains(&(verb.clone(), path.clone())) {
                    missing.push(format!("{} {path}", verb.to_uppercase()));
                }
            }
        }
        assert!(missing.is_empty(), "never exercised: {missing:?}");
    }
}

/// Calls and checks in one go.
pub(crate) async fn checked(
    contract: &Contract,
    app: &TestApp,
    method: Method,
    template: &str,
    path: &str,
    auth: Auth<'_>,
    body: Option<Value>,
) -> Reply {
    let reply = call(app, method.clone(), path, auth, body).await;
    contract.check(&method, template, &reply);
    reply
}

/// Polls `GET …/summaries/{video}` until it is no longer 202.
async fn settled(
    contract: &Contract,
    app: &TestApp,
    slug: &str,
    video: &str,
    auth: Auth<'_>,
) -> Reply {
    let path = format!("/api/v1/orgs/{slug}/summaries/{video}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let reply = checked(
            contract,
            app,
            Method::GET,
            "/api/v1/orgs/{slug}/summaries/{video_id}",
            &path,
            auth,
            None,
        )
        .await;
        if reply.status != 202 {
            return reply;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still working: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn contract_app() -> (TestApp, Tube, FakeDodo) {
    let tube = Tube::start().await;
    let dodo = FakeDodo::start().await;
    let mut all = billing_vars(&dodo.base_url, &[]);
    all.extend(vars(&tube, None, &[]));
    let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    (spawn_app_with(&pairs).await, tube, dodo)
}

#[tokio::test]
async fn every_route_answers_as_its_openapi_document_says() {
    let (app, tube, _dodo) = contract_app().await;
    let contract = Contract::fetch(&app).await;
    let owner = app.sign_up("owner-contract@example.com").await;
    let slug = app.create_org(&owner, "Contract").await;
    let member = app.sign_up("member-contract@example.com").await;
    app.add_member(
        &owner,
        &slug,
        &member,
        "member-contract@example.com",
        "member",
    )
    .await;
    let leaver = app.sign_up("leaver-contract@example.com").await;
    app.add_member(
        &owner,
        &slug,
        &leaver,
        "leaver-contract@example.com",
        "member",
    )
    .await;
    let (o, m) = (Auth::Cookie(&owner), Auth::Cookie(&member));
    let org = format!("/api/v1/orgs/{slug}");
    let c = &contract;

    // Who am I.
    let me = checked(c, &app, Method::GET, "/api/v1/me", "/api/v1/me", o, None).await;
    assert_eq!(me.status, 200);
    let me: Value = me.json();
    assert!(
        me["orgs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|org| org["slug"] == slug.as_str() && org["role"] == "owner"),
        "{me}"
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::GET,
            "/api/v1/me",
            "/api/v1/me",
            Auth::Nobody,
            None
        )
        .await
        .status,
        401
    );

    // The org.
    let t = "/api/v1/orgs/{slug}";
    assert_eq!(
        checked(c, &app, Method::GET, t, &org, m, None).await.status,
        200
    );
    assert_eq!(
        checked(c, &app, Method::GET, t, "/api/v1/orgs/not-ours", o, None)
            .await
            .status,
        404
    );
    let renamed = checked(
        c,
        &app,
        Method::PATCH,
        t,
        &org,
        o,
        Some(json!({"name": "Contract Renamed", "summary_language": "de"})),
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(
        (
            renamed.json::<Value>()["name"].clone(),
            renamed.json::<Value>()["summary_language"].clone()
        ),
        (json!("Contract Renamed"), json!("de"))
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::PATCH,
            t,
            &org,
            o,
            Some(json!({"summary_language": ""}))
        )
        .await
        .json::<Value>()["summary_language"],
        Value::Null
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::PATCH,
            t,
            &org,
            m,
            Some(json!({"name": "Mine now"}))
        )
        .await
        .status,
        403
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::PATCH,
            t,
            &org,
            o,
            Some(json!({"name": ""}))
        )
        .await
        .status,
        422
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::PATCH,
            t,
            &org,
            o,
            Some(json!({"nmae": "typo"}))
        )
        .await
        .status,
        422
    );
    assert_eq!(
        checked(c, &app, Method::PATCH, t, &org, o, Some(json!({"name": 7})))
            .await
            .status,
        422
    );

    // Members.
    let t = "/api/v1/orgs/{slug}/members";
    let members = checked(c, &app, Method::GET, t, &format!("{org}/members"), m, None).await;
    assert_eq!(members.status, 200);
    let members: Value = members.json();
    let id_of = |email: &str| {
        members
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["email"] == email)
            .unwrap()["user_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (member_id, leaver_id) = (
        id_of("member-contract@example.com"),
        id_of("leaver-contract@example.com"),
    );
    let t = "/api/v1/orgs/{slug}/members/{user_id}";
    let promoted = checked(
        c,
        &app,
        Method::PATCH,
        t,
        &format!("{org}/members/{member_id}"),
        o,
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(
        (promoted.status, promoted.json::<Value>()["role"].clone()),
        (200, json!("admin")),
        "{}",
        promoted.body
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::PATCH,
            t,
            &format!("{org}/members/{member_id}"),
            o,
            Some(json!({"role": "overlord"}))
        )
        .await
        .status,
        422
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::PATCH,
            t,
            &format!("{org}/members/{}", uuid::Uuid::new_v4()),
            o,
            Some(json!({"role": "member"}))
        )
        .await
        .status,
        404
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::PATCH,
            t,
            &format!("{org}/members/not-a-uuid"),
            o,
            Some(json!({"role": "member"}))
        )
        .await
        .status,
        404
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::DELETE,
            t,
            &format!("{org}/members/{leaver_id}"),
            o,
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::DELETE,
            t,
            &format!("{org}/members/{leaver_id}"),
            o,
            None
        )
        .await
        .status,
        404
    );
    // The (now) admin may not touch the owner.
    let owner_id = id_of("owner-contract@example.com");
    assert_eq!(
        checked(
            c,
            &app,
            Method::DELETE,
            t,
            &format!("{org}/members/{owner_id}"),
            m,
            None
        )
        .await
        .status,
        403
    );
    // The last owner cannot step down.
    assert_eq!(
        checked(
            c,
            &app,
            Method::PATCH,
            t,
            &format!("{org}/members/{owner_id}"),
            o,
            Some(json!({"role": "member"}))
        )
        .await
        .status,
        409
    );

    // Summaries: made, polled, listed; a video without captions fails.
    let (good, bad) = (video("rest", 1), video("rest", 2));
    tube.without_captions(&bad);
    let t = "/api/v1/orgs/{slug}/summaries";
    let asked = checked(
        c,
        &app,
        Method::POST,
        t,
        &format!("{org}/summaries"),
        o,
        Some(json!({"url": format!("https://youtu.be/{good}")})),
    )
    .await;
    assert!(matches!(asked.status, 200 | 202), "{}", asked.body);
    let ready = settled(c, &app, &slug, &good, o).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json::<Value>()["video_id"], good.as_str());
    // Asked again: ready at once.
    let again = checked(
        c,
        &app,
        Method::POST,
        t,
        &format!("{org}/summaries"),
        m,
        Some(json!({"url": good})),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        checked(
            c,
            &app,
            Method::POST,
            t,
            &format!("{org}/summaries"),
            o,
            Some(json!({"url": "https://vimeo.com/1"}))
        )
        .await
        .status,
        422
    );
    let asked = checked(
        c,
        &app,
        Method::POST,
        t,
        &format!("{org}/summaries"),
        o,
        Some(json!({"url": bad})),
    )
    .await;
    assert!(matches!(asked.status, 202 | 409), "{}", asked.body);
    assert_eq!(settled(c, &app, &slug, &bad, o).await.status, 409);
    let t1 = "/api/v1/orgs/{slug}/summaries/{video_id}";
    assert_eq!(
        checked(
            c,
            &app,
            Method::GET,
            t1,
            &format!("{org}/summaries/{}", video("rest", 3)),
            o,
            None
        )
        .await
        .status,
        404
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::GET,
            t1,
            &format!("{org}/summaries/short"),
            o,
            None
        )
        .await
        .status,
        404
    );
    // A second summary, so the history has two pages of one.
    let second = video("rest", 4);
    let asked = call(
        &app,
        Method::POST,
        &format!("{org}/summaries"),
        o,
        Some(json!({"url": second})),
    )
    .await;
    assert!(matches!(asked.status, 200 | 202), "{}", asked.body);
    assert_eq!(settled(c, &app, &slug, &second, o).await.status, 200);
    let list = checked(
        c,
        &app,
        Method::GET,
        t,
        &format!("{org}/summaries?limit=1"),
        m,
        None,
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.body);
    let list: Value = list.json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let next = list["next_cursor"].as_str().unwrap().to_owned();
    let rest = checked(
        c,
        &app,
        Method::GET,
        t,
        &format!("{org}/summaries?limit=5&cursor={next}"),
        m,
        None,
    )
    .await;
    assert_eq!(rest.status, 200);
    assert_eq!(
        checked(
            c,
            &app,
            Method::GET,
            t,
            &format!("{org}/summaries?cursor=nonsense"),
            m,
            None
        )
        .await
        .status,
        422
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::GET,
            t,
            &format!("{org}/summaries?colour=red"),
            m,
            None
        )
        .await
        .status,
        422
    );

    // Invitations.
    let t = "/api/v1/orgs/{slug}/invitations";
    let invite = |email: &str| json!({"email": email, "role": "member"});
    let created = checked(
        c,
        &app,
        Method::POST,
        t,
        &format!("{org}/invitations"),
        o,
        Some(invite("new-contract@example.com")),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let created: Value = created.json();
    assert_eq!(created["mail"], "off", "{created}");
    assert!(
        created["link"].as_str().unwrap().contains("/invite/"),
        "{created}"
    );
    let id = created["invitation"]["id"].as_str().unwrap().to_owned();
    let open = checked(
        c,
        &app,
        Method::GET,
        t,
        &format!("{org}/invitations"),
        o,
        None,
    )
    .await;
    assert_eq!(open.status, 200);
    assert_eq!(
        open.json::<Value>().as_array().unwrap().len(),
        1,
        "{}",
        open.body
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::GET,
            t,
            &format!("{org}/invitations"),
            Auth::Cookie(&leaver_after(&app).await),
            None
        )
        .await
        .status,
        404
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::POST,
            t,
            &format!("{org}/invitations"),
            o,
            Some(invite("new-contract@example.com"))
        )
        .await
        .status,
        422
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::POST,
            t,
            &format!("{org}/invitations"),
            o,
            Some(json!({"email": "not an address", "role": "member"}))
        )
        .await
        .status,
        422
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::POST,
            t,
            &format!("{org}/invitations"),
            o,
            Some(json!({"email": "x@example.com", "role": "owner"}))
        )
        .await
        .status,
        422
    );
    let t1 = "/api/v1/orgs/{slug}/invitations/{id}";
    assert_eq!(
        checked(
            c,
            &app,
            Method::DELETE,
            t1,
            &format!("{org}/invitations/{id}"),
            o,
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::DELETE,
            t1,
            &format!("{org}/invitations/{id}"),
            o,
            None
        )
        .await
        .status,
        404
    );

    // Usage: the two summaries made above, both fresh today.
    let t = "/api/v1/orgs/{slug}/usage";
    let now = checked(c, &app, Method::GET, t, &format!("{org}/usage"), m, None).await;
    assert_eq!(now.status, 200, "{}", now.body);
    let now: Value = now.json();
    assert_eq!(
        (now["used"].clone(), now["plan"].clone()),
        (json!(2), json!("free")),
        "{now}"
    );
    let t = "/api/v1/orgs/{slug}/usage/daily";
    let daily = checked(
        c,
        &app,
        Method::GET,
        t,
        &format!("{org}/usage/daily?days=7"),
        m,
        None,
    )
    .await;
    assert_eq!(daily.status, 200, "{}", daily.body);
    let daily: Value = daily.json();
    assert_eq!(daily["days"].as_array().unwrap().len(), 7, "{daily}");
    assert_eq!(
        daily["totals"]["fresh"].as_i64().unwrap() + daily["totals"]["cached"].as_i64().unwrap(),
        2,
        "{daily}"
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::GET,
            t,
            &format!("{org}/usage/daily"),
            m,
            None
        )
        .await
        .json::<Value>()["days"]
            .as_array()
            .unwrap()
            .len(),
        30
    );
    for bad in ["0", "91", "week"] {
        assert_eq!(
            checked(
                c,
                &app,
                Method::GET,
                t,
                &format!("{org}/usage/daily?days={bad}"),
                m,
                None
            )
            .await
            .status,
            422,
            "{bad}"
        );
    }

    // Per member: the owner sees everyone, a member only their own line.
    let t = "/api/v1/orgs/{slug}/usage/members";
    let all = checked(
        c,
        &app,
        Method::GET,
        t,
        &format!("{org}/usage/members"),
        o,
        None,
    )
    .await;
    assert_eq!(all.status, 200, "{}", all.body);
    let all: Value = all.json();
    assert_eq!(all["everyone"], json!(true), "{all}");
    let lines = all["members"].as_array().unwrap();
    assert!(lines.len() >= 2, "{all}");
    let used: i64 = lines
        .iter()
        .map(|l| l["fresh"].as_i64().unwrap() + l["cached"].as_i64().unwrap())
        .sum();
    assert_eq!(used, 2, "{all}");
    // The second caller is an admin by now: everyone too, its own line marked.
    let admin = checked(
        c,
        &app,
        Method::GET,
        t,
        &format!("{org}/usage/members"),
        m,
        None,
    )
    .await;
    let admin: Value = admin.json();
    assert_eq!(admin["everyone"], json!(true), "{admin}");
    let own: Vec<&Value> = admin["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["is_you"] == json!(true))
        .collect();
    assert_eq!(own.len(), 1, "{admin}");
    assert_eq!(
        own[0]["email"],
        json!("member-contract@example.com"),
        "{admin}"
    );

    // Billing.
    let t = "/api/v1/orgs/{slug}/billing";
    let billing = checked(c, &app, Method::GET, t, &format!("{org}/billing"), m, None).await;
    assert_eq!(
        (billing.status, billing.json::<Value>()["plan"].clone()),
        (200, json!("free")),
        "{}",
        billing.body
    );
    let t = "/api/v1/orgs/{slug}/billing/checkout";
    let started = checked(
        c,
        &app,
        Method::POST,
        t,
        &format!("{org}/billing/checkout"),
        o,
        Some(json!({"plan": "pro"})),
    )
    .await;
    assert_eq!(started.status, 200, "{}", started.body);
    assert!(
        started.json::<Value>()["checkout_url"]
            .as_str()
            .unwrap()
            .starts_with("https://"),
        "{}",
        started.body
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::POST,
            t,
            &format!("{org}/billing/checkout"),
            o,
            Some(json!({"plan": "gold"}))
        )
        .await
        .status,
        422
    );
    let t = "/api/v1/orgs/{slug}/billing/portal";
    // No Dodo customer until a checkout completes.
    assert_eq!(
        checked(
            c,
            &app,
            Method::POST,
            t,
            &format!("{org}/billing/portal"),
            o,
            None
        )
        .await
        .status,
        404
    );
    // A plain member may not (the demoted admin is a member again).
    let t2 = "/api/v1/orgs/{slug}/members/{user_id}";
    checked(
        c,
        &app,
        Method::PATCH,
        t2,
        &format!("{org}/members/{member_id}"),
        o,
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(
        checked(
            c,
            &app,
            Method::POST,
            t,
            &format!("{org}/billing/portal"),
            m,
            None
        )
        .await
        .status,
        403
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::POST,
            "/api/v1/orgs/{slug}/billing/checkout",
            &format!("{org}/billing/checkout"),
            m,
            Some(json!({"plan": "pro"}))
        )
        .await
        .status,
        403
    );

    assert_eq!(
        checked(
            c,
            &app,
            Method::GET,
            "/api/v1/orgs/{slug}/invitations",
            &format!("{org}/invitations"),
            m,
            None
        )
        .await
        .status,
        403
    );
    assert_eq!(
        checked(
            c,
            &app,
            Method::POST,
            "/api/v1/orgs/{slug}/invitations",
            &format!("{org}/invitations"),
            m,
            Some(invite("by-member@example.com"))
        )
        .await
        .status,
        403
    );

    // The export: owners only, JSON by default, a bad format named.
    let export = format!("{org}/export");
    let t = "/api/v1/orgs/{slug}/export";
    let json_export = checked(c, &app, Method::GET, t, &export, o, None).await;
    assert_eq!(json_export.status, 200, "{}", json_export.body);
    assert!(
        !json_export.json::<Value>()["summaries"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        checked(c, &app, Method::GET, t, &export, m, None)
            .await
            .status,
        403
    );
    let bad = checked(
        c,
        &app,
        Method::GET,
        t,
        &format!("{export}?format=pdf"),
        o,
        None,
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.body);

    contract.assert_everything_called();
}

/// Someone with no membership in the contract org.
async fn leaver_after(app: &TestApp) -> String {
    app.sign_up("stranger-contract@example.com").await
}

/// The error every malformed request gets: JSON, the envelope, a 4xx.
#[track_caller]
fn assert_envelope(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{reply:?}"
    );
    let body: Value = reply.json();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.len() > 10),
        "{body}"
    );
}

#[tokio::test]
async fn malformed_requests_get_the_envelope_never_a_500_or_plain_text() {
    let app = spawn_app().await;
    let owner = app.sign_up("malformed@example.com").await;
    let slug = app.create_org(&owner, "Malformed").await;
    let url = app.url(&format!("/api/v1/orgs/{slug}/summaries"));
    let send = |body: Vec<u8>, content_type: &'static str| {
        let request = app
            .client
            .post(&url)
            .header("cookie", &owner)
            .header("origin", &app.address)
            .header("content-type", content_type)
            .body(body);
        async move { Reply::read(request.send().await.unwrap()).await }
    };
    let json = "application/json";
    assert_envelope(&send(b"{\"url\": 42}".to_vec(), json).await, 422, "invalid");
    let unknown = send(b"{\"url\": \"dQw4w9WgXcQ\", \"speed\": 2}".to_vec(), json).await;
    assert_envelope(&unknown, 422, "invalid");
    assert!(
        unknown.body.contains("speed"),
        "names the field: {}",
        unknown.body
    );
    assert_envelope(&send(b"{}".to_vec(), json).await, 422, "invalid");
    assert_envelope(
        &send(b"{\"url\": ".to_vec(), json).await,
        400,
        "bad_request",
    );
    assert_envelope(&send(b"[1, 2]".to_vec(), json).await, 422, "invalid");
    assert_envelope(
        &send(vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'], json).await,
        400,
        "bad_request",
    );
    assert_envelope(
        &send(b"url=x".to_vec(), "application/x-www-form-urlencoded").await,
        415,
        "unsupported_media_type",
    );
    // Over the API's 64 KiB, and over the server's 1 MiB (another layer).
    let big = format!("{{\"url\": \"{}\"}}", "a".repeat(100 * 1024)).into_bytes();
    assert_envelope(&send(big, json).await, 413, "too_large");
    let huge = format!("{{\"url\": \"{}\"}}", "a".repeat(2 * 1024 * 1024)).into_bytes();
    assert_envelope(&send(huge, json).await, 413, "too_large");
    // Routes and methods that don't exist.
    let reply = call(
        &app,
        Method::GET,
        "/api/v1/nothing-here",
        Auth::Cookie(&owner),
        None,
    )
    .await;
    assert_envelope(&reply, 404, "not_found");
    let reply = call(
        &app,
        Method::PUT,
        &format!("/api/v1/orgs/{slug}/summaries"),
        Auth::Cookie(&owner),
        Some(json!({})),
    )
    .await;
    assert_envelope(&reply, 405, "method_not_allowed");
    // Bad credentials.
    assert_envelope(
        &call(&app, Method::GET, "/api/v1/me", Auth::Nobody, None).await,
        401,
        "unauthorized",
    );
    assert_envelope(
        &call(
            &app,
            Method::GET,
            "/api/v1/me",
            Auth::Key("tldw_not-a-key"),
            None,
        )
        .await,
        401,
        "unauthorized",
    );
    assert_envelope(
        &call(
            &app,
            Method::GET,
            "/api/v1/me",
            Auth::Cookie("tldw_session=forged"),
            None,
        )
        .await,
        401,
        "unauthorized",
    );
    // Every route that takes a body: unknown fields, wrong types, bad
    // UTF-8, too big, not JSON.
    let contract = Contract::fetch(&app).await;
    let page = app.org_page(&owner, &slug).await;
    let ids = [("user_id", page.org.user_id.to_string())];
    let with_bodies: Vec<_> = org_routes(&contract.document, &slug, &ids)
        .into_iter()
        .filter_map(|(method, path, body)| Some((method, path, body?)))
        .collect();
    assert!(with_bodies.len() >= 5, "{with_bodies:?}");
    for (method, path, body) in with_bodies {
        let raw = |bytes: Vec<u8>, content_type: &'static str| {
            let request = app
                .client
                .request(method.clone(), app.url(&path))
                .header("cookie", &owner)
                .header("origin", &app.address)
                .header("content-type", content_type)
                .body(bytes);
            async move { Reply::read(request.send().await.unwrap()).await }
        };
        let mut unknown = body.clone();
        unknown["surprise"] = json!(true);
        assert_envelope(
            &raw(unknown.to_string().into_bytes(), json).await,
            422,
            "invalid",
        );
        let wrong: Value = body
            .as_object()
            .unwrap()
            .keys()
            .map(|k| (k.clone(), json!([1, 2, 3])))
            .collect::<serde_json::Map<_, _>>()
            .into();
        assert_envelope(
            &raw(wrong.to_string().into_bytes(), json).await,
            422,
            "invalid",
        );
        assert_envelope(
            &raw(vec![b'{', b'"', 0xc3, 0x28, b'"', b'}'], json).await,
            400,
            "bad_request",
        );
        let big = format!("{{\"pad\": \"{}\"}}", "a".repeat(100 * 1024)).into_bytes();
        assert_envelope(&raw(big, json).await, 413, "too_large");
        assert_envelope(
            &raw(body.to_string().into_bytes(), "text/plain").await,
            415,
            "unsupported_media_type",
        );
    }
    // Bad query strings.
    let reply = call(
        &app,
        Method::GET,
        &format!("/api/v1/orgs/{slug}/summaries?limit=%FF"),
        Auth::Cookie(&owner),
        None,
    )
    .await;
    assert_envelope(&reply, 422, "invalid");
}

#[tokio::test]
async fn cors_is_off_by_default_and_allows_only_listed_origins_without_credentials() {
    let preflight = |app: &TestApp, origin: &'static str| {
        let request = app
            .client
            .request(Method::OPTIONS, app.url("/api/v1/me"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, idempotency-key",
            );
        async move { Reply::read(request.send().await.unwrap()).await }
    };
    let closed = spawn_app().await;
    let reply = preflight(&closed, "https://tools.example").await;
    assert!(
        reply.header("access-control-allow-origin").is_none(),
        "{reply:?}"
    );

    let open = spawn_app_with(&[(
        "TLDW_CORS_ORIGINS",
        "https://tools.example, http://localhost:5173",
    )])
    .await;
    let reply = preflight(&open, "https://tools.example").await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://tools.example"),
        "{reply:?}"
    );
    let allowed = reply
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("idempotency-key"),
        "{allowed}"
    );
    assert!(
        reply.header("access-control-allow-credentials").is_none(),
        "{reply:?}"
    );
    let reply = preflight(&open, "https://evil.example").await;
    assert!(
        reply.header("access-control-allow-origin").is_none(),
        "{reply:?}"
    );
    // An actual call from the listed origin is readable there.
    let reply = call(
        &open,
        Method::GET,
        "/api/v1/openapi.json",
        Auth::Nobody,
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
    let response = open
        .client
        .get(open.url("/api/v1/openapi.json"))
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("http://localhost:5173")
    );
}

#[test]
fn a_bad_cors_origin_is_refused_at_startup_naming_the_variable() {
    for bad in [
        "tools.example",
        "https://tools.example/path",
        "ftp://tools.example",
    ] {
        let settings = tldw::server::config::Settings::from_lookup(|name| match name {
            "TLDW_CORS_ORIGINS" => Some(bad.to_owned()),
            _ => None,
        });
        let error = settings.expect_err(bad).to_string();
        assert!(error.contains("TLDW_CORS_ORIGINS"), "{error}");
    }
}

#[tokio::test]
async fn the_reference_page_lists_every_route_from_the_document() {
    let app = spawn_app().await;
    let contract = Contract::fetch(&app).await;
    let page = app.get("/api/docs").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for (path, item) in contract.document["paths"].as_object().unwrap() {
        assert!(html.contains(path.as_str()), "{path} is not on /api/docs");
        for verb in item.as_object().unwrap().keys() {
            assert!(html.contains(&verb.to_uppercase()), "{verb}");
        }
    }
    assert!(
        html.contains("Authorization: Bearer"),
        "the page explains keys"
    );
    // No third-party scripts or styles: everything is ours.
    assert!(!html.contains("cdn."), "a CDN on /api/docs");
}

#[tokio::test]
async fn twenty_identical_posts_with_one_idempotency_key_on_two_instances_make_one_invitation() {
    let db = TestDb::new().await;
    let apps = [
        std::sync::Arc::new(spawn_instance_with(&db, &[]).await),
        std::sync::Arc::new(spawn_instance_with(&db, &[]).await),
    ];
    let owner = apps[0].sign_up("idem-owner@example.com").await;
    let slug = apps[0].create_org(&owner, "Idempotent").await;
    let path = format!("/api/v1/orgs/{slug}/invitations");
    let post = |app: std::sync::Arc<TestApp>, key: &'static str, email: &'static str| {
        let (owner, path) = (owner.clone(), path.clone());
        async move {
            let request = app
                .client
                .post(app.url(&path))
                .header("cookie", &owner)
                .header("origin", &app.address)
                .header("idempotency-key", key)
                .json(&json!({"email": email, "role": "member"}));
            Reply::read(request.send().await.unwrap()).await
        }
    };
    let replies = futures_util::future::join_all(
        (0..20).map(|i| tokio::spawn(post(apps[i % 2].clone(), "invite-once", "once@example.com"))),
    )
    .await;
    let replies: Vec<Reply> = replies.into_iter().map(Result::unwrap).collect();
    let bodies: BTreeSet<&str> = replies.iter().map(|r| r.body.as_str()).collect();
    for reply in &replies {
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    assert_eq!(
        bodies.len(),
        1,
        "every retry gets the first answer: {bodies:?}"
    );
    let replayed = replies
        .iter()
        .filter(|r| r.header("idempotent-replayed") == Some("true"))
        .count();
    assert_eq!(replayed, 19, "one ran, nineteen were replayed");
    let mut conn = superuser_conn(&db).await;
    let invitations: i64 = sqlx::query_scalar("select count(*) from invitations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(invitations, 1, "one effect");

    // The same key for another request is refused, naming the header.
    let other = post(apps[1].clone(), "invite-once", "twice@example.com").await;
    assert_envelope(&other, 422, "invalid");
    assert!(
        other.json::<Value>()["error"]["fields"]["Idempotency-Key"].is_string(),
        "{}",
        other.body
    );
    // A new key is a new request; a bad key is a 422.
    assert_eq!(
        post(apps[0].clone(), "invite-twice", "twice@example.com")
            .await
            .status,
        201
    );
    assert_envelope(
        &post(apps[0].clone(), "", "three@example.com").await,
        422,
        "invalid",
    );
}

/// A new API key of `slug` with `role`, made on the settings page by `cookie`.
pub(crate) async fn create_key(app: &TestApp, cookie: &str, slug: &str, role: &str) -> String {
    let created: tldw::domain::CreatedApiKey = app
        .call(
            cookie,
            "api-keys/create",
            &[("slug", slug), ("name", "rest test"), ("role", role)],
        )
        .await
        .ok()
        .json();
    created.secret
}

/// A plausible body for each documented operation that takes one.
fn body_for(method: &str, template: &str) -> Option<Value> {
    match (method, template) {
        ("patch", "/api/v1/orgs/{slug}") => Some(json!({"name": "Taken over"})),
        ("patch", "/api/v1/orgs/{slug}/members/{user_id}") => Some(json!({"role": "admin"})),
        ("post", "/api/v1/orgs/{slug}/invitations") => {
            Some(json!({"email": "intruder@example.com", "role": "admin"}))
        }
        ("post", "/api/v1/orgs/{slug}/summaries") => Some(json!({"url": "dQw4w9WgXcQ"})),
        ("post", "/api/v1/orgs/{slug}/billing/checkout") => Some(json!({"plan": "pro"})),
        _ => None,
    }
}

/// Every documented org route, filled in for `slug` (ids are real ones of
/// that org where the route needs one).
fn org_routes(
    document: &Value,
    slug: &str,
    ids: &[(&str, String)],
) -> Vec<(Method, String, Option<Value>)> {
    let mut routes = Vec::new();
    for (template, item) in document["paths"].as_object().unwrap() {
        if !template.contains("{slug}") {
            continue;
        }
        for verb in item.as_object().unwrap().keys() {
            let mut path = template.replace("{slug}", slug);
            for (name, id) in ids {
                path = path.replace(&format!("{{{name}}}"), id);
            }
            let method = Method::from_bytes(verb.to_uppercase().as_bytes()).unwrap();
            routes.push((method, path, body_for(verb, template)));
        }
    }
    routes
}

#[tokio::test]
async fn a_key_of_one_org_gets_404_for_every_route_of_another_and_its_role_bounds_it() {
    let app = spawn_app().await;
    let contract = Contract::fetch(&app).await;
    let owner_a = app.sign_up("keys-a@example.com").await;
    let slug_a = app.create_org(&owner_a, "Keys A").await;
    let owner_b = app.sign_up("keys-b@example.com").await;
    let slug_b = app.create_org(&owner_b, "Keys B").await;
    let page_b = app.org_page(&owner_b, &slug_b).await;
    let invited: Value = call(
        &app,
        Method::POST,
        &format!("/api/v1/orgs/{slug_b}/invitations"),
        Auth::Cookie(&owner_b),
        Some(json!({"email": "someone@example.com", "role": "member"})),
    )
    .await
    .json();
    let ids = [
        ("user_id", page_b.org.user_id.to_string()),
        (
            "id",
            invited["invitation"]["id"].as_str().unwrap().to_owned(),
        ),
        ("video_id", "dQw4w9WgXcQ".to_owned()),
    ];
    let admin_key = create_key(&app, &owner_a, &slug_a, "admin").await;
    assert!(admin_key.starts_with("tldw_"), "{admin_key}");

    // Org B's every route, with org A's admin key: 404, and nothing changed.
    let routes = org_routes(&contract.document, &slug_b, &ids);
    assert!(routes.len() >= 15, "{routes:?}");
    for (method, path, body) in &routes {
        let reply = call(
            &app,
            method.clone(),
            path,
            Auth::Key(&admin_key),
            body.clone(),
        )
        .await;
        assert_envelope(&reply, 404, "not_found");
    }
    let after = app.org_page(&owner_b, &slug_b).await;
    assert_eq!(after.org.name, "Keys B");
    assert_eq!(after.invitations.map(|i| i.len()), Some(1));

    // The key's own org works, and `me` names the key's one org.
    let me: Value = call(&app, Method::GET, "/api/v1/me", Auth::Key(&admin_key), None)
        .await
        .json();
    assert_eq!(me["credential"], "api_key");
    assert_eq!(me["orgs"].as_array().unwrap().len(), 1, "{me}");
    assert_eq!(me["orgs"][0]["slug"], slug_a.as_str());
    assert_eq!(me["orgs"][0]["role"], "admin");

    // A member-role key: 403 on every admin route of its own org.
    let member_key = create_key(&app, &owner_a, &slug_a, "member").await;
    let page_a = app.org_page(&owner_a, &slug_a).await;
    let admin_only = [
        (
            Method::PATCH,
            format!("/api/v1/orgs/{slug_a}"),
            Some(json!({"name": "Mine"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/orgs/{slug_a}/members/{}", page_a.org.user_id),
            Some(json!({"role": "admin"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/orgs/{slug_a}/members/{}", page_a.org.user_id),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/orgs/{slug_a}/invitations"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{slug_a}/invitations"),
            Some(json!({"email": "x@example.com", "role": "member"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/orgs/{slug_a}/invitations/{}", uuid::Uuid::new_v4()),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{slug_a}/billing/portal"),
            None,
        ),
    ];
    for (method, path, body) in admin_only {
        let reply = call(&app, method.clone(), &path, Auth::Key(&member_key), body).await;
        assert_envelope(&reply, 403, "forbidden");
    }
    let reply = call(
        &app,
        Method::GET,
        &format!("/api/v1/orgs/{slug_a}/members"),
        Auth::Key(&member_key),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // A key opens no page and no server function.
    let page = app
        .client
        .get(app.url(&format!("/o/{slug_a}")))
        .bearer_auth(&admin_key)
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(!html.contains("Keys A"), "a key opened the org page");
    let reply = app
        .post("orgs/page")
        .bearer_auth(&admin_key)
        .form(&[("slug", slug_a.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 401);
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once_by_every_process() {
    let db = TestDb::new().await;
    let a = spawn_instance_with(&db, &[]).await;
    let b = spawn_instance_with(&db, &[]).await;
    let owner = a.sign_up("revoke-rest@example.com").await;
    let slug = a.create_org(&owner, "Revoking").await;
    let key = create_key(&a, &owner, &slug, "admin").await;
    let path = format!("/api/v1/orgs/{slug}/members");
    for app in [&a, &b] {
        assert_eq!(
            call(app, Method::GET, &path, Auth::Key(&key), None)
                .await
                .status,
            200
        );
    }
    let listed: Vec<tldw::domain::ApiKeyView> = a
        .call(&owner, "api-keys/list", &[("slug", &slug)])
        .await
        .ok()
        .json();
    let id = listed[0].id.to_string();
    a.call(&owner, "api-keys/revoke", &[("slug", &slug), ("id", &id)])
        .await
        .ok();
    for app in [&b, &a] {
        let reply = call(app, Method::GET, &path, Auth::Key(&key), None).await;
        assert_envelope(&reply, 401, "unauthorized");
        assert!(reply.body.contains("revoked"), "{}", reply.body);
    }
}

#[tokio::test]
async fn the_per_key_summary_limit_is_exact_across_two_instances_and_apart_from_the_member() {
    let tube = Tube::start().await;
    let db = TestDb::new().await;
    let v = vars(
        &tube,
        None,
        &[
            ("TLDW_API_KEY_SUMMARY_REQUESTS_PER_MINUTE", "4"),
            ("TLDW_SUMMARY_REQUESTS_PER_MINUTE", "2"),
        ],
    );
    let pairs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let apps = [
        std::sync::Arc::new(spawn_instance_with(&db, &pairs).await),
        std::sync::Arc::new(spawn_instance_with(&db, &pairs).await),
    ];
    let owner = apps[0].sign_up("limits-rest@example.com").await;
    let slug = apps[0].create_org(&owner, "Limits").await;
    let key = create_key(&apps[0], &owner, &slug, "member").await;
    let path = format!("/api/v1/orgs/{slug}/summaries");
    let replies = futures_util::future::join_all((0..10).map(|i| {
        let (app, key, path) = (apps[i % 2].clone(), key.clone(), path.clone());
        tokio::spawn(async move {
            let body = json!({"url": video("lim", i)});
            call(&app, Method::POST, &path, Auth::Key(&key), Some(body)).await
        })
    }))
    .await;
    let replies: Vec<Reply> = replies.into_iter().map(Result::unwrap).collect();
    let passed = replies.iter().filter(|r| r.status != 429).count();
    assert_eq!(
        passed,
        4,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for refused in replies.iter().filter(|r| r.status == 429) {
        assert_envelope(refused, 429, "rate_limited");
        assert!(refused.header("retry-after").is_some(), "{refused:?}");
    }
    // The key's bucket is its own: the member (in the browser) still has theirs.
    let reply = call(
        &apps[1],
        Method::POST,
        &path,
        Auth::Cookie(&owner),
        Some(json!({"url": video("lim", 20)})),
    )
    .await;
    assert_ne!(reply.status, 429, "{}", reply.body);
}

#[tokio::test]
async fn the_sweeper_purges_expired_idempotency_answers_without_any_request() {
    let db = TestDb::new().await;
    let pool = db.db(2).await;
    let (org, user) = super::helpers::seed_org(&pool, "purged").await;
    let mut conn = superuser_conn(&db).await;
    for (key, expires) in [("old", "-1 hour"), ("live", "1 hour")] {
        sqlx::query(
            "insert into idempotency_keys (org_id, principal, key, claim_id, method, path,
               request_fingerprint, status, response_body, lease_until, expires_at)
             values ($1, 'user:' || $2, $3, gen_random_uuid(), 'POST', '/x', decode(repeat('ab', 32), 'hex'),
               201, '{}', now(), now() + $4::interval)",
        )
        .bind(org.as_uuid())
        .bind(user.as_uuid().to_string())
        .bind(key)
        .bind(expires)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let _app = spawn_instance_with(&db, &[]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let keys: Vec<String> = sqlx::query_scalar("select key from idempotency_keys order by key")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        if keys == ["live"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still there: {keys:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_readme_curl_script_does_every_journey_with_a_key() {
    let (app, _tube, dodo) = contract_app().await;
    let owner = app.sign_up("curl-script@example.com").await;
    let slug = app.create_org(&owner, "Curl").await;
    let key = create_key(&app, &owner, &slug, "admin").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api-example.sh");
    let run = tokio::process::Command::new("sh")
        .arg(script)
        .arg(format!(
            "https://www.youtube.com/watch?v={}",
            video("curl", 1)
        ))
        .arg("curl-invitee@example.com")
        .env("TLDW", &app.address)
        .env("TLDW_ORG", &slug)
        .env("TLDW_KEY", &key)
        .output()
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for step in [
        "/summaries -> 20",
        "\"status\":\"ready\"",
        "/usage -> 200",
        "/usage/daily?days=7 -> 200",
        "/invitations -> 201",
        "/billing/checkout -> 200",
        "checkout_url",
    ] {
        assert!(out.contains(step), "{step} missing from:\n{out}");
    }
    assert_eq!(dodo.checkouts().len(), 1, "one checkout at Dodo");
    let open: Value = call(
        &app,
        Method::GET,
        &format!("/api/v1/orgs/{slug}/invitations"),
        Auth::Key(&key),
        None,
    )
    .await
    .json();
    assert_eq!(open[0]["email"], "curl-invitee@example.com", "{open}");
}
