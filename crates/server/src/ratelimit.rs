//! The public surface's rate limit: per client address, `SKILL_POOL_RATE_LIMIT_PER_MIN` a
//! minute with a burst of a quarter of it. Past it: `429` with `Retry-After`.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

pub struct Limiter {
    inner: DefaultKeyedRateLimiter<IpAddr>,
    /// Checks so far: the size of the key map is looked at every `SWEEP_EVERY` checks only
    /// (counting it locks every shard of the map).
    checks: std::sync::atomic::AtomicU64,
}

const SWEEP_EVERY: u64 = 1024;

impl Limiter {
    pub fn new(per_minute: u32) -> Limiter {
        let rate = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new((per_minute / 4).max(1)).unwrap_or(NonZeroU32::MIN);
        Limiter {
            inner: RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst)),
            checks: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `Err(seconds to wait)` when the address is over its limit.
    pub fn check(&self, addr: IpAddr) -> Result<(), u64> {
        self.inner.check_key(&addr).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + 1
        })?;
        let n = self.checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n.is_multiple_of(SWEEP_EVERY) && self.inner.len() > 100_000 {
            self.inner.retain_recent();
        }
        Ok(())
    }
}

/// Failed authentications per client address in a one-minute window: past the limit, the
/// address is refused (`429`) without its token being checked, until the window ends.
pub struct FailureLimiter {
    per_minute: u32,
    windows: std::sync::Mutex<std::collections::HashMap<IpAddr, (std::time::Instant, u32)>>,
}

impl FailureLimiter {
    /// `per_minute == 0`: no limit.
    pub fn new(per_minute: u32) -> FailureLimiter {
        FailureLimiter {
            per_minute,
            windows: Default::default(),
        }
    }

    const WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

    /// `Err(seconds to wait)` when `addr` has used up its failures.
    pub fn check(&self, addr: IpAddr) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&addr) {
            Some((start, n)) if *n >= self.per_minute && start.elapsed() < Self::WINDOW => {
                Err(Self::WINDOW.saturating_sub(start.elapsed()).as_secs() + 1)
            }
            _ => Ok(()),
        }
    }

    /// Counts one failure of `addr`.
    pub fn failed(&self, addr: IpAddr) {
        if self.per_minute == 0 {
            return;
        }
        let mut map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (start, _)| start.elapsed() < Self::WINDOW);
        }
        let entry = map.entry(addr).or_insert((std::time::Instant::now(), 0));
        if entry.0.elapsed() >= Self::WINDOW {
            *entry = (std::time::Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

/// The public surface's rate limit as a layer: past the limit, `429` with `Retry-After`
/// without calling the route.
#[derive(Clone)]
pub struct LimitLayer(pub Option<Arc<Limiter>>);

impl<S> tower::Layer<S> for LimitLayer {
    type Service = Limit<S>;
    fn layer(&self, inner: S) -> Limit<S> {
        Limit {
            inner,
            limiter: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Limit<S> {
    inner: S,
    limiter: Option<Arc<Limiter>>,
}

impl<S> tower::Service<Request> for Limit<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::Either<std::future::Ready<Result<Response, std::convert::Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if let Some(limiter) = &self.limiter {
            let addr = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
            if let Some(addr) = addr
                && let Err(wait) = limiter.check(addr)
            {
                let mut err = ApiError::new(
                    skill_pool_core::ErrorCode::RateLimited,
                    format!("too many requests from this address: try again in {wait} s"),
                );
                err.retry_after = Some(wait);
                return futures_util::future::Either::Left(std::future::ready(Ok(err.into_response())));
            }
        }
        // Called on the service our caller polled ready; no box, no clone.
        futures_util::future::Either::Right(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_limited_per_address() {
        let limiter = FailureLimiter::new(3);
        let a: IpAddr = "192.0.2.9".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.check(a).is_ok());
            limiter.failed(a);
        }
        assert!(limiter.check(a).is_err());
        assert!(limiter.check("192.0.2.10".parse().unwrap()).is_ok());
        assert!(FailureLimiter::new(0).check(a).is_ok());
    }

    /// One install is a catalogue GET at most plus three git requests (info/refs, ls-refs,
    /// fetch): the default must let one address install dozens of plugins at once.
    #[test]
    fn the_default_lets_one_machine_install_fifty_plugins_at_once() {
        let limiter = Limiter::new(1200);
        let addr: IpAddr = "192.0.2.7".parse().unwrap();
        for i in 0..50 * 4 {
            assert!(limiter.check(addr).is_ok(), "request {i} refused");
        }
        // Another address has its own budget; the first one runs out past the burst.
        assert!(limiter.check("192.0.2.8".parse().unwrap()).is_ok());
        let refused = (0..200).map(|_| limiter.check(addr)).find_map(Result::err);
        assert!(refused.is_some_and(|wait| wait >= 1), "past the burst a Retry-After is given");
    }
}
