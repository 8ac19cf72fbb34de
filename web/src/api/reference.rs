//! Reference data: the region tree and item categories.

use neighborbid_shared::reference;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::error::{ApiError, error_set};
use super::{ApiTags, Page};
use crate::state::AppState;

error_set!(
    /// Errors of the reference endpoints.
    ReferenceErrors { 503 => "the database is unavailable" }
);

/// A city (depth 0), district (1) or neighbourhood (2).
#[derive(Object)]
pub struct RegionView {
    /// Stable identifier.
    pub id: i64,
    /// Korean place name.
    pub name: String,
    /// The enclosing region; `null` for a city.
    pub parent_id: Option<i64>,
    /// 0 = city, 1 = district, 2 = neighbourhood.
    pub depth: i16,
}

/// A kind of item.
#[derive(Object)]
pub struct CategoryView {
    /// Stable identifier.
    pub id: i64,
    /// Machine-readable name.
    pub slug: String,
    /// Display name.
    pub name: String,
}

/// Regions and categories.
pub struct ReferenceApi;

#[OpenApi(tag = "ApiTags::Reference")]
impl ReferenceApi {
    /// Every region, parents before children (one page: the tree is small).
    #[oai(path = "/regions", method = "get", operation_id = "list_regions")]
    async fn regions(&self, state: Data<&AppState>) -> Result<Json<Page<RegionView>>, ApiError<ReferenceErrors>> {
        let mut conn = state.pool.acquire().await?;
        let items = reference::regions(&mut conn)
            .await?
            .into_iter()
            .map(|r| RegionView { id: r.id.0, name: r.name, parent_id: r.parent_id.map(i64::from), depth: r.depth })
            .collect();
        Ok(Json(Page { items, next_cursor: None }))
    }

    /// Every item category.
    #[oai(path = "/categories", method = "get", operation_id = "list_categories")]
    async fn categories(&self, state: Data<&AppState>) -> Result<Json<Page<CategoryView>>, ApiError<ReferenceErrors>> {
        let mut conn = state.pool.acquire().await?;
        let items = reference::categories(&mut conn)
            .await?
            .into_iter()
            .map(|c| CategoryView { id: c.id.0, slug: c.slug, name: c.name })
            .collect();
        Ok(Json(Page { items, next_cursor: None }))
    }
}
