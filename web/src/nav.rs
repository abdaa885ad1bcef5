//! What the navigation bar of every page shows.

/// The navigation bar: who is signed in, whether they may act, and the CSRF token of the
/// page's forms.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    /// Signed-in user.
    pub user: Option<String>,
    /// Whether the user may act.
    pub editor: bool,
    /// CSRF token for the page's forms.
    pub csrf: String,
}
