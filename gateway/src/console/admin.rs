//! The console's admin pages: users (list, change a role) and health (each
//! backend's readiness, the outbox's backlog, oldest unpublished event and
//! relay errors). Both ask the API first, with the viewer's token, so only
//! who the API takes for an admin sees them.

use axum::http::StatusCode;
use axum::response::Response;
use oms_proto::user::v1::{self as pb, user_service_client::UserServiceClient};

use super::session::Viewer;
use super::view::{self, escape, time};
use crate::Gateway;
use crate::backends::Service;

fn users_client(gateway: &Gateway) -> UserServiceClient<oms_runtime::channel::Balanced> {
    UserServiceClient::new(gateway.backends.channel(Service::User))
}

fn role_name(role: i32) -> &'static str {
    match pb::Role::try_from(role) {
        Ok(pb::Role::Admin) => "admin",
        Ok(pb::Role::Customer) => "customer",
        _ => "unknown",
    }
}

/// `GET /console/users`, with a notice or the API's refusal of a change.
pub(crate) async fn users(
    gateway: &Gateway,
    viewer: &Viewer,
    uri: &axum::http::Uri,
    outcome: Option<Result<String, tonic::Status>>,
) -> Response {
    let page = uri
        .query()
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "page")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default();
    let listed = users_client(gateway)
        .list_users(viewer.call(pb::ListUsersRequest {
            page_size: 50,
            page_token: page,
        }))
        .await;
    let listed = match listed {
        Ok(r) => r.into_inner(),
        Err(status) => return view::refused(viewer, "users", &status),
    };
    let rows: String = listed
        .users
        .iter()
        .map(|u| {
            let current = role_name(u.role);
            let options: String = ["customer", "admin"]
                .iter()
                .map(|r| format!(r#"<option value="{r}"{}>{r}</option>"#, if *r == current { " selected" } else { "" }))
                .collect();
            format!(
                r#"<tr><td data-label="Email">{email}</td><td data-label="Name">{name}</td><td data-label="State">{state}</td><td data-label="Since">{since}</td><td data-label="Role"><form method="post" action="/console/users/{id}/role" class="inline"><input type="hidden" name="csrf" value="{csrf}"><label for="role-{id}" class="visually-hidden">Role of {email}</label><select id="role-{id}" name="role">{options}</select> <button type="submit" class="secondary">Set role</button></form></td></tr>"#,
                id = escape(&u.id),
                email = escape(&u.email),
                name = escape(&u.display_name),
                state = if u.state == pb::user::State::Disabled as i32 { "disabled" } else { "active" },
                since = time(u.create_time.as_ref()),
                csrf = escape(&viewer.csrf),
            )
        })
        .collect();
    let outcome = match outcome {
        None => String::new(),
        Some(Ok(notice)) => format!(r#"<p class="notice" role="status">{}</p>"#, escape(&notice)),
        Some(Err(status)) => {
            use tonic_types::StatusExt as _;
            let reason = status
                .get_details_error_info()
                .map(|i| i.reason)
                .unwrap_or_default();
            format!(
                r#"<p class="error" role="alert">Refused: {} <span class="muted">({reason})</span></p>"#,
                escape(status.message())
            )
        }
    };
    let pager = if listed.next_page_token.is_empty() {
        String::new()
    } else {
        let next: String =
            url::form_urlencoded::byte_serialize(listed.next_page_token.as_bytes()).collect();
        format!(
            r#"<nav class="pager" aria-label="Pages"><a href="/console/users?page={next}" rel="next">More users</a></nav>"#
        )
    };
    let body = format!(
        r#"{outcome}<p class="muted">A new role applies from the user's next sign-in; they are signed out everywhere.</p><div class="table-wrap"><table class="cards"><thead><tr><th scope="col">Email</th><th scope="col">Name</th><th scope="col">State</th><th scope="col">Since</th><th scope="col">Role</th></tr></thead><tbody>{rows}</tbody></table></div>{pager}"#
    );
    view::page(StatusCode::OK, Some(viewer), "users", "Users", &body)
}

/// `POST /console/users/{id}/role`.
pub(crate) async fn set_role(
    gateway: &Gateway,
    viewer: &Viewer,
    uri: &axum::http::Uri,
    id: &str,
    form: &[(String, String)],
) -> Response {
    let role = match crate::oauth2::param(form, "role") {
        Some("admin") => pb::Role::Admin,
        Some("customer") => pb::Role::Customer,
        _ => pb::Role::Unspecified,
    };
    match users_client(gateway)
        .set_user_role(viewer.call(pb::SetUserRoleRequest {
            user_id: id.to_owned(),
            role: role as i32,
        }))
        .await
    {
        // Redirected, so reloading the page does not post again.
        Ok(_) => viewer.finish(view::redirect("/console/users?done=role")),
        Err(status) => users(gateway, viewer, uri, Some(Err(status))).await,
    }
}

/// One series of this process's metrics, by name: `(labels, value)`.
fn series(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(rest) => {
                    let (labels, value) = rest.split_once('}')?;
                    (labels.to_owned(), value)
                }
                None if rest.starts_with(' ') => (String::new(), rest),
                None => return None,
            };
            Some((labels, value.trim().parse().ok()?))
        })
        .collect()
}

