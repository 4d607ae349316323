//! Contract § Account lifecycle: mail without SMTP (`.eml` files under `MAIL_DIR`).
//!
//! The mail outbox without an SMTP server: development's `.eml` files.

use std::time::{Duration, Instant};

use crate::helpers::*;

#[tokio::test]
async fn without_smtp_url_mail_is_written_to_mail_dir() {
    let app = spawn_app().await;
    let email = app.registered_user().await;
    let started = Instant::now();
    let file = loop {
        let found = std::fs::read_dir(&app.mail_dir.0)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "eml"));
        if let Some(file) = found {
            break file;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "an .eml file in MAIL_DIR"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let mail = Mail {
        raw: std::fs::read_to_string(&file).unwrap(),
    };
    assert!(mail.is_to(&email), "{}", mail.raw);
    let token = mail.token("verify");
    assert_eq!(
        app.verify_email(&token).await.status(),
        reqwest::StatusCode::NO_CONTENT
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o077,
        0,
        "only its owner reads a file holding a link"
    );
}
