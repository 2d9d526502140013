//! `/manage/{token}`: a subscriber's own page: change topics and schedule (with the same
//! preview as sign-up), pause, resume, unsubscribe. The token (from any email tinbao sent them)
//! is the only credential; the forms also carry a CSRF token.

use super::forms::{
    FieldError, Form, MAX_TOPICS, TopicInput, TopicProblem, errors_value, preview, schedules_value,
    valid_schedule,
};
use super::{AppState, csrf, views};
use crate::config::Config;
use crate::digest::links::Purpose;
use crate::storage::Subscriber;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use minijinja::{Value, context};
use std::time::Instant;

pub async fn page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let config = state.config();
    let home = super::home(&config);
    let subscriber = match find(&state, &token).await {
        Ok(Some(s)) => s,
        Ok(None) => return views::invalid_link(&home),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "manage page failed");
            return views::unavailable(&home);
        }
    };
    let topics = subscriber
        .topics
        .iter()
        .filter_map(|s| TopicInput::from_spec(s, &config))
        .collect();
    let page = ManagePage {
        topics,
        problems: Vec::new(),
        schedule: subscriber.schedule.clone(),
        schedule_error: None,
        errors: Vec::new(),
        preview: None,
        saved: None,
    };
    page.render(
        &state,
        &config,
        &headers,
        &token,
        &subscriber,
        StatusCode::OK,
    )
    .await
}

pub async fn submit(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let config = state.config();
    let home = super::home(&config);
    let ip = super::client_ip(&request);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, super::subscribe::MAX_BODY)
        .await
        .unwrap_or_default();
    let form = Form::parse(&body);
    if !csrf::check(state.links.secret(), &parts.headers, form.get("csrf")) {
        return views::forbidden_form(&home);
    }
    match act(&state, &config, &token, &form, &ip).await {
        Ok(Some((page, subscriber, status))) => {
            page.render(&state, &config, &parts.headers, &token, &subscriber, status)
                .await
        }
        Ok(None) => views::invalid_link(&home),
        Err(Refused::TooMany(wait)) => views::too_many(&home, wait),
        Err(Refused::Failed(e)) => {
            tracing::error!(error = format!("{e:#}"), "manage action failed");
            views::unavailable(&home)
        }
    }
}

