//! hyper's timer for one connection, reusing its one sleep from request to request.
//!
//! hyper arms the header-read timeout (`header_read_timeout`, the guard against clients that
//! send their headers slowly) for every request on a connection: with tokio's timer as hyper-util
//! gives it, that is a new sleep per request, registered in the runtime's timer wheel when the
//! next request is awaited and removed when it arrives (the wheel's lock, an allocation, a few
//! percent of a cached catalogue answer). A connection reads one request head at a time, so
//! it needs one sleep: here the sleep hyper drops goes back to the connection and the next one
//! is the same, moved to its new deadline (tokio moves a registered timer to a later deadline
//! without touching the wheel). It stays registered until the connection ends; if it fires
//! while parked, it wakes the connection once for nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

type TokioSleep = Pin<Box<tokio::time::Sleep>>;

/// One connection's timer (give each connection its own).
#[derive(Clone, Default)]
pub struct ConnTimer {
    parked: Arc<Mutex<Option<TokioSleep>>>,
}

impl ConnTimer {
    fn take(&self, deadline: Instant) -> ConnSleep {
        let parked = self.parked.lock().unwrap_or_else(|p| p.into_inner()).take();
        let sleep = match parked {
            Some(mut sleep) => {
                sleep.as_mut().reset(deadline.into());
                sleep
            }
            None => Box::pin(tokio::time::sleep_until(deadline.into())),
        };
        ConnSleep {
            sleep: Some(sleep),
            home: self.parked.clone(),
        }
    }
}

impl hyper::rt::Timer for ConnTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(self.take(Instant::now() + duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(self.take(deadline))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<ConnSleep>() {
            Some(mine) => {
                if let Some(inner) = mine.get_mut().sleep.as_mut() {
                    inner.as_mut().reset(new_deadline.into());
                }
            }
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// A sleep of a [`ConnTimer`]: back to its connection when dropped.
pub struct ConnSleep {
    sleep: Option<TokioSleep>,
    home: Arc<Mutex<Option<TokioSleep>>>,
}

impl Future for ConnSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut().sleep.as_mut() {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Ready(()),
        }
    }
}

impl hyper::rt::Sleep for ConnSleep {}

impl Drop for ConnSleep {
    fn drop(&mut self) {
        if let Some(sleep) = self.sleep.take() {
            let mut parked = self.home.lock().unwrap_or_else(|p| p.into_inner());
            // Only one is parked; another (never, as hyper uses the timer) is simply dropped.
            if parked.is_none() {
                *parked = Some(sleep);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;

    #[tokio::test]
    async fn a_reused_sleep_fires_at_its_new_deadline() {
        let timer = ConnTimer::default();
        let first = timer.sleep(Duration::from_millis(20));
        drop(first);
        assert!(timer.parked.lock().unwrap().is_some(), "the dropped sleep is parked");
        let started = Instant::now();
        let second = timer.sleep(Duration::from_millis(300));
        assert!(timer.parked.lock().unwrap().is_none(), "and taken again");
        second.await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(290), "not at the first deadline: {waited:?}");
        // Moved to an earlier deadline too.
        let mut third = timer.sleep(Duration::from_secs(60));
        let started = Instant::now();
        timer.reset(&mut third, Instant::now() + Duration::from_millis(50));
        third.await;
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    }
}
