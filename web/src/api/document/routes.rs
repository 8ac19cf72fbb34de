//! The document's paths as routes: which methods a request path allows, and what its path
//! parameters are called (poem-openapi routes them internally as `param0`, `param1`, …).

use std::sync::LazyLock;

/// One documented path.
pub struct Route {
    /// `/auctions/{id}/bids` split at `/`.
    segments: Vec<String>,
    /// Documented methods, upper case.
    methods: Vec<String>,
}

impl Route {
    /// The `Allow` header value: the documented methods, and `HEAD` wherever `GET` is (poem
    /// answers `HEAD` with the `GET` handler).
    pub fn allow(&self) -> String {
        let mut methods = self.methods.clone();
        if methods.iter().any(|m| m == "GET") {
            methods.push("HEAD".into());
        }
        let order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
        methods.sort_by_key(|m| order.iter().position(|o| o == m).unwrap_or(order.len()));
        methods.join(", ")
    }

    /// The name of the `index`th path parameter (`{id}` → `id`).
    pub fn parameter(&self, index: usize) -> Option<&str> {
        self.segments.iter().filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).nth(index)
    }

    /// How well `path` fits: `None` if it does not, else the number of literal segments matched.
    fn fit(&self, path: &[&str]) -> Option<usize> {
        if path.len() != self.segments.len() {
            return None;
        }
        let mut literal = 0;
        for (template, actual) in self.segments.iter().zip(path) {
            if template.starts_with('{') {
                if actual.is_empty() {
                    return None;
                }
            } else if template == actual {
                literal += 1;
            } else {
                return None;
            }
        }
        Some(literal)
    }
}

/// The documented route that `path` (relative to `/api/v1`) falls under, preferring literal
/// segments over parameters (`/sessions/current` over a `/sessions/{id}`).
pub fn find(path: &str) -> Option<&'static Route> {
    static ROUTES: LazyLock<Vec<Route>> = LazyLock::new(|| {
        let paths = super::value()["paths"].as_object().cloned().unwrap_or_default();
        paths
            .into_iter()
            .map(|(path, operations)| Route {
                segments: split(&path).map(str::to_owned).collect(),
                methods: operations.as_object().into_iter().flat_map(|o| o.keys()).map(|m| m.to_uppercase()).collect(),
            })
            .collect()
    });
    let path: Vec<&str> = split(path).collect();
    ROUTES.iter().filter_map(|route| Some((route.fit(&path)?, route))).max_by_key(|(fit, _)| *fit).map(|(_, r)| r)
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.trim_start_matches('/').split('/')
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn request_paths_find_their_documented_route() {
        let route = find("/auctions/abc/bids").unwrap();
        assert_eq!(route.allow(), "GET, HEAD, POST");
        assert_eq!(route.parameter(0), Some("id"));
        assert_eq!(find("/sessions/current").unwrap().allow(), "DELETE");
        assert!(find("/auctions//bids").is_none());
        assert!(find("/nowhere").is_none());
    }
}
