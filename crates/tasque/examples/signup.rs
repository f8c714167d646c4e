//! A web-style sign-up that enqueues its welcome e-mail in the same transaction as the user
//! row, and its tests: once with the test helpers (`tasque::testing`), once without them, for
//! comparison.
//!
//! Run with `cargo run -p tasque --example signup --features testing`; test with
//! `cargo test -p tasque --example signup --features testing`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tasque::sqlite::SqliteStore;
use tasque::{Client, ClientError, Job, JobContext, JobOptions};

/// The welcome e-mail of a new user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WelcomeEmail {
    /// The user.
    pub user_id: i64,
    /// Where to send it.
    pub email: String,
}

impl Job for WelcomeEmail {
    const KIND: &'static str = "welcome_email";
    type Output = String;

    fn options(&self) -> JobOptions {
        JobOptions::new().queue("mail").max_attempts(5)
    }
}

/// A reminder three days later, for users who have not confirmed their address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfirmReminder {
    /// The user.
    pub user_id: i64,
}

impl Job for ConfirmReminder {
    const KIND: &'static str = "confirm_reminder";
    type Output = ();

    fn options(&self) -> JobOptions {
        JobOptions::new()
            .queue("mail")
            .delay(Duration::from_secs(3 * 86_400))
    }
}

/// What the handler "sends" (a real one would call a mail service).
pub async fn send_welcome(email: WelcomeEmail, _ctx: JobContext) -> Result<String, String> {
    if !email.email.contains('@') {
        return Err(format!("invalid address {:?}", email.email));
    }
    Ok(format!("welcome sent to {}", email.email))
}

/// The reminder's handler.
pub async fn send_reminder(_reminder: ConfirmReminder, _ctx: JobContext) -> Result<(), String> {
    Ok(())
}

/// Why a sign-up failed.
#[derive(Debug)]
pub enum SignUpError {
    /// The database failed.
    Database(sqlx::Error),
    /// The job could not be enqueued.
    Enqueue(ClientError),
}

impl From<sqlx::Error> for SignUpError {
    fn from(e: sqlx::Error) -> Self {
        SignUpError::Database(e)
    }
}

impl From<ClientError> for SignUpError {
    fn from(e: ClientError) -> Self {
        SignUpError::Enqueue(e)
    }
}

/// The "web handler": creates the user and enqueues their e-mails in one transaction, so the
/// jobs exist if and only if the user does.
pub async fn sign_up(client: &Client<SqliteStore>, email: &str) -> Result<i64, SignUpError> {
    let mut tx = client.store().pool().begin().await?;
    let user_id: i64 = sqlx::query_scalar("INSERT INTO users (email) VALUES (?1) RETURNING id")
        .bind(email)
        .fetch_one(&mut *tx)
        .await?;
    client
        .enqueue_in_tx(
            &mut tx,
            WelcomeEmail {
                user_id,
                email: email.to_string(),
            },
        )
        .await?;
    client
        .enqueue_in_tx(&mut tx, ConfirmReminder { user_id })
        .await?;
    tx.commit().await?;
    Ok(user_id)
}

