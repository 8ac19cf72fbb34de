//! Validating a new auction: every rule names the field it concerns.

use chrono::{DateTime, Duration, Utc};

use super::rules::min_next_bid;
use super::{Condition, ShippingPayer, Status};
use crate::ids::{CategoryId, RegionId};
use crate::money::{Krw, MAX_AMOUNT};
use crate::validation::{ValidationError, is_invisible, refuse_control_chars};

/// How far in the past `starts_at` may be (client clocks drift).
const START_SKEW: Duration = Duration::minutes(5);
/// Shortest auction.
pub const MIN_DURATION: Duration = Duration::minutes(1);
/// Longest auction.
pub const MAX_DURATION: Duration = Duration::days(30);
/// How far ahead an auction may be scheduled.
pub const MAX_SCHEDULE_AHEAD: Duration = Duration::days(30);
/// Default soft-close window.
pub const DEFAULT_SOFT_CLOSE_SECONDS: i32 = 120;

/// The title rule as the ECMA-262 pattern the OpenAPI document states (with `minLength` 1 and
/// `maxLength` 100): no control characters, and at least one character that is neither whitespace
/// nor invisible ([`is_invisible`]).
pub const TITLE_PATTERN: &str = "^[^\\x00-\\x1F\\x7F-\\x9F]*[^\\x00-\\x20\\x7F-\\xA0\\u00AD\\u061C\\u1680\\u180E\\u2000-\\u200F\\u2028-\\u202F\\u205F-\\u2064\\u2066-\\u2069\\u3000\\uFEFF][^\\x00-\\x1F\\x7F-\\x9F]*$";

/// What a seller asks for.
#[derive(Debug, Clone)]
pub struct NewAuctionRequest {
    /// 1–100 characters.
    pub title: String,
    /// Up to 5,000 characters.
    pub description: Option<String>,
    /// The item's category.
    pub category_id: CategoryId,
    /// Defaults to the seller's home region.
    pub region_id: Option<RegionId>,
    /// Visible in every region.
    pub national: bool,
    /// The item's condition.
    pub condition: Condition,
    /// Who pays shipping.
    pub shipping_payer: ShippingPayer,
    /// The first bid's minimum.
    pub start_price: i64,
    /// Optional instant price, above the start price.
    pub buy_now_price: Option<i64>,
    /// Optional hidden minimum for a sale.
    pub reserve_price: Option<i64>,
    /// Optional fixed increment (otherwise the tiered table).
    pub bid_increment: Option<i64>,
    /// Defaults to now.
    pub starts_at: Option<DateTime<Utc>>,
    /// 1 minute to 30 days after the start.
    pub ends_at: DateTime<Utc>,
    /// 0–600, default 120.
    pub soft_close_seconds: Option<i32>,
}

/// A valid auction, ready to store.
#[derive(Debug, Clone)]
pub struct NewAuction {
    /// Trimmed title.
    pub title: String,
    /// Description (may be empty).
    pub description: String,
    /// Category.
    pub category_id: CategoryId,
    /// Region.
    pub region_id: RegionId,
    /// Visible everywhere.
    pub national: bool,
    /// Condition.
    pub condition: Condition,
    /// Shipping.
    pub shipping_payer: ShippingPayer,
    /// Start price.
    pub start_price: Krw,
    /// Buy-now price.
    pub buy_now_price: Option<Krw>,
    /// Reserve.
    pub reserve_price: Option<Krw>,
    /// Fixed increment.
    pub bid_increment: Option<Krw>,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// Soft-close window.
    pub soft_close_seconds: i32,
    /// `scheduled` when it starts later, else `active`.
    pub status: Status,
}

fn invalid(field: &'static str, code: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError::new(field, code, message)
}

