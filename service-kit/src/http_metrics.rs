//! Requests and latency by route pattern, method and status, counted the same
//! way by every service, and a registry rendered for `GET /metrics`.
//!
//! Every label has a bounded set of values, whatever clients send: routes
//! are patterns (or `unmatched`), methods the standard ones (or `other`:
//! actix accepts any token as a method), and statuses exact codes. Codes
//! stay exact rather than classes because only the services choose them
//! (a client cannot make one up), they number a dozen or two, and telling
//! `401` from `429` from `403` is what the dashboards are for.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{Error, web};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Patterns (`/auth/sessions/{id}`), never raw paths, so a scanner cannot
/// blow up the label space.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl HttpMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route and method",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 30.0,
            ]),
            &["route", "method"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(Self { requests, latency })
    }
}

/// Middleware counting and timing every request; reads the app's
/// `web::Data<HttpMetrics>`.
pub async fn track_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let metrics = req.app_data::<web::Data<HttpMetrics>>().cloned();
    let method = method_label(req.method());
    let started = Instant::now();
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let status = response.status().as_u16().to_string();
        metrics
            .requests
            .with_label_values(&[&route, method, &status])
            .inc();
        metrics
            .latency
            .with_label_values(&[&route, method])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}

/// The method as a label: the methods of RFC 9110 and PATCH, else `other`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// A registry in Prometheus's text format.
pub fn render(registry: &Registry) -> Result<String, prometheus::Error> {
    use prometheus::Encoder;
    let mut buffer = Vec::new();
    prometheus::TextEncoder::new().encode(&registry.gather(), &mut buffer)?;
    Ok(String::from_utf8_lossy(&buffer).into_owned())
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::test::{TestRequest, call_service, init_service};
    use actix_web::{App, HttpResponse};

    use super::*;

    #[test]
    fn standard_methods_are_their_own_label_and_the_rest_one() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for made_up in ["PROPFIND", "get", &"X".repeat(2048)] {
            let method = Method::from_bytes(made_up.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other", "{made_up}");
        }
    }

    #[actix_web::test]
    async fn made_up_methods_and_paths_add_no_series() {
        let registry = Registry::new();
        let metrics = HttpMetrics::register(&registry).unwrap();
        let app = init_service(
            App::new()
                .wrap(from_fn(track_requests))
                .app_data(web::Data::new(metrics))
                .route("/items/{id}", web::get().to(HttpResponse::Ok))
                .default_service(web::to(HttpResponse::NotFound)),
        )
        .await;
        let mut series = Vec::new();
        for round in 0..3 {
            for i in 0..50 {
                let method =
                    Method::from_bytes(format!("M{round}X{i}{}", "A".repeat(2000)).as_bytes())
                        .unwrap();
                let request = TestRequest::default()
                    .method(method)
                    .uri(&format!("/items/{round}-{i}"))
                    .to_request();
                call_service(&app, request).await;
                let request = TestRequest::get()
                    .uri(&format!("/nowhere/{i}"))
                    .to_request();
                call_service(&app, request).await;
            }
            series.push(render(&registry).unwrap().lines().count());
        }
        let text = render(&registry).unwrap();
        assert!(
            text.contains(
                r#"http_requests_total{method="other",route="/items/{id}",status="404"} 150"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"http_requests_total{method="GET",route="unmatched",status="404"} 150"#
            ),
            "{text}"
        );
        assert!(text.len() < 10_000, "{}", text.len());
        assert!(series.iter().all(|n| *n == series[0]), "{series:?}");
    }
}
