//! Notification e-mails: what each one says, and how it leaves the building (SMTP, or `.eml` files when no
//! mail server is configured, so development and tests need no server).

use std::path::Path;
use std::sync::Arc;

use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};

use crate::ids::{AuctionId, NotificationId};

/// What a notification tells; stored as its snake_case name (`won`, `sold`, `outbid`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum NotificationKind {
    /// The recipient placed the winning bid.
    Won,
    /// The recipient's auction sold.
    Sold,
    /// Someone outbid the recipient.
    Outbid,
    /// The recipient's auction ended without a bid.
    Unsold,
    /// A message arrived in one of the recipient's conversations (emailed as a digest if unread).
    Message,
    /// The seller answered the recipient's question (in the feed, not emailed).
    QuestionAnswered,
}

/// A user as an e-mail shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Shown in the greeting and as the display name of the address.
    pub username: String,
    /// The bare address, for example `alice@example.test`.
    pub email: String,
}

/// Everything needed to write one notification, loaded by the job that sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The notification row's id; it makes the Message-ID, so a re-send can be recognised as a duplicate.
    pub id: NotificationId,
    /// What happened.
    pub kind: NotificationKind,
    /// The auction concerned.
    pub auction_id: AuctionId,
    /// The auction's title, as the seller wrote it (untrusted).
    pub auction_title: String,
    /// The final price (Won, Sold) or the current price (Outbid), in KRW.
    pub price: i64,
    /// Who receives the e-mail.
    pub recipient: Contact,
    /// The other party: the seller for Won, the buyer for Sold, the other party of the
    /// conversation for Message (only their name is shown), `None` otherwise.
    pub counterpart: Option<Contact>,
    /// For Message: the conversation's messages the recipient has not read, oldest first.
    pub unread: Vec<UnreadMessage>,
}

/// A message quoted in a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadMessage {
    /// Who wrote it (the platform's own messages say NeighborBid).
    pub sender: String,
    /// What it says, as written (plain text; control characters were refused on input).
    pub body: String,
}

/// A failed send, split by whether trying again later can help: the job retries `Transient` and gives up on
/// `Permanent`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// The server could not be reached, timed out or answered 4xx.
    #[error("transient mail error: {0}")]
    Transient(String),
    /// The message can never be delivered as it is: a bad address, or a 5xx answer.
    #[error("permanent mail error: {0}")]
    Permanent(String),
}

impl From<lettre::transport::smtp::Error> for MailError {
    fn from(err: lettre::transport::smtp::Error) -> Self {
        // 5xx replies, and client-side failures such as "no compatible authentication mechanism", fail the same
        // way on every attempt. Everything else (4xx, refused connections, timeouts, TLS or network hiccups,
        // garbled replies) may well succeed later.
        if err.is_permanent() || err.is_client() {
            Self::Permanent(err.to_string())
        } else {
            Self::Transient(err.to_string())
        }
    }
}

/// Where messages go: an SMTP server in production, a folder of `.eml` files otherwise.
#[derive(Debug, Clone)]
pub enum Mailer {
    /// A pooled SMTP connection.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// One `.eml` file per message, for development and tests.
    Files(MailFolder),
}

/// The folder the `.eml` files go to, written one file at a time per process: a batch's messages
/// written at once each took a blocking thread of their own and queued for the folder in the
/// kernel (under the bids bench, the worker spun on the directory's lock and switched threads).
#[derive(Debug, Clone)]
pub struct MailFolder {
    transport: AsyncFileTransport<Tokio1Executor>,
    writing: Arc<tokio::sync::Mutex<()>>,
}

