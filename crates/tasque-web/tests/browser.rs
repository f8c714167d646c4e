//! A real browser: headless Chromium driven over WebDriver (chromedriver) through the
//! dashboard: the overview, a filtered job list, a failed job retried, a queue paused and a
//! bulk action on a filter. Each page is saved as a PNG in `TASQUE_SCREENSHOT_DIR` (default:
//! `screens/` under cargo's test temp directory).
//!
//! `scripts/browser` installs Debian's `chromium` and `chromium-driver` (`scripts/test` runs
//! it). Without them the test is skipped loudly, and under `CI=true` it fails.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use tasque_durable::JobState;
use tasque_web::{Access, Dashboard, Server};

const WAIT: Duration = Duration::from_secs(30);

/// chromedriver, killed when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_driver() -> Option<(Driver, u16)> {
    let binary = ["chromedriver", "/usr/bin/chromedriver"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    let Some(binary) = binary else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("chromedriver is missing under CI: scripts/browser installs it");
        }
        eprintln!("\n!!!!!!!! SKIPPED: chromedriver not found; run scripts/browser !!!!!!!!\n");
        return None;
    };
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver(child);
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver did not listen within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some((driver, port))
}

async fn browser(port: u16) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session")
}

fn screens() -> PathBuf {
    let dir = std::env::var_os("TASQUE_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screens"));
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(screens().join(format!("{name}.png")), png).expect("write screenshot");
}

async fn wait_css(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

/// Finds the element matching `css` and clicks it, finding it again when the page replaced it
/// between the two steps (a live-refreshing list, or a navigation still landing), until `WAIT`.
async fn click_css(client: &Client, css: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let attempt = match client.find(Locator::Css(css)).await {
            Ok(element) => element.click().await.map(|_| ()),
            Err(e) => Err(e),
        };
        match attempt {
            Ok(()) => return,
            Err(e) if std::time::Instant::now() >= deadline => panic!("click {css}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_works_the_dashboard_in_a_real_browser() {
    let Some((_driver, port)) = start_driver().await else {
        return;
    };
    let engine = support::sqlite().await.unwrap();
    let store = engine.store.clone();
    let fx = support::fixture::build(&*store).await;

    let access = Access::open();
    let server = Server::bind("127.0.0.1:0".parse::<SocketAddr>().unwrap(), &access)
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    let router = Dashboard::new(store.clone(), access)
        .cache_ttl(Duration::ZERO)
        .router();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(router, async {
        let _ = stopped.await;
    }));

    let client = browser(port).await;
    // Overview.
    client.goto(&format!("{base}/")).await.unwrap();
    wait_css(&client, "svg.chart").await;
    let totals = client
        .find(Locator::Css(".count[data-state=failed]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(totals, "1");
    shot(&client, "overview").await;

    // Filter the job list to failed jobs with the form.
    client.goto(&format!("{base}/jobs")).await.unwrap();
    let select = wait_css(&client, "select[name=state]").await;
    select.select_by_value("failed").await.unwrap();
    client
        .find(Locator::Css("form#filters button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(&client, &format!("tr[data-job=\"{}\"]", fx.failed)).await;
    assert!(client
        .current_url()
        .await
        .unwrap()
        .as_str()
        .contains("state=failed"));
    assert_eq!(
        client
            .find_all(Locator::Css("table.jobs tbody tr[data-job]"))
            .await
            .unwrap()
            .len(),
        1
    );
    shot(&client, "jobs-filtered").await;

    // Open the failed job and retry it.
    click_css(&client, &format!("tr[data-job=\"{}\"] a", fx.failed)).await;
    wait_css(&client, "h1 .pill.failed").await;
    wait_css(&client, "#why").await;
    shot(&client, "job-failed").await;
    click_css(&client, "#job-actions button.retry").await;
    wait_css(&client, "h1 .pill.available").await;
    assert_eq!(
        store.get_job(fx.failed).await.unwrap().state,
        JobState::Available
    );
    shot(&client, "job-retried").await;

    // A waiting job says why it does not run.
    client
        .goto(&format!("{base}/jobs/{}", fx.waiting))
        .await
        .unwrap();
    wait_css(&client, "li[data-reason=waiting_for_event]").await;
    shot(&client, "job-why").await;

    // Pause a queue.
    client.goto(&format!("{base}/queues")).await.unwrap();
    click_css(&client, "tr[data-queue=mail] button.pause").await;
    wait_css(&client, "tr[data-queue=mail] .pill.paused").await;
    assert!(store
        .list_queues()
        .await
        .unwrap()
        .iter()
        .any(|q| q.name == "mail" && q.paused));
    shot(&client, "queues-paused").await;

    // Cancel everything matching a filter, after seeing the count.
    client
        .goto(&format!("{base}/jobs?queue=mail"))
        .await
        .unwrap();
    click_css(&client, "a.button[href*=\"action=cancel\"]").await;
    let count = wait_css(&client, "#bulk-count").await;
    assert_eq!(
        count.attr("data-count").await.unwrap().as_deref(),
        Some("3")
    );
    shot(&client, "bulk-confirm").await;
    click_css(&client, "#confirm").await;
    let notice = wait_css(&client, ".notice").await.text().await.unwrap();
    assert!(notice.contains("3 jobs done"), "{notice}");
    for id in &fx.mail {
        assert_eq!(store.get_job(*id).await.unwrap().state, JobState::Cancelled);
    }
    shot(&client, "bulk-done").await;

    // The workers page lists a live worker and the queues it serves.
    let beat = tasque_durable::registry::WorkerBeat {
        id: "browser-worker".to_string(),
        host: "test-host".to_string(),
        pid: 7,
        queues: vec!["default".to_string(), "mail".to_string()],
        ttl: Duration::from_secs(3600),
    };
    store
        .registry()
        .expect("SQLite keeps a worker registry")
        .worker_beat(&beat)
        .await
        .unwrap();
    client.goto(&format!("{base}/workers")).await.unwrap();
    let row = wait_css(&client, "tr[data-worker=browser-worker]").await;
    let text = row.text().await.unwrap();
    assert!(text.contains("alive") && text.contains("mail"), "{text}");
    shot(&client, "workers").await;

    client.close().await.unwrap();
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}
