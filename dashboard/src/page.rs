//! The dashboard's one page: HTML with its style and script inlined, so a
//! single request (carrying the token, if any) loads it all and nothing is
//! fetched from anywhere else.

/// The page.
pub(crate) const HTML: &str = concat!(
    include_str!("../assets/head.html"),
    "<style>\n",
    include_str!("../assets/style.css"),
    "</style>\n<script>\n",
    include_str!("../assets/app.js"),
    "</script>\n</body>\n</html>\n",
);
