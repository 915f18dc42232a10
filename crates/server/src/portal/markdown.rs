//! Markdown of registered pieces rendered for the portal: CommonMark to HTML with every raw
//! HTML block and inline tag shown as text, and links or images to anything but `http(s)`,
//! `mailto:`, a fragment or a relative path made inert.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};

fn safe_dest(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    match lower.split_once(':') {
        // A scheme before any `/`, `?` or `#`: only these.
        Some((scheme, _)) if !scheme.contains(['/', '?', '#']) => matches!(scheme, "http" | "https" | "mailto"),
        _ => true,
    }
}

/// Safe HTML for a markdown document (front matter included as text).
pub fn to_safe_html(markdown: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    options.insert(Options::ENABLE_TASKLISTS);
    options.insert(Options::ENABLE_YAML_STYLE_METADATA_BLOCKS);
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: if safe_dest(&dest_url) { dest_url } else { CowStr::Borrowed("#") },
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: if safe_dest(&dest_url) { dest_url } else { CowStr::Borrowed("#") },
            title,
            id,
        }),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_and_script_links_are_inert() {
        let html = to_safe_html(
            "# Hi\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) [y](https://ok.example) <img src=x onerror=alert(1)>\n",
        );
        assert!(html.contains("<h1>Hi</h1>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains("href=\"https://ok.example\""), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("href=\"#\""), "{html}");
        assert!(!to_safe_html("[a](JavaScript:x)").contains("avascript"));
        assert!(!to_safe_html("[a]( data:text/html,x)").contains("data:"));
    }
}
