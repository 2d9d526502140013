//! The self-service pages' templates (`templates/layout.html` and the pages extending it),
//! compiled once into the binary, and the small pages every handler needs: a notice, an invalid
//! link, a server error, "too many requests".

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, UndefinedBehavior, Value, context};
use std::sync::OnceLock;

const PAGES: [(&str, &str); 5] = [
    ("layout.html", include_str!("../../templates/layout.html")),
    ("topic.html", include_str!("../../templates/topic.html")),
    (
        "subscribe.html",
        include_str!("../../templates/subscribe.html"),
    ),
    ("manage.html", include_str!("../../templates/manage.html")),
    ("notice.html", include_str!("../../templates/notice.html")),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        for (name, source) in PAGES {
            // Fixed at build time; the unit test below renders each page.
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("built-in template {name}: {e}"));
        }
        env
    })
}

/// Renders `name` with `ctx` (plus `home`, the site's root path) as a page.
pub fn page(status: StatusCode, name: &str, home: &str, ctx: Value) -> Response {
    let ctx = context! { home, ..ctx };
    match env().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                template = name,
                "page template failed"
            );
            (StatusCode::INTERNAL_SERVER_ERROR, "Lỗi máy chủ.").into_response()
        }
    }
}

/// A button posting to `action`, for notice pages.
#[derive(Debug, Clone)]
pub struct Button {
    pub action: String,
    pub csrf: Option<String>,
    pub button: &'static str,
    pub danger: bool,
}

/// A page with a title, some paragraphs, maybe one button and one link.
pub fn notice(
    status: StatusCode,
    home: &str,
    title: &str,
    paragraphs: &[&str],
    form: Option<Button>,
    link: Option<(&str, String)>,
) -> Response {
    let link = link.map(|(text, url)| context! { text, url });
    let form = form.map(
        |b| context! { action => b.action, csrf => b.csrf, button => b.button, danger => b.danger },
    );
    page(
        status,
        "notice.html",
        home,
        context! { title, paragraphs => paragraphs.iter().map(|p| p.to_string()).collect::<Vec<_>>(), form, link },
    )
}

pub fn invalid_link(home: &str) -> Response {
    notice(
        StatusCode::NOT_FOUND,
        home,
        "Liên kết không hợp lệ",
        &[
            "Liên kết này không đúng, đã hết hạn hoặc đã được dùng.",
            "Liên kết xác nhận có hiệu lực trong 48 giờ; liên kết quản lý trong 90 ngày. Bạn có thể đăng ký lại để nhận liên kết mới qua email.",
        ],
        None,
        Some(("Đến trang đăng ký", format!("{home}subscribe"))),
    )
}

pub fn unavailable(home: &str) -> Response {
    notice(
        StatusCode::SERVICE_UNAVAILABLE,
        home,
        "Tạm thời không thực hiện được",
        &["Máy chủ đang gặp sự cố. Xin thử lại sau ít phút."],
        None,
        None,
    )
}

pub fn forbidden_form(home: &str) -> Response {
    notice(
        StatusCode::FORBIDDEN,
        home,
        "Biểu mẫu đã hết hạn",
        &[
            "Biểu mẫu này không còn hợp lệ (có thể trình duyệt đã chặn cookie, hoặc trang đã mở quá lâu). Xin tải lại trang và gửi lại.",
        ],
        None,
        None,
    )
}

pub fn too_many(home: &str, retry_after: std::time::Duration) -> Response {
    let minutes = retry_after.as_secs().div_ceil(60).max(1);
    let text = format!("Xin thử lại sau khoảng {minutes} phút.");
    let mut response = notice(
        StatusCode::TOO_MANY_REQUESTS,
        home,
        "Quá nhiều yêu cầu",
        &[
            "Bạn (hoặc mạng của bạn) đã gửi quá nhiều yêu cầu đăng ký trong thời gian ngắn.",
            &text,
        ],
        None,
        None,
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_template_compiles() {
        for (name, _) in PAGES {
            assert!(env().get_template(name).is_ok(), "{name}");
        }
        let r = invalid_link("/");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