impl NewAuctionRequest {
    /// Applies every rule at `now`; `home_region` is the seller's, used when no region is given.
    pub fn validate(self, home_region: Option<RegionId>, now: DateTime<Utc>) -> Result<NewAuction, ValidationError> {
        refuse_control_chars("title", &self.title, false)?;
        // Counted as sent, before trimming, so that the length rule is the documented `maxLength`.
        let title_len = self.title.chars().count();
        let title = self.title.trim().to_owned();
        // A title of zero-width spaces or direction marks would show as an empty line.
        let visible = title.chars().any(|c| !c.is_whitespace() && !is_invisible(c));
        if !(1..=100).contains(&title_len) || !visible {
            return Err(invalid("title", "invalid_title", "title must be 1 to 100 characters, some of them visible"));
        }
        let description = self.description.unwrap_or_default();
        refuse_control_chars("description", &description, true)?;
        if description.chars().count() > 5_000 {
            return Err(invalid("description", "description_too_long", "description must be at most 5,000 characters"));
        }
        let region_id = self.region_id.or(home_region).ok_or_else(|| {
            invalid("region_id", "region_required", "give region_id, or set a home region on your account")
        })?;
        let start_price = Krw::parse(self.start_price, "start_price")?;
        let buy_now_price = self.buy_now_price.map(|p| Krw::parse(p, "buy_now_price")).transpose()?;
        if buy_now_price.is_some_and(|p| p <= start_price) {
            return Err(invalid("buy_now_price", "buy_now_not_above_start", "buy_now_price must be above start_price"));
        }
        let reserve_price = self.reserve_price.map(|p| Krw::parse(p, "reserve_price")).transpose()?;
        if reserve_price.is_some_and(|r| r < start_price) {
            return Err(invalid("reserve_price", "reserve_below_start", "reserve_price must be at least start_price"));
        }
        if let (Some(reserve), Some(buy_now)) = (reserve_price, buy_now_price)
            && reserve > buy_now
        {
            return Err(invalid(
                "reserve_price",
                "reserve_above_buy_now",
                "reserve_price must not exceed buy_now_price",
            ));
        }
        let bid_increment = self.bid_increment.map(|i| Krw::parse(i, "bid_increment")).transpose()?;
        // The first bid may be the start price; someone must be able to outbid it.
        let second_bid = min_next_bid(start_price.get(), 1, start_price.get(), bid_increment.map(Krw::get));
        if second_bid > MAX_AMOUNT {
            let field = if bid_increment.is_some() { "bid_increment" } else { "start_price" };
            return Err(invalid(
                field,
                "no_room_to_outbid",
                format!(
                    "start_price plus the increment must be at most {MAX_AMOUNT} KRW, or nobody could outbid the first bid"
                ),
            ));
        }
        let starts_at = self.starts_at.unwrap_or(now);
        if starts_at < now - START_SKEW {
            return Err(invalid("starts_at", "starts_in_the_past", "starts_at must not be in the past"));
        }
        if starts_at > now + MAX_SCHEDULE_AHEAD {
            return Err(invalid("starts_at", "starts_too_late", "starts_at must be at most 30 days ahead"));
        }
        // Measured from now when the start is (slightly) past: an auction must run its minimum.
        let runs_for = self.ends_at - starts_at.max(now);
        if runs_for < MIN_DURATION || self.ends_at - starts_at > MAX_DURATION {
            return Err(invalid(
                "ends_at",
                "invalid_duration",
                "ends_at must be at least 1 minute from now and after starts_at, and at most 30 days after starts_at",
            ));
        }
        let soft_close_seconds = self.soft_close_seconds.unwrap_or(DEFAULT_SOFT_CLOSE_SECONDS);
        if !(0..=600).contains(&soft_close_seconds) {
            return Err(invalid("soft_close_seconds", "invalid_soft_close", "soft_close_seconds must be 0 to 600"));
        }
        Ok(NewAuction {
            title,
            description,
            category_id: self.category_id,
            region_id,
            national: self.national,
            condition: self.condition,
            shipping_payer: self.shipping_payer,
            start_price,
            buy_now_price,
            reserve_price,
            bid_increment,
            starts_at,
            ends_at: self.ends_at,
            soft_close_seconds,
            status: if starts_at > now { Status::Scheduled } else { Status::Active },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn request() -> NewAuctionRequest {
        NewAuctionRequest {
            title: "  Bicycle ".into(),
            description: None,
            category_id: CategoryId(8),
            region_id: None,
            national: false,
            condition: Condition::Good,
            shipping_payer: ShippingPayer::Buyer,
            start_price: 10_000,
            buy_now_price: Some(50_000),
            reserve_price: Some(20_000),
            bid_increment: None,
            starts_at: None,
            ends_at: now() + Duration::hours(1),
            soft_close_seconds: None,
        }
    }

    fn field_of(request: NewAuctionRequest) -> (&'static str, &'static str) {
        let err = request.validate(Some(RegionId(111)), now()).unwrap_err();
        (err.field, err.code)
    }

    #[test]
    fn the_documented_patterns_are_the_rules() {
        let title = regex::Regex::new(TITLE_PATTERN).unwrap();
        let description = regex::Regex::new(crate::validation::MULTILINE_PATTERN).unwrap();
        let samples = [
            "Bicycle",
            " padded ",
            "자전거",
            "a\tb",
            "a\nb",
            "\0",
            "x\u{7f}",
            "\u{85}",
            "\u{a0}",
            "\u{200b}",
            "\u{200b}x",
            "\u{202e}",
            "\u{2065}",
            "\u{3000}\u{feff}",
            "\u{ad}",
            " ",
            "",
            "\u{1680}a",
        ];
        for text in samples {
            let accepted =
                NewAuctionRequest { title: text.into(), ..request() }.validate(Some(RegionId(111)), now()).is_ok();
            assert_eq!(accepted, title.is_match(text), "title {text:?}");
            let accepted = NewAuctionRequest { description: Some(text.into()), ..request() }
                .validate(Some(RegionId(111)), now())
                .is_ok();
            assert_eq!(accepted, description.is_match(text), "description {text:?}");
        }
    }

    #[test]
    fn defaults_fill_in_region_start_and_soft_close() {
        let auction = request().validate(Some(RegionId(111)), now()).unwrap();
        assert_eq!(auction.title, "Bicycle");
        assert_eq!(auction.region_id, RegionId(111));
        assert_eq!(auction.starts_at, now());
        assert_eq!(auction.soft_close_seconds, 120);
        assert_eq!(auction.status, Status::Active);
    }

    #[test]
    fn a_later_start_is_scheduled() {
        let later = NewAuctionRequest { starts_at: Some(now() + Duration::minutes(10)), ..request() };
        assert_eq!(later.validate(Some(RegionId(111)), now()).unwrap().status, Status::Scheduled);
    }

    #[test]
    fn each_invalid_combination_names_its_field() {
        assert_eq!(field_of(NewAuctionRequest { title: " ".into(), ..request() }), ("title", "invalid_title"));
        assert_eq!(field_of(NewAuctionRequest { title: "x".repeat(101), ..request() }).0, "title");
        assert_eq!(field_of(NewAuctionRequest { description: Some("x".repeat(5_001)), ..request() }).0, "description");
        assert_eq!(field_of(NewAuctionRequest { start_price: 0, ..request() }), ("start_price", "amount_not_positive"));
        assert_eq!(field_of(NewAuctionRequest { buy_now_price: Some(10_000), ..request() }).0, "buy_now_price");
        assert_eq!(field_of(NewAuctionRequest { reserve_price: Some(5_000), ..request() }).0, "reserve_price");
        assert_eq!(field_of(NewAuctionRequest { reserve_price: Some(60_000), ..request() }).1, "reserve_above_buy_now");
        assert_eq!(field_of(NewAuctionRequest { bid_increment: Some(-1), ..request() }).0, "bid_increment");
        assert_eq!(field_of(NewAuctionRequest { ends_at: now() + Duration::seconds(59), ..request() }).0, "ends_at");
        assert_eq!(field_of(NewAuctionRequest { ends_at: now() + Duration::days(31), ..request() }).0, "ends_at");
        assert_eq!(
            field_of(NewAuctionRequest { starts_at: Some(now() - Duration::hours(1)), ..request() }).0,
            "starts_at"
        );
        assert_eq!(field_of(NewAuctionRequest { soft_close_seconds: Some(601), ..request() }).0, "soft_close_seconds");
        let past = NewAuctionRequest {
            starts_at: Some(now() - Duration::seconds(290)),
            ends_at: now() - Duration::seconds(230),
            ..request()
        };
        assert_eq!(field_of(past), ("ends_at", "invalid_duration"), "an auction already over");
        let year_9999 = DateTime::parse_from_rfc3339("9999-01-01T00:00:00Z").unwrap().to_utc();
        let far = NewAuctionRequest { starts_at: Some(year_9999), ends_at: year_9999 + Duration::days(1), ..request() };
        assert_eq!(field_of(far), ("starts_at", "starts_too_late"));
        for title in ["\u{200B}\u{202E}", " \u{FEFF} "] {
            assert_eq!(field_of(NewAuctionRequest { title: title.into(), ..request() }).1, "invalid_title");
        }
        assert_eq!(field_of(NewAuctionRequest { title: "a\0b".into(), ..request() }), ("title", "control_character"));
        assert_eq!(
            field_of(NewAuctionRequest { description: Some("nul\0".into()), ..request() }),
            ("description", "control_character")
        );
        let top = NewAuctionRequest { start_price: MAX_AMOUNT, buy_now_price: None, reserve_price: None, ..request() };
        assert_eq!(field_of(top), ("start_price", "no_room_to_outbid"));
        let no_region = request().validate(None, now()).unwrap_err();
        assert_eq!((no_region.field, no_region.code), ("region_id", "region_required"));
    }
}