/// How long one SMTP exchange may take; a sender's lease on a notification outlasts it.
pub const SMTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Mailer {
    /// Builds the SMTP mailer from `mail_url` (`smtp://host:port` without TLS, `smtp://user:pass@host:587?tls=required`
    /// for STARTTLS, `smtps://…` for implicit TLS), or writes files into `mail_dir` (created if missing) without one.
    pub fn from_settings(mail_url: Option<&str>, mail_dir: &Path) -> Result<Self, MailError> {
        match mail_url {
            Some(url) => {
                // A malformed URL is a configuration mistake, not something a retry fixes.
                let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailError::Permanent(format!("invalid mail URL: {e}")))?;
                Ok(Self::Smtp(builder.timeout(Some(SMTP_TIMEOUT)).build()))
            }
            None => {
                std::fs::create_dir_all(mail_dir).map_err(|e| {
                    MailError::Permanent(format!("failed to create mail folder {}: {e}", mail_dir.display()))
                })?;
                Ok(Self::Files(MailFolder { transport: AsyncFileTransport::new(mail_dir), writing: Arc::default() }))
            }
        }
    }

    /// Hands `msg` to the server (or writes it to disk).
    pub async fn send(&self, msg: Message) -> Result<(), MailError> {
        match self {
            Self::Smtp(smtp) => smtp.send(msg).await.map(drop).map_err(MailError::from),
            // Without the envelope feature the file transport only fails on I/O, e.g. a full disk.
            Self::Files(folder) => {
                let _turn = folder.writing.lock().await;
                folder.transport.send(msg).await.map(drop).map_err(|e| MailError::Transient(e.to_string()))
            }
        }
    }
}

/// Builds the e-mail for `n`, sent from `from`. Fails with [`MailError::Permanent`] when the recipient's address
/// is not a valid address, since no retry will change that.
pub fn compose(n: &Notification, from: &Mailbox) -> Result<Message, MailError> {
    let address = n
        .recipient
        .email
        .parse()
        .map_err(|e| MailError::Permanent(format!("invalid recipient address {:?}: {e}", n.recipient.email)))?;
    let to = Mailbox::new(Some(n.recipient.username.clone()), address);
    let (subject, paragraphs) = content(n);
    let text = paragraphs.join("\n\n") + "\n";
    // The HTML part is the same paragraphs, escaped as a whole: none of them contain markup on purpose, so this
    // escapes every user-provided string without having to track which ones they are.
    let html = paragraphs.iter().map(|p| format!("<p>{}</p>", escape_html(p))).collect::<Vec<_>>().join("\n");
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(message_id(n.id)))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| MailError::Permanent(format!("failed to build message: {e}")))
}

/// Deterministic, so a receiver (or a mail log) can tell a re-send of the same notification from a new one.
fn message_id(notification_id: NotificationId) -> String {
    format!("<notification-{notification_id}@neighborbid.local>")
}

