//! `/dashboard` is served from the binary with nothing from elsewhere, and `/`
//! links it and `/metrics`. (The page's behaviour is tested in headless Chromium:
//! tests/browser/.)

use crate::common::server;

#[tokio::test]
async fn the_page_and_its_assets_are_embedded_and_linked_from_root() {
    let s = server().start();
    let r = s.http.get(s.url("/dashboard")).send().await.expect("GET");
    assert_eq!(r.status().as_u16(), 200);
    let h = r.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "external reference"
    );
    for (path, mime) in [
        ("/dashboard/dashboard.js", "text/javascript"),
        ("/dashboard/dashboard.css", "text/css"),
    ] {
        assert!(html.contains(path), "{path} not referenced");
        let r = s.http.get(s.url(path)).send().await.expect("GET asset");
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(mime));
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("https://") && !body.contains("//cdn"),
            "{path}"
        );
    }
    let r = s.post("/dashboard", &serde_json::json!({})).await;
    assert_eq!(r.status, 405);
    let root = s.get("/").await.body;
    assert_eq!(root["endpoints"]["metrics"], "/metrics");
    assert_eq!(root["endpoints"]["dashboard"], "/dashboard");
    assert_eq!(root["endpoints"]["health"], "/health");
}
