//! The built-in sample upstream: a small shop API (orders, customers, payments, and an admin
//! corner) served in this process on a free loopback port, so that grants and route shapes mean
//! something. Its data is computed from the ids, nothing is stored.
//!
//! It answers only requests that carry its secret (`Authorization: Bearer …`), which only Warden
//! holds, as the credential it injects for the `shop` and `backoffice` targets: every answer a
//! service account gets proves that the gateway swapped the account's key for the upstream's
//! credential, which the account never sees.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// Most orders one list returns.
const MAX_LIST: u64 = 10_000;
/// Orders that "exist" before the demo creates any.
const ORDERS: u64 = 3000;
const STATUSES: [&str; 4] = ["new", "paid", "shipped", "refunded"];

/// The running sample API; stops when dropped.
pub struct Upstream {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// What Warden must inject: `Authorization: Bearer <secret>`.
    pub secret: String,
    task: JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the sample API on a free loopback port.
pub async fn start() -> Result<Upstream> {
    let secret = format!("shop-upstream-{:016x}", super::random_u64());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot start the sample upstream")?;
    let url = format!("http://{}", listener.local_addr()?);
    let state = Shop {
        authorization: Arc::from(format!("Bearer {secret}")),
        next_order: Arc::new(AtomicU64::new(ORDERS + 1)),
    };
    let app = Router::new()
        .route("/v1/orders", get(list_orders).post(create_order))
        .route("/v1/orders/summary", get(summary))
        .route("/v1/orders/{id}", get(show_order))
        .route("/v1/customers/{id}", get(show_customer))
        .route("/v1/payments/{id}", get(show_payment))
        .route("/v1/payments/{id}/refund", post(refund))
        .route(
            "/admin/health",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/admin/stats", get(stats))
        .route(
            "/admin/orders/{id}",
            delete(|| async { StatusCode::NO_CONTENT }),
        )
        .layer(middleware::from_fn_with_state(state.clone(), only_warden))
        .with_state(state);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("warden demo: the sample upstream stopped: {e}");
        }
    });
    Ok(Upstream { url, secret, task })
}

#[derive(Clone)]
struct Shop {
    /// The whole expected `Authorization` value.
    authorization: Arc<str>,
    next_order: Arc<AtomicU64>,
}

/// Refuses requests without the secret Warden injects.
async fn only_warden(State(shop): State<Shop>, request: Request, next: Next) -> Response {
    let presented = request.headers().get(header::AUTHORIZATION);
    if presented.and_then(|v| v.to_str().ok()) != Some(&*shop.authorization) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "this API only answers Warden" })),
        )
            .into_response();
    }
    next.run(request).await
}

fn order(id: u64) -> Value {
    json!({
        "id": id,
        "customer_id": 1 + id % 200,
        "total_cents": 500 + (id * 37) % 50_000,
        "currency": "EUR",
        "status": STATUSES[(id % 4) as usize],
    })
}

#[derive(Deserialize)]
struct List {
    limit: Option<u64>,
}

async fn list_orders(Query(list): Query<List>) -> Json<Value> {
    let limit = list.limit.unwrap_or(20).min(MAX_LIST);
    Json(Value::Array((1..=limit).map(order).collect()))
}

async fn create_order(State(shop): State<Shop>, Json(body): Json<Value>) -> impl IntoResponse {
    let id = shop.next_order.fetch_add(1, Ordering::Relaxed);
    let mut created = order(id);
    created["status"] = json!("new");
    created["items"] = body.get("items").cloned().unwrap_or_default();
    (StatusCode::CREATED, Json(created))
}

async fn show_order(Path(id): Path<u64>) -> Json<Value> {
    Json(order(id))
}

async fn summary(State(shop): State<Shop>) -> Json<Value> {
    let count = shop.next_order.load(Ordering::Relaxed) - 1;
    Json(json!({ "orders": count, "revenue_cents": count * 25_250 }))
}

async fn show_customer(Path(id): Path<u64>) -> Json<Value> {
    Json(json!({
        "id": id,
        "name": format!("Customer {id}"),
        "email": format!("customer{id}@mail.test"),
        "phone": format!("+44 20 7946 {:04}", id % 10_000),
    }))
}

async fn show_payment(Path(id): Path<u64>) -> Json<Value> {
    Json(json!({
        "id": id,
        "order_id": id,
        "amount_cents": 500 + (id * 37) % 50_000,
        "method": "card",
        "status": "captured",
    }))
}

async fn refund(Path(id): Path<u64>) -> Json<Value> {
    Json(json!({ "payment_id": id, "status": "refunded" }))
}

async fn stats(State(shop): State<Shop>) -> Json<Value> {
    Json(json!({
        "orders": shop.next_order.load(Ordering::Relaxed) - 1,
        "customers": 200,
        "uptime": "fine",
    }))
}