/// The subject and the plain-text paragraphs of `n`'s e-mail.
fn content(n: &Notification) -> (String, Vec<String>) {
    // A title is one line of a header; a stray line break must not be able to start a new header,
    // and a bidirectional override must not make the subject read differently from what it says.
    let title: String = n
        .auction_title
        .chars()
        .filter(|c| !crate::validation::is_bidi_control(*c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let price = format_krw(n.price);
    let contact = |role: &str| {
        n.counterpart.as_ref().map(|c| {
            format!("The {role} is {} ({}). Please get in touch to arrange the hand-over.", c.username, c.email)
        })
    };
    let (subject, body) = match n.kind {
        NotificationKind::Won => (
            format!("You won {title}"),
            vec![Some(format!("You won the auction \"{title}\" for {price}.")), contact("seller")],
        ),
        NotificationKind::Sold => (
            format!("Your auction {title} sold"),
            vec![Some(format!("Your auction \"{title}\" sold for {price}.")), contact("buyer")],
        ),
        NotificationKind::Outbid => (
            format!("You were outbid on {title}"),
            vec![Some(format!(
                "You were outbid on \"{title}\"; the current price is {price}. Your held money has been released."
            ))],
        ),
        NotificationKind::Unsold => (
            format!("Your auction {title} ended without a sale"),
            vec![Some(format!("Your auction \"{title}\" ended without a sale."))],
        ),
        NotificationKind::Message => {
            let from = n.counterpart.as_ref().map_or("your neighbour", |c| c.username.as_str());
            let mut body = vec![Some(format!("You have unread messages from {from} about \"{title}\":"))];
            body.extend(n.unread.iter().map(|m| Some(format!("{}: {}", m.sender, m.body))));
            body.push(Some("Reply in NeighborBid; you can turn these emails off in your settings.".to_owned()));
            (format!("Unread messages about {title}"), body)
        }
        NotificationKind::QuestionAnswered => (
            format!("Your question about {title} was answered"),
            vec![Some(format!("The seller of \"{title}\" answered your question."))],
        ),
    };
    let mut paragraphs = vec![format!("Hi {},", n.recipient.username)];
    paragraphs.extend(body.into_iter().flatten());
    paragraphs.push("NeighborBid".to_owned());
    (subject, paragraphs)
}

/// `1250000` → `"1,250,000 KRW"`.
fn format_krw(amount: i64) -> String {
    let digits = amount.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 5);
    if amount < 0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out.push_str(" KRW");
    out
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(name: &str) -> Contact {
        Contact { username: name.to_owned(), email: format!("{name}@example.test") }
    }

    fn notification(kind: NotificationKind) -> Notification {
        let counterpart = match kind {
            NotificationKind::Won => Some(contact("sam_seller")),
            NotificationKind::Sold => Some(contact("bo_buyer")),
            NotificationKind::Message => Some(contact("bo_buyer")),
            _ => None,
        };
        let unread = match kind {
            NotificationKind::Message => vec![
                UnreadMessage { sender: "bo_buyer".to_owned(), body: "Is the inner pot included?".to_owned() },
                UnreadMessage { sender: "bo_buyer".to_owned(), body: "I can pick it up tonight.".to_owned() },
            ],
            _ => Vec::new(),
        };
        Notification {
            id: NotificationId(42),
            kind,
            auction_id: AuctionId(7),
            auction_title: "Brass lamp".to_owned(),
            price: 1_250_000,
            recipient: contact("alice"),
            counterpart,
            unread,
        }
    }

    #[test]
    fn a_digest_quotes_every_unread_message_and_keeps_the_sender_s_address_private() {
        let digest = text_of(&notification(NotificationKind::Message));
        assert!(digest.contains("Brass lamp") && digest.contains("from bo_buyer"), "{digest}");
        assert!(digest.contains("bo_buyer: Is the inner pot included?"), "{digest}");
        assert!(digest.contains("bo_buyer: I can pick it up tonight."), "{digest}");
        assert!(!digest.contains("bo_buyer@example.test"), "{digest}");
    }

    fn from() -> Mailbox {
        "NeighborBid <no-reply@neighborbid.test>".parse().unwrap()
    }

    fn text_of(n: &Notification) -> String {
        let (subject, paragraphs) = content(n);
        format!("{subject}\n{}", paragraphs.join("\n"))
    }

    #[test]
    fn prices_get_thousands_separators() {
        assert_eq!(format_krw(0), "0 KRW");
        assert_eq!(format_krw(999), "999 KRW");
        assert_eq!(format_krw(1_000), "1,000 KRW");
        assert_eq!(format_krw(1_250_000), "1,250,000 KRW");
        assert_eq!(format_krw(-12_345), "-12,345 KRW");
    }

    #[test]
    fn each_kind_names_the_auction_price_and_counterpart() {
        let won = text_of(&notification(NotificationKind::Won));
        assert!(won.contains("Brass lamp") && won.contains("1,250,000 KRW"), "{won}");
        assert!(won.contains("sam_seller") && won.contains("sam_seller@example.test"), "{won}");

        let sold = text_of(&notification(NotificationKind::Sold));
        assert!(sold.contains("Brass lamp") && sold.contains("1,250,000 KRW"), "{sold}");
        assert!(sold.contains("bo_buyer") && sold.contains("bo_buyer@example.test"), "{sold}");

        let outbid = text_of(&notification(NotificationKind::Outbid));
        assert!(outbid.contains("outbid on \"Brass lamp\"") && outbid.contains("1,250,000 KRW"), "{outbid}");
        assert!(outbid.contains("held money has been released"), "{outbid}");

        let unsold = text_of(&notification(NotificationKind::Unsold));
        assert!(unsold.contains("\"Brass lamp\" ended without a sale"), "{unsold}");
        assert!(!unsold.contains("KRW"), "{unsold}");
    }

    #[test]
    fn compose_builds_both_parts_with_a_deterministic_message_id() {
        for kind in [NotificationKind::Won, NotificationKind::Sold, NotificationKind::Outbid, NotificationKind::Unsold]
        {
            let raw = String::from_utf8(compose(&notification(kind), &from()).unwrap().formatted()).unwrap();
            assert!(raw.contains("Message-ID: <notification-42@neighborbid.local>"), "{raw}");
            assert!(raw.contains("multipart/alternative") && raw.contains("text/html"), "{raw}");
            assert!(raw.contains("To: alice <alice@example.test>"), "{raw}");
        }
        let first = compose(&notification(NotificationKind::Won), &from()).unwrap();
        let second = compose(&notification(NotificationKind::Won), &from()).unwrap();
        assert_eq!(first.headers().get_raw("Message-ID"), second.headers().get_raw("Message-ID"));
    }

    #[test]
    fn html_escapes_user_strings() {
        let mut n = notification(NotificationKind::Won);
        n.auction_title = "<script>alert(1)</script>".to_owned();
        n.counterpart = Some(Contact { username: "x\"><b>".to_owned(), email: "a&b@example.test".to_owned() });
        let raw = String::from_utf8(compose(&n, &from()).unwrap().formatted()).unwrap();
        let html = &raw[raw.find("text/html").unwrap()..];
        assert!(!html.contains("<script>") && !html.contains("<b>"), "{html}");
        assert!(html.contains("&lt;script&gt;") && html.contains("&amp;"), "{html}");
    }

    #[test]
    fn a_line_break_in_the_title_cannot_add_a_header() {
        let mut n = notification(NotificationKind::Unsold);
        n.auction_title = "Lamp\r\nBcc: victim@example.test".to_owned();
        let raw = String::from_utf8(compose(&n, &from()).unwrap().formatted()).unwrap();
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
    }

    #[test]
    fn bidirectional_overrides_are_stripped_from_the_subject() {
        let mut n = notification(NotificationKind::Won);
        n.auction_title = "Lamp \u{202E}gpj.exe".to_owned();
        let (subject, paragraphs) = content(&n);
        assert_eq!(subject, "You won Lamp gpj.exe");
        assert!(!paragraphs.concat().contains('\u{202E}'));
    }

    #[test]
    fn an_invalid_recipient_address_is_permanent() {
        let mut n = notification(NotificationKind::Outbid);
        n.recipient.email = "not an email".to_owned();
        assert!(matches!(compose(&n, &from()), Err(MailError::Permanent(_))));
    }

    #[test]
    fn a_malformed_mail_url_is_permanent() {
        let err = Mailer::from_settings(Some("not a url"), Path::new("unused")).unwrap_err();
        assert!(matches!(err, MailError::Permanent(_)), "{err:?}");
    }

    #[tokio::test]
    async fn the_file_mailer_writes_an_eml_file() {
        let dir = std::env::temp_dir().join(format!("neighborbid-mail-test-{}", uuid::Uuid::new_v4()));
        let mailer = Mailer::from_settings(None, &dir).unwrap();
        mailer.send(compose(&notification(NotificationKind::Won), &from()).unwrap()).await.unwrap();

        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
        let eml = std::fs::read_to_string(&files[0]).unwrap();
        assert!(eml.contains("Subject: You won Brass lamp"), "{eml}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
