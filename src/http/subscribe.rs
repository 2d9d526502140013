//! `/subscribe`: the sign-up form (email, one topic, schedule) with a preview of the last 7 days'
//! matching stories. A valid submission makes the address pending and mails a confirmation link
//! (double opt-in, 48 h); an address already receiving digests is mailed its manage link
//! instead. Either way the page says the same thing, so it never tells whether an address is
//! known. Submissions are rate-limited per client IP and per address.

use super::forms::{
    FieldError, Form, TopicInput, default_schedule, errors_value, preview, schedules_value,
    valid_schedule,
};
use super::{AppState, csrf, mailing, views};
use crate::config::Config;
use crate::digest::email::SubscriberEmail;
use crate::digest::links::Purpose;
use crate::digest::notices;
use crate::storage::SignUp;
use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use minijinja::{Value, context};
use std::time::Instant;

/// Largest form body read.
pub const MAX_BODY: usize = 64 * 1024;

pub async fn form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let config = state.config();
    if config.smtp.is_none() {
        return no_mail(&super::home(&config));
    }
    let page = SubscribePage {
        email: String::new(),
        email_error: None,
        topic: TopicInput::default(),
        problem: None,
        schedule: default_schedule(&config),
        schedule_error: None,
        errors: Vec::new(),
        preview: None,
    };
    page.render(&state, &config, &headers, StatusCode::OK)
}

pub async fn submit(State(state): State<AppState>, request: Request) -> Response {
    let config = state.config();
    let home = super::home(&config);
    let ip = super::client_ip(&request);
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return views::notice(
            StatusCode::PAYLOAD_TOO_LARGE,
            &home,
            "Biểu mẫu quá lớn",
            &["Xin rút ngắn nội dung và gửi lại."],
            None,
            None,
        );
    };
    let form = Form::parse(&body);
    if !csrf::check(state.links.secret(), &parts.headers, form.get("csrf")) {
        return views::forbidden_form(&home);
    }
    let previewing = form.get("action") == Some("preview");
    let mut page = SubscribePage {
        email: form.get("email").unwrap_or_default().trim().to_string(),
        email_error: None,
        topic: TopicInput::from_form(&form, 0),
        problem: None,
        schedule: form.get("schedule").unwrap_or_default().to_string(),
        schedule_error: None,
        errors: Vec::new(),
        preview: None,
    };
    let email = match SubscriberEmail::parse(&page.email) {
        Ok(e) if page.email.len() <= 254 => Some(e),
        _ => {
            if !previewing {
                page.error(
                    "email",
                    if page.email.is_empty() {
                        "Hãy nhập địa chỉ email."
                    } else {
                        "Địa chỉ email chưa đúng; ví dụ đúng: ten@example.vn."
                    },
                );
            }
            None
        }
    };
    let topic = match page.topic.validate(&config) {
        Ok(t) => Some(t),
        Err(problem) => {
            if let Some(m) = &problem.topic {
                page.errors.push(FieldError {
                    field: "t0".into(),
                    message: m.clone(),
                });
            }
            if let Some(m) = &problem.query {
                page.errors.push(FieldError {
                    field: "t0_query".into(),
                    message: m.clone(),
                });
            }
            page.problem = Some(problem);
            None
        }
    };
    if !valid_schedule(&config, &page.schedule) && !previewing {
        page.schedule_error = Some("Hãy chọn một lịch nhận bản tin.".into());
        page.errors.push(FieldError {
            field: "schedule".into(),
            message: "Hãy chọn một lịch nhận bản tin.".into(),
        });
    }
    if previewing {
        if let Some((topic, _)) = topic {
            if let Err(wait) = state.limits.previews.attempt(&ip, Instant::now()) {
                return views::too_many(&home, wait);
            }
            match preview(&state.store, &config, vec![topic], Utc::now()).await {
                Ok(p) => page.preview = Some(p),
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "preview failed");
                    return views::unavailable(&home);
                }
            }
        }
        return page.render(&state, &config, &parts.headers, StatusCode::OK);
    }
    let (Some(email), Some((topic, spec)), true) = (email, topic, page.errors.is_empty()) else {
        return page.render(
            &state,
            &config,
            &parts.headers,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    let now = Instant::now();
    if let Err(wait) = state.limits.per_ip.attempt(&ip, now) {
        return views::too_many(&home, wait);
    }
    if let Err(wait) = state.limits.per_address.attempt(email.as_str(), now) {
        return views::too_many(&home, wait);
    }
    if config.smtp.is_none() {
        return no_mail(&home);
    }
    match sign_up(&state, &config, &email, &page.schedule, spec, &topic).await {
        Ok(()) => {
            let sent = format!(
                "Chúng tôi vừa gửi một thư tới {}. Hãy mở thư và bấm liên kết trong đó để xác nhận (liên kết có hiệu lực trong 48 giờ).",
                email.as_str()
            );
            views::notice(
                StatusCode::OK,
                &home,
                "Hãy kiểm tra hộp thư",
                &[
                    &sent,
                    "Không thấy thư? Hãy xem thư mục Spam hoặc Quảng cáo, hoặc đợi vài phút rồi thử lại.",
                ],
                None,
                None,
            )
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "sign-up failed");
            views::unavailable(&home)
        }
    }
}