/// The application's table.
pub async fn create_schema(store: &SqliteStore) -> Result<(), sqlx::Error> {
    sqlx::query("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)")
        .execute(store.pool())
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use tasque::durable::Store;

    let store = SqliteStore::memory().await?;
    store.migrate().await?;
    create_schema(&store).await?;
    let client = Client::from_store(store.clone());
    let user = sign_up(&client, "ada@example.com")
        .await
        .map_err(|e| format!("{e:?}"))?;
    let handlers = tasque::Handlers::new();
    handlers.register(send_welcome);
    handlers.register(send_reminder);
    let worker = tasque::Worker::builder(std::sync::Arc::new(store))
        .handlers(handlers)
        .queues(["mail"])
        .build()?
        .start()?;
    let pending = tasque::durable::JobFilter::all().tasks(["welcome_email"]);
    let page = client
        .store()
        .scan(pending, tasque::durable::PageRequest::first(1))
        .await?;
    let job = page.jobs[0].id;
    let sent = client
        .wait::<WelcomeEmail>(job, Duration::from_secs(30))
        .await?;
    println!("user {user}: {sent}");
    worker.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

#[cfg(test)]
mod with_helpers {
    use std::time::Duration;

    use serde_json::json;
    use tasque::sqlite::{SqliteConfig, SqliteStore};
    use tasque::testing::{DrainOptions, Expect, Mode, Performed, TestEnv};
    use tasque::{assert_enqueued, refute_enqueued, Client};

    use super::*;

    async fn app() -> (TestEnv, Client<SqliteStore>) {
        let store = SqliteStore::connect(SqliteConfig::memory().with_virtual_clock())
            .await
            .unwrap();
        let env = TestEnv::from_sqlite(store.clone(), Mode::Manual)
            .await
            .unwrap();
        create_schema(&store).await.unwrap();
        env.handlers().register(send_welcome);
        env.handlers().register(send_reminder);
        (env, Client::from_store(store))
    }

    #[tokio::test]
    async fn sign_up_enqueues_the_welcome_and_the_reminder_and_they_run() {
        let (env, client) = app().await;
        let user = sign_up(&client, "ada@example.com").await.unwrap();
        assert_enqueued!(
            env,
            Expect::job::<WelcomeEmail>()
                .queue("mail")
                .args(json!({ "user_id": user }))
        );
        assert_enqueued!(
            env,
            Expect::job::<ConfirmReminder>().scheduled_in(Duration::from_secs(3 * 86_400))
        );
        let report = env
            .drain_with("mail", DrainOptions::new().with_scheduled(true))
            .await
            .unwrap();
        assert_eq!((report.completed, report.failed), (2, 0));
        refute_enqueued!(env, Expect::any());
    }

    #[tokio::test]
    async fn only_the_sign_up_enqueues_in_its_scope() {
        let (env, client) = app().await;
        sign_up(&client, "first@example.com").await.unwrap();
        let (_, scope) = env
            .scoped(sign_up(&client, "second@example.com"))
            .await
            .unwrap();
        let welcomes = scope.all_enqueued::<WelcomeEmail>().await.unwrap();
        assert_eq!(welcomes.len(), 1);
        assert_eq!(welcomes[0].email, "second@example.com");
    }

    #[tokio::test]
    async fn the_welcome_handler_refuses_a_bad_address() {
        let (env, _) = app().await;
        let done = env
            .perform(
                WelcomeEmail {
                    user_id: 1,
                    email: "nobody".into(),
                },
                send_welcome,
            )
            .await
            .unwrap();
        assert!(
            matches!(done.outcome, Performed::Retrying(_)),
            "{:?}",
            done.outcome
        );
        assert_eq!((done.job.errors.len(), done.job.attempt), (1, 2));
    }

    #[tokio::test]
    async fn inline_mode_sends_at_once() {
        let env = TestEnv::inline().await.unwrap();
        env.handlers().register(send_welcome);
        let job = env
            .enqueue(WelcomeEmail {
                user_id: 1,
                email: "ada@example.com".into(),
            })
            .await
            .unwrap();
        let info = env.job(job.job_id).await.unwrap();
        assert_eq!(info.result, Some(json!("welcome sent to ada@example.com")));
    }
}

#[cfg(test)]
mod without_helpers {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;
    use tasque::durable::{JobFilter, JobState, PageRequest, Store};
    use tasque::sqlite::SqliteStore;
    use tasque::{Client, Handlers, Worker};

    use super::*;

    // The same test as `with_helpers::sign_up_enqueues_the_welcome_and_the_reminder_and_they_run`,
    // written against the plain API. The three-day reminder cannot be run: nothing moves the
    // database clock, so the test can only check its run time and leave it.
    #[tokio::test]
    async fn sign_up_enqueues_the_welcome_and_the_reminder_and_they_run() {
        let store = SqliteStore::memory().await.unwrap();
        store.migrate().await.unwrap();
        create_schema(&store).await.unwrap();
        let client = Client::from_store(store.clone());
        let user = sign_up(&client, "ada@example.com").await.unwrap();
        let pending = JobFilter::all().states([JobState::Available, JobState::Scheduled]);
        let jobs = store
            .scan(pending, PageRequest::first(100))
            .await
            .unwrap()
            .jobs;
        let welcome = jobs
            .iter()
            .find(|j| {
                j.task == "welcome_email"
                    && j.queue == "mail"
                    && j.params.get("user_id") == Some(&json!(user))
            })
            .unwrap_or_else(|| panic!("no welcome e-mail among {jobs:#?}"));
        let reminder = jobs
            .iter()
            .find(|j| j.task == "confirm_reminder")
            .unwrap_or_else(|| panic!("no reminder among {jobs:#?}"));
        let now = store.now().await.unwrap();
        let delay = (reminder.run_at - now).num_seconds();
        assert!((3 * 86_400 - 5..=3 * 86_400).contains(&delay), "{delay}");
        let handlers = Handlers::new();
        handlers.register(send_welcome);
        handlers.register(send_reminder);
        let worker = Worker::builder(Arc::new(store.clone()))
            .handlers(handlers)
            .queues(["mail"])
            .poll_interval(Duration::from_millis(20))
            .build()
            .unwrap()
            .start()
            .unwrap();
        let sent = client
            .wait::<WelcomeEmail>(welcome.id, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(sent, "welcome sent to ada@example.com");
        assert!(
            worker
                .wait_until_empty(false, Duration::from_secs(30))
                .await
        );
        worker.shutdown(Duration::from_secs(5)).await;
        let left = store.get_job(reminder.id).await.unwrap();
        assert_eq!(left.state, JobState::Scheduled);
    }
}
