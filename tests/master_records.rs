//! Adapter records over HTTP (`/registry/records`) against a real `pando
//! master`: what an out-of-process adapter such as the libmesos JNI library
//! sees when it fetches, stores with compare-and-swap, expunges and lists.

mod support;

use bytes::Bytes;
use serde_json::json;
use support::*;

const BASE: &str = "/registry/records";

async fn call(
    master: &MasterProcess,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    request(
        master.port,
        method,
        &format!("{BASE}{path}"),
        headers,
        Bytes::copy_from_slice(body),
    )
    .await
    .expect("a request to the master")
}

#[tokio::test]
async fn records_are_stored_fetched_swapped_listed_and_expunged() {
    let master =
        MasterProcess::start(&["--max_record_bytes=64", "--max_namespace_bytes=200"]).await;

    // Absent: 404.
    let reply = call(&master, "GET", "/marathon/group:root", &[], b"").await;
    assert_eq!(reply.status, 404, "{}", reply.text());

    // Create-only: 201 with the first version.
    let created = call(
        &master,
        "PUT",
        "/marathon/group:root",
        &[("If-None-Match", "*")],
        b"\x00binary\xff",
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let v1 = created.header("etag").expect("an ETag");
    assert_eq!(v1, "\"1\"");

    // Fetched back byte for byte, with its version.
    let fetched = call(&master, "GET", "/marathon/group:root", &[], b"").await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body.as_ref(), b"\x00binary\xff");
    assert_eq!(fetched.header("etag").as_deref(), Some("\"1\""));

    // Create-only again: 412, the current version in ETag.
    let again = call(
        &master,
        "PUT",
        "/marathon/group:root",
        &[("If-None-Match", "*")],
        b"other",
    )
    .await;
    assert_eq!(again.status, 412, "{}", again.text());
    assert_eq!(again.header("etag").as_deref(), Some("\"1\""));

    // Compare-and-swap on the current version: 200 and version 2.
    let swapped = call(
        &master,
        "PUT",
        "/marathon/group:root",
        &[("If-Match", &v1)],
        b"v2",
    )
    .await;
    assert_eq!(swapped.status, 200, "{}", swapped.text());
    assert_eq!(swapped.header("etag").as_deref(), Some("\"2\""));
    assert_eq!(swapped.json(), json!({"version": 2}));

    // The same swap again is stale: 412 naming version 2, and the value
    // stays.
    let stale = call(
        &master,
        "PUT",
        "/marathon/group:root",
        &[("If-Match", &v1)],
        b"lost",
    )
    .await;
    assert_eq!(stale.status, 412, "{}", stale.text());
    assert_eq!(stale.header("etag").as_deref(), Some("\"2\""));
    assert!(stale.text().contains("version 2"), "{}", stale.text());
    let fetched = call(&master, "GET", "/marathon/group:root", &[], b"").await;
    assert_eq!(fetched.body.as_ref(), b"v2");

    // A value over --max_record_bytes: 413 naming the flag.
    let big = call(&master, "PUT", "/marathon/big", &[], &[b'x'; 65]).await;
    assert_eq!(big.status, 413, "{}", big.text());
    assert!(big.text().contains("--max_record_bytes"), "{}", big.text());

    // Keys with slashes; then the namespace fills up: 413 naming its flag.
    for n in 0..3 {
        let reply = call(
            &master,
            "PUT",
            &format!("/marathon/app/{n}"),
            &[],
            &[b'a'; 50],
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.text());
    }
    let full = call(&master, "PUT", "/marathon/app/3", &[], &[b'a'; 50]).await;
    assert_eq!(full.status, 413, "{}", full.text());
    assert!(
        full.text().contains("--max_namespace_bytes"),
        "{}",
        full.text()
    );
    // Another namespace has room of its own.
    let other = call(&master, "PUT", "/chronos/app/3", &[], &[b'a'; 50]).await;
    assert_eq!(other.status, 201, "{}", other.text());

    // Listing by prefix.
    let listed = call(&master, "GET", "/marathon?prefix=app/", &[], b"").await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(
        listed.json(),
        json!([
            {"key": "app/0", "version": 3},
            {"key": "app/1", "version": 4},
            {"key": "app/2", "version": 5},
        ])
    );
    let all = call(&master, "GET", "/marathon", &[], b"").await;
    assert_eq!(
        all.json().as_array().map(Vec::len),
        Some(4),
        "{}",
        all.text()
    );

    // Expunge: a stale version is refused, the current one deletes.
    let refused = call(
        &master,
        "DELETE",
        "/marathon/group:root",
        &[("If-Match", "\"1\"")],
        b"",
    )
    .await;
    assert_eq!(refused.status, 412, "{}", refused.text());
    let deleted = call(
        &master,
        "DELETE",
        "/marathon/group:root",
        &[("If-Match", "\"2\"")],
        b"",
    )
    .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    let gone = call(&master, "GET", "/marathon/group:root", &[], b"").await;
    assert_eq!(gone.status, 404);
    let missing = call(&master, "DELETE", "/marathon/group:root", &[], b"").await;
    assert_eq!(missing.status, 404, "{}", missing.text());

    // Bad names and headers: 400 with the reason.
    let control = call(&master, "PUT", "/marathon/bad%0Akey", &[], b"x").await;
    assert_eq!(control.status, 400, "{}", control.text());
    assert!(control.text().contains("control"), "{}", control.text());
    let weak = call(&master, "PUT", "/marathon/k", &[("If-Match", "3")], b"x").await;
    assert_eq!(weak.status, 400, "{}", weak.text());

    // The registry holds the records; /registrar(1)/registry, which needs
    // no credentials, names them but does not show their values.
    let registry = master
        .get("/registrar(1)/registry")
        .await
        .expect("registry");
    let r = registry.json();
    assert_eq!(
        r["records"][0],
        json!({"namespace": "chronos", "key": "app/3", "version": 6, "size": 50}),
        "{r}"
    );
    assert_eq!(r["records"].as_array().map(Vec::len), Some(4), "{r}");
    assert!(!registry.text().contains("aaaaaaaaaa"), "{r}");
    // And the metrics count them: three 55-byte records and one in chronos.
    let metrics = master
        .get("/metrics/snapshot")
        .await
        .expect("metrics")
        .json();
    assert_eq!(metrics["registrar/records"], json!(4.0));
    assert_eq!(metrics["registrar/records_bytes"], json!(220.0));
}