/// Sign-up without `[smtp]`: no confirmation could be sent.
fn no_mail(home: &str) -> Response {
    views::notice(
        StatusCode::SERVICE_UNAVAILABLE,
        home,
        "Chưa nhận đăng ký",
        &["Máy chủ này chưa được cấu hình để gửi thư, nên chưa nhận đăng ký qua email."],
        None,
        None,
    )
}

/// Records the request and mails the address: a confirmation link if it is new (or not
/// active), otherwise its manage link. The mail goes out in the background, so the response
/// takes as long either way.
async fn sign_up(
    state: &AppState,
    config: &Config,
    email: &SubscriberEmail,
    schedule: &str,
    spec: String,
    topic: &crate::digest::topic::Topic,
) -> anyhow::Result<()> {
    let now = Utc::now();
    let signed_up = state
        .store
        .request_subscription(
            email.as_str(),
            schedule,
            config.digest.timezone.name(),
            &[spec],
            now,
        )
        .await?;
    let notice = notices::Notice {
        to: email.to_string(),
        topics: vec![topic.describe(config)],
        schedule: super::forms::schedule_label(config, schedule),
        base_url: config.server.base_url.to_string(),
    };
    match signed_up {
        SignUp::Pending(id) => {
            let urls = state
                .links
                .mint(&state.store, id, &[Purpose::Confirm], now)
                .await?;
            let confirm = urls.concat();
            mailing::send_later(config, move |from| {
                notices::confirmation(&notice, &confirm, from)
            });
        }
        SignUp::Existing(id) => {
            let links = state
                .links
                .mint_email_links(&state.store, &[id], now)
                .await?
                .pop()
                .context("no links minted")?;
            let (manage, unsubscribe) = (links.manage, links.unsubscribe);
            mailing::send_later(config, move |from| {
                notices::already_subscribed(&notice, &manage, &unsubscribe, from)
            });
        }
    }
    Ok(())
}

struct SubscribePage {
    email: String,
    email_error: Option<String>,
    topic: TopicInput,
    problem: Option<super::forms::TopicProblem>,
    schedule: String,
    schedule_error: Option<String>,
    errors: Vec<FieldError>,
    preview: Option<Value>,
}

impl SubscribePage {
    fn error(&mut self, field: &str, message: &str) {
        if field == "email" {
            self.email_error = Some(message.to_string());
        }
        self.errors.push(FieldError {
            field: field.to_string(),
            message: message.to_string(),
        });
    }

    fn render(
        &self,
        state: &AppState,
        config: &Config,
        headers: &HeaderMap,
        status: StatusCode,
    ) -> Response {
        let home = super::home(config);
        let csrf = csrf::issue(state.links.secret(), headers, super::secure(config));
        let topics = vec![self.topic.view(
            0,
            "Bạn muốn nhận tin gì?",
            false,
            self.problem.as_ref(),
            config,
        )];
        let ctx = context! {
            action => format!("{home}subscribe"),
            csrf => csrf.field,
            email => &self.email,
            email_error => &self.email_error,
            topics,
            schedules => schedules_value(config, &self.schedule),
            schedule_error => &self.schedule_error,
            errors => errors_value(&self.errors),
            preview => &self.preview,
        };
        let mut response = views::page(status, "subscribe.html", &home, ctx);
        super::with_cookie(&mut response, csrf.set_cookie);
        response
    }
}