/// `GET /console/health`.
pub(crate) async fn health(gateway: &Gateway, viewer: &Viewer) -> Response {
    // The API decides who is an admin.
    if let Err(status) = users_client(gateway)
        .list_users(viewer.call(pb::ListUsersRequest {
            page_size: 1,
            page_token: String::new(),
        }))
        .await
    {
        return view::refused(viewer, "health", &status);
    }
    let checks = futures_util::future::join_all(Service::ALL.map(|service| async move {
        (
            service.name(),
            crate::health::check(gateway.backends.channel(service)).await,
        )
    }))
    .await;
    let backends: String = checks
        .iter()
        .map(|(name, serving)| {
            let (class, word) = if *serving { ("status-CONFIRMED", "SERVING") } else { ("status-FAILED", "NOT SERVING") };
            format!(r#"<tr><td data-label="Service">{name}</td><td data-label="Readiness"><span class="badge {class}">{word}</span></td></tr>"#)
        })
        .collect();
    let metrics = oms_telemetry::metrics::render();
    let backlog = series(&metrics, "outbox_backlog");
    let events = if backlog.is_empty() {
        r#"<p class="muted">No outbox is visible from this gateway: the services run in other processes. Their <code>/metrics</code> (and the Grafana dashboard) show the backlog.</p>"#.to_owned()
    } else {
        let find = |name: &str, labels: &str| {
            series(&metrics, name)
                .into_iter()
                .find(|(l, _)| l == labels)
                .map(|(_, v)| v)
        };
        let rows: String = backlog
            .iter()
            .map(|(labels, value)| {
                let service = labels.split('"').nth(1).unwrap_or(labels);
                let oldest = find("outbox_oldest_unpublished_seconds", labels).unwrap_or(0.0);
                let errors = find("outbox_publish_errors_total", labels).unwrap_or(0.0);
                format!(
                    r#"<tr><td data-label="Service">{service}</td><td data-label="Unpublished events" class="num">{value}</td><td data-label="Oldest unpublished" class="num">{oldest:.0} s</td><td data-label="Relay errors" class="num">{errors}</td></tr>"#,
                    service = escape(service),
                )
            })
            .collect();
        format!(
            r#"<div class="table-wrap"><table class="cards"><thead><tr><th scope="col">Service</th><th scope="col" class="num">Unpublished events</th><th scope="col" class="num">Oldest unpublished</th><th scope="col" class="num">Relay errors</th></tr></thead><tbody>{rows}</tbody></table></div>"#
        )
    };
    let body = format!(
        r#"<h2>Backends</h2><div class="table-wrap"><table class="cards"><thead><tr><th scope="col">Service</th><th scope="col">Readiness</th></tr></thead><tbody>{backends}</tbody></table></div><h2>Events</h2>{events}"#
    );
    view::page(StatusCode::OK, Some(viewer), "health", "Health", &body)
}

#[cfg(test)]
mod tests {
    use super::series;

    #[test]
    fn a_series_is_read_by_its_exact_name() {
        let text = "# TYPE outbox_backlog gauge\noutbox_backlog{service=\"order-svc\"} 3\noutbox_backlog_total 9\noutbox_oldest_unpublished_seconds{service=\"order-svc\"} 1.5\n";
        assert_eq!(
            series(text, "outbox_backlog"),
            vec![("service=\"order-svc\"".to_owned(), 3.0)]
        );
        assert_eq!(series(text, "outbox_oldest_unpublished_seconds")[0].1, 1.5);
    }
}
