//! Emails go out in batches: the deliveries waiting at one moment share one lease and one mark.
//! Each email still goes out once, and one that cannot be sent holds back no other.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use neighborbid_shared::email::{Mailer, NotificationKind};
use neighborbid_shared::ids::{AuctionId, NotificationId};
use neighborbid_shared::jobs::EmailBatcher;
use neighborbid_shared::notifications::{self, DeliveryError, DeliveryOutcome, NewNotification};
use neighborbid_testkit::smtp::spawn_smtp_sink_with;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{SENDER, TestApp};

/// `count` outbid notifications, one per new bidder, about a new auction; their emails are due now.
async fn outbid_notifications(app: &TestApp, count: usize) -> Vec<NotificationId> {
    let seller = app.user_token("seller").await;
    let auction_id = AuctionId(app.create_auction(&seller, json!({})).await["id"].as_i64().unwrap());
    let mut conn = app.pool.acquire().await.unwrap();
    let mut ids = Vec::new();
    for (k, (bidder, _)) in app.quick_users("bidder", count).await.into_iter().enumerate() {
        let outbid = NewNotification {
            subject_id: Some(k as i64),
            ..NewNotification::about_auction(NotificationKind::Outbid, auction_id, bidder, json!({}))
        };
        notifications::record(&mut conn, &outbid).await.unwrap().expect("recorded");
        let id: i64 = sqlx::query_scalar("SELECT max(id) FROM notifications").fetch_one(&mut *conn).await.unwrap();
        ids.push(NotificationId(id));
    }
    ids
}

#[sqlx::test(migrator = "neighborbid_shared::db::MIGRATOR")]
async fn emails_delivered_together_go_out_once_each_and_a_bad_address_holds_back_no_other(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ids = outbid_notifications(&app, 6).await;
    let bad = ids[2];
    sqlx::query(
        "UPDATE users SET email = 'not an address' WHERE id = (SELECT recipient_id FROM notifications WHERE id = $1)",
    )
    .bind(bad)
    .execute(&app.pool)
    .await
    .unwrap();
    let (port, inbox) = spawn_smtp_sink_with(Arc::new(AtomicBool::new(false))).await.unwrap();
    let mailer = Mailer::from_settings(Some(&format!("smtp://127.0.0.1:{port}")), &std::env::temp_dir()).unwrap();
    let emails = EmailBatcher::start(app.pool.clone(), Arc::new(mailer), SENDER.parse().unwrap());

    // Every email is delivered twice at once (a redelivery arriving with the first).
    let deliveries = ids.iter().chain(&ids).map(|id| emails.send(*id));
    let outcomes = futures::future::join_all(deliveries).await;
    for (k, id) in ids.iter().enumerate() {
        let mine = [&outcomes[k], &outcomes[k + ids.len()]];
        let sent = mine.iter().filter(|o| matches!(o, Ok(DeliveryOutcome::Sent))).count();
        if *id == bad {
            assert_eq!(sent, 0, "{mine:?}");
            assert!(mine.iter().any(|o| matches!(o, Err(DeliveryError::Permanent(_)))), "{mine:?}");
        } else {
            assert_eq!(sent, 1, "notification {id}: {mine:?}");
            assert!(mine.iter().all(|o| o.is_ok()), "{mine:?}");
        }
    }
    let recipients: Vec<String> = inbox.lock().unwrap().iter().flat_map(|m| m.to.clone()).collect();
    assert_eq!(recipients.len(), ids.len() - 1, "one email each, none for the bad address: {recipients:?}");
    assert_eq!(recipients.iter().collect::<BTreeSet<_>>().len(), recipients.len(), "{recipients:?}");
    let unsent: Vec<(i64, Option<String>)> =
        sqlx::query_as("SELECT id, last_error FROM notifications WHERE sent_at IS NULL")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(unsent.len(), 1, "{unsent:?}");
    assert_eq!(unsent[0].0, bad.0);
    assert!(unsent[0].1.as_deref().is_some_and(|e| e.contains("address")), "{unsent:?}");

    // Delivered again later: nothing is sent twice.
    let again = futures::future::join_all(ids.iter().filter(|id| **id != bad).map(|id| emails.send(*id))).await;
    assert!(again.iter().all(|o| matches!(o, Ok(DeliveryOutcome::NotDue))), "{again:?}");
    assert_eq!(inbox.lock().unwrap().len(), ids.len() - 1);
}