#[tokio::test]
async fn records_need_credentials_when_authentication_is_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let credentials = dir.path().join("credentials.json");
    std::fs::write(
        &credentials,
        json!({"credentials": [{"principal": "adapter", "secret": "s3cret"}]}).to_string(),
    )
    .expect("write credentials");
    let flag = format!("--credentials={}", credentials.display());
    let master = MasterProcess::start(&[
        "--authenticate_http_readonly",
        "--authenticate_http_readwrite",
        &flag,
    ])
    .await;
    // "adapter:s3cret" and "adapter:wrong".
    let good = [("Authorization", "Basic YWRhcHRlcjpzM2NyZXQ=")];
    let wrong = [("Authorization", "Basic YWRhcHRlcjp3cm9uZw==")];

    let anonymous = call(&master, "PUT", "/yarn/counter", &[], b"1").await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    assert_eq!(
        anonymous.header("www-authenticate").as_deref(),
        Some("Basic realm=\"mesos-master-readwrite\"")
    );
    let bad = call(&master, "PUT", "/yarn/counter", &wrong, b"1").await;
    assert_eq!(bad.status, 401, "{}", bad.text());
    // Nothing was written by the refused calls.
    let read = call(&master, "GET", "/yarn/counter", &good, b"").await;
    assert_eq!(read.status, 404, "{}", read.text());

    let stored = call(&master, "PUT", "/yarn/counter", &good, b"1").await;
    assert_eq!(stored.status, 201, "{}", stored.text());
    let read = call(&master, "GET", "/yarn/counter", &[], b"").await;
    assert_eq!(read.status, 401, "{}", read.text());
    assert_eq!(
        read.header("www-authenticate").as_deref(),
        Some("Basic realm=\"mesos-master-readonly\"")
    );
    let listed = call(&master, "GET", "/yarn", &[], b"").await;
    assert_eq!(listed.status, 401, "{}", listed.text());
    let read = call(&master, "GET", "/yarn/counter", &good, b"").await;
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.body.as_ref(), b"1");
}