enum Refused {
    TooMany(std::time::Duration),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Refused {
    fn from(e: anyhow::Error) -> Refused {
        Refused::Failed(e)
    }
}

async fn find(state: &AppState, token: &str) -> anyhow::Result<Option<Subscriber>> {
    let Some(id) = state
        .links
        .verify(&state.store, Purpose::Manage, token, Utc::now())
        .await?
    else {
        return Ok(None);
    };
    state.store.subscriber(id).await
}

/// Carries out the form's action; the page to show after it.
async fn act(
    state: &AppState,
    config: &Config,
    token: &str,
    form: &Form,
    ip: &str,
) -> Result<Option<(ManagePage, Subscriber, StatusCode)>, Refused> {
    let Some(subscriber) = find(state, token).await? else {
        return Ok(None);
    };
    let action = form.get("action").unwrap_or("save");
    let saved = match (action, subscriber.status.as_str()) {
        ("pause", "active") => {
            state
                .store
                .set_subscriber_status(subscriber.id, "paused")
                .await?;
            Some("Đã tạm dừng. Bạn sẽ không nhận bản tin cho tới khi bấm “Tiếp tục nhận tin”.")
        }
        ("resume", "paused" | "unsubscribed") => {
            state
                .store
                .activate_subscriber(subscriber.id, &["paused", "unsubscribed"], Utc::now())
                .await?;
            Some("Đã tiếp tục. Bản tin tới sẽ mang những tin mới từ bây giờ.")
        }
        ("unsubscribe", "active" | "paused" | "bouncing") => {
            state
                .store
                .set_subscriber_status(subscriber.id, "unsubscribed")
                .await?;
            Some("Đã hủy đăng ký. Bạn sẽ không nhận thêm bản tin nào.")
        }
        ("feed", status) if status != "unsubscribed" => {
            state
                .store
                .revoke_tokens(subscriber.id, Purpose::Feed.name())
                .await?;
            Some(
                "Đã đổi địa chỉ nguồn tin riêng. Địa chỉ cũ không còn dùng được; hãy cập nhật trình đọc tin của bạn.",
            )
        }
        ("save" | "preview", "active" | "paused") => None,
        _ => Some("Không có gì thay đổi."),
    };
    if let Some(saved) = saved {
        let Some(fresh) = state.store.subscriber(subscriber.id).await? else {
            return Ok(None);
        };
        let page = ManagePage::from_subscriber(&fresh, config, Some(saved));
        return Ok(Some((page, fresh, StatusCode::OK)));
    }
    let mut page = ManagePage {
        topics: Vec::new(),
        problems: Vec::new(),
        schedule: form.get("schedule").unwrap_or_default().to_string(),
        schedule_error: None,
        errors: Vec::new(),
        preview: None,
        saved: None,
    };
    let mut kept = Vec::new();
    for i in 0..MAX_TOPICS {
        let input = TopicInput::from_form(form, i);
        if input.remove || input.is_blank() {
            if input.remove {
                page.topics.push(input);
                page.problems.push(None);
            }
            continue;
        }
        match input.validate(config) {
            Ok(topic) => {
                kept.push(topic);
                page.problems.push(None);
            }
            Err(problem) => {
                let n = page.topics.len();
                for (field, message) in [
                    (format!("t{n}"), &problem.topic),
                    (format!("t{n}_query"), &problem.query),
                ] {
                    if let Some(message) = message {
                        page.errors.push(FieldError {
                            field,
                            message: format!("Chủ đề {}: {message}", n + 1),
                        });
                    }
                }
                page.problems.push(Some(problem));
            }
        }
        page.topics.push(input);
    }
    if kept.is_empty() && page.errors.is_empty() {
        page.errors.push(FieldError {
            field: "t0".into(),
            message: "Cần ít nhất một chủ đề. Muốn ngừng nhận tin, hãy bấm “Hủy đăng ký”.".into(),
        });
    }
    if !valid_schedule(config, &page.schedule) {
        page.schedule_error = Some("Hãy chọn một lịch nhận bản tin.".into());
        page.errors.push(FieldError {
            field: "schedule".into(),
            message: "Hãy chọn một lịch nhận bản tin.".into(),
        });
    }
    if action == "preview" {
        if !kept.is_empty() {
            state
                .limits
                .previews
                .attempt(ip, Instant::now())
                .map_err(Refused::TooMany)?;
            let topics = kept.iter().map(|(t, _)| t.clone()).collect();
            page.preview = Some(preview(&state.store, config, topics, Utc::now()).await?);
        }
        page.errors.clear();
        page.schedule_error = None;
        return Ok(Some((page, subscriber, StatusCode::OK)));
    }
    if !page.errors.is_empty() {
        return Ok(Some((page, subscriber, StatusCode::UNPROCESSABLE_ENTITY)));
    }
    let specs: Vec<String> = kept.into_iter().map(|(_, spec)| spec).collect();
    state
        .store
        .update_subscription(subscriber.id, &page.schedule, &specs)
        .await?;
    let Some(fresh) = state.store.subscriber(subscriber.id).await? else {
        return Ok(None);
    };
    let page = ManagePage::from_subscriber(&fresh, config, Some("Đã lưu thay đổi."));
    Ok(Some((page, fresh, StatusCode::OK)))
}

struct ManagePage {
    topics: Vec<TopicInput>,
    /// Per entry of `topics`.
    problems: Vec<Option<TopicProblem>>,
    schedule: String,
    schedule_error: Option<String>,
    errors: Vec<FieldError>,
    preview: Option<Value>,
    saved: Option<&'static str>,
}

impl ManagePage {
    fn from_subscriber(s: &Subscriber, config: &Config, saved: Option<&'static str>) -> ManagePage {
        ManagePage {
            topics: s
                .topics
                .iter()
                .filter_map(|spec| TopicInput::from_spec(spec, config))
                .collect(),
            problems: Vec::new(),
            schedule: s.schedule.clone(),
            schedule_error: None,
            errors: Vec::new(),
            preview: None,
            saved,
        }
    }

    async fn render(
        &self,
        state: &AppState,
        config: &Config,
        headers: &HeaderMap,
        token: &str,
        subscriber: &Subscriber,
        status: StatusCode,
    ) -> Response {
        let home = super::home(config);
        let csrf = csrf::issue(state.links.secret(), headers, super::secure(config));
        let mut topics: Vec<Value> = self
            .topics
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let problem = self.problems.get(i).and_then(Option::as_ref);
                t.view(i, &format!("Chủ đề {}", i + 1), true, problem, config)
            })
            .collect();
        if self.topics.len() < MAX_TOPICS {
            let i = self.topics.len();
            topics.push(TopicInput::default().view(
                i,
                "Thêm chủ đề (không bắt buộc)",
                false,
                None,
                config,
            ));
        }
        let status_label = match subscriber.status.as_str() {
            "active" => "Đang nhận tin",
            "paused" => "Đang tạm dừng",
            "unsubscribed" => "Đã hủy đăng ký",
            "pending" => "Chờ xác nhận",
            "bouncing" => "Thư gửi tới bị trả lại",
            _ => "Không rõ",
        };
        // Made on first showing; not for an address that asked for nothing more.
        let private_feed = if subscriber.status == "unsubscribed" {
            None
        } else {
            match state
                .links
                .private_feed(&state.store, subscriber.id, Utc::now())
                .await
            {
                Ok(url) => Some(url),
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "making a private feed failed");
                    None
                }
            }
        };
        let ctx = context! {
            action => format!("{home}manage/{token}"),
            private_feed,
            csrf => csrf.field,
            email => &subscriber.email,
            status => &subscriber.status,
            status_label,
            saved => self.saved,
            topics,
            schedules => schedules_value(config, &self.schedule),
            schedule_error => &self.schedule_error,
            errors => errors_value(&self.errors),
            preview => &self.preview,
        };
        let mut response = views::page(status, "manage.html", &home, ctx);
        super::with_cookie(&mut response, csrf.set_cookie);
        response
    }
}
