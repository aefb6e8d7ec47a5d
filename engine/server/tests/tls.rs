//! TLS in the server itself (`serve --tls-cert --tls-key`): the API over https with the
//! installation's certificate; a key others can read is refused; a plain HTTP request or a
//! client that opens a connection and says nothing holds up no one.

use std::sync::Arc;

use studyflow_calendar::Calendar;
use studyflow_identity::{Accounts, Policy};
use studyflow_runtime::{Engine, ManualClock, Options, PlaceholderDataPlane};
use studyflow_server::auth::Limiter;
use studyflow_server::{App, tls};
use studyflow_store::Store;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_over_tls_with_the_installations_certificate() {
    let dir = std::env::temp_dir().join(format!("sf-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key.pem");
    std::fs::copy(fixture("key.pem"), &key).unwrap();
    let cert = fixture("cert.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = tls::config(&cert, &key).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // Not a certificate: named, with the file.
    let e = tls::config(&key, &key).unwrap_err();
    assert!(e.to_string().contains("key.pem"), "{e}");
    let config = tls::config(&cert, &key).unwrap();

    let store = Store::open(dir.join("db").to_str().unwrap()).await.unwrap();
    let clock = Arc::new(ManualClock::at_date(jiff::civil::date(2026, 8, 3)));
    let app = Arc::new(App {
        engine: Engine::new(
            store.clone(),
            clock,
            Arc::new(Calendar::latvia()),
            Arc::new(PlaceholderDataPlane { cohort_size: 0 }),
            Options::default(),
        ),
        accounts: Accounts::new(store.clone(), Policy::default()),
        limiter: Limiter::new(store, 30, 600_000_000),
        master: None,
        trusted_proxies: Vec::new(),
        oidc: None,
        work: None,
        witnesses: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(studyflow_server::serve_tls(app, listener, config, async {
        let _ = stopped.await;
    }));

    // A client that connects and says nothing, and one that speaks plain HTTP.
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}/api/v1/session"))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.map_or(true, |r| !r.status().is_success()));

    let trusted = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(fixture("ca.pem")).unwrap()).unwrap(),
        )
        .resolve("localhost", addr)
        .build()
        .unwrap();
    let r = trusted
        .get(format!("https://localhost:{}/api/v1/session", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    assert!(r.headers().contains_key("content-security-policy"));
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    // A client that does not trust the certificate gets nowhere.
    let untrusting = reqwest::Client::builder()
        .resolve("localhost", addr)
        .build()
        .unwrap();
    assert!(
        untrusting
            .get(format!("https://localhost:{}/api/v1/session", addr.port()))
            .send()
            .await
            .is_err()
    );
    let _ = stop.send(());
    let _ = std::fs::remove_dir_all(&dir);
}
