//! The REST API under `/api/v1`: one poem-openapi struct per tag, thin handlers over `shared`.

mod admin;
mod admin_jobs;
mod auctions;
mod auth;
pub mod document;
mod domain_errors;
pub mod error;
mod photos;
mod reference;
pub mod routing;
mod sessions;
mod strict;
mod talk;
mod throttle;
mod users;
mod wallet;

use poem_openapi::{OpenApiService, Tags};

/// The groups endpoints are listed under in the spec and Swagger UI.
#[derive(Tags)]
enum ApiTags {
    /// Sign-up and profiles.
    Users,
    /// Logging in and out.
    Sessions,
    /// Regions and categories.
    Reference,
    /// Balances, deposits, withdrawals and the ledger statement.
    Wallet,
    /// Listing, browsing, bidding and buying.
    Auctions,
    /// Conversations, questions, reviews, profiles and notifications.
    Talk,
    /// Operator endpoints.
    Admin,
}

type Apis = (
    users::UsersApi,
    sessions::SessionsApi,
    reference::ReferenceApi,
    wallet::WalletApi,
    auctions::AuctionsApi,
    photos::PhotosApi,
    talk::TalkApi,
    admin::AdminApi,
    admin_jobs::AdminJobsApi,
);

/// The OpenAPI service: every endpoint, documented, served under `/api/v1`.
pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            users::UsersApi,
            sessions::SessionsApi,
            reference::ReferenceApi,
            wallet::WalletApi,
            auctions::AuctionsApi,
            photos::PhotosApi,
            talk::TalkApi,
            admin::AdminApi,
            admin_jobs::AdminJobsApi,
        ),
        "NeighborBid API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Neighbourhood auctions with an in-app wallet. Authenticate with `Authorization: Bearer <token>` \
         from `POST /sessions`. Every error has the shape `{\"error\": {\"code\", \"message\", \"details\"}}` \
         with a stable snake_case `code`. Money is integer KRW.",
    )
}

/// A page of a list: `{"items": [...], "next_cursor": "..." | null}`.
#[derive(poem_openapi::Object)]
pub struct Page<T: poem_openapi::types::ParseFromJSON + poem_openapi::types::ToJSON> {
    /// The items on this page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The default page size.
fn default_limit() -> u8 {
    20
}
